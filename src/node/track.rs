//! Tracking rules (pure): what is known about each tracked input (every
//! `vrrp_script` up or down after rise/fall counting, every `track_file`'s
//! value, every tracked link's state) in [`TrackState`], and keepalived's
//! weighting rules turning that into FAULT, an effective priority and the
//! reasons `baton status` shows ([`instance_effect`]). No IO: the agent's
//! tracker ([`crate::agent::track`]) and the simulator feed it events.

use std::collections::BTreeMap;

use crate::config::model::{Config, Instance, TrackInterface, TrackRef, VrrpScript};

// ---------------------------------------------------------------------------
// Pure half: state and keepalived's weighting rules.
// ---------------------------------------------------------------------------

/// What the tracker reports: only changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackEvent {
    /// A `vrrp_script` changed state after `rise` successes or `fall`
    /// failures in a row.
    Script { name: String, up: bool },
    /// A `track_file`'s value changed.
    File { name: String, value: i64 },
}

/// One script's rise/fall counter.
///
/// A script starts up (or down with `init_fail`); it goes down after `fall`
/// consecutive failures and up after `rise` consecutive successes. A result
/// that agrees with the current state resets the count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptStatus {
    up: bool,
    rise: u32,
    fall: u32,
    /// Consecutive results that disagree with `up`.
    streak: u32,
}

impl ScriptStatus {
    pub fn new(script: &VrrpScript) -> Self {
        ScriptStatus {
            up: !script.init_fail,
            rise: script.rise.max(1),
            fall: script.fall.max(1),
            streak: 0,
        }
    }

    /// Start from a known state (a reload carries script states over).
    pub fn set_up(&mut self, up: bool) {
        self.up = up;
        self.streak = 0;
    }

    pub fn up(&self) -> bool {
        self.up
    }

    /// Counts one run's result; the new state when it changed.
    pub fn record(&mut self, success: bool) -> Option<bool> {
        if success == self.up {
            self.streak = 0;
            return None;
        }
        self.streak = self.streak.saturating_add(1);
        let needed = if self.up { self.fall } else { self.rise };
        if self.streak < needed {
            return None;
        }
        self.up = success;
        self.streak = 0;
        Some(self.up)
    }
}

/// Everything known about tracked things, as the daemon sees it.
///
/// Scripts start as their config says (up, or down with `init_fail`), files
/// at 0 (a missing file reads as 0), interfaces unknown (counted as down
/// until the daemon reports them: keepalived faults on a tracked interface
/// that does not exist).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrackState {
    scripts: BTreeMap<String, ScriptStatus>,
    files: BTreeMap<String, i64>,
    interfaces: BTreeMap<String, bool>,
}

impl TrackState {
    pub fn new(config: &Config) -> Self {
        TrackState {
            scripts: config
                .vrrp_scripts
                .iter()
                .map(|s| (s.name.clone(), ScriptStatus::new(s)))
                .collect(),
            files: config
                .track_files
                .iter()
                .map(|f| (f.name.clone(), 0))
                .collect(),
            interfaces: BTreeMap::new(),
        }
    }

    /// Keep what `old` knew about scripts, files and interfaces that still
    /// exist (a reload must not make a failing check look good again).
    pub fn carry_over(&mut self, old: &TrackState) {
        for (name, status) in self.scripts.iter_mut() {
            if let Some(o) = old.scripts.get(name) {
                status.up = o.up;
                status.streak = 0;
            }
        }
        for (name, value) in self.files.iter_mut() {
            if let Some(o) = old.files.get(name) {
                *value = *o;
            }
        }
        self.interfaces = old.interfaces.clone();
    }

    /// Whether the script called `name` is up; `None` for an unknown name.
    /// Every tracked script's current state, by name.
    pub fn script_states(&self) -> BTreeMap<String, bool> {
        self.scripts
            .iter()
            .map(|(n, s)| (n.clone(), s.up))
            .collect()
    }

    pub fn script_up(&self, name: &str) -> Option<bool> {
        self.scripts.get(name).map(ScriptStatus::up)
    }

