//! The Prometheus endpoint (`[global] metrics_listen`): `GET /metrics` in
//! the OpenMetrics text format, served from threads of its own.
//!
//! ```text
//!   protocol thread (runtime)              metrics threads
//!   every 100 ms: Status snapshot  --->    Arc<Mutex<Option<Snapshot>>>
//!                                          acceptor -> bounded queue ->
//!                                          2 workers: read one request
//!                                          (8 KiB, 2 s), render, answer
//! ```
//!
//! The protocol thread only builds the same [`Status`] that `baton status`
//! shows and swaps it in; it never waits for a scraper. Rendering, parsing
//! and writing happen on the metrics threads. Nothing is counted here: every
//! number comes from the status (the node core's counters, the channel's
//! rejections), so the metrics and `baton status` cannot disagree.
//!
//! Bounds: two workers and a queue of four connections; a connection
//! beyond that is closed at once. A request must arrive whole (headers up
//! to 8 KiB, no body) within 2 s, and the answer is written under the same
//! deadline, so a slow or hostile client holds one worker for 2 s at most
//! and never more memory than its request.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::control::Status;

/// The longest request head accepted.
pub const MAX_REQUEST: usize = 8 * 1024;
/// A request must be read, and its answer written, within this long.
pub const DEADLINE: Duration = Duration::from_secs(2);
const WORKERS: usize = 2;
const QUEUE: usize = 4;
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What the protocol thread publishes: its status and when it was taken.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub status: Status,
    pub taken: SystemTime,
}

/// The latest snapshot, shared between the protocol thread and the server.
pub type Shared = Arc<Mutex<Option<Snapshot>>>;

/// Bind `addr` and serve it on threads of their own until the process ends.
/// A running endpoint; dropping it stops it (the listener is closed and
/// the workers end once their connection is answered).
pub struct Server {
    stop: Arc<AtomicBool>,
    bound: SocketAddr,
}

impl Server {
    pub fn bound(&self) -> SocketAddr {
        self.bound
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag and closes the
        // listener (a wildcard address is reached on loopback).
        let mut wake = self.bound;
        if wake.ip().is_unspecified() {
            wake.set_ip(match wake {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        let _ = TcpStream::connect_timeout(&wake, Duration::from_millis(200));
    }
}

pub fn serve(addr: SocketAddr, shared: Shared) -> std::io::Result<Server> {
    let listener = TcpListener::bind(addr)?;
    let bound = listener.local_addr()?;
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::sync_channel::<TcpStream>(QUEUE);
    let rx = Arc::new(Mutex::new(rx));
    for i in 0..WORKERS {
        let (rx, shared) = (rx.clone(), shared.clone());
        std::thread::Builder::new()
            .name(format!("metrics-{i}"))
            .spawn(move || loop {
                let next = match rx.lock() {
                    Ok(rx) => rx.recv(),
                    Err(_) => return,
                };
                match next {
                    Ok(stream) => answer(stream, &shared),
                    Err(_) => return,
                }
            })?;
    }
    let stopped = stop.clone();
    std::thread::Builder::new()
        .name("metrics-accept".into())
        .spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    // The listener and the queue go: the workers end.
                    return;
                }
                match stream {
                    // Full: the connection is dropped (closed) at once.
                    Ok(s) => {
                        if let Err(mpsc::TrySendError::Disconnected(_)) = tx.try_send(s) {
                            return;
                        }
                    }
                    // Out of descriptors, say: do not spin on it.
                    Err(_) => std::thread::sleep(Duration::from_millis(100)),
                }
            }
        })?;
    Ok(Server { stop, bound })
}

