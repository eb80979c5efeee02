//! A priority-0 handover at 10 ms adverts makes one master, not two.
//!
//! Three baton nodes without the cluster channel (priorities 150, 100, 50,
//! VRRP v3, 10 ms adverts, preempt). Node1 records node0's adverts with
//! kernel receive timestamps for a second; then node0 is stopped with
//! SIGTERM (a priority-0 advert): node1 must take over after its skew time
//! (6.09 ms) and node2, whose skew is 8.05 ms, must hear node1's first
//! advert before its own timer runs out. node0 is started again (it
//! preempts) and the handover repeated.
//!
//! A client pings the VIP every millisecond across each handover.
//!
//! Passes when: node1 ends each handover the sole master and holder; at
//! most one handover of five is unclean (node2 entered MASTER too, or
//! node1 more than once: a host that stalls the agents for several
//! milliseconds makes backups time out whatever the protocol does; the
//! deterministic check of the race itself is the simulator's
//! `priority_zero_at_10ms_one_master_although_adding_vips_is_slow`);
//! the client never went 300 ms without a reply (a client left on the MAC
//! of a router that yielded); and node0's adverts kept their 10 ms period
//! (median gap 9.5-10.5 ms; at least 80 % of the gaps within 10 ms ±
//! 0.5 ms: tokio's 1 ms timer gave 74 %). Figures on `MEASURED:` lines
//! (`cargo test --test netns_handover -- --nocapture`). To compare
//! another build (an older one, same lab and load):
//! `BATON_HANDOVER_BIN=/path/to/baton`.
//!
//! A second test freezes the backup (SIGSTOP) while the master leaves at
//! 1 s adverts and thaws it 400 ms later: its skew (609 ms) must run from
//! when the kernel received the priority-0 advert, not from when the
//! thawed backup read it.

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use baton::lab::flood::AdvertRecorder;
use baton::lab::probe::Prober;
use baton::lab::{self, HoldWatch, Lab};
use nix::sys::signal::Signal;

const BATON: &str = env!("CARGO_BIN_EXE_baton");
const NAME: &str = "VI_1";
const VIP4: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 100);
const HANDOVERS: usize = 5;
/// Handovers in which a second master may show up (see above).
const STALLS_ALLOWED: usize = 1;
const MAX_CLIENT_GAP: Duration = Duration::from_millis(300);
const RECORD: Duration = Duration::from_secs(1);

fn toml(priority: u8) -> String {
    toml_at(priority, "10ms")
}

fn toml_at(priority: u8, advert_interval: &str) -> String {
    format!(
        "[[instance]]\nname = \"{NAME}\"\ninterface = \"eth0\"\nvrid = 52\n\
         priority = {priority}\nversion = 3\nadvert_interval = \"{advert_interval}\"\n\
         preempt = true\npreempt_delay = \"0s\"\nvirtual_ips = [\"{VIP4}/24\"]\n"
    )
}

fn entries(lab: &Lab, i: usize) -> usize {
    lab.log(i).matches("Entering MASTER STATE").count()
}

fn start(lab: &mut Lab, i: usize, priority: u8) -> u32 {
    start_with(lab, i, &toml(priority))
}

fn start_with(lab: &mut Lab, i: usize, toml: &str) -> u32 {
    let bin = std::env::var("BATON_HANDOVER_BIN").unwrap_or_else(|_| BATON.to_string());
    let pid = lab
        .start_baton(Path::new(&bin), i, toml)
        .expect("starting baton");
    lab.wait_for_agent(i, pid, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e}\n{}", lab.log(i)));
    pid
}