    /// Counts one run of a script (rise/fall); the new state when it
    /// changed. Unknown names are ignored.
    pub fn record_script_result(&mut self, name: &str, success: bool) -> Option<bool> {
        self.scripts.get_mut(name)?.record(success)
    }

    /// Sets a script's state (as reported by [`TrackEvent::Script`]);
    /// whether it changed. Unknown names are ignored.
    pub fn set_script(&mut self, name: &str, up: bool) -> bool {
        match self.scripts.get_mut(name) {
            Some(s) if s.up != up => {
                s.up = up;
                s.streak = 0;
                true
            }
            _ => false,
        }
    }

    /// A file's last value (0 when unknown or unread).
    pub fn file_value(&self, name: &str) -> i64 {
        self.files.get(name).copied().unwrap_or(0)
    }

    /// Sets a file's value; whether it changed.
    pub fn set_file(&mut self, name: &str, value: i64) -> bool {
        self.files.insert(name.to_string(), value) != Some(value)
    }

    /// A link's state; `None` when never reported.
    pub fn interface_up(&self, name: &str) -> Option<bool> {
        self.interfaces.get(name).copied()
    }

    /// Sets a link's state (from netlink); whether it changed.
    pub fn set_interface(&mut self, name: &str, up: bool) -> bool {
        self.interfaces.insert(name.to_string(), up) != Some(up)
    }

    /// Applies a tracker event; whether anything changed.
    pub fn apply(&mut self, event: &TrackEvent) -> bool {
        match event {
            TrackEvent::Script { name, up } => self.set_script(name, *up),
            TrackEvent::File { name, value } => self.set_file(name, *value),
        }
    }
}

/// What tracking does to one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effect {
    /// Something tracked with weight 0 failed (or a file went below -253).
    pub fault: bool,
    /// The priority to advertise: base plus weights, 1..=254; 255 for an
    /// address owner.
    pub priority: u8,
    /// Each tracked thing in its bad state, for logs and `baton status`:
    /// `script chk_haproxy failed`, `interface eth1 down`,
    /// `file /run/x = -300`.
    pub reasons: Vec<String>,
}

/// What one up/down input contributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Contribution {
    Fault,
    Add(i64),
}

/// keepalived's rule for a tracked thing that is up or down with a weight
/// (keepalived.conf(5), track_interface / vrrp_script / track_bfd):
///
/// - weight 0: FAULT while down; with `reverse`, FAULT while up.
/// - a positive weight is added while up, a negative one while down;
///   `reverse` negates the weight but keeps when it applies ("positive
///   weights are added/subtracted when up, negative weights are
///   subtracted/added when down").
fn weigh(up: bool, weight: i32, reverse: bool) -> Contribution {
    let signed = if reverse {
        -i64::from(weight)
    } else {
        i64::from(weight)
    };
    match weight {
        0 if up == reverse => Contribution::Fault,
        0 => Contribution::Add(0),
        w if w > 0 && up => Contribution::Add(signed),
        w if w < 0 && !up => Contribution::Add(signed),
        _ => Contribution::Add(0),
    }
}

/// The lowest `track_file` result (value times weight) that is added to the
/// priority; anything lower is a FAULT (keepalived: "less than -253").
pub const FILE_FAULT_BELOW: i64 = -253;

/// keepalived's `track_file` rule: weight 0: a non-zero value is a FAULT
/// (with `reverse`, a zero value is). Otherwise value × weight (negated
/// with `reverse`) is added; below -253 is a FAULT.
fn weigh_file(value: i64, weight: i32, reverse: bool) -> Contribution {
    if weight == 0 {
        return if (value != 0) != reverse {
            Contribution::Fault
        } else {
            Contribution::Add(0)
        };
    }
    let mut result = value.saturating_mul(i64::from(weight));
    if reverse {
        result = result.saturating_neg();
    }
    if result < FILE_FAULT_BELOW {
        Contribution::Fault
    } else {
        Contribution::Add(result)
    }
}