/// Read one request and answer it; every error ends the connection.
fn answer(mut stream: TcpStream, shared: &Shared) {
    let start = Instant::now();
    let _ = stream.set_write_timeout(Some(DEADLINE));
    let (code, reason, body, ctype) = match read_head(&mut stream, start) {
        Err(why) => (400, "Bad Request", format!("{why}\n"), "text/plain"),
        Ok(head) => match route(&head) {
            Route::Metrics => {
                // Clone out of the lock: rendering never holds it.
                let snap = shared.lock().ok().and_then(|s| s.clone());
                match snap {
                    Some(s) => (200, "OK", render(&s), CONTENT_TYPE),
                    None => (
                        503,
                        "Service Unavailable",
                        "starting\n".into(),
                        "text/plain",
                    ),
                }
            }
            Route::NotFound => (404, "Not Found", "GET /metrics\n".into(), "text/plain"),
            Route::BadMethod => (
                405,
                "Method Not Allowed",
                "GET /metrics\n".into(),
                "text/plain",
            ),
            Route::Bad(why) => (400, "Bad Request", format!("{why}\n"), "text/plain"),
        },
    };
    let mut out = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n{}\r\n",
        body.len(),
        if code == 405 { "Allow: GET\r\n" } else { "" }
    )
    .into_bytes();
    out.extend_from_slice(body.as_bytes());
    let _ = stream.write_all(&out);
    let _ = stream.flush();
    // Read what the client sent beyond the head (bounded, within the
    // deadline) before closing: closing on unread input sends a reset,
    // which can destroy the answer before the client reads it.
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut sink = [0u8; 4096];
    let mut drained = 0;
    while drained < 4 * MAX_REQUEST {
        let Some(left) = DEADLINE
            .checked_sub(start.elapsed())
            .filter(|d| !d.is_zero())
        else {
            break;
        };
        if stream.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
}

