//! Realtime scheduling of the agent's loop, as keepalived's VRRP process
//! does it (`vrrp_rt_priority`, `max_auto_priority`,
//! `min_auto_priority_delay`, `vrrp_rlimit_rttime`).
//!
//! keepalived's rule, kept here: when the loop wakes more than
//! `min_auto_priority_delay` after its earliest timer was due, the host is
//! too busy for VRRP timers; the process switches to SCHED_RR at the lowest
//! realtime priority (1) the first time, one step higher on every later
//! late wake, up to `max_auto_priority`. RLIMIT_RTTIME (default 10 ms of
//! CPU without blocking) is set with the first switch, so that a runaway
//! realtime loop is stopped by the kernel instead of freezing the host.
//!
//! Only the loop's thread is raised, and with SCHED_RESET_ON_FORK: threads
//! and scripts started afterwards run with the normal policy (keepalived is
//! one thread; baton's helper threads must not inherit a realtime policy
//! and its CPU-time limit).

use std::time::{Duration, Instant};

use tracing::{info, warn};

use crate::config::model::Global;

/// The loop's scheduling state.
#[derive(Debug)]
pub struct Scheduling {
    max_auto: u8,
    min_delay: Duration,
    rttime_us: u64,
    /// The realtime priority in force; 0: the normal policy.
    current: u8,
    rlimit_set: bool,
}

impl Scheduling {
    /// Apply `rt_priority` (if any) to the calling thread, which must be
    /// the loop's.
    pub fn start(g: &Global) -> Scheduling {
        let mut s = Scheduling {
            max_auto: g.max_auto_priority,
            min_delay: g.min_auto_priority_delay,
            rttime_us: g.rlimit_rttime.unwrap_or(Global::DEFAULT_RLIMIT_RTTIME),
            current: 0,
            rlimit_set: false,
        };
        if let Some(p) = g.rt_priority {
            if s.set(p) {
                info!("vrrp_rt_priority: realtime priority {p}");
            }
        }
        s
    }

    /// A reload's new limits, for the steps to come: the priority in force
    /// and an RLIMIT_RTTIME already set stay as they are.
    pub fn update(&mut self, g: &Global) {
        self.max_auto = g.max_auto_priority;
        self.min_delay = g.min_auto_priority_delay;
        self.rttime_us = g.rlimit_rttime.unwrap_or(Global::DEFAULT_RLIMIT_RTTIME);
    }

    /// The realtime priority in force (0: none).
    pub fn current(&self) -> u8 {
        self.current
    }

    /// The loop woke at `now` for a timer due at `due`: raise the priority
    /// one step if that is late by more than `min_auto_priority_delay`.
    pub fn woke(&mut self, due: Instant, now: Instant) {
        let Some(late) = now.checked_duration_since(due) else {
            return;
        };
        if late <= self.min_delay || self.max_auto == 0 {
            return;
        }
        info!(
            "A thread timer expired {}.{:06} seconds ago",
            late.as_secs(),
            late.subsec_micros()
        );
        if self.current >= self.max_auto {
            return;
        }
        let next = self.current + 1;
        if self.set(next) {
            info!("Set realtime priority {next}");
        }
    }

    /// SCHED_RR at `priority` for this thread, RLIMIT_RTTIME first.
    fn set(&mut self, priority: u8) -> bool {
        if !self.rlimit_set {
            use nix::sys::resource::{setrlimit, Resource};
            match setrlimit(Resource::RLIMIT_RTTIME, self.rttime_us, self.rttime_us) {
                Ok(()) => self.rlimit_set = true,
                Err(e) => {
                    warn!("cannot set RLIMIT_RTTIME to {} us: {e}", self.rttime_us);
                    return false;
                }
            }
        }
        match set_round_robin(priority) {
            Ok(()) => {
                self.current = priority;
                true
            }
            Err(e) => {
                warn!("cannot set realtime priority {priority}: {e}");
                false
            }
        }
    }
}

/// sched_setscheduler(2) on the calling thread: SCHED_RR at `priority`,
/// reset to the normal policy in any thread or process it creates. nix
/// has no wrapper; this is the call, with a parameter that outlives it.
fn set_round_robin(priority: u8) -> std::io::Result<()> {
    let param = libc::sched_param {
        sched_priority: libc::c_int::from(priority),
    };
    // SAFETY: `param` is a valid sched_param for the duration of the call;
    // pid 0 is the calling thread; no memory is retained by the kernel.
    let rc =
        unsafe { libc::sched_setscheduler(0, libc::SCHED_RR | libc::SCHED_RESET_ON_FORK, &param) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The decision only (no syscall): with max_auto 0 nothing happens,
    /// and a wake within the delay is not late.
    #[test]
    fn only_a_wake_later_than_the_delay_counts() {
        let mut g = Global::new("n");
        g.max_auto_priority = 0;
        let mut s = Scheduling::start(&g);
        let t0 = Instant::now();
        s.woke(t0, t0 + Duration::from_secs(5));
        assert_eq!(s.current(), 0, "max_auto_priority 0: never");
        s.max_auto = 5;
        s.woke(t0, t0 + Duration::from_millis(900));
        assert_eq!(s.current(), 0, "0.9 s late is within the default 1 s");
        s.woke(t0 + Duration::from_secs(1), t0);
        assert_eq!(s.current(), 0, "a wake before the deadline is not late");
    }
}
