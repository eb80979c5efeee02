//! The control socket: a Unix stream socket speaking one JSON object per
//! line. Requests go to the runtime over a channel and are answered there,
//! so every reply reflects the one owner of the protocol state.
//!
//! ```text
//! -> {"cmd":"status"}
//! <- {"ok":true,"status":{...}}
//! -> {"cmd":"bogus"}
//! <- {"ok":false,"error":"unknown variant `bogus`, expected ..."}
//! ```

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader as TokioBufReader};
use tokio::net::UnixListener;
use tokio::sync::{mpsc, oneshot};

pub use crate::node::status::{
    ChannelPeerStatus, ClusterInstanceStatus, ClusterStatus, InstanceStatus, InterfaceStatus,
    ProcessStatus, Status,
};
use crate::vrrp::RxStats;

/// A request on the control socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    // Struct variants so that unknown fields are refused too.
    Status {},
    Reload {},
    /// `baton switchover NAME --to NODE [--unicast]` or `--clear`.
    Switchover {
        instance: String,
        #[serde(default)]
        to: Option<String>,
        #[serde(default)]
        unicast: bool,
        #[serde(default)]
        clear: bool,
    },
}

/// The reply to one request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reply {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Reply {
    pub fn error(msg: impl Into<String>) -> Self {
        Reply {
            ok: false,
            error: Some(msg.into()),
            status: None,
            message: None,
        }
    }
    pub fn message(msg: impl Into<String>) -> Self {
        Reply {
            ok: true,
            error: None,
            status: None,
            message: Some(msg.into()),
        }
    }
    pub fn status(status: Status) -> Self {
        Reply {
            ok: true,
            error: None,
            status: Some(status),
            message: None,
        }
    }
}

/// A request waiting for the runtime's answer.
pub struct Pending {
    pub request: Request,
    pub reply: oneshot::Sender<Reply>,
}

