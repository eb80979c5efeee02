//! The node's deadline timer: a `timerfd` on CLOCK_MONOTONIC (the clock of
//! [`Instant`]) watched by the tokio reactor.
//!
//! tokio's own timer wheel counts whole milliseconds and rounds every
//! deadline up to the next one, and the reactor then sleeps in
//! `epoll_wait` with a millisecond timeout: each wake-up is 0-2 ms late.
//! At a 10 ms advert interval that is a fifth of the period, and it eats
//! into the skew times that keep two backups apart after a priority-0
//! advert (6.09 ms for priority 100, 8.05 ms for 50: 1.96 ms between
//! them). A timerfd is an hrtimer, armed to the nanosecond with no slack;
//! the reactor wakes as soon as its fd is readable. If the timerfd cannot
//! be created or armed, the timer falls back to tokio's.

use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::time::Instant;

use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use tokio::io::unix::AsyncFd;

/// A TimerFd the reactor can watch (it wants `AsRawFd`).
struct Tfd(TimerFd);

impl AsRawFd for Tfd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// One deadline at a time, re-armed only when it changes.
pub struct DeadlineTimer {
    fd: Option<AsyncFd<Tfd>>,
    /// The deadline the timerfd is armed for (not yet read as expired).
    armed: Option<Instant>,
}

impl DeadlineTimer {
    /// Must be called inside the tokio runtime (it registers the fd).
    pub fn new() -> DeadlineTimer {
        let fd = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )
        .map_err(io::Error::from)
        // SAFETY: the TimerFd owns its descriptor, moves into the AsyncFd
        // and neither closes nor swaps it while alive: it stays valid and
        // the same for the AsyncFd's whole lifetime.
        .and_then(|t| unsafe { AsyncFd::register(Tfd(t)) }.map_err(io::Error::from));
        match fd {
            Ok(fd) => DeadlineTimer {
                fd: Some(fd),
                armed: None,
            },
            Err(e) => {
                tracing::warn!("no timerfd ({e}): timers at tokio's 1 ms granularity");
                DeadlineTimer {
                    fd: None,
                    armed: None,
                }
            }
        }
    }

    /// Whether deadlines run on the timerfd (false: tokio's timer).
    pub fn is_precise(&self) -> bool {
        self.fd.is_some()
    }

    /// Resolves once `deadline` has passed; never with `None`.
    /// Cancel-safe: dropped before it resolves, the next call with the same
    /// deadline goes on waiting for it.
    pub async fn until(&mut self, deadline: Option<Instant>) {
        let Some(deadline) = deadline else {
            return std::future::pending().await;
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        let Some(fd) = &self.fd else {
            return tokio::time::sleep_until(deadline.into()).await;
        };
        if self.armed != Some(deadline) {
            // Relative: Instant cannot be turned into a timespec, and the
            // few microseconds since `left` was read do not matter. A
            // zero one-shot would disarm the timer; `left` is not zero.
            let set = fd.get_ref().0.set(
                Expiration::OneShot(TimeSpec::from_duration(left)),
                TimerSetTimeFlags::empty(),
            );
            if let Err(e) = set {
                tracing::debug!("timerfd_settime: {e}");
                self.armed = None;
                return tokio::time::sleep_until(deadline.into()).await;
            }
            self.armed = Some(deadline);
        }
        loop {
            let mut guard = match fd.readable().await {
                Ok(g) => g,
                Err(_) => return tokio::time::sleep_until(deadline.into()).await,
            };
            // A readiness left over from an earlier deadline (re-arming
            // resets the count) reads EAGAIN: clear it and wait on.
            match guard.try_io(|t| t.get_ref().0.wait().map_err(io::Error::from)) {
                Ok(_) => {
                    self.armed = None;
                    return;
                }
                Err(_would_block) => continue,
            }
        }
    }
}

impl Default for DeadlineTimer {
    fn default() -> Self {
        DeadlineTimer::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    }

    #[test]
    fn fires_at_the_deadline_not_before() {
        rt().block_on(async {
            let mut t = DeadlineTimer::new();
            assert!(t.is_precise());
            for _ in 0..5 {
                let d = Instant::now() + Duration::from_micros(2_300);
                t.until(Some(d)).await;
                assert!(Instant::now() >= d);
            }
        });
    }

    #[test]
    fn a_cancelled_wait_then_a_new_deadline_still_waits() {
        rt().block_on(async {
            let mut t = DeadlineTimer::new();
            let soon = Instant::now() + Duration::from_millis(1);
            // Let the first deadline expire unread, then ask for a later one.
            let _ = tokio::time::timeout(Duration::from_micros(1), t.until(Some(soon))).await;
            std::thread::sleep(Duration::from_millis(3));
            let later = Instant::now() + Duration::from_millis(5);
            t.until(Some(later)).await;
            assert!(Instant::now() >= later);
        });
    }

    #[test]
    fn a_past_deadline_returns_at_once() {
        rt().block_on(async {
            let mut t = DeadlineTimer::new();
            let past = Instant::now();
            std::thread::sleep(Duration::from_millis(1));
            let start = Instant::now();
            t.until(Some(past)).await;
            assert!(start.elapsed() < Duration::from_millis(50));
        });
    }
}
