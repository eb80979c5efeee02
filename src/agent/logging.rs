//! Where the agent's log goes, as keepalived decides it: syslog (the
//! facility of `-S`, daemon by default) unless `-G`; the console (standard
//! error) with `-l`; and under systemd (`JOURNAL_STREAM` set) the journal's
//! native socket, with real priorities, so that `journalctl -p err`
//! filters. `-D` adds debug lines everywhere.
//!
//! Syslog lines are RFC 3164 datagrams to `/dev/log` (`<PRI>baton[PID]:
//! MESSAGE`); journal entries are `KEY=VALUE` datagrams to
//! `/run/systemd/journal/socket` (PRIORITY, SYSLOG_IDENTIFIER,
//! SYSLOG_FACILITY, SYSLOG_PID, MESSAGE; a value with a newline in the
//! binary form). A socket that cannot be reached is left alone: when
//! neither syslog nor the journal can be reached and `-l` is not given,
//! the console is used, so that nothing is lost.

use std::fmt::Write as _;
use std::os::unix::net::UnixDatagram;
use std::path::Path;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// Where syslog datagrams go.
pub const SYSLOG_SOCKET: &str = "/dev/log";
/// systemd-journald's native socket.
pub const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// The syslog facility of keepalived's `-S` (0-7 is local0-local7).
pub fn facility(spec: Option<&str>) -> u8 {
    const LOCAL0: u8 = 16;
    match spec {
        None | Some("daemon") => 3,
        Some("user") => 1,
        Some(s) => {
            let n = s.strip_prefix("local").unwrap_or(s);
            n.parse::<u8>()
                .ok()
                .filter(|n| *n <= 7)
                .map_or(3, |n| LOCAL0 + n)
        }
    }
}

/// syslog severity of a tracing level.
fn severity(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

/// How the log is written: which of the three sinks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub console: bool,
    pub syslog: bool,
    pub journal: bool,
}

impl Plan {
    /// keepalived's rules: `-l` console, syslog unless `-G`; under systemd
    /// (`under_systemd`: `JOURNAL_STREAM` set and the journal reachable)
    /// the journal instead of both (standard error is the journal already:
    /// each line once, with its priority).
    pub fn choose(
        console_flag: bool,
        no_syslog: bool,
        under_systemd: bool,
        syslog_up: bool,
    ) -> Plan {
        if under_systemd {
            return Plan {
                console: false,
                syslog: false,
                journal: true,
            };
        }
        let syslog = !no_syslog && syslog_up;
        Plan {
            // Nothing reachable and no -l: the console, not silence.
            console: console_flag || !syslog,
            syslog,
            journal: false,
        }
    }
}

/// A layer that sends every event to syslog or to the journal.
pub struct SocketLayer {
    sock: UnixDatagram,
    kind: Kind,
    facility: u8,
    pid: u32,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Syslog,
    Journal,
}

impl SocketLayer {
    /// A layer writing to `path` in syslog form, if it can be reached.
    pub fn syslog(path: &Path, facility: u8) -> Option<SocketLayer> {
        Self::connect(path, Kind::Syslog, facility)
    }

    /// A layer writing to `path` in the journal's native form.
    pub fn journal(path: &Path, facility: u8) -> Option<SocketLayer> {
        Self::connect(path, Kind::Journal, facility)
    }

    fn connect(path: &Path, kind: Kind, facility: u8) -> Option<SocketLayer> {
        let sock = UnixDatagram::unbound().ok()?;
        sock.connect(path).ok()?;
        Some(SocketLayer {
            sock,
            kind,
            facility,
            pid: std::process::id(),
        })
    }