/// The request head (up to the blank line), read under [`DEADLINE`] and
/// [`MAX_REQUEST`].
fn read_head(stream: &mut TcpStream, start: Instant) -> Result<String, &'static str> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        let left = DEADLINE
            .checked_sub(start.elapsed())
            .filter(|d| !d.is_zero())
            .ok_or("request too slow")?;
        stream
            .set_read_timeout(Some(left))
            .map_err(|_| "socket error")?;
        let n = match stream.read(&mut chunk) {
            Ok(0) => return Err("request incomplete"),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return Err("request too slow"),
        };
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = find(&buf, b"\r\n\r\n").or_else(|| find(&buf, b"\n\n")) {
            buf.truncate(end);
            return String::from_utf8(buf).map_err(|_| "request not UTF-8");
        }
        if buf.len() > MAX_REQUEST {
            return Err("request too large");
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[derive(Debug, PartialEq, Eq)]
enum Route {
    Metrics,
    NotFound,
    BadMethod,
    Bad(&'static str),
}

/// What a request head asks for: only `GET /metrics` (any query) is served.
fn route(head: &str) -> Route {
    let line = head.lines().next().unwrap_or("");
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Route::Bad("malformed request line");
    };
    if !version.starts_with("HTTP/1.") {
        return Route::Bad("not HTTP/1.x");
    }
    if method != "GET" {
        return Route::BadMethod;
    }
    let path = target.split('?').next().unwrap_or("");
    if path == "/metrics" {
        Route::Metrics
    } else {
        Route::NotFound
    }
}

/// Every metric family baton exports, for documentation and tests: name
/// as scraped (counters with `_total`), type, help.
pub const FAMILIES: &[(&str, MetricType, &str)] = &[
    (
        "baton_info",
        MetricType::Gauge,
        "Always 1; labels: router_id, version.",
    ),
    (
        "baton_start_time_seconds",
        MetricType::Gauge,
        "When the agent started, in seconds since the Unix epoch.",
    ),
    (
        "baton_config_reloads_total",
        MetricType::Counter,
        "Configuration reloads by result (applied, refused).",
    ),
    (
        "baton_config_last_reload_success",
        MetricType::Gauge,
        "1 if the last reload was applied (or none happened yet), 0 if it was refused.",
    ),
    (
        "baton_instance_state",
        MetricType::Gauge,
        "1 for the instance's current state, 0 for the others.",
    ),
    (
        "baton_instance_priority",
        MetricType::Gauge,
        "Effective priority (base adjusted by tracking).",
    ),
    (
        "baton_instance_base_priority",
        MetricType::Gauge,
        "Configured priority.",
    ),
    (
        "baton_instance_holds_vips",
        MetricType::Gauge,
        "1 when this node holds the instance's VIPs.",
    ),
    (
        "baton_instance_transitions_total",
        MetricType::Counter,
        "State changes by from and to state.",
    ),
    (
        "baton_instance_last_transition_timestamp_seconds",
        MetricType::Gauge,
        "When the instance last changed state, in seconds since the Unix epoch.",
    ),
    (
        "baton_instance_adverts_sent_total",
        MetricType::Counter,
        "Adverts sent (one per destination).",
    ),
    (
        "baton_instance_adverts_received_total",
        MetricType::Counter,
        "Adverts received and accepted.",
    ),
    (
        "baton_instance_drops_total",
        MetricType::Counter,
        "Received VRRP packets dropped, by reason.",
    ),
    (
        "baton_instance_vip_adds_total",
        MetricType::Counter,
        "Times the VIPs were added.",
    ),
    (
        "baton_instance_vip_removes_total",
        MetricType::Counter,
        "Times the VIPs were removed.",
    ),
    (
        "baton_instance_garp_sent_total",
        MetricType::Counter,
        "Gratuitous ARPs / unsolicited NAs sent (one per VIP per repeat).",
    ),
    (
        "baton_interface_drops_total",
        MetricType::Counter,
        "VRRP packets no instance could own, dropped by reason.",
    ),
    (
        "baton_peer_connected",
        MetricType::Gauge,
        "1 when the cluster connection to the peer is up.",
    ),
    (
        "baton_peer_alive",
        MetricType::Gauge,
        "1 when the peer is connected and heard within 3 heartbeats.",
    ),
    (
        "baton_peer_heartbeats_received_total",
        MetricType::Counter,
        "Heartbeats received from the peer.",
    ),
    (
        "baton_peer_rtt_seconds",
        MetricType::Gauge,
        "Last round-trip time measured with the peer's heartbeat echo.",
    ),
    (
        "baton_peer_frames_rejected_total",
        MetricType::Counter,
        "Frames from the peer rejected, by reason.",
    ),
    (
        "baton_cluster_connections_rejected_total",
        MetricType::Counter,
        "Connections refused before they named a configured peer, by reason.",
    ),
    (
        "baton_sync_version_epoch",
        MetricType::Gauge,
        "Epoch of the version this node holds of the entry.",
    ),
    (
        "baton_sync_version_counter",
        MetricType::Gauge,
        "Counter of the version this node holds of the entry.",
    ),
    (
        "baton_sync_committed",
        MetricType::Gauge,
        "1 when the version held here is the committed one.",
    ),
    (
        "baton_sync_bytes",
        MetricType::Gauge,
        "Size of the content held here.",
    ),
    (
        "baton_sync_last_commit_age_seconds",
        MetricType::Gauge,
        "Time since this node learned of the committed version.",
    ),
    (
        "baton_sync_peer_behind",
        MetricType::Gauge,
        "1 when the peer holds an older version than this node.",
    ),
    (
        "baton_sync_peer_lag_seconds",
        MetricType::Gauge,
        "How long the peer has held an older version than this node (0: up to date).",
    ),
];

type Labels = Vec<(&'static str, String)>;

/// One family's samples, collected before encoding.
enum Samples {
    Counter(Vec<(Labels, u64)>),
    Gauge(Vec<(Labels, f64)>),
}

/// The snapshot as a [`Collector`]: families built on each scrape.
#[derive(Debug)]
struct View(Snapshot);

impl View {
    fn families(&self) -> Vec<(&'static str, Samples)> {
        let s = &self.0.status;
        let wall = self.0.taken.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs_ago = |ms: u64| (wall.saturating_sub(Duration::from_millis(ms))).as_secs_f64();
        let mut f: Vec<(&'static str, Samples)> = Vec::new();
        let g = |v: bool| if v { 1.0 } else { 0.0 };
        let p = &s.process;
        f.push((
            "baton_info",
            Samples::Gauge(vec![(
                vec![
                    ("router_id", s.router_id.clone()),
                    ("version", env!("CARGO_PKG_VERSION").to_string()),
                ],
                1.0,
            )]),
        ));
        f.push((
            "baton_start_time_seconds",
            Samples::Gauge(vec![(vec![], p.start_time_unix)]),
        ));
        f.push((
            "baton_config_reloads_total",
            Samples::Counter(vec![
                (vec![("result", "applied".into())], p.reloads),
                (vec![("result", "refused".into())], p.reload_failures),
            ]),
        ));
        f.push((
            "baton_config_last_reload_success",
            Samples::Gauge(vec![(vec![], g(p.last_reload_ok != Some(false)))]),
        ));
        // Not `instance`: Prometheus gives that label to every scraped target.
        let inst = |i: &super::control::InstanceStatus| vec![("vrrp_instance", i.name.clone())];
        let mut state = Vec::new();
        let (mut prio, mut base, mut holds, mut trans, mut last) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut sent, mut recv, mut drops, mut adds, mut removes, mut garp) = (
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
        );
        for i in &s.instances {
            for st in ["INIT", "BACKUP", "MASTER", "FAULT"] {
                let mut l = inst(i);
                l.push(("state", st.into()));
                state.push((l, g(i.state.to_string() == st)));
            }
            prio.push((inst(i), f64::from(i.effective_priority)));
            base.push((inst(i), f64::from(i.base_priority)));
            holds.push((inst(i), g(i.holds_vips)));
            for (k, n) in &i.tx.transitions {
                let (from, to) = k.split_once("->").unwrap_or((k, ""));
                let mut l = inst(i);
                l.push(("from", from.into()));
                l.push(("to", to.into()));
                trans.push((l, *n));
            }
            if let Some(ms) = i.last_transition_ms {
                last.push((inst(i), secs_ago(ms)));
            }
            sent.push((inst(i), i.tx.adverts_sent));
            recv.push((inst(i), i.rx.accepted));
            for (reason, n) in &i.rx.dropped {
                let mut l = inst(i);
                l.push(("reason", reason.clone()));
                drops.push((l, *n));
            }
            adds.push((inst(i), i.tx.vip_adds));
            removes.push((inst(i), i.tx.vip_removes));
            garp.push((inst(i), i.tx.garp_sent));
        }
        f.push(("baton_instance_state", Samples::Gauge(state)));
        f.push(("baton_instance_priority", Samples::Gauge(prio)));
        f.push(("baton_instance_base_priority", Samples::Gauge(base)));
        f.push(("baton_instance_holds_vips", Samples::Gauge(holds)));
        f.push(("baton_instance_transitions_total", Samples::Counter(trans)));
        f.push((
            "baton_instance_last_transition_timestamp_seconds",
            Samples::Gauge(last),
        ));
        f.push(("baton_instance_adverts_sent_total", Samples::Counter(sent)));
        f.push((
            "baton_instance_adverts_received_total",
            Samples::Counter(recv),
        ));
        f.push(("baton_instance_drops_total", Samples::Counter(drops)));
        f.push(("baton_instance_vip_adds_total", Samples::Counter(adds)));
        f.push((
            "baton_instance_vip_removes_total",
            Samples::Counter(removes),
        ));
        f.push(("baton_instance_garp_sent_total", Samples::Counter(garp)));
        let mut idrops = Vec::new();
        for x in &s.interfaces {
            for (reason, n) in &x.rx.dropped {
                idrops.push((
                    vec![
                        ("interface", x.name.clone()),
                        ("family", x.family.clone()),
                        ("reason", reason.clone()),
                    ],
                    *n,
                ));
            }
        }
        f.push(("baton_interface_drops_total", Samples::Counter(idrops)));
        let (mut conn, mut alive, mut beats, mut rtt, mut rej, mut unknown) = (
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
        );
        let (mut epoch, mut counter, mut committed, mut bytes, mut age, mut behind, mut lag) = (
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
        );
        if let Some(c) = &s.cluster {
            for p in &c.peers {
                let l = || vec![("peer", p.name.clone())];
                conn.push((l(), g(p.connected)));
                alive.push((l(), g(p.alive)));
                beats.push((l(), p.heartbeats));
                if let Some(us) = p.rtt_us {
                    rtt.push((l(), us as f64 / 1e6));
                }
            }
            for ch in &c.channel {
                for (reason, n) in &ch.rejected {
                    rej.push((
                        vec![("peer", ch.name.clone()), ("reason", reason.clone())],
                        *n,
                    ));
                }
            }
            for (reason, n) in &c.rejected_unknown {
                unknown.push((vec![("reason", reason.clone())], *n));
            }
            for e in &c.sync {
                let l = || vec![("entry", e.name.clone())];
                if let Some(v) = e.version {
                    epoch.push((l(), v.epoch as f64));
                    counter.push((l(), v.counter as f64));
                }
                committed.push((l(), g(e.version.is_some() && e.version == e.committed)));
                if let Some(b) = e.bytes {
                    bytes.push((l(), b as f64));
                }
                if let Some(ms) = e.committed_age_ms {
                    age.push((l(), ms as f64 / 1000.0));
                }
                for pl in &e.lag {
                    let l = || vec![("entry", e.name.clone()), ("peer", pl.peer.clone())];
                    behind.push((l(), g(pl.behind)));
                    lag.push((l(), pl.lag_ms as f64 / 1000.0));
                }
            }
        }
        f.push(("baton_peer_connected", Samples::Gauge(conn)));
        f.push(("baton_peer_alive", Samples::Gauge(alive)));
        f.push((
            "baton_peer_heartbeats_received_total",
            Samples::Counter(beats),
        ));
        f.push(("baton_peer_rtt_seconds", Samples::Gauge(rtt)));
        f.push(("baton_peer_frames_rejected_total", Samples::Counter(rej)));
        f.push((
            "baton_cluster_connections_rejected_total",
            Samples::Counter(unknown),
        ));
        f.push(("baton_sync_version_epoch", Samples::Gauge(epoch)));
        f.push(("baton_sync_version_counter", Samples::Gauge(counter)));
        f.push(("baton_sync_committed", Samples::Gauge(committed)));
        f.push(("baton_sync_bytes", Samples::Gauge(bytes)));
        f.push(("baton_sync_last_commit_age_seconds", Samples::Gauge(age)));
        f.push(("baton_sync_peer_behind", Samples::Gauge(behind)));
        f.push(("baton_sync_peer_lag_seconds", Samples::Gauge(lag)));
        f
    }
}

impl Collector for View {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for (name, samples) in self.families() {
            let help = FAMILIES.iter().find(|f| f.0 == name).map_or("", |f| f.2);
            match samples {
                Samples::Counter(v) => {
                    // The encoder appends `_total` to a counter's samples.
                    let base = name.strip_suffix("_total").unwrap_or(name);
                    let mut m = encoder.encode_descriptor(base, help, None, MetricType::Counter)?;
                    for (labels, n) in v {
                        ConstCounter::new(n).encode(m.encode_family(&labels)?)?;
                    }
                }
                Samples::Gauge(v) => {
                    let mut m = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
                    for (labels, x) in v {
                        ConstGauge::new(x).encode(m.encode_family(&labels)?)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// The snapshot in the OpenMetrics text format.
pub fn render(snap: &Snapshot) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(View(snap.clone())));
    let mut out = String::new();
    if prometheus_client::encoding::text::encode(&mut out, &registry).is_err() {
        out = "# EOF\n".into();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::Policy;
    use crate::sim::{instance, Sim};
    use std::net::{IpAddr, Ipv4Addr};

    /// A real status: three simulated nodes with the channel and a synced
    /// file, after a failover (n0 crashed, n1 took over).
    fn scrape() -> String {
        let mut sim = Sim::new(7);
        for (i, p) in [200u8, 150, 100].iter().enumerate() {
            let mut c = instance("VI_1", 51, *p, &[IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100))]);
            c.advert_interval = Duration::from_millis(100);
            sim.add_node(&format!("n{i}"), i as u8 + 1, vec![c]);
        }
        sim.enable_cluster(Duration::from_millis(100), Policy::Priority);
        sim.enable_sync("VI_1", &[("cfg", 1 << 20)]);
        sim.start_all();
        sim.run_for(Duration::from_secs(3));
        sim.edit_file(0, "cfg", b"content");
        sim.run_for(Duration::from_millis(500));
        sim.crash(0);
        sim.run_for(Duration::from_secs(2));
        let mut status = sim.node(1).unwrap().status(sim.now());
        status.process.start_time_unix = 1_700_000_000.0;
        status.process.reloads = 2;
        status.process.reload_failures = 1;
        status.process.last_reload_ok = Some(false);
        render(&Snapshot {
            status,
            taken: UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        })
    }

    fn family_of(sample: &str) -> &str {
        let name = sample.split(['{', ' ']).next().unwrap();
        name
    }

    fn value(text: &str, series: &str) -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|r| r.strip_prefix(' ')))
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
            .parse()
            .unwrap()
    }

    #[test]
    fn every_family_is_listed_typed_and_named_by_the_conventions() {
        let text = scrape();
        assert!(text.ends_with("# EOF\n"), "{text}");
        for (name, kind, help) in FAMILIES {
            assert!(name.starts_with("baton_"), "{name}");
            assert!(
                name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{name}"
            );
            assert!(!help.is_empty());
            let (base, t) = match kind {
                MetricType::Counter => {
                    assert!(name.ends_with("_total"), "counter {name} lacks _total");
                    (name.strip_suffix("_total").unwrap(), "counter")
                }
                _ => {
                    assert!(
                        !name.ends_with("_total"),
                        "gauge {name} named like a counter"
                    );
                    (*name, "gauge")
                }
            };
            assert!(
                text.contains(&format!("# TYPE {base} {t}\n")),
                "{name} not in the scrape:\n{text}"
            );
        }
        // Every sample belongs to a listed family: nothing undocumented.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let fam = family_of(line);
            assert!(
                FAMILIES.iter().any(|f| f.0 == fam),
                "{fam} is not in FAMILIES"
            );
        }
        // Time is in seconds, everywhere.
        assert!(!text.contains("_ms"), "{text}");
    }

    #[test]
    fn the_numbers_are_those_of_the_status() {
        let text = scrape();
        let i = r#"vrrp_instance="VI_1""#;
        assert_eq!(
            value(
                &text,
                &format!(r#"baton_instance_state{{{i},state="MASTER"}}"#)
            ),
            1.0
        );
        assert_eq!(
            value(
                &text,
                &format!(r#"baton_instance_state{{{i},state="BACKUP"}}"#)
            ),
            0.0
        );
        assert_eq!(
            value(
                &text,
                &format!(r#"baton_instance_transitions_total{{{i},from="BACKUP",to="MASTER"}}"#)
            ),
            1.0
        );
        assert!(
            value(
                &text,
                &format!(r#"baton_instance_adverts_sent_total{{{i}}}"#)
            ) > 5.0
        );
        assert!(
            value(
                &text,
                &format!(r#"baton_instance_adverts_received_total{{{i}}}"#)
            ) > 5.0
        );
        assert_eq!(
            value(&text, &format!(r#"baton_instance_vip_adds_total{{{i}}}"#)),
            1.0
        );
        assert!(value(&text, &format!(r#"baton_instance_garp_sent_total{{{i}}}"#)) >= 1.0);
        let last = value(
            &text,
            &format!(r#"baton_instance_last_transition_timestamp_seconds{{{i}}}"#),
        );
        assert!((1_799_999_997.0..1_800_000_000.0).contains(&last), "{last}");
        assert_eq!(value(&text, r#"baton_peer_connected{peer="n0"}"#), 0.0);
        assert_eq!(value(&text, r#"baton_peer_alive{peer="n2"}"#), 1.0);
        let rtt = value(&text, r#"baton_peer_rtt_seconds{peer="n2"}"#);
        assert!(rtt > 0.0 && rtt < 0.01, "{rtt}");
        assert!(!text.contains(r#"baton_peer_rtt_seconds{peer="n0"}"#));
        assert!(value(&text, r#"baton_peer_heartbeats_received_total{peer="n2"}"#) > 20.0);
        assert_eq!(value(&text, r#"baton_sync_bytes{entry="cfg"}"#), 7.0);
        assert_eq!(
            value(&text, r#"baton_sync_peer_behind{entry="cfg",peer="n2"}"#),
            0.0
        );
        assert_eq!(
            value(
                &text,
                r#"baton_sync_peer_lag_seconds{entry="cfg",peer="n2"}"#
            ),
            0.0
        );
        assert_eq!(value(&text, "baton_start_time_seconds"), 1_700_000_000.0);
        assert_eq!(
            value(&text, r#"baton_config_reloads_total{result="applied"}"#),
            2.0
        );
        assert_eq!(
            value(&text, r#"baton_config_reloads_total{result="refused"}"#),
            1.0
        );
        assert_eq!(value(&text, "baton_config_last_reload_success"), 0.0);
    }

    #[test]
    fn only_get_metrics_is_served() {
        assert_eq!(route("GET /metrics HTTP/1.1\r\nHost: x"), Route::Metrics);
        assert_eq!(route("GET /metrics?x=1 HTTP/1.0"), Route::Metrics);
        assert_eq!(route("GET / HTTP/1.1"), Route::NotFound);
        assert_eq!(route("GET /metricsx HTTP/1.1"), Route::NotFound);
        assert_eq!(route("POST /metrics HTTP/1.1"), Route::BadMethod);
        assert_eq!(route("DELETE /x HTTP/1.1"), Route::BadMethod);
        assert!(matches!(route("GET /metrics"), Route::Bad(_)));
        assert!(matches!(route("GET /metrics SPDY/3"), Route::Bad(_)));
        assert!(matches!(route("\u{0}\u{1}garbage"), Route::Bad(_)));
        assert!(matches!(route(""), Route::Bad(_)));
    }

    #[test]
    fn every_family_is_in_the_man_page() {
        let man = include_str!("../../man/baton.8");
        for (name, _, _) in FAMILIES {
            assert!(man.contains(name), "man/baton.8 lacks {name}");
        }
    }

    /// The dashboards and alert rules in dist/ use only exported names.
    #[test]
    fn dist_uses_only_exported_metric_names() {
        for file in ["dist/grafana-dashboard.json", "dist/prometheus-alerts.yml"] {
            let path = format!("{}/{file}", env!("CARGO_MANIFEST_DIR"));
            let text = std::fs::read_to_string(&path).expect(file);
            let names = dist_metric_names(&text);
            assert!(names.len() >= 4, "{file}: {names:?}");
            for n in names {
                assert!(
                    FAMILIES.iter().any(|f| f.0 == n),
                    "{file} uses {n}, which baton does not export"
                );
            }
        }
    }

    /// Every `baton_...` word in a text.
    pub(crate) fn dist_metric_names(text: &str) -> std::collections::BTreeSet<String> {
        let mut out = std::collections::BTreeSet::new();
        let mut rest = text;
        while let Some(at) = rest.find("baton_") {
            let word: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            rest = &rest[at + word.len()..];
            out.insert(word);
        }
        out
    }
}