/// Applies keepalived's tracking rules to one instance.
///
/// A per-instance weight (`track_script { NAME weight W }`) replaces the
/// script's or file's own; `reverse` on either the reference or the script /
/// file applies (the model cannot say `noreverse`). A reference to a script
/// or file the config lacks (a checked config has none) counts for nothing
/// and is named in `reasons`.
///
/// The tracking of the instance's sync group counts too, entry by entry as
/// if the instance listed it, weights included: keepalived 2.x adds a
/// group's tracked interfaces, scripts and files to every member
/// (`sync_group_tracking_init`). Its reasons name the group.
pub fn instance_effect(inst: &Instance, config: &Config, state: &TrackState) -> Effect {
    let mut tally = Tally::default();
    let group = config.sync_group_of(&inst.name);
    match group.filter(|g| !g.tracking_weight) {
        Some(_) => {
            let (interfaces, scripts, files) = unweighted_for_sync(inst, config);
            tally.count((&interfaces, &scripts, &files), config, state, "");
        }
        None => tally.count(
            (
                &inst.track_interfaces,
                &inst.track_scripts,
                &inst.track_files,
            ),
            config,
            state,
            "",
        ),
    }
    if let Some(group) = group {
        let prefix = format!("sync group {}: ", group.name);
        tally.count(
            (
                &group.track_interfaces,
                &group.track_scripts,
                &group.track_files,
            ),
            config,
            state,
            &prefix,
        );
    }
    // Bounded first: the model's addition would overflow on extreme file
    // values, and anything beyond ±1000 clamps the same.
    Effect {
        fault: tally.fault,
        priority: inst.effective_priority(tally.sum.clamp(-1000, 1000)),
        reasons: tally.reasons,
    }
}

/// A sync group member's own tracking as keepalived keeps it when the
/// group has no `sync_group_tracking_weight` (`vrrp_complete_instance`:
/// "ignoring weight of tracked interface ... due to SYNC group"): weighted
/// interfaces count as weight 0, weighted scripts are dropped, files of
/// the default weight 1 count as weight 0 and other weighted files are
/// dropped. Weights here are the effective ones (a reference's override,
/// else the script's or file's own).
pub fn unweighted_for_sync(
    inst: &Instance,
    config: &Config,
) -> (Vec<TrackInterface>, Vec<TrackRef>, Vec<TrackRef>) {
    let interfaces = inst
        .track_interfaces
        .iter()
        .map(|t| TrackInterface {
            weight: 0,
            ..t.clone()
        })
        .collect();
    let scripts = inst
        .track_scripts
        .iter()
        .filter(|t| {
            let own = config.vrrp_script(&t.name).map_or(0, |s| s.weight);
            t.weight_override.unwrap_or(own) == 0
        })
        .cloned()
        .collect();
    let files = inst
        .track_files
        .iter()
        .filter_map(|t| {
            let own = config.track_file(&t.name).map_or(0, |f| f.weight);
            match t.weight_override.unwrap_or(own) {
                0 => Some(t.clone()),
                1 => Some(TrackRef {
                    weight_override: Some(0),
                    ..t.clone()
                }),
                _ => None,
            }
        })
        .collect();
    (interfaces, scripts, files)
}

/// What tracked things add up to, on the way to an [`Effect`].
#[derive(Default)]
struct Tally {
    fault: bool,
    sum: i64,
    reasons: Vec<String>,
}

impl Tally {
    fn add(&mut self, c: Contribution) {
        match c {
            Contribution::Fault => self.fault = true,
            Contribution::Add(n) => self.sum = self.sum.saturating_add(n),
        }
    }