#[test]
fn a_priority_zero_handover_at_10ms_makes_one_master_and_adverts_keep_their_period() {
    if !lab::require_root() {
        return;
    }
    let mut lab = Lab::new("ho", 3).expect("building the namespace lab");
    let mut pid0 = start(&mut lab, 0, 150);
    start(&mut lab, 1, 100);
    start(&mut lab, 2, 50);
    let mut gaps = Vec::new();
    let mut unclean = 0;
    let ctx = |lab: &Lab| {
        format!(
            "node0:\n{}\nnode1:\n{}\nnode2:\n{}",
            lab.log(0),
            lab.log(1),
            lab.log(2)
        )
    };
    for round in 0..HANDOVERS {
        let settled = lab.wait_for(Duration::from_secs(10), |l| {
            l.masters(NAME) == [0] && l.holders(VIP4.into()) == [0]
        });
        assert!(
            settled,
            "round {round}: node0 not sole master\n{}",
            ctx(&lab)
        );
        let rec = AdvertRecorder::start(lab.node_ns(1), lab.node_addr4(1), lab.node_addr4(0))
            .expect("recording adverts on node1");
        std::thread::sleep(RECORD);
        gaps.extend(rec.finish().gaps);

        let before = (entries(&lab, 1), entries(&lab, 2));
        let prober = Prober::start(Some(lab.client_ns()), VIP4, Duration::from_millis(1))
            .expect("starting the client prober");
        std::thread::sleep(Duration::from_millis(100));
        lab.signal(pid0, Signal::SIGTERM).expect("SIGTERM to node0");
        let _ = lab.wait(pid0, Duration::from_secs(5));
        let took = lab.wait_for(Duration::from_secs(5), |l| {
            l.masters(NAME) == [1] && l.holders(VIP4.into()) == [1]
        });
        assert!(
            took,
            "round {round}: node1 did not take over\n{}",
            ctx(&lab)
        );
        // Long enough for a late second master to show and yield.
        std::thread::sleep(Duration::from_millis(300));
        let probe = prober.finish().expect("client prober");
        let after = (entries(&lab, 1), entries(&lab, 2));
        println!(
            "MEASURED: handover {round}: node1 entered MASTER {} time(s), node2 {}; client: \
             longest gap {:?}, {} of {} pings lost",
            after.0 - before.0,
            after.1 - before.1,
            probe.longest_gap,
            probe.lost(),
            probe.sent
        );
        assert!(after.0 > before.0, "round {round}: node1 never took over");
        if after.1 != before.1 || after.0 - before.0 != 1 {
            unclean += 1;
        }
        assert!(
            unclean <= STALLS_ALLOWED,
            "round {round}: a second master (node2, or node1 again), in {unclean} handovers \
             of {} so far\n{}",
            round + 1,
            ctx(&lab)
        );
        assert_eq!(lab.masters(NAME), [1], "round {round}\n{}", ctx(&lab));
        assert_eq!(
            lab.holders(VIP4.into()),
            [1],
            "round {round}\n{}",
            ctx(&lab)
        );
        assert!(
            probe.longest_gap < MAX_CLIENT_GAP,
            "round {round}: the client had no reply for {:?}\n{}",
            probe.longest_gap,
            ctx(&lab)
        );
        pid0 = start(&mut lab, 0, 150);
    }

    let mut sorted = gaps.clone();
    sorted.sort();
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    let (lo, hi) = (Duration::from_micros(9_500), Duration::from_micros(10_500));
    let within = gaps.iter().filter(|g| **g >= lo && **g <= hi).count();
    let share = within as f64 / gaps.len().max(1) as f64;
    println!(
        "MEASURED: {} advert gaps of node0 at 10 ms: p1 {:?} p10 {:?} median {:?} p90 {:?} p99 {:?} \
         max {:?}; {:.1} % within 9.5-10.5 ms",
        gaps.len(),
        at(0.01),
        at(0.10),
        at(0.5),
        at(0.90),
        at(0.99),
        at(1.0),
        share * 100.0
    );
    assert!(gaps.len() > 50 * HANDOVERS, "too few adverts recorded");
    let median = at(0.5);
    assert!(
        median >= lo && median <= hi,
        "median advert gap {median:?} off 10 ms"
    );
    assert!(
        share >= 0.8,
        "only {:.1} % of advert gaps within 10 ms ± 0.5 ms",
        share * 100.0
    );
}

/// How long the backup stays frozen after the master leaves, in
/// `a_backup_that_reads_the_priority_zero_advert_late_times_its_skew_from_its_arrival`.
const FROZEN: Duration = Duration::from_millis(400);

#[test]
fn a_backup_that_reads_the_priority_zero_advert_late_times_its_skew_from_its_arrival() {
    if !lab::require_root() {
        return;
    }
    let mut lab = Lab::new("hots", 2).expect("building the namespace lab");
    let pid0 = start_with(&mut lab, 0, &toml_at(150, "1s"));
    let pid1 = start_with(&mut lab, 1, &toml_at(100, "1s"));
    let ctx = |lab: &Lab| format!("node0:\n{}\nnode1:\n{}", lab.log(0), lab.log(1));
    let settled = lab.wait_for(Duration::from_secs(10), |l| {
        l.masters(NAME) == [0] && l.holders(VIP4.into()) == [0]
    });
    assert!(settled, "node0 not sole master\n{}", ctx(&lab));
    let watch = HoldWatch::start(&lab, VIP4);
    lab.signal(pid1, Signal::SIGSTOP).expect("SIGSTOP to node1");
    std::thread::sleep(Duration::from_millis(50));
    let t0 = std::time::Instant::now();
    lab.signal(pid0, Signal::SIGTERM).expect("SIGTERM to node0");
    let _ = lab.wait(pid0, Duration::from_secs(5));
    std::thread::sleep(FROZEN.saturating_sub(t0.elapsed()));
    lab.signal(pid1, Signal::SIGCONT).expect("SIGCONT to node1");
    let took = lab.wait_for(Duration::from_secs(5), |l| {
        l.masters(NAME) == [1] && l.holders(VIP4.into()) == [1]
    });
    std::thread::sleep(Duration::from_millis(20));
    let timeline = watch.finish();
    assert!(took, "node1 did not take over\n{}", ctx(&lab));
    let got = timeline
        .acquired_after(1, t0)
        .expect("node1 got the VIP")
        .duration_since(t0);
    // Skew of priority 100 at 1 s: (256 - 100) / 256 s.
    let skew = Duration::from_micros(609_375);
    println!(
        "MEASURED: node1 frozen for {FROZEN:?} after node0's SIGTERM held the VIP {got:?} \
         after it (skew {skew:?}; from the read it would be {:?})",
        FROZEN + skew
    );
    assert!(
        got >= skew,
        "node1 took over {got:?} after the SIGTERM, before its skew\n{}",
        ctx(&lab)
    );
    assert!(
        got < skew + FROZEN / 2,
        "node1 took over {got:?} after the SIGTERM: its skew ran from when it read the \
         priority-0 advert ({FROZEN:?} late), not from its arrival\n{}",
        ctx(&lab)
    );
}
