//! systemd's notification protocol (sd_notify(3)), for `Type=notify`
//! units such as Debian's keepalived.service: one datagram of
//! `KEY=VALUE` lines to the socket named by `NOTIFY_SOCKET` (a path, or
//! an abstract name written with a leading `@`). Without `NOTIFY_SOCKET`
//! every call does nothing.
//!
//! The agent sends `READY=1` once every instance has its initial state,
//! `RELOADING=1` with `MONOTONIC_USEC` then `READY=1` around a reload,
//! `STOPPING=1` on TERM/INT, a one-line `STATUS=` summary, and
//! `WATCHDOG=1` every half of `WATCHDOG_USEC` from the protocol loop (so
//! a stuck loop stops the pings and systemd restarts the unit).

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// Where notifications go, if anywhere.
pub struct SdNotify {
    target: Option<(UnixDatagram, SocketAddr)>,
    watchdog: Option<Duration>,
}

impl SdNotify {
    /// From `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID`.
    pub fn from_env() -> SdNotify {
        let target = std::env::var_os("NOTIFY_SOCKET").and_then(|path| {
            let path = path.to_str()?.to_string();
            let addr = match path.strip_prefix('@') {
                Some(name) => SocketAddr::from_abstract_name(name.as_bytes()).ok()?,
                None => SocketAddr::from_pathname(&path).ok()?,
            };
            let sock = UnixDatagram::unbound().ok()?;
            Some((sock, addr))
        });
        let for_us = std::env::var("WATCHDOG_PID")
            .ok()
            .and_then(|p| p.parse::<u32>().ok())
            .is_none_or(|p| p == std::process::id());
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|u| u.parse::<u64>().ok())
            .filter(|&u| u > 0 && for_us)
            .map(Duration::from_micros);
        SdNotify { target, watchdog }
    }

    /// How often to send `WATCHDOG=1`: half the watchdog period.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.target.as_ref()?;
        self.watchdog.map(|w| w / 2)
    }

    fn send(&self, text: &str) {
        if let Some((sock, addr)) = &self.target {
            if let Err(e) = sock.send_to_addr(text.as_bytes(), addr) {
                tracing::debug!("sd_notify: {e}");
            }
        }
    }

    pub fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={}", one_line(status)));
    }

    pub fn reloading(&self) {
        self.send(&format!(
            "RELOADING=1\nMONOTONIC_USEC={}\nSTATUS=reloading",
            monotonic_usec()
        ));
    }

    pub fn stopping(&self) {
        self.send("STOPPING=1\nSTATUS=stopping");
    }

    pub fn status(&self, status: &str) {
        self.send(&format!("STATUS={}", one_line(status)));
    }

    pub fn watchdog(&self) {
        self.send("WATCHDOG=1");
    }
}

/// A STATUS= value is one line.
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

/// CLOCK_MONOTONIC in microseconds, as systemd wants it with RELOADING=1.
fn monotonic_usec() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| t.tv_sec() as u64 * 1_000_000 + t.tv_nsec() as u64 / 1_000)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_reach_a_path_socket_in_order() {
        let dir = std::env::temp_dir().join(format!("baton-sdn-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify");
        let listener = UnixDatagram::bind(&path).unwrap();
        let n = SdNotify {
            target: Some((
                UnixDatagram::unbound().unwrap(),
                SocketAddr::from_pathname(&path).unwrap(),
            )),
            watchdog: Some(Duration::from_millis(200)),
        };
        assert_eq!(n.watchdog_interval(), Some(Duration::from_millis(100)));
        n.ready("2 instances\nMASTER");
        n.reloading();
        n.stopping();
        let mut buf = [0u8; 256];
        let mut next = || {
            let k = listener.recv(&mut buf).unwrap();
            String::from_utf8_lossy(&buf[..k]).to_string()
        };
        assert_eq!(next(), "READY=1\nSTATUS=2 instances MASTER");
        let r = next();
        assert!(r.starts_with("RELOADING=1\nMONOTONIC_USEC="), "{r}");
        assert_eq!(next(), "STOPPING=1\nSTATUS=stopping");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn without_notify_socket_nothing_is_sent_and_no_watchdog() {
        let n = SdNotify {
            target: None,
            watchdog: Some(Duration::from_secs(1)),
        };
        assert_eq!(n.watchdog_interval(), None);
        n.ready("x");
    }
}