    #[allow(clippy::type_complexity)]
    fn count(
        &mut self,
        (interfaces, scripts, files): (&[TrackInterface], &[TrackRef], &[TrackRef]),
        config: &Config,
        state: &TrackState,
        prefix: &str,
    ) {
        for t in interfaces {
            let up = state.interface_up(&t.name);
            self.add(weigh(up.unwrap_or(false), t.weight, t.reverse));
            let name = &t.name;
            match up {
                None => self
                    .reasons
                    .push(format!("{prefix}interface {name} not found")),
                Some(false) if !t.reverse => {
                    self.reasons.push(format!("{prefix}interface {name} down"))
                }
                Some(true) if t.reverse => self
                    .reasons
                    .push(format!("{prefix}interface {name} up (reverse)")),
                Some(_) => {}
            }
        }

        for t in scripts {
            let (Some(script), Some(up)) = (config.vrrp_script(&t.name), state.script_up(&t.name))
            else {
                self.reasons
                    .push(format!("{prefix}script {} is not configured", t.name));
                continue;
            };
            let weight = t.weight_override.unwrap_or(script.weight);
            let reverse = t.reverse || script.weight_reverse;
            self.add(weigh(up, weight, reverse));
            if !up && !reverse {
                self.reasons
                    .push(format!("{prefix}script {} failed", t.name));
            } else if up && reverse {
                self.reasons
                    .push(format!("{prefix}script {} succeeded (reverse)", t.name));
            }
        }

        for t in files {
            let Some(file) = config.track_file(&t.name) else {
                self.reasons
                    .push(format!("{prefix}file {} is not configured", t.name));
                continue;
            };
            let value = state.file_value(&t.name);
            let weight = t.weight_override.unwrap_or(file.weight);
            let reverse = t.reverse || file.reverse;
            let c = weigh_file(value, weight, reverse);
            self.add(c);
            let bad = match c {
                Contribution::Fault => true,
                Contribution::Add(n) => n < 0,
            };
            if bad {
                self.reasons
                    .push(format!("{prefix}file {} = {value}", file.path.display()));
            }
        }
    }
}

