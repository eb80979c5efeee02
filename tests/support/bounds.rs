//! What a checked config promises the runtime, shared by the TOML and
//! keepalived.conf reader tests. Include it with
//! `#[path = "support/bounds.rs"] mod bounds;`.

use baton::config::Config;

/// Every duration and count of a checked config is within its bound, so
/// timers and bursts built from them cannot overflow.
pub fn within_bounds(c: &Config) {
    use baton::config::model::{Cluster, Garp, Global, Instance, VrrpScript, MAX_TIMER};
    let now = std::time::Instant::now();
    assert!(c.global.startup_delay <= Global::MAX_STARTUP_DELAY);
    let _ = now + c.global.startup_delay;
    for i in &c.instances {
        let g = &i.garp;
        assert!(i.preempt_delay <= Instance::MAX_PREEMPT_DELAY);
        assert!(g.master_delay.max(g.lower_prio_delay()) <= Garp::MAX_DELAY);
        assert!(g.interval.max(g.na_interval) <= Garp::MAX_INTERVAL);
        assert!(g.master_refresh.unwrap_or_default() <= Garp::MAX_REFRESH);
        let repeat = g
            .master_repeat
            .max(g.master_refresh_repeat)
            .max(g.lower_prio_repeat());
        assert!(repeat <= Garp::MAX_REPEAT);
        let burst = g.interval.max(g.na_interval) * repeat;
        let _ = now + burst + g.lower_prio_delay() + i.preempt_delay + i.advert_interval * 3;
        let _ = now + g.master_refresh.unwrap_or_default();
    }
    for s in &c.vrrp_scripts {
        assert!(s.interval <= VrrpScript::MAX_INTERVAL && s.interval <= MAX_TIMER);
        assert!(s.rise.max(s.fall) <= VrrpScript::MAX_RISE_FALL);
        let _ = now + s.interval * s.rise.max(s.fall) + s.timeout.unwrap_or(s.interval);
    }
    if let Some(cl) = &c.cluster {
        assert!(cl.heartbeat_interval <= Cluster::MAX_HEARTBEAT_INTERVAL);
        let _ = now + cl.heartbeat_interval * 3;
    }
}