/// Bind the control socket (replacing a stale one) and serve it until the
/// runtime goes away. Only root may connect (mode 0600).
pub fn serve(path: &Path, to_runtime: mpsc::Sender<Pending>) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    // Created 0600 from the start (never briefly open to everyone): the
    // umask covers the bind; the chmod after it is belt and braces.
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let bound = UnixListener::bind(path);
    nix::sys::stat::umask(old);
    let listener = bound?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    tokio::spawn(async move {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors, say: do not spin on it.
                    tracing::warn!("control socket: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let tx = to_runtime.clone();
            tokio::spawn(async move {
                let (rd, mut wr) = stream.into_split();
                let mut rd = TokioBufReader::new(rd);
                loop {
                    let line = match read_request_line(&mut rd).await {
                        Ok(Some(line)) => line,
                        Ok(None) => break,
                        Err(e) => {
                            let mut out = serde_json::to_vec(&Reply::error(e)).unwrap_or_default();
                            out.push(b'\n');
                            let _ = wr.write_all(&out).await;
                            break;
                        }
                    };
                    let reply = match parse_request(&line) {
                        Err(e) => Reply::error(e),
                        Ok(request) => {
                            let (reply, rx) = oneshot::channel();
                            if tx.send(Pending { request, reply }).await.is_err() {
                                Reply::error("agent is shutting down")
                            } else {
                                rx.await
                                    .unwrap_or_else(|_| Reply::error("agent dropped the request"))
                            }
                        }
                    };
                    let mut out = serde_json::to_vec(&reply).unwrap_or_default();
                    out.push(b'\n');
                    if wr.write_all(&out).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    Ok(())
}

/// The longest request line accepted (a request is a few hundred bytes).
pub const MAX_REQUEST_LINE: usize = 64 * 1024;

/// One request line (without its newline) as a request, or the error the
/// client is answered with.
pub fn parse_request(line: &str) -> Result<Request, String> {
    serde_json::from_str::<Request>(line).map_err(|e| format!("bad request: {e}"))
}

/// One request line, without its newline; None at the end of the stream.
/// A line longer than [`MAX_REQUEST_LINE`], or not UTF-8, is an error and
/// ends the connection: nothing unbounded is buffered for a client.
pub async fn read_request_line<R: tokio::io::AsyncBufRead + Unpin>(
    rd: &mut R,
) -> Result<Option<String>, String> {
    let mut buf = Vec::new();
    let mut limited = tokio::io::AsyncReadExt::take(rd, MAX_REQUEST_LINE as u64 + 1);
    let n = limited
        .read_until(b'\n', &mut buf)
        .await
        .map_err(|e| format!("bad request: {e}"))?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
    } else if buf.len() > MAX_REQUEST_LINE {
        return Err(format!(
            "bad request: longer than {MAX_REQUEST_LINE} bytes; closing"
        ));
    }
    String::from_utf8(buf)
        .map(Some)
        .map_err(|_| "bad request: not UTF-8".to_string())
}

/// Client side (the CLI): send one request, wait for its reply.
pub fn request(path: &Path, req: &Request, timeout: Duration) -> Result<Reply, String> {
    let mut stream = std::os::unix::net::UnixStream::connect(path).map_err(|e| {
        format!(
            "cannot connect to {}: {e} (is baton running?)",
            path.display()
        )
    })?;
    stream.set_read_timeout(Some(timeout)).ok();
    stream.set_write_timeout(Some(timeout)).ok();
    let mut line = serde_json::to_vec(req).map_err(|e| e.to_string())?;
    line.push(b'\n');
    stream
        .write_all(&line)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut reply = String::new();
    BufReader::new(stream)
        .read_line(&mut reply)
        .map_err(|e| format!("{}: no reply: {e}", path.display()))?;
    serde_json::from_str(&reply).map_err(|e| format!("bad reply from agent: {e}"))
}

/// The default socket path, used when neither `-s` nor the config names one.
pub fn default_socket() -> PathBuf {
    PathBuf::from("/run/baton/baton.sock")
}

/// A route-mode instance for humans: who holds it comes from the cluster.
fn render_route(out: &mut String, status: &Status, i: &crate::node::status::InstanceStatus) {
    use std::fmt::Write as _;
    let holder = status
        .cluster
        .as_ref()
        .and_then(|c| c.instances.iter().find(|c| c.name == i.name))
        .and_then(|c| c.master.clone())
        .unwrap_or_else(|| "none".into());
    let _ = writeln!(
        out,
        "\n{} on {}: route mode: {}\n  priority {} (base {})\n  holder {holder}\n  VIPs {} {}",
        i.name,
        i.interface,
        i.state,
        i.effective_priority,
        i.base_priority,
        i.virtual_ips.join(" "),
        if i.holds_vips { "(held here)" } else { "" },
    );
    if !i.faults.is_empty() {
        let _ = writeln!(out, "  faults: {}", i.faults.join(", "));
    }
    let _ = writeln!(
        out,
        "  VIPs added {}, removed {}",
        i.tx.vip_adds, i.tx.vip_removes
    );
}

/// Render a status for humans: one block per instance.
pub fn render(status: &Status) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "baton {} (pid {}, config {})",
        status.router_id, status.pid, status.config_file
    );
    for i in &status.instances {
        if i.mode == "route" {
            render_route(&mut out, status, i);
            continue;
        }
        let master = match (i.master, i.master_priority) {
            (Some(a), Some(p)) => format!("{a} (priority {p})"),
            _ => "unknown".to_string(),
        };
        let _ = writeln!(
            out,
            "\n{} on {}: VRID {} v{}: {}\n  priority {} (base {}), advert {} ms (master's {} ms)\n  master {}\n  VIPs {} {}",
            i.name,
            i.interface,
            i.vrid,
            i.version,
            i.state,
            i.effective_priority,
            i.base_priority,
            i.advert_interval_ms,
            i.master_adver_interval_ms,
            master,
            i.virtual_ips.join(" "),
            if i.holds_vips { "(held here)" } else { "" },
        );
        if !i.faults.is_empty() {
            let _ = writeln!(out, "  faults: {}", i.faults.join(", "));
        }
        let _ = writeln!(
            out,
            "  received {} accepted, {} dropped{}",
            i.rx.accepted,
            i.rx.dropped_total(),
            drops(&i.rx)
        );
        let _ = writeln!(
            out,
            "  sent {} adverts, {} GARP/NA; VIPs added {}, removed {}",
            i.tx.adverts_sent, i.tx.garp_sent, i.tx.vip_adds, i.tx.vip_removes
        );
        if let Some(ms) = i.last_transition_ms {
            let moves: Vec<String> =
                i.tx.transitions
                    .iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect();
            let _ = writeln!(
                out,
                "  last transition {ms} ms ago; transitions: {}",
                moves.join(", ")
            );
        }
    }
    if let Some(c) = &status.cluster {
        let _ = writeln!(out, "\ncluster: this node is {}", c.node);
        for p in &c.peers {
            let heard = p
                .last_heard_ms
                .map_or("never".to_string(), |ms| format!("{ms} ms ago"));
            let rtt = p.rtt_us.map_or(String::new(), |us| {
                format!(", rtt {:.1} ms", us as f64 / 1000.0)
            });
            let _ = writeln!(
                out,
                "  peer {}: {}, last heard {heard}, {} heartbeats{rtt}",
                p.name,
                if p.alive {
                    "alive"
                } else if p.connected {
                    "connected, silent"
                } else {
                    "not connected"
                },
                p.heartbeats
            );
            for b in &p.instances {
                let _ = writeln!(
                    out,
                    "    {} {} priority {} epoch {}",
                    b.name, b.state, b.priority, b.epoch
                );
            }
        }
        for i in &c.instances {
            let _ = writeln!(
                out,
                "  {}: epoch {}, master {}{}",
                i.name,
                i.epoch,
                i.master.as_deref().unwrap_or("none"),
                i.pinned
                    .as_ref()
                    .map(|p| format!(", pinned to {p} by an operator"))
                    .unwrap_or_default()
            );
        }
        let counts = |m: &std::collections::BTreeMap<String, u64>| {
            m.iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        for ch in &c.channel {
            if !ch.rejected.is_empty() {
                let _ = writeln!(out, "  rejected from {}: {}", ch.name, counts(&ch.rejected));
            }
        }
        if !c.rejected_unknown.is_empty() {
            let _ = writeln!(
                out,
                "  rejected before naming a peer: {}",
                counts(&c.rejected_unknown)
            );
        }
        for s in &c.sync {
            let v = |v: Option<crate::cluster::SyncVersion>| {
                v.map_or("none".to_string(), |v| v.to_string())
            };
            let _ = writeln!(
                out,
                "  sync {}: version {} here, committed {}{}{}",
                s.name,
                v(s.version),
                v(s.committed),
                if s.locally_modified {
                    ", local file edited (not synced)"
                } else {
                    ""
                },
                s.receiving
                    .map(|r| format!(", receiving {r}"))
                    .unwrap_or_default()
            );
            if let (Some(bytes), Some(age)) = (s.bytes, s.committed_age_ms) {
                let _ = writeln!(out, "    {bytes} bytes, committed {age} ms ago");
            }
            if let Some(err) = &s.write_error {
                let _ = writeln!(out, "    cannot write here: {err}");
            }
            for (peer, pv) in &s.peers {
                let failing = s
                    .failing
                    .iter()
                    .find(|f| &f.peer == peer)
                    .map(|f| {
                        format!(
                            ", cannot write {}: {} (attempt {}, retried with backoff)",
                            f.version, f.reason, f.attempts
                        )
                    })
                    .unwrap_or_default();
                let lag = s
                    .lag
                    .iter()
                    .find(|l| &l.peer == peer && l.behind)
                    .map(|l| format!(", behind for {} ms", l.lag_ms))
                    .unwrap_or_default();
                let _ = writeln!(out, "    {peer}: {}{lag}{failing}", v(*pv));
            }
        }
    }
    for f in &status.interfaces {
        if f.rx.dropped_total() > 0 {
            let _ = writeln!(
                out,
                "\n{} ({}): {} dropped outside any instance{}",
                f.name,
                f.family,
                f.rx.dropped_total(),
                drops(&f.rx)
            );
        }
    }
    out
}

fn drops(rx: &RxStats) -> String {
    if rx.dropped.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = rx.dropped.iter().map(|(k, v)| format!("{k} {v}")).collect();
    format!(" ({})", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_and_bad_ones_are_errors() {
        assert_eq!(
            serde_json::from_str::<Request>(r#"{"cmd":"status"}"#).unwrap(),
            Request::Status {}
        );
        assert!(serde_json::from_str::<Request>(r#"{"cmd":"bogus"}"#).is_err());
        assert!(serde_json::from_str::<Request>(r#"{"cmd":"status","x":1}"#).is_err());
        assert!(serde_json::from_str::<Request>("not json").is_err());
    }

    fn lines(input: &[u8]) -> Vec<Result<Option<String>, String>> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let mut rd = TokioBufReader::new(input);
            let mut out = Vec::new();
            loop {
                let r = read_request_line(&mut rd).await;
                let stop = !matches!(r, Ok(Some(_)));
                out.push(r);
                if stop {
                    return out;
                }
            }
        })
    }

    #[test]
    fn request_lines_are_bounded() {
        assert_eq!(
            lines(b"{\"cmd\":\"status\"}\nsecond"),
            vec![
                Ok(Some("{\"cmd\":\"status\"}".to_string())),
                Ok(Some("second".to_string())),
                Ok(None)
            ]
        );
        let long = vec![b'x'; MAX_REQUEST_LINE + 10];
        let r = lines(&long);
        assert!(
            matches!(&r[..], [Err(e)] if e.contains("longer than")),
            "{r:?}"
        );
        let mut exact = vec![b'y'; MAX_REQUEST_LINE];
        exact.push(b'\n');
        assert!(matches!(lines(&exact)[0], Ok(Some(ref l)) if l.len() == MAX_REQUEST_LINE));
        assert!(matches!(&lines(b"\xff\xfe\n")[..], [Err(e)] if e.contains("UTF-8")));
    }
}