    fn datagram(&self, level: &Level, message: &str) -> Vec<u8> {
        let sev = severity(level);
        match self.kind {
            Kind::Syslog => {
                let pri = u16::from(self.facility) * 8 + u16::from(sev);
                // One line: syslog readers split on newlines.
                let line = message.replace('\n', " ");
                format!("<{pri}>baton[{}]: {line}", self.pid).into_bytes()
            }
            Kind::Journal => {
                let mut out = format!(
                    "PRIORITY={sev}\nSYSLOG_IDENTIFIER=baton\nSYSLOG_FACILITY={}\nSYSLOG_PID={}\n",
                    self.facility, self.pid
                )
                .into_bytes();
                if message.contains('\n') {
                    out.extend_from_slice(b"MESSAGE\n");
                    out.extend_from_slice(&(message.len() as u64).to_le_bytes());
                    out.extend_from_slice(message.as_bytes());
                    out.push(b'\n');
                } else {
                    out.extend_from_slice(b"MESSAGE=");
                    out.extend_from_slice(message.as_bytes());
                    out.push(b'\n');
                }
                out
            }
        }
    }
}

/// The event's message and its other fields (`key=value`), as text.
#[derive(Default)]
struct Text(String);

impl Visit for Text {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.insert_str(0, value);
        } else {
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0.insert_str(0, &format!("{value:?}"));
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

impl<S: Subscriber> Layer<S> for SocketLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut text = Text::default();
        event.record(&mut text);
        // A full or gone log socket must never stall the agent: a datagram
        // that cannot be sent at once is dropped.
        let _ = self
            .sock
            .send(&self.datagram(event.metadata().level(), &text.0));
    }
}

impl SocketLayer {
    /// Sends without blocking (see [`Layer::on_event`]).
    pub fn nonblocking(self) -> Self {
        let _ = self.sock.set_nonblocking(true);
        self
    }
}

/// Whether systemd started us with its journal on standard error.
pub fn under_systemd() -> bool {
    std::env::var_os("JOURNAL_STREAM").is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facilities_as_keepalived_names_them() {
        assert_eq!(facility(None), 3);
        assert_eq!(facility(Some("daemon")), 3);
        assert_eq!(facility(Some("user")), 1);
        assert_eq!(facility(Some("local0")), 16);
        assert_eq!(facility(Some("7")), 23);
    }

    #[test]
    fn the_plan_follows_keepalived() {
        let p = Plan::choose;
        // Plain: syslog only.
        assert_eq!(
            p(false, false, false, true),
            Plan {
                console: false,
                syslog: true,
                journal: false
            }
        );
        // -l: both.
        assert_eq!(
            p(true, false, false, true),
            Plan {
                console: true,
                syslog: true,
                journal: false
            }
        );
        // -G without -l: nothing else reachable, so the console.
        assert_eq!(
            p(false, true, false, true),
            Plan {
                console: true,
                syslog: false,
                journal: false
            }
        );
        // No /dev/log: the console.
        assert_eq!(
            p(false, false, false, false),
            Plan {
                console: true,
                syslog: false,
                journal: false
            }
        );
        // Under systemd: the journal, once.
        assert_eq!(
            p(true, false, true, true),
            Plan {
                console: false,
                syslog: false,
                journal: true
            }
        );
    }

    #[test]
    fn datagrams_carry_priority_facility_and_the_message() {
        let dir = std::env::temp_dir().join(format!("baton-log-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log");
        let rx = UnixDatagram::bind(&path).unwrap();
        let s = SocketLayer::syslog(&path, facility(Some("local3"))).unwrap();
        assert_eq!(
            s.datagram(&Level::ERROR, "a\nb"),
            format!("<{}>baton[{}]: a b", 19 * 8 + 3, std::process::id()).into_bytes()
        );
        let j = SocketLayer::journal(&path, 3).unwrap();
        let d = String::from_utf8_lossy(&j.datagram(&Level::WARN, "(VI_1) Entering FAULT STATE"))
            .to_string();
        assert!(
            d.starts_with("PRIORITY=4\nSYSLOG_IDENTIFIER=baton\n"),
            "{d}"
        );
        assert!(d.ends_with("MESSAGE=(VI_1) Entering FAULT STATE\n"), "{d}");
        let multi = j.datagram(&Level::INFO, "x\ny");
        let tail = &multi[multi.len() - (8 + 3 + 1)..];
        assert_eq!(&tail[..8], &3u64.to_le_bytes());
        drop(rx);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