/// A `track_file`'s value: the integer its text starts with (after
/// whitespace, with an optional sign), as keepalived reads it; `None` when
/// it does not start with one. Values beyond i64 saturate.
pub fn parse_track_value(text: &str) -> Option<i64> {
    let t = text.trim_start();
    let (negative, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    if end == 0 {
        return None;
    }
    let mut value: i64 = 0;
    for b in digits[..end].bytes() {
        let d = i64::from(b - b'0');
        value = value.saturating_mul(10);
        value = if negative {
            value.saturating_sub(d)
        } else {
            value.saturating_add(d)
        };
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::{SyncGroup, TrackFile};
    use std::path::PathBuf;

    fn script(name: &str, weight: i32) -> VrrpScript {
        let mut s = VrrpScript::new(name, "/bin/true");
        s.weight = weight;
        s
    }

    fn config_with(inst: Instance, scripts: Vec<VrrpScript>, files: Vec<TrackFile>) -> Config {
        let mut c = Config::new("lb1");
        c.instances.push(inst);
        c.vrrp_scripts = scripts;
        c.track_files = files;
        c
    }

    fn file(name: &str, weight: i32, reverse: bool) -> TrackFile {
        TrackFile {
            name: name.into(),
            path: PathBuf::from(format!("/run/{name}")),
            weight,
            reverse,
        }
    }

    fn effect(c: &Config, s: &TrackState) -> Effect {
        instance_effect(&c.instances[0], c, s)
    }

    #[test]
    fn rise_and_fall_are_counted_in_a_row() {
        let mut s = script("chk", 0);
        s.rise = 3;
        s.fall = 2;
        let mut st = ScriptStatus::new(&s);
        assert!(st.up());
        assert_eq!(st.record(false), None);
        assert_eq!(st.record(true), None, "a success resets the failures");
        assert_eq!(st.record(false), None);
        assert_eq!(st.record(false), Some(false), "second failure in a row");
        assert_eq!(st.record(false), None, "already down");
        assert_eq!(st.record(true), None);
        assert_eq!(st.record(true), None);
        assert_eq!(st.record(false), None, "a failure resets the successes");
        assert_eq!(st.record(true), None);
        assert_eq!(st.record(true), None);
        assert_eq!(st.record(true), Some(true), "third success in a row");
        assert!(st.up());
    }

    #[test]
    fn init_fail_starts_down_and_needs_rise() {
        let mut s = script("chk", 0);
        s.init_fail = true;
        s.rise = 2;
        let mut st = ScriptStatus::new(&s);
        assert!(!st.up());
        assert_eq!(st.record(true), None);
        assert_eq!(st.record(true), Some(true));

        let mut inst = Instance::new("VI_1", "eth0", 1);
        inst.track_scripts.push(TrackRef::new("chk"));
        let c = config_with(inst, vec![s], vec![]);
        let mut state = TrackState::new(&c);
        assert_eq!(state.script_up("chk"), Some(false));
        assert!(
            effect(&c, &state).fault,
            "init_fail + weight 0 starts in FAULT"
        );
        assert_eq!(state.record_script_result("chk", true), None);
        assert_eq!(state.record_script_result("chk", true), Some(true));
        assert!(!effect(&c, &state).fault);
    }

    #[test]
    fn rise_and_fall_of_zero_count_as_one() {
        let mut s = script("chk", 0);
        s.rise = 0;
        s.fall = 0;
        let mut st = ScriptStatus::new(&s);
        assert_eq!(st.record(false), Some(false));
        assert_eq!(st.record(true), Some(true));
    }

    #[test]
    fn weight_zero_failing_means_fault() {
        let mut inst = Instance::new("VI_1", "eth0", 1);
        inst.track_scripts.push(TrackRef::new("chk_haproxy"));
        inst.track_interfaces.push(TrackInterface::new("eth1"));
        let c = config_with(inst, vec![script("chk_haproxy", 0)], vec![]);
        let mut state = TrackState::new(&c);
        state.set_interface("eth1", true);
        let e = effect(&c, &state);
        assert_eq!((e.fault, e.priority), (false, 100));
        assert!(e.reasons.is_empty(), "{:?}", e.reasons);

        state.set_script("chk_haproxy", false);
        let e = effect(&c, &state);
        assert!(e.fault);
        assert_eq!(e.reasons, ["script chk_haproxy failed"]);

        state.set_script("chk_haproxy", true);
        state.set_interface("eth1", false);
        let e = effect(&c, &state);
        assert!(e.fault);
        assert_eq!(e.reasons, ["interface eth1 down"]);
    }

    #[test]
    fn unreported_interface_is_down() {
        let mut inst = Instance::new("VI_1", "eth0", 1);
        inst.track_interfaces.push(TrackInterface::new("eth9"));
        let c = config_with(inst, vec![], vec![]);
        let e = effect(&c, &TrackState::new(&c));
        assert!(e.fault);
        assert_eq!(e.reasons, ["interface eth9 not found"]);
    }

    #[test]
    fn weight_zero_reverse_faults_while_up() {
        let mut inst = Instance::new("VI_1", "eth0", 1);
        inst.track_scripts.push(TrackRef {
            name: "chk".into(),
            weight_override: None,
            reverse: true,
        });
        inst.track_interfaces.push(TrackInterface {
            name: "eth1".into(),
            weight: 0,
            reverse: true,
        });
        let c = config_with(inst, vec![script("chk", 0)], vec![]);
        let mut state = TrackState::new(&c);
        state.set_interface("eth1", false);
        let e = effect(&c, &state);
        assert!(e.fault, "script up + reverse");
        assert_eq!(e.reasons, ["script chk succeeded (reverse)"]);
        state.set_script("chk", false);
        assert!(!effect(&c, &state).fault);
        state.set_interface("eth1", true);
        let e = effect(&c, &state);
        assert!(e.fault);
        assert_eq!(e.reasons, ["interface eth1 up (reverse)"]);
    }

    #[test]
    fn positive_negative_and_reverse_weights() {
        // (weight, reverse, priority while up, priority while down)
        for (weight, reverse, up, down) in [
            (10, false, 110, 100),
            (-10, false, 100, 90),
            (10, true, 90, 100),
            (-10, true, 100, 110),
        ] {
            let mut s = script("chk", weight);
            s.weight_reverse = reverse;
            let mut inst = Instance::new("VI_1", "eth0", 1);
            inst.track_scripts.push(TrackRef::new("chk"));
            let c = config_with(inst, vec![s], vec![]);
            let mut state = TrackState::new(&c);
            let e = effect(&c, &state);
            assert_eq!((e.fault, e.priority), (false, up), "{weight} {reverse} up");
            state.set_script("chk", false);
            let e = effect(&c, &state);
            assert_eq!(
                (e.fault, e.priority),
                (false, down),
                "{weight} {reverse} down"
            );

            // The same rule for interfaces.
            let mut inst = Instance::new("VI_1", "eth0", 1);
            inst.track_interfaces.push(TrackInterface {
                name: "eth1".into(),
                weight,
                reverse,
            });
            let c = config_with(inst, vec![], vec![]);
            let mut state = TrackState::new(&c);
            state.set_interface("eth1", true);
            assert_eq!(
                effect(&c, &state).priority,
                up,
                "iface {weight} {reverse} up"
            );
            state.set_interface("eth1", false);
            assert_eq!(
                effect(&c, &state).priority,
                down,
                "iface {weight} {reverse} down"
            );
        }
    }

    #[test]
    fn override_replaces_the_script_weight_and_reverse_on_the_ref_counts() {
        let mut inst = Instance::new("VI_1", "eth0", 1);
        inst.track_scripts.push(TrackRef {
            name: "chk".into(),
            weight_override: Some(-30),
            reverse: false,
        });
        let c = config_with(inst, vec![script("chk", 0)], vec![]);
        let mut state = TrackState::new(&c);
        state.set_script("chk", false);
        let e = effect(&c, &state);
        assert_eq!(
            (e.fault, e.priority),
            (false, 70),
            "override -30, not weight 0"
        );

        let mut inst = Instance::new("VI_1", "eth0", 1);
        inst.track_scripts.push(TrackRef {
            name: "chk".into(),
            weight_override: None,
            reverse: true,
        });
        let c = config_with(inst, vec![script("chk", 20)], vec![]);
        let state = TrackState::new(&c);
        assert_eq!(
            effect(&c, &state).priority,
            80,
            "weight 20 reversed while up"
        );
    }

    #[test]
    fn weights_add_up_and_clamp() {
        let mut inst = Instance::new("VI_1", "eth0", 1);
        inst.priority = 250;
        for n in ["a", "b"] {
            inst.track_scripts.push(TrackRef::new(n));
        }
        let c = config_with(inst, vec![script("a", 3), script("b", 4)], vec![]);
        let state = TrackState::new(&c);
        assert_eq!(effect(&c, &state).priority, 254, "250 + 7 clamps to 254");

        let mut inst = Instance::new("VI_1", "eth0", 1);
        inst.priority = 5;
        for n in ["a", "b"] {
            inst.track_scripts.push(TrackRef::new(n));
        }
        let c = config_with(inst, vec![script("a", -3), script("b", -4)], vec![]);
        let mut state = TrackState::new(&c);
        state.set_script("a", false);
        assert_eq!(effect(&c, &state).priority, 2);
        state.set_script("b", false);
        let e = effect(&c, &state);
        assert_eq!(e.priority, 1, "5 - 7 clamps to 1");
        assert_eq!(e.reasons, ["script a failed", "script b failed"]);
    }

    #[test]
    fn address_owner_keeps_255() {
        let mut inst = Instance::new("VI_1", "eth0", 1);
        inst.priority = 255;
        inst.track_scripts.push(TrackRef::new("chk"));
        inst.track_scripts.push(TrackRef::new("gate"));
        let c = config_with(inst, vec![script("chk", -50), script("gate", 0)], vec![]);
        let mut state = TrackState::new(&c);
        state.set_script("chk", false);
        let e = effect(&c, &state);
        assert_eq!((e.fault, e.priority), (false, 255));
        state.set_script("gate", false);
        let e = effect(&c, &state);
        assert_eq!((e.fault, e.priority), (true, 255), "an owner still faults");
    }

    #[test]
    fn track_file_value_times_weight_and_fault_threshold() {
        let mut inst = Instance::new("VI_1", "eth0", 1);
        inst.track_files.push(TrackRef::new("x"));
        let c = config_with(inst, vec![], vec![file("x", 2, false)]);
        let mut state = TrackState::new(&c);
        assert_eq!(effect(&c, &state).priority, 100, "missing/unread = 0");
        state.set_file("x", 5);
        assert_eq!(effect(&c, &state).priority, 110);
        state.set_file("x", -20);
        let e = effect(&c, &state);
        assert_eq!((e.fault, e.priority), (false, 60));
        assert_eq!(e.reasons, ["file /run/x = -20"]);
        // -126 * 2 = -252, -127 * 2 = -254.
        state.set_file("x", -126);
        assert_eq!(
            effect(&c, &state),
            Effect {
                fault: false,
                priority: 1,
                reasons: vec!["file /run/x = -126".into()]
            }
        );
        state.set_file("x", -127);
        assert!(effect(&c, &state).fault, "-254 is a fault");

        // Exactly -253 is not; -254 is.
        let mut inst = Instance::new("VI_1", "eth0", 1);
        inst.track_files.push(TrackRef::new("x"));
        let c = config_with(inst, vec![], vec![file("x", 1, false)]);
        let mut state = TrackState::new(&c);
        state.set_file("x", -253);
        assert!(!effect(&c, &state).fault);
        state.set_file("x", -300);
        let e = effect(&c, &state);
        assert!(e.fault);
        assert_eq!(e.reasons, ["file /run/x = -300"]);
        state.set_file("x", i64::MIN);
        assert!(effect(&c, &state).fault, "saturates, no overflow");
        state.set_file("x", i64::MAX);
        assert_eq!(effect(&c, &state).priority, 254);
    }

    #[test]
    fn track_file_weight_zero_reverse_and_override() {
        let mut inst = Instance::new("VI_1", "eth0", 1);
        inst.track_files.push(TrackRef::new("x"));
        let c = config_with(inst, vec![], vec![file("x", 0, false)]);
        let mut state = TrackState::new(&c);
        assert!(!effect(&c, &state).fault);
        state.set_file("x", 1);
        assert!(effect(&c, &state).fault, "weight 0: non-zero is a fault");

        let mut inst = Instance::new("VI_1", "eth0", 1);
        inst.track_files.push(TrackRef::new("x"));
        let c = config_with(inst, vec![], vec![file("x", 0, true)]);
        let mut state = TrackState::new(&c);
        assert!(
            effect(&c, &state).fault,
            "weight 0 reverse: zero is a fault"
        );
        state.set_file("x", 3);
        assert!(!effect(&c, &state).fault);

        let mut inst = Instance::new("VI_1", "eth0", 1);
        inst.track_files.push(TrackRef {
            name: "x".into(),
            weight_override: Some(-10),
            reverse: false,
        });
        let c = config_with(inst, vec![], vec![file("x", 1, false)]);
        let mut state = TrackState::new(&c);
        state.set_file("x", 3);
        assert_eq!(effect(&c, &state).priority, 70);

        let mut inst = Instance::new("VI_1", "eth0", 1);
        inst.track_files.push(TrackRef::new("x"));
        let c = config_with(inst, vec![], vec![file("x", 10, true)]);
        let mut state = TrackState::new(&c);
        state.set_file("x", 3);
        assert_eq!(effect(&c, &state).priority, 70, "reverse negates");
    }

    #[test]
    fn events_apply_to_the_state() {
        let mut inst = Instance::new("VI_1", "eth0", 1);
        inst.track_scripts.push(TrackRef::new("chk"));
        let c = config_with(inst, vec![script("chk", 0)], vec![file("x", 1, false)]);
        let mut state = TrackState::new(&c);
        assert!(state.apply(&TrackEvent::Script {
            name: "chk".into(),
            up: false
        }));
        assert!(!state.apply(&TrackEvent::Script {
            name: "chk".into(),
            up: false
        }));
        assert!(!state.apply(&TrackEvent::Script {
            name: "nope".into(),
            up: false
        }));
        assert!(state.apply(&TrackEvent::File {
            name: "x".into(),
            value: 4
        }));
        assert_eq!(state.file_value("x"), 4);
        assert!(!state.apply(&TrackEvent::File {
            name: "x".into(),
            value: 4
        }));
    }

    #[test]
    fn unknown_references_do_not_panic() {
        let mut inst = Instance::new("VI_1", "eth0", 1);
        inst.track_scripts.push(TrackRef::new("ghost"));
        inst.track_files.push(TrackRef::new("phantom"));
        let c = config_with(inst, vec![], vec![]);
        let e = effect(&c, &TrackState::new(&c));
        assert_eq!((e.fault, e.priority), (false, 100));
        assert_eq!(e.reasons.len(), 2);
    }

    #[test]
    fn track_values_parse_like_keepalived() {
        assert_eq!(parse_track_value("42\n"), Some(42));
        assert_eq!(parse_track_value("  -300 trailing"), Some(-300));
        assert_eq!(parse_track_value("+7"), Some(7));
        assert_eq!(parse_track_value("12abc"), Some(12));
        assert_eq!(parse_track_value(""), None);
        assert_eq!(parse_track_value("-"), None);
        assert_eq!(parse_track_value("abc 5"), None);
        assert_eq!(parse_track_value("99999999999999999999999"), Some(i64::MAX));
        assert_eq!(
            parse_track_value("-99999999999999999999999"),
            Some(i64::MIN)
        );
    }

    #[test]
    fn a_sync_groups_tracking_counts_in_each_member_with_its_weight() {
        let mut c = config_with(
            Instance::new("VI_1", "eth0", 1),
            vec![script("chk", 0)],
            vec![],
        );
        c.instances[0].priority = 200;
        c.instances.push(Instance::new("VI_2", "eth0", 2));
        let mut weighted = TrackRef::new("chk");
        weighted.weight_override = Some(-50);
        c.sync_groups.push(SyncGroup {
            name: "G".into(),
            instances: vec!["VI_1".into(), "VI_2".into()],
            track_scripts: vec![weighted],
            ..SyncGroup::default()
        });
        let mut st = TrackState::new(&c);
        st.set_script("chk", false);
        for (i, base) in [(0, 200), (1, 100)] {
            let e = instance_effect(&c.instances[i], &c, &st);
            assert!(!e.fault);
            assert_eq!(e.priority, base - 50);
            assert_eq!(e.reasons, ["sync group G: script chk failed"]);
        }
        // Weight 0 (the script's own): every member faults.
        c.sync_groups[0].track_scripts = vec![TrackRef::new("chk")];
        for inst in &c.instances {
            assert!(instance_effect(inst, &c, &st).fault);
        }
        // A member of no group is not touched.
        c.sync_groups[0].instances = vec!["VI_2".into()];
        assert!(!instance_effect(&c.instances[0], &c, &st).fault);
    }

    #[test]
    fn a_members_own_weights_are_ignored_unless_the_group_keeps_them() {
        let mut inst = Instance::new("VI_1", "eth0", 1);
        inst.priority = 150;
        inst.track_scripts.push(TrackRef::new("weighted"));
        inst.track_interfaces.push(TrackInterface {
            name: "eth1".into(),
            weight: -20,
            reverse: false,
        });
        inst.track_files.push(TrackRef::new("default_weight"));
        let mut c = config_with(
            inst,
            vec![script("weighted", -50)],
            vec![file("default_weight", 1, false)],
        );
        c.sync_groups.push(SyncGroup {
            name: "G".into(),
            instances: vec!["VI_1".into()],
            ..SyncGroup::default()
        });
        let mut st = TrackState::new(&c);
        st.set_script("weighted", false);
        st.set_interface("eth1", true);
        // keepalived: the weighted script is dropped; the file's weight 1
        // becomes 0 (a 0 value is fine).
        let e = effect(&c, &st);
        assert!(!e.fault);
        assert_eq!(e.priority, 150);
        // The weighted interface counts as weight 0: down is a FAULT.
        st.set_interface("eth1", false);
        assert!(effect(&c, &st).fault);
        st.set_interface("eth1", true);
        st.set_file("default_weight", 5);
        assert!(effect(&c, &st).fault, "weight 1 became 0: non-zero faults");
        // sync_group_tracking_weight: the weights count again.
        c.sync_groups[0].tracking_weight = true;
        st.set_file("default_weight", 0);
        let e = effect(&c, &st);
        assert!(!e.fault);
        assert_eq!(e.priority, 100);
        st.set_interface("eth1", false);
        let e = effect(&c, &st);
        assert!(!e.fault);
        assert_eq!(e.priority, 80);
    }
}
