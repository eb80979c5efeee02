//! VRRP timer arithmetic: skew time and master-down interval.
//!
//! Pure functions of (version, priority, interval) so the golden values of
//! the RFCs can be tested directly. Deadlines themselves are `Instant`s held
//! by the instance; nothing here reads a clock.

use std::time::Duration;

use crate::wire::vrrp::Version;

/// Skew time: how much longer a backup of lower priority waits before it
/// declares the master down, so the highest-priority backup wins the race.
///
/// - v2 (RFC 3768 6.1): `(256 - priority) / 256` seconds, independent of the
///   advertisement interval.
/// - v3 (RFC 5798 6.1, RFC 9568): `((256 - priority) * Master_Adver_Interval) / 256`.
///   The RFC states it in centiseconds; computed in whole centiseconds the
///   skew is 0 for every priority at a 10 ms interval, so all backups
///   declare the master down at the same instant and several become master.
///   Like keepalived, baton keeps microsecond precision (6.1 ms for
///   priority 100 at 10 ms); truncated to centiseconds it gives the RFC's
///   figures exactly (21 cs for priority 200 at 100 cs).
pub fn skew_time(version: Version, priority: u8, master_adver_interval: Duration) -> Duration {
    let weight = 256 - u64::from(priority);
    match version {
        // 1 s / 256 = 3_906_250 ns exactly, so nanoseconds lose nothing.
        Version::V2 => Duration::from_nanos(weight * 1_000_000_000 / 256),
        Version::V3 => {
            let interval_us = centiseconds(master_adver_interval) * 10_000;
            Duration::from_micros(weight * interval_us / 256)
        }
    }
}

/// Master down interval: `3 * Master_Adver_Interval + Skew_Time`.
pub fn master_down_interval(
    version: Version,
    priority: u8,
    master_adver_interval: Duration,
) -> Duration {
    let interval = match version {
        Version::V2 => master_adver_interval,
        // v3 works in whole centiseconds.
        Version::V3 => Duration::from_millis(centiseconds(master_adver_interval) * 10),
    };
    interval * 3 + skew_time(version, priority, master_adver_interval)
}

/// The shortest VIP lease: the kernel counts address lifetimes in whole
/// seconds.
pub const MIN_VIP_LEASE: Duration = Duration::from_secs(1);

/// The VIP lease (valid lifetime) chosen when `vip_lease` is not set:
/// 1.5 times the master-down interval of the instance's own priority and
/// interval, rounded up to whole seconds (the kernel's unit), at least
/// [`MIN_VIP_LEASE`]. A master that has not refreshed its addresses for
/// that long has been replaced by a backup anyway: every backup's
/// master-down interval is at most 4 advert intervals (skew under one),
/// and 1.5 x (3 intervals + skew) is at least 4.5.
pub fn auto_vip_lease(version: Version, priority: u8, advert_interval: Duration) -> Duration {
    let down = master_down_interval(version, priority, advert_interval);
    let ms = (down.as_millis() * 3).div_ceil(2);
    Duration::from_secs(ms.div_ceil(1000) as u64).max(MIN_VIP_LEASE)
}

/// How often a master refreshes a lease of `lease`: a third of it, so two
/// refreshes can be late or lost before the kernel drops the address.
pub fn vip_lease_refresh(lease: Duration) -> Duration {
    lease / 3
}

/// A duration in whole centiseconds, the unit of the v3 interval field.
pub fn centiseconds(d: Duration) -> u64 {
    (d.as_millis() / 10) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cs(n: u64) -> Duration {
        Duration::from_millis(n * 10)
    }

    fn whole_cs(d: Duration) -> u64 {
        centiseconds(d)
    }

    #[test]
    fn v3_priority_200_at_100cs() {
        let skew = skew_time(Version::V3, 200, cs(100));
        assert_eq!(whole_cs(skew), 21);
        assert_eq!(skew, Duration::from_micros(218_750));
        let down = master_down_interval(Version::V3, 200, cs(100));
        assert_eq!(whole_cs(down), 321);
    }

    #[test]
    fn v3_priority_1_at_1000cs() {
        let skew = skew_time(Version::V3, 1, cs(1000));
        assert_eq!(whole_cs(skew), 996);
        assert_eq!(
            whole_cs(master_down_interval(Version::V3, 1, cs(1000))),
            3996
        );
    }

    #[test]
    fn v3_fast_interval_10ms_keeps_priorities_apart() {
        // In whole centiseconds both would be 0 and the backups would tie.
        let p100 = skew_time(Version::V3, 100, cs(1));
        let p50 = skew_time(Version::V3, 50, cs(1));
        assert_eq!(p100, Duration::from_micros(6093));
        assert_eq!(p50, Duration::from_micros(8046));
        assert_eq!(
            master_down_interval(Version::V3, 100, cs(1)),
            Duration::from_micros(36_093)
        );
    }

    #[test]
    fn v2_priority_100_at_1s() {
        let down = master_down_interval(Version::V2, 100, Duration::from_secs(1));
        assert_eq!(down, Duration::from_micros(3_609_375));
        assert_eq!(down.as_millis(), 3609);
    }

    #[test]
    fn v2_skew_ignores_interval() {
        let a = skew_time(Version::V2, 50, Duration::from_secs(1));
        let b = skew_time(Version::V2, 50, Duration::from_secs(10));
        assert_eq!(a, b);
        assert_eq!(a, Duration::from_nanos(206 * 3_906_250));
    }

    #[test]
    fn higher_priority_means_shorter_wait() {
        for v in [Version::V2, Version::V3] {
            let mut last = Duration::MAX;
            for p in 1..=254u8 {
                let d = master_down_interval(v, p, Duration::from_secs(1));
                assert!(d <= last, "{v:?} priority {p}");
                last = d;
            }
        }
    }

    #[test]
    fn auto_vip_lease_is_one_and_a_half_master_down_in_whole_seconds() {
        let ms = Duration::from_millis;
        // 100 ms, priority 100: master down 361 ms -> 542 ms -> 1 s.
        assert_eq!(auto_vip_lease(Version::V3, 100, ms(100)), ms(1000));
        // 10 ms: the floor.
        assert_eq!(auto_vip_lease(Version::V3, 100, ms(10)), ms(1000));
        // 1 s, priority 100: 3.609 s -> 5.414 s -> 6 s.
        assert_eq!(auto_vip_lease(Version::V3, 100, ms(1000)), ms(6000));
        // 1 s, priority 255: 3 s -> 4.5 s -> 5 s, still above the longest
        // master-down of any backup (priority 1: 3.996 s).
        assert_eq!(auto_vip_lease(Version::V3, 255, ms(1000)), ms(5000));
        assert!(
            auto_vip_lease(Version::V3, 255, ms(1000))
                > master_down_interval(Version::V3, 1, ms(1000))
        );
        // v2 at 1 s: the skew does not scale with the interval.
        assert_eq!(auto_vip_lease(Version::V2, 100, ms(1000)), ms(6000));
        assert_eq!(
            vip_lease_refresh(ms(1000)),
            Duration::from_nanos(333_333_333)
        );
    }
}
