//! keepalived.conf reader, through the public API: lexer, includes,
//! parameters, conditionals, every keyword group, diagnostics with
//! `file:line:col`, strict mode, and convert-then-read round trips.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use baton::config::convert::to_toml;
use baton::config::keepalived::{parse_keepalived_in, MemFiles};
use baton::config::model::{InitialState, Selection, Version};
use baton::config::toml::parse_toml;
use baton::config::{load_with_options, Config, Defaults, Diagnostics, Loaded, Options};
use proptest::prelude::*;

#[path = "support/bounds.rs"]
mod bounds;
use bounds::within_bounds;

const MAIN: &str = "/etc/keepalived/keepalived.conf";

fn conf(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("conf")
        .join(name)
}

fn options() -> Options {
    Options {
        defaults: Defaults::default(),
        config_id: Some("lb1".into()),
        strict: false,
        all_config: false,
    }
}

fn parse_files(
    text: &str,
    others: &[(&str, &str)],
    options: &Options,
) -> Result<Loaded, Diagnostics> {
    let files = MemFiles(
        others
            .iter()
            .map(|(p, t)| (PathBuf::from(p), t.to_string()))
            .collect::<BTreeMap<_, _>>(),
    );
    parse_keepalived_in(text, Path::new(MAIN), options, &files)
}

fn loaded(text: &str) -> Loaded {
    parse_files(text, &[], &options()).unwrap_or_else(|d| panic!("refused:\n{d}"))
}

fn ok(text: &str) -> Config {
    let l = loaded(text);
    assert!(l.warnings.is_empty(), "warnings:\n{}", l.warnings);
    l.config
}

fn warnings(text: &str) -> Vec<String> {
    loaded(text)
        .warnings
        .iter()
        .map(|d| d.to_string())
        .collect()
}

fn errors(text: &str) -> Vec<String> {
    match parse_files(text, &[], &options()) {
        Ok(l) => panic!("accepted: {:#?}", l.config),
        Err(d) => d.errors().map(|d| d.to_string()).collect(),
    }
}

/// One instance VI_1 on eth0, VRID 51, one VIP; `body` is inside its block
/// from line 2 on.
fn instance(body: &str) -> String {
    format!("vrrp_instance VI_1 {{\n{body}    interface eth0\n    virtual_router_id 51\n    virtual_ipaddress {{\n        192.0.2.1/24\n    }}\n}}\n")
}

fn roundtrip(config: &Config) {
    let text = to_toml(config);
    let back = parse_toml(&text, Path::new("converted.toml"))
        .unwrap_or_else(|d| panic!("convert output refused:\n{d}\n---\n{text}"));
    assert_eq!(&back, config, "convert output:\n{text}");
}

// ---------------------------------------------------------------- examples

#[test]
fn example_loads_with_one_warning_for_the_virtual_server() {
    let l =
        load_with_options(&conf("keepalived.conf"), &options()).unwrap_or_else(|d| panic!("{d}"));
    let w: Vec<String> = l.warnings.iter().map(|d| d.to_string()).collect();
    assert_eq!(w.len(), 1, "{w:#?}");
    assert!(
        w[0].contains("keepalived.conf:110:1: warning: \"virtual_server\" is skipped"),
        "{}",
        w[0]
    );
    let c = &l.config;
    assert_eq!(c.global.router_id, "lb1");
    assert_eq!(c.global.startup_delay, Duration::from_millis(2500));
    assert_eq!(c.instances.len(), 2);
    let vi = &c.instances[0];
    assert_eq!((vi.vrid, vi.priority, vi.version), (51, 150, Version::V2));
    assert_eq!(vi.auth_pass.as_deref(), Some("s3cret"));
    assert_eq!(vi.unicast_peers.len(), 2);
    assert_eq!(vi.virtual_ips[0].label.as_deref(), Some("eth0:vip"));
    assert_eq!(vi.track_interfaces[1].weight, -20);
    assert_eq!(vi.initial_state, Some(InitialState::Master));
    assert_eq!(vi.garp.master_refresh, Some(Duration::from_secs(60)));
    assert!(!c.instances[1].preempt);
    assert_eq!(c.sync_groups[0].instances, ["VI_1", "VI_2"]);
    assert_eq!(c.vrrp_scripts[0].weight, -30);
    roundtrip(c);
}

#[test]
fn every_toml_example_round_trips_through_convert() {
    for name in ["baton.toml", "minimal.toml", "two-instances-v2-v6.toml"] {
        let l =
            load_with_options(&conf(name), &options()).unwrap_or_else(|d| panic!("{name}:\n{d}"));
        roundtrip(&l.config);
    }
}

// ---------------------------------------------------------------- lexer

#[test]
fn comments_quotes_and_escapes() {
    let c = ok(&format!(
        "# a comment\n! another\nglobal_defs {{ # trailing\n    router_id \"lb 1\" ! bang\n}}\n\
         vrrp_script chk {{\n    script \"/bin/check 'a b' # not a comment\"\n}}\n\
         vrrp_script chk2 {{\n    script ab\"c d\"'e'\n}}\n\
         vrrp_script chk3 {{\n    script \"tab\\there\\x41\\101\\\\\"\n}}\n{}",
        instance("")
    ));
    assert_eq!(c.global.router_id, "lb 1");
    assert_eq!(c.vrrp_scripts[0].script, "/bin/check 'a b' # not a comment");
    assert_eq!(c.vrrp_scripts[1].script, "abc de");
    assert_eq!(c.vrrp_scripts[2].script, "tab\there\u{41}A\\");
}

#[test]
fn braces_on_the_next_line_and_on_one_line() {
    let c = ok("global_defs\n{\n    router_id lb9\n}\nvrrp_instance VI_1\n{\n    interface eth0\n    virtual_router_id 51\n    \
                virtual_ipaddress { 192.0.2.1/24 192.0.2.2/24 dev eth1 }\n    unicast_peer\n    {\n        192.0.2.12\n    }\n}\n");
    assert_eq!(c.global.router_id, "lb9");
    let i = &c.instances[0];
    assert_eq!(i.virtual_ips.len(), 2);
    assert_eq!(i.virtual_ips[1].dev.as_deref(), Some("eth1"));
    assert_eq!(i.unicast_peers, ["192.0.2.12".parse::<IpAddr>().unwrap()]);
}

#[test]
fn keywords_are_case_sensitive() {
    let w = warnings(&instance("    Priority 120\n"));
    assert_eq!(w.len(), 1, "{w:#?}");
    assert!(w[0].starts_with(&format!("{MAIN}:2:5: warning: vrrp_instance \"VI_1\": unknown keyword \"Priority\" (did you mean \"priority\"?)")), "{}", w[0]);
}

#[test]
fn an_unclosed_block_and_a_stray_brace_are_reported() {
    let w = warnings(&format!(
        "}}\n{}global_defs {{\n  router_id x\n",
        instance("")
    ));
    assert!(
        w[0].starts_with(&format!("{MAIN}:1:1: warning: a '}}' closes no block")),
        "{w:#?}"
    );
    assert!(
        w.iter()
            .any(|w| w.contains(":9:13: warning: this block is not closed")),
        "{w:#?}"
    );
}

// ---------------------------------------------------------------- includes

#[test]
fn include_with_a_glob_relative_to_the_including_file() {
    let main = format!(
        "include conf.d/*.conf\ninclude  \"more/inst[0-9].conf\"\n{}",
        ""
    );
    let l = parse_files(
        &main,
        &[
            (
                "/etc/keepalived/conf.d/b.conf",
                "vrrp_script chk_b {\n  script /bin/b\n}\n",
            ),
            (
                "/etc/keepalived/conf.d/a.conf",
                "global_defs {\n  router_id from_a\n}\n",
            ),
            ("/etc/keepalived/conf.d/.hidden.conf", "garbage here\n"),
            ("/etc/keepalived/conf.d/notes.txt", "garbage here\n"),
            (
                "/etc/keepalived/more/inst1.conf",
                "include ../sub/vi.conf\n",
            ),
            (
                "/etc/keepalived/sub/vi.conf",
                &instance("    priority 120\n    bogus_keyword 1\n"),
            ),
        ],
        &options(),
    )
    .unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(l.config.global.router_id, "from_a");
    assert_eq!(l.config.vrrp_scripts[0].name, "chk_b");
    assert_eq!(l.config.instances[0].priority, 120);
    let w: Vec<String> = l.warnings.iter().map(|d| d.to_string()).collect();
    assert_eq!(
        w,
        ["/etc/keepalived/more/../sub/vi.conf:3:5: warning: vrrp_instance \"VI_1\": unknown keyword \"bogus_keyword\"; ignored"]
    );
}

#[test]
fn include_problems() {
    let l = parse_files(
        &format!(
            "include nothing/*.conf\ninclude missing.conf\ninclude self.conf\n{}",
            instance("")
        ),
        &[("/etc/keepalived/self.conf", "include self.conf\n")],
        &options(),
    );
    let d = l.unwrap_err();
    let all: Vec<String> = d.iter().map(|d| d.to_string()).collect();
    assert!(
        all[0].starts_with(&format!(
            "{MAIN}:1:1: note: include: no file matches \"/etc/keepalived/nothing/*.conf\""
        )),
        "{all:#?}"
    );
    assert!(
        all[1].starts_with(&format!(
            "{MAIN}:2:1: warning: include: cannot read \"/etc/keepalived/missing.conf\""
        )),
        "{all:#?}"
    );
    assert_eq!(all[2], "/etc/keepalived/self.conf:1:1: error: include: \"/etc/keepalived/self.conf\" includes itself");
}

#[test]
fn include_from_the_file_system() {
    let dir = std::env::temp_dir().join(format!("baton-kaconf-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("conf.d")).unwrap();
    std::fs::write(dir.join("keepalived.conf"), "include conf.d/*.conf\n").unwrap();
    std::fs::write(dir.join("conf.d/vi1.conf"), instance("    priority 110\n")).unwrap();
    let l = load_with_options(&dir.join("keepalived.conf"), &options());
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        l.unwrap_or_else(|d| panic!("{d}")).config.instances[0].priority,
        110
    );
}

// ---------------------------------------------------------------- parameters

#[test]
fn parameters() {
    let c = ok(
        "$PRIO=120\n$BASE=192.0.${SUB}\n$SUB=2\n$IF=eth0\n$EMPTY=\n\
         $INSTANCE= \\\nvrrp_instance VI_${N} { \\\n  interface $IF \\\n  virtual_router_id ${N}0 \\\n  \
         @lb1 priority $PRIO \\\n  @^lb1 priority 50 \\\n  virtual_ipaddress { \\\n    ${BASE}.${N}/24 \\\n  } \\\n}\n\
         $N=1\n$INSTANCE\n$N=2\n$INSTANCE\n\
         vrrp_script chk {\n  script \"/bin/x $1 ${UNDEFINED} $EMPTY${_HASH}\"\n}\n"
    );
    let names: Vec<&str> = c.instances.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["VI_1", "VI_2"]);
    assert_eq!((c.instances[1].vrid, c.instances[1].priority), (20, 120));
    assert_eq!(c.instances[1].virtual_ips[0].to_string(), "192.0.2.2/24");
    // $EMPTY is not followed by a space: it stays (keepalived's rule).
    assert_eq!(c.vrrp_scripts[0].script, "/bin/x $1 ${UNDEFINED} $EMPTY#");
}

#[test]
fn a_parameter_that_contains_itself_is_an_error() {
    let e = errors(&format!(
        "$A=x ${{A}}\nvrrp_script s {{\n  script ${{A}}\n}}\n{}",
        instance("")
    ));
    assert!(
        e.iter()
            .any(|e| e.contains(":3:3: error: parameter substitution nests more than")),
        "{e:#?}"
    );
}

#[test]
fn conditional_lines() {
    let text = instance("    @lb1 priority 200\n    @lb2 priority 100\n    @^lb1 nopreempt\n    unicast_peer {\n        @^lb1 192.0.2.11\n        @^lb2 192.0.2.12\n    }\n");
    let c = ok(&text);
    assert_eq!(c.instances[0].priority, 200);
    assert!(c.instances[0].preempt);
    assert_eq!(
        c.instances[0].unicast_peers,
        ["192.0.2.12".parse::<IpAddr>().unwrap()]
    );
    let other = Options {
        config_id: Some("lb2".into()),
        ..options()
    };
    let c = parse_files(&text, &[], &other).unwrap().config;
    assert_eq!(c.instances[0].priority, 100);
    assert!(!c.instances[0].preempt);
    // Without an explicit id, the router id default (the host name) is used.
    let by_router_id = Options {
        config_id: None,
        defaults: Defaults {
            router_id: "lb2".into(),
        },
        strict: false,
        all_config: false,
    };
    assert_eq!(
        parse_files(&text, &[], &by_router_id)
            .unwrap()
            .config
            .instances[0]
            .priority,
        100
    );
}

// ---------------------------------------------------------------- keywords

#[test]
fn keepalived_defaults() {
    let c = ok(&instance(""));
    let i = &c.instances[0];
    assert_eq!((i.priority, i.version), (100, Version::V2));
    assert_eq!(i.advert_interval, Duration::from_secs(1));
    assert!(i.preempt);
    assert_eq!(i.initial_state, None);
    assert_eq!(
        (i.garp.master_delay, i.garp.master_repeat),
        (Duration::from_secs(5), 5)
    );
    assert_eq!(
        (i.garp.master_refresh, i.garp.master_refresh_repeat),
        (None, 1)
    );
    assert_eq!(c.global.router_id, "localhost");
}

#[test]
fn global_defs_set_instance_defaults() {
    let c = ok(&format!(
        "{}global_defs {{\n  vrrp_version 3\n  vrrp_garp_master_delay 10\n  vrrp_garp_master_repeat 2\n  \
         vrrp_garp_lower_prio_delay 3\n  vrrp_garp_lower_prio_repeat 1\n  vrrp_garp_master_refresh 30\n  \
         vrrp_garp_master_refresh_repeat 2\n  vrrp_garp_interval 0.001\n  vrrp_gna_interval 0.002\n  vrrp_strict\n  \
         script_user nobody nogroup\n  enable_script_security\n  vrrp_notify_fifo /run/k.fifo\n  \
         vrrp_notify_fifo_script /bin/reader\n  vrrp_startup_delay 5.5\n}}\n",
        instance("    garp_master_repeat 3\n")
    ));
    let g = &c.global;
    assert_eq!(g.script_user.as_deref(), Some("nobody:nogroup"));
    assert!(g.enable_script_security);
    assert_eq!(g.notify_fifo.as_deref(), Some(Path::new("/run/k.fifo")));
    assert_eq!(g.notify_fifo_script.as_deref(), Some("/bin/reader"));
    assert_eq!(g.startup_delay, Duration::from_millis(5500));
    let i = &c.instances[0];
    assert_eq!(i.version, Version::V3);
    assert!(i.strict_mode);
    assert_eq!(i.garp.master_delay, Duration::from_secs(10));
    assert_eq!(i.garp.master_repeat, 3);
    assert_eq!(i.garp.lower_prio_delay(), Duration::from_secs(3));
    assert_eq!(i.garp.lower_prio_repeat(), 1);
    assert_eq!(i.garp.master_refresh, Some(Duration::from_secs(30)));
    assert_eq!(i.garp.master_refresh_repeat, 2);
    assert_eq!(i.garp.interval, Duration::from_millis(1));
    assert_eq!(i.garp.na_interval, Duration::from_millis(2));
    roundtrip(&c);
}

#[test]
fn instance_keywords() {
    let c = ok(&instance(
        "    state BACKUP\n    priority 90\n    version 3\n    advert_int 0.05\n    nopreempt\n    preempt_delay 0\n    \
         mcast_src_ip 192.0.2.11\n    garp_lower_prio_delay 2\n    garp_lower_prio_repeat 3\n    \
         garp_master_refresh 0\n    garp_interval 0.01\n    use_vmac vrrp.51\n    vmac_xmit_base\n    strict_mode off\n    \
         virtual_ipaddress_excluded {\n        2001:db8::5/64 dev eth1\n        192.0.2.9 brd 192.0.2.255 scope link label eth0:9\n    }\n    \
         virtual_routes {\n        192.0.2.0/24 via 192.0.2.254 dev eth1\n    }\n    \
         virtual_rules {\n        from 192.0.2.0/24 table 1 priority 10\n    }\n",
    ));
    let i = &c.instances[0];
    assert_eq!(i.initial_state, Some(InitialState::Backup));
    assert_eq!((i.priority, i.version), (90, Version::V3));
    assert_eq!(i.advert_interval, Duration::from_millis(50));
    assert!(!i.preempt);
    assert_eq!(i.mcast_src, Some("192.0.2.11".parse().unwrap()));
    assert_eq!(i.garp.lower_prio_delay, Some(Duration::from_secs(2)));
    assert_eq!(i.garp.master_refresh, None);
    assert!(i.use_vmac);
    assert_eq!(i.vmac_interface.as_deref(), Some("vrrp.51"));
    assert!(i.vmac_xmit_base);
    assert_eq!(i.virtual_ips_excluded.len(), 2);
    assert_eq!(
        i.virtual_ips_excluded[1].to_string(),
        "192.0.2.9/32 brd 192.0.2.255 label eth0:9 scope link"
    );
    let routes: Vec<String> = i.virtual_routes.iter().map(|r| r.to_string()).collect();
    assert_eq!(routes, ["192.0.2.0/24 via 192.0.2.254 dev eth1"]);
    let rules: Vec<String> = i.virtual_rules.iter().map(|r| r.to_string()).collect();
    assert_eq!(rules, ["from 192.0.2.0/24 priority 10 table 1"]);
    roundtrip(&c);
}

#[test]
fn ipv6_instances_use_version_3() {
    let c = ok("vrrp_instance V6 {\n  interface eth0\n  virtual_router_id 9\n  virtual_ipaddress {\n    2001:db8::1/64\n  }\n}\n");
    assert_eq!(c.instances[0].version, Version::V3);
}

#[test]
fn tracking() {
    let c = ok(&format!(
        "vrrp_script chk {{\n  script /usr/bin/pgrep -x 'my daemon'\n  interval 2\n  timeout 3\n  weight -20 reverse\n  \
         rise 2\n  fall 4\n  user nobody\n  init_fail\n}}\n\
         track_file flag {{\n  file /run/flag\n  weight 5 reverse\n}}\n\
         vrrp_track_file old {{\n  file /run/old\n}}\n{}",
        instance(
            "    track_interface {\n        eth1\n        eth2 weight -10\n        eth3 weight 5 reverse\n    }\n    \
             track_script {\n        chk\n    }\n    track_file {\n        flag weight -254 noreverse\n        old reverse\n    }\n"
        )
    ));
    let s = &c.vrrp_scripts[0];
    assert_eq!(s.script, "/usr/bin/pgrep -x 'my daemon'");
    assert_eq!(
        (s.interval, s.timeout),
        (Duration::from_secs(2), Some(Duration::from_secs(3)))
    );
    assert_eq!(
        (s.weight, s.weight_reverse, s.rise, s.fall),
        (-20, true, 2, 4)
    );
    assert_eq!((s.user.as_deref(), s.init_fail), (Some("nobody"), true));
    assert_eq!(
        (c.track_files[0].weight, c.track_files[0].reverse),
        (5, true)
    );
    assert_eq!(c.track_files[1].weight, 1);
    let i = &c.instances[0];
    let ti: Vec<(&str, i32, bool)> = i
        .track_interfaces
        .iter()
        .map(|t| (t.name.as_str(), t.weight, t.reverse))
        .collect();
    assert_eq!(
        ti,
        [("eth1", 0, false), ("eth2", -10, false), ("eth3", 5, true)]
    );
    assert_eq!(i.track_scripts[0].weight_override, None);
    assert_eq!(
        (i.track_files[0].weight_override, i.track_files[0].reverse),
        (Some(-254), false)
    );
    assert!(i.track_files[1].reverse);
    roundtrip(&c);
}

#[test]
fn tracking_errors_point_at_keepalived_lines() {
    let e = errors(&instance("    track_script {\n        nosuch\n        chk weight 300\n    }\n    track_interface {\n        eth1 weight -254\n    }\n"));
    assert_eq!(
        e,
        [
            format!("{MAIN}:3:9: error: instance \"VI_1\": track_scripts: no vrrp_script is called \"nosuch\""),
            format!("{MAIN}:4:9: error: instance \"VI_1\": track_scripts: no vrrp_script is called \"chk\""),
            format!("{MAIN}:4:9: error: instance \"VI_1\": track_scripts: \"chk\": weight 300 is out of range -253..=253"),
            format!("{MAIN}:7:9: error: instance \"VI_1\": track_interfaces: \"eth1\": weight -254 is out of range -253..=253"),
        ]
    );
}

#[test]
fn notify_scripts() {
    let c = ok(&format!(
        "{}vrrp_sync_group G {{\n  group {{\n    VI_1\n  }}\n  notify_backup /bin/g\n  notify \"/bin/any g\"\n}}\n",
        instance("    notify_master \"/bin/n master\"\n    notify_backup /bin/b\n    notify_fault /bin/f\n    notify_stop /bin/s\n    notify /bin/any\n")
    ));
    let n = &c.instances[0].notify;
    assert_eq!(n.master.as_deref(), Some("/bin/n master"));
    assert_eq!(
        (n.backup.as_deref(), n.fault.as_deref(), n.stop.as_deref()),
        (Some("/bin/b"), Some("/bin/f"), Some("/bin/s"))
    );
    assert_eq!(n.generic.as_deref(), Some("/bin/any"));
    let g = &c.sync_groups[0];
    assert_eq!(g.instances, ["VI_1"]);
    assert_eq!(
        (g.notify.backup.as_deref(), g.notify.generic.as_deref()),
        (Some("/bin/g"), Some("/bin/any g"))
    );
    roundtrip(&c);
}

#[test]
fn a_per_script_user_is_reported() {
    let w = warnings(&instance("    notify_master /bin/n root\n"));
    assert!(w[0].starts_with(&format!("{MAIN}:2:26: warning: vrrp_instance \"VI_1\": notify_master: \"root\" would be the user")), "{w:#?}");
}

#[test]
fn authentication() {
    let c = ok(&instance(
        "    authentication {\n        auth_type PASS\n        auth_pass secret\n    }\n",
    ));
    assert_eq!(c.instances[0].auth_pass.as_deref(), Some("secret"));
    let w = warnings(&instance(
        "    authentication {\n        auth_type PASS\n        auth_pass 0123456789\n    }\n",
    ));
    assert_eq!(w, [format!("{MAIN}:4:19: warning: vrrp_instance \"VI_1\": authentication: auth_pass is longer than 8 bytes; only \"01234567\" is used, as keepalived does")]);
    let c = ok(&instance(
        "    authentication {\n        auth_type AH\n        auth_pass x\n    }\n",
    ));
    assert_eq!(c.instances[0].auth_pass.as_deref(), Some("x"));
    assert_eq!(c.instances[0].auth_type, baton::config::model::AuthType::Ah);
    assert_eq!(c.instances[0].version, baton::config::model::Version::V2);
    roundtrip(&c);
    // AH over unicast, as keepalived 2.2.7 runs it.
    let c = ok(&instance(
        "    authentication {\n        auth_type AH\n        auth_pass x\n    }\n    unicast_src_ip 192.0.2.2\n    unicast_peer {\n        192.0.2.9\n    }\n",
    ));
    assert_eq!(c.instances[0].auth_type, baton::config::model::AuthType::Ah);
    assert_eq!(
        c.instances[0].unicast_peers,
        ["192.0.2.9".parse::<std::net::IpAddr>().unwrap()]
    );
    roundtrip(&c);
    let e = errors(&instance(
        "    authentication {\n        auth_type XY\n        auth_pass x\n    }\n",
    ));
    assert_eq!(e, [format!("{MAIN}:3:19: error: vrrp_instance \"VI_1\": authentication: auth_type \"XY\" is not PASS or AH")]);
}

// ---------------------------------------------------------------- diagnostics

#[test]
fn unknown_keywords_warn_and_strict_makes_them_errors() {
    let text = format!(
        "global_defs {{\n  routr_id x\n}}\n{}",
        instance("    priorty 100\n")
    );
    let w = warnings(&text);
    assert_eq!(
        w,
        [
            format!("{MAIN}:2:3: warning: global_defs: unknown keyword \"routr_id\" (did you mean \"router_id\"?); ignored"),
            format!("{MAIN}:5:5: warning: vrrp_instance \"VI_1\": unknown keyword \"priorty\" (did you mean \"priority\"?); ignored"),
        ]
    );
    let strict = Options {
        strict: true,
        ..options()
    };
    let e = parse_files(&text, &[], &strict).unwrap_err();
    assert_eq!(e.len(), 2);
    assert!(e.iter().all(|d| d.is_error()));
    assert!(e.to_string().contains(":5:5: error: vrrp_instance"), "{e}");
}

#[test]
fn skipped_blocks_warn_once_each() {
    let w = warnings(&format!(
        "{}virtual_server 10.0.0.1 80 {{\n  real_server 10.0.1.1 80 {{\n    TCP_CHECK {{\n      connect_timeout 3\n    }}\n  }}\n}}\n\
         virtual_server_group VSG {{\n  10.0.0.1 80\n}}\nlinkbeat_interfaces {{\n  10.1.0.0/16 via 10.0.0.1\n}}\n\
         global_defs {{\n  enable_snmp_vrrp\n  enable_dbus\n  notification_email {{\n    a@b\n  }}\n  smtp_server 127.0.0.1\n}}\n",
        instance("    smtp_alert\n    promote_secondaries\n")
    ));
    let expect = [
        (
            ":2:5:",
            "\"smtp_alert\" is not supported by baton; the keyword is ignored",
        ),
        (":3:5:", "\"promote_secondaries\" is not supported by baton"),
        (":10:1:", "\"virtual_server\" is skipped"),
        (":17:1:", "\"virtual_server_group\" is skipped"),
        (":20:1:", "\"linkbeat_interfaces\" is skipped"),
        (
            ":24:3:",
            "global_defs: \"enable_snmp_vrrp\" is not supported",
        ),
        (":25:3:", "global_defs: \"enable_dbus\" is not supported"),
        (
            ":26:3:",
            "global_defs: \"notification_email\" is not supported by baton; the block is skipped",
        ),
        (":29:3:", "global_defs: \"smtp_server\" is not supported"),
    ];
    assert_eq!(w.len(), expect.len(), "{w:#?}");
    for (got, (at, text)) in w.iter().zip(expect) {
        assert!(
            got.contains(at) && got.contains(text),
            "{got} lacks {at} {text}"
        );
    }
}

#[test]
fn bad_values() {
    let w = warnings(&instance("    priority high\n    advert_int -1\n    state LEADER\n    unicast_src_ip 300.1.1.1\n    preempt_delay 5 s\n"));
    let expect = [
        ":2:14: warning: vrrp_instance \"VI_1\": priority: \"high\" is not an integer in 1..=255; ignored",
        ":3:16: warning: vrrp_instance \"VI_1\": advert_int: \"-1\" is not a number of seconds; ignored",
        ":4:11: warning: vrrp_instance \"VI_1\": state: \"LEADER\" is not MASTER or BACKUP; ignored",
        ":5:20: warning: vrrp_instance \"VI_1\": unicast_src_ip: \"300.1.1.1\" is not an IP address; ignored",
        ":6:21: warning: vrrp_instance \"VI_1\": preempt_delay: takes one value; \"s\" and what follows are ignored",
    ];
    assert_eq!(w.len(), expect.len(), "{w:#?}");
    for (got, e) in w.iter().zip(expect) {
        assert_eq!(got, &format!("{MAIN}{e}"));
    }
}

#[test]
fn required_values_are_errors() {
    let e = errors("vrrp_instance VI_1 {\n  virtual_router_id 300\n  virtual_ipaddress {\n    192.0.2.1\n  }\n}\nvrrp_instance {\n}\n");
    assert_eq!(
        e,
        [
            format!("{MAIN}:1:1: error: vrrp_instance \"VI_1\": interface is missing (baton needs the interface even in unicast mode)"),
            format!("{MAIN}:2:21: error: vrrp_instance \"VI_1\": virtual_router_id: \"300\" is not one number in 1..=255"),
            format!("{MAIN}:7:1: error: vrrp_instance: needs a name"),
        ]
    );
}

#[test]
fn checks_use_keepalived_positions() {
    let e = errors(&instance(
        "    advert_int 300\n    unicast_peer {\n        192.0.2.1\n    }\n",
    ));
    assert_eq!(
        e,
        [format!("{MAIN}:2:16: error: instance \"VI_1\": advert_interval: 5m is out of range 1s..=255s (version 2)")]
    );
}

/// What keepalived 2.2.7 starts with a warning and a fallback, baton
/// starts with the same fallback and a warning at the same place; under
/// `--strict` each is an error.
#[test]
fn keepalived_fallbacks_are_warnings_with_the_same_fallback() {
    let vips = |list: &str| {
        format!(
            "vrrp_instance VI_1 {{\n    interface eth0\n    virtual_router_id 51\n    \
             virtual_ipaddress {{\n{list}    }}\n}}\n"
        )
    };
    type Case = (String, &'static str, fn(&Config) -> bool);
    let cases: Vec<Case> = vec![
        (
            vips("        192.0.2.1/24\n        192.0.2.1/24\n"),
            "192.0.2.1 is listed twice: kept once",
            |c| c.instances[0].virtual_ips.len() == 1,
        ),
        (
            vips("        192.0.2.1/24\n        fd00::1/64\n"),
            "address family must match",
            |c| c.instances[0].virtual_ips.len() == 1,
        ),
        (
            vips("        fd00::1/64\n").replace("    interface", "    version 2\n    interface"),
            "VRRP version 2 does not carry IPv6: using version 3",
            |c| c.instances[0].version == baton::config::model::Version::V3,
        ),
        (
            instance("    version 3\n    authentication {\n        auth_type PASS\n        auth_pass x\n    }\n"),
            "VRRP version 3 does not support authentication: ignored",
            |c| c.instances[0].auth_pass.is_none(),
        ),
        (
            instance("    advert_int 1.5\n"),
            "rounded to 2s",
            |c| c.instances[0].advert_interval == Duration::from_secs(2),
        ),
        (
            instance("    state MASTER\n    nopreempt\n"),
            "nopreempt does not work with state MASTER: cleared",
            |c| c.instances[0].preempt,
        ),
        (
            format!(
                "vrrp_script chk {{\n    interval 1\n}}\n{}",
                instance("    track_script {\n        chk\n    }\n")
            ),
            "vrrp_script chk: no script set: removed",
            |c| c.vrrp_scripts.is_empty() && c.instances[0].track_scripts.is_empty(),
        ),
        (
            format!("{}vrrp_sync_group G {{\n    group {{\n    }}\n}}\n", instance("")),
            "sync group G has no virtual router: removed",
            |c| c.sync_groups.is_empty(),
        ),
    ];
    for (text, warning, fallback) in cases {
        let l = loaded(&text);
        let w: Vec<String> = l.warnings.iter().map(|d| d.to_string()).collect();
        assert!(
            w.iter().any(|m| m.contains(warning) && m.starts_with(MAIN)),
            "no warning {warning:?} in {w:#?}\n{text}"
        );
        assert!(fallback(&l.config), "fallback not applied for {warning:?}");
        let strict = Options {
            strict: true,
            ..options()
        };
        assert!(
            parse_files(&text, &[], &strict).is_err(),
            "--strict accepted {warning:?}"
        );
    }
}

// ---------------------------------------------------------------- extensions

#[test]
fn cluster_and_sync_blocks() {
    let c = ok(&format!(
        "{}cluster {{\n  node lb1\n  listen 192.0.2.11:7480\n  peers {{\n    lb2=192.0.2.12:7480\n    lb3=192.0.2.13:7480\n  }}\n  \
         key_file /etc/baton/cluster.key\n  heartbeat_interval 50ms\n  selection order\n  order lb1 lb3 lb2\n}}\n\
         sync haproxy {{\n  path /etc/haproxy/haproxy.cfg\n  on_change \"systemctl reload haproxy\"\n  mode 0640\n  max_size 64KiB\n}}\n\
         sync {{\n  path /etc/other\n}}\n",
        instance("")
    ));
    let cl = c.cluster.as_ref().unwrap();
    assert_eq!(cl.node, "lb1");
    assert_eq!(cl.peers.len(), 2);
    assert_eq!(cl.heartbeat_interval, Duration::from_millis(50));
    assert_eq!(cl.selection, Selection::Order);
    assert_eq!(cl.order, ["lb1", "lb3", "lb2"]);
    assert_eq!(c.sync[0].name, "haproxy");
    assert_eq!(
        c.sync[0].on_change.as_deref(),
        Some("systemctl reload haproxy")
    );
    assert_eq!((c.sync[0].mode, c.sync[0].max_size), (Some(0o640), 65536));
    assert_eq!(c.sync[1].name, "/etc/other");
    roundtrip(&c);
}

#[test]
fn cluster_errors() {
    let e = errors(&format!(
        "{}cluster {{\n  listen nowhere\n  peers lb2=1.2.3.4\n}}\n",
        instance("")
    ));
    assert_eq!(
        e,
        [
            format!("{MAIN}:8:1: error: cluster: key_file is missing"),
            format!("{MAIN}:9:10: error: cluster: listen: \"nowhere\" is not IP:PORT (IPv6: [ADDR]:PORT)"),
            format!("{MAIN}:10:9: error: cluster: peers: \"1.2.3.4\" is not IP:PORT (IPv6: [ADDR]:PORT)"),
        ]
    );
}

// ---------------------------------------------------------------- robustness

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn never_panics(text in "[a-z_{}$@^!#\"'\\\\ \n0-9./=]{0,300}") {
        let _ = parse_files(&text, &[], &options());
    }

    #[test]
    fn never_panics_on_keepalived_shapes(
        lines in proptest::collection::vec(
            prop_oneof![
                Just("vrrp_instance VI {".to_string()),
                Just("}".to_string()),
                Just("{".to_string()),
                Just("$X=${X}".to_string()),
                Just("$M= \\".to_string()),
                Just("@lb1 priority 1".to_string()),
                Just("include *".to_string()),
                Just("virtual_ipaddress { 10.0.0.1 dev".to_string()),
                Just("track_script { chk weight".to_string()),
                Just("\"unterminated".to_string()),
                "[ -~]{0,20}",
            ],
            0..30,
        )
    ) {
        let _ = parse_files(&lines.join("\n"), &[("/etc/keepalived/x", "include x\n")], &options());
    }
}

#[test]
fn check_unicast_src_is_accepted_and_cannot_be_turned_off() {
    let body = "unicast_src_ip 10.0.0.11\n unicast_peer {\n 10.0.0.12\n }\n check_unicast_src\n";
    let c = ok(&instance(body));
    assert_eq!(c.instances[0].unicast_peers.len(), 1);
    let w = warnings(&instance(
        "unicast_peer {\n 10.0.0.12\n }\n check_unicast_src off\n",
    ));
    assert!(
        w.iter().any(|w| w.contains("always checks the source")),
        "{w:?}"
    );
    let g = warnings(&format!(
        "global_defs {{\n vrrp_check_unicast_src off\n}}\n{}",
        instance("unicast_peer {\n 10.0.0.12\n }\n")
    ));
    assert!(
        g.iter().any(|w| w.contains("always checks the source")),
        "{g:?}"
    );
    assert!(
        ok(&format!(
            "global_defs {{\n vrrp_check_unicast_src\n}}\n{}",
            instance("unicast_peer {\n 10.0.0.12\n }\n")
        ))
        .instances[0]
            .unicast_peers
            .len()
            == 1
    );
}

// ---------------------------------------------------------------- bounds

/// `text` with `bad` (`KEYWORD VALUE`, indented) on line `line` is refused
/// with exactly one error, at the value, that reads `message`; with `good`
/// in its place it is accepted.
fn bounded(text: &str, line: usize, bad: &str, good: &str, message: &str) {
    let indent = bad.len() - bad.trim_start().len();
    let col = indent + bad.trim_start().find(' ').expect("KEYWORD VALUE") + 2;
    assert_eq!(
        errors(&text.replace("@LINE@", bad)),
        [format!("{MAIN}:{line}:{col}: error: {message}")],
        "{bad}"
    );
    loaded(&text.replace("@LINE@", good));
}

#[test]
fn garp_durations_and_counts_have_upper_bounds() {
    let text = instance("@LINE@\n");
    let vi = "instance \"VI_1\": garp";
    for (key, bad, good, message) in [
        (
            "garp_master_delay",
            "4295",
            "4294",
            "master_delay: 1h 11m 35s is more than 1h 11m 34s",
        ),
        (
            "garp_lower_prio_delay",
            "18446744073709551615",
            "10",
            "lower_prio_delay: 584542046090years 7months 15days 17h 5m 3s is more than 1h 11m 34s",
        ),
        (
            "garp_master_refresh",
            "86401",
            "86400",
            "master_refresh: 1day 1s is more than 1day",
        ),
        (
            "garp_interval",
            "4294.5",
            "0.001",
            "interval: 1h 11m 34s 500ms is more than 1h 11m 34s",
        ),
        (
            "gna_interval",
            "5000",
            "4294",
            "na_interval: 1h 23m 20s is more than 1h 11m 34s",
        ),
        (
            "garp_master_repeat",
            "1001",
            "1000",
            "master_repeat: 1001 is more than 1000",
        ),
        (
            "garp_master_refresh_repeat",
            "4294967295",
            "1000",
            "master_refresh_repeat: 4294967295 is more than 1000",
        ),
        (
            "garp_lower_prio_repeat",
            "1001",
            "0",
            "lower_prio_repeat: 1001 is more than 1000",
        ),
    ] {
        bounded(
            &text,
            2,
            &format!("    {key} {bad}"),
            &format!("    {key} {good}"),
            &format!("{vi}: {message}"),
        );
    }
}

#[test]
fn global_garp_bounds_are_enforced_on_the_instances_that_take_them() {
    let e = errors(&format!(
        "global_defs {{\n    vrrp_garp_master_repeat 5000\n    vrrp_garp_master_delay 99999\n}}\n{}",
        instance("")
    ));
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(
        e.iter().any(|e| e.starts_with(&format!("{MAIN}:5:"))
            && e.ends_with("instance \"VI_1\": garp: master_repeat: 5000 is more than 1000")),
        "{e:?}"
    );
    assert!(
        e.iter().any(|e| e.ends_with(
            "instance \"VI_1\": garp: master_delay: 1day 3h 46m 39s is more than 1h 11m 34s"
        )),
        "{e:?}"
    );
}

#[test]
fn other_durations_and_counts_have_upper_bounds() {
    let inst = instance("");
    bounded(
        &format!("{}{inst}", "global_defs {\n@LINE@\n}\n"),
        2,
        "    vrrp_startup_delay 4295",
        "    vrrp_startup_delay 4294",
        "global: startup_delay: 1h 11m 35s is more than 1h 11m 34s",
    );
    bounded(
        &instance("@LINE@\n"),
        2,
        "    preempt_delay 1001",
        "    preempt_delay 1000",
        "instance \"VI_1\": preempt_delay: 16m 41s is more than 16m 40s",
    );
    let script = format!("vrrp_script chk {{\n    script /bin/true\n@LINE@\n}}\n{inst}");
    for (key, bad, good, message) in [
        (
            "interval",
            "7200",
            "3600",
            "interval: 2h is more than 1h 11m 34s",
        ),
        (
            "timeout",
            "4295",
            "4294",
            "timeout: 1h 11m 35s is more than 1h 11m 34s",
        ),
        ("rise", "1001", "1000", "rise: 1001 is more than 1000"),
        (
            "fall",
            "4294967295",
            "1000",
            "fall: 4294967295 is more than 1000",
        ),
    ] {
        bounded(
            &script,
            3,
            &format!("    {key} {bad}"),
            &format!("    {key} {good}"),
            &format!("vrrp_script \"chk\": {message}"),
        );
    }
    let file = format!("track_file f {{\n    file /run/f\n@LINE@\n}}\n{inst}");
    for (bad, good, n) in [
        ("    weight 255", "    weight 254", 255),
        ("    weight -2147483648", "    weight -254", -2147483648_i64),
    ] {
        bounded(
            &file,
            3,
            bad,
            good,
            &format!("track_file \"f\": weight: {n} is out of range -254..=254"),
        );
    }
    let cluster = format!(
        "cluster {{\n    node lb1\n    listen 192.0.2.11:7480\n    peers lb2=192.0.2.12:7480\n    \
         key_file /k\n@LINE@\n}}\n{inst}"
    );
    bounded(
        &cluster,
        6,
        "    heartbeat_interval 11",
        "    heartbeat_interval 10s",
        "cluster: heartbeat_interval: 11s is more than 10s",
    );
}

#[test]
fn names_longer_than_messages_carry_are_refused() {
    let a = |n: usize| "a".repeat(n);
    let shown = format!("{}...", a(40));
    let inst = instance("");
    let named = inst.replace("VI_1", "@NAME@");
    loaded(&named.replace("@NAME@", &a(64)));
    assert_eq!(
        errors(&named.replace("@NAME@", &a(65))),
        [format!(
            "{MAIN}:1:15: error: instance \"{shown}\": name: \"{shown}\" is 65 bytes long, \
             at most 64 (it travels in cluster messages)"
        )]
    );
    let cluster = format!(
        "cluster {{\n    node @NODE@\n    listen 192.0.2.11:7480\n    peers @PEER@=192.0.2.12:7480\n    \
         key_file /k\n}}\n{inst}"
    );
    loaded(
        &cluster
            .replace("@NODE@", &a(255))
            .replace("@PEER@", &a(254)),
    );
    assert_eq!(
        errors(&cluster.replace("@NODE@", &a(256)).replace("@PEER@", "lb2")),
        [format!(
            "{MAIN}:2:10: error: cluster: node: \"{shown}\" is 256 bytes long, at most 255 \
             (what a cluster Hello carries)"
        )]
    );
    assert_eq!(
        errors(&cluster.replace("@NODE@", "lb1").replace("@PEER@", &a(256))),
        [format!(
            "{MAIN}:4:11: error: cluster: peers: \"{shown}\" is 256 bytes long, at most 255 \
             (what a cluster Hello carries)"
        )]
    );
    let sync = format!("{}{inst}", "sync @NAME@ {\n    path /etc/a\n}\n");
    loaded(&sync.replace("@NAME@", &a(255)));
    let e = errors(&sync.replace("@NAME@", &a(256)));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with(&format!("{MAIN}:1:"))
            && e[0].ends_with(&format!(
                "sync \"{shown}\": name: \"{shown}\" is 256 bytes long, at most 255 \
                 (it travels in sync messages; give a long path a shorter name)"
            )),
        "{e:?}"
    );
}

#[test]
fn sync_modes_with_setuid_setgid_or_sticky_are_refused() {
    let text = format!(
        "{}{}",
        "sync cfg {\n    path /etc/a\n@LINE@\n}\n",
        instance("")
    );
    for mode in ["4755", "2750", "1777", "06755"] {
        bounded(
            &text,
            3,
            &format!("    mode {mode}"),
            "    mode 0777",
            &format!(
                "sync \"cfg\": mode: {} sets setuid, setgid or sticky; a synced file may have \
                 at most 0777",
                mode.trim_start_matches('0')
            ),
        );
    }
}

/// Every numeric keyword of a keepalived.conf with baton's blocks, each
/// with a valid value.
const NUMERIC_KEYWORDS: &[(&str, &str)] = &[
    ("vrrp_startup_delay", "1"),
    ("vrrp_garp_master_delay", "5"),
    ("vrrp_garp_master_repeat", "5"),
    ("vrrp_garp_lower_prio_delay", "5"),
    ("vrrp_garp_lower_prio_repeat", "5"),
    ("vrrp_garp_master_refresh", "60"),
    ("vrrp_garp_master_refresh_repeat", "1"),
    ("vrrp_garp_interval", "0.001"),
    ("vrrp_gna_interval", "0.001"),
    ("script_interval", "2"),
    ("script_timeout", "1"),
    ("script_weight", "-10"),
    ("rise", "2"),
    ("fall", "3"),
    ("file_weight", "1"),
    ("virtual_router_id", "51"),
    ("priority", "100"),
    ("advert_int", "1"),
    ("preempt_delay", "0"),
    ("track_weight", "5"),
    ("garp_master_delay", "5"),
    ("garp_master_repeat", "5"),
    ("garp_master_refresh", "60"),
    ("garp_master_refresh_repeat", "1"),
    ("garp_interval", "0"),
    ("gna_interval", "0"),
    ("garp_lower_prio_delay", "5"),
    ("garp_lower_prio_repeat", "5"),
    ("heartbeat_interval", "0.1"),
    ("mode", "0640"),
    ("max_size", "4096"),
];

const NUMERIC_TEMPLATE: &str = "global_defs {\n    vrrp_startup_delay @vrrp_startup_delay@\n\
    vrrp_garp_master_delay @vrrp_garp_master_delay@\n\
    vrrp_garp_master_repeat @vrrp_garp_master_repeat@\n\
    vrrp_garp_lower_prio_delay @vrrp_garp_lower_prio_delay@\n\
    vrrp_garp_lower_prio_repeat @vrrp_garp_lower_prio_repeat@\n\
    vrrp_garp_master_refresh @vrrp_garp_master_refresh@\n\
    vrrp_garp_master_refresh_repeat @vrrp_garp_master_refresh_repeat@\n\
    vrrp_garp_interval @vrrp_garp_interval@\nvrrp_gna_interval @vrrp_gna_interval@\n}\n\
    vrrp_script chk {\n    script /bin/true\n    interval @script_interval@\n\
    timeout @script_timeout@\n    weight @script_weight@\n    rise @rise@\n    fall @fall@\n}\n\
    track_file f {\n    file /run/f\n    weight @file_weight@\n}\n\
    vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id @virtual_router_id@\n\
    priority @priority@\n    advert_int @advert_int@\n    preempt_delay @preempt_delay@\n\
    virtual_ipaddress {\n        192.0.2.1/24\n    }\n\
    track_script {\n        chk weight @track_weight@\n    }\n    track_file {\n        f\n    }\n\
    garp_master_delay @garp_master_delay@\n    garp_master_repeat @garp_master_repeat@\n\
    garp_master_refresh @garp_master_refresh@\n\
    garp_master_refresh_repeat @garp_master_refresh_repeat@\n\
    garp_interval @garp_interval@\n    gna_interval @gna_interval@\n\
    garp_lower_prio_delay @garp_lower_prio_delay@\n\
    garp_lower_prio_repeat @garp_lower_prio_repeat@\n}\n\
    cluster {\n    node lb1\n    listen 192.0.2.11:7480\n    peers lb2=192.0.2.12:7480\n\
    key_file /k\n    heartbeat_interval @heartbeat_interval@\n}\n\
    sync cfg {\n    path /etc/a\n    mode @mode@\n    max_size @max_size@\n}\n";

fn numeric_config(key: usize, value: &str) -> String {
    let mut text = NUMERIC_TEMPLATE.to_string();
    for (k, (name, good)) in NUMERIC_KEYWORDS.iter().enumerate() {
        let v = if k == key { value } else { good };
        text = text.replace(&format!("@{name}@"), v);
    }
    text
}

#[test]
fn the_numeric_template_is_valid() {
    assert!(!numeric_config(usize::MAX, "").contains('@'));
    within_bounds(&loaded(&numeric_config(usize::MAX, "")).config);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Huge, negative, fractional and boundary numbers for any numeric
    /// keyword: an error or a config within bounds, never a panic.
    #[test]
    fn huge_numbers_never_panic(
        key in 0..NUMERIC_KEYWORDS.len(),
        n in prop_oneof![
            0u64..3000,
            any::<u64>(),
            Just(u64::MAX),
            Just(u64::from(u32::MAX)),
            Just(4294u64),
            Just(4295u64),
        ],
        form in 0..6usize,
    ) {
        let value = match form {
            0 => n.to_string(),
            1 => format!("-{n}"),
            2 => format!("{n}.999999999999"),
            3 => format!("{n}{n}{n}"),
            4 => format!("{n}ms"),
            _ => format!("0.{n}"),
        };
        if let Ok(l) = parse_files(&numeric_config(key, &value), &[], &options()) {
            within_bounds(&l.config);
        }
    }
}

#[test]
fn vip_lease_is_a_baton_extension_of_vrrp_instance() {
    let lease = |v: &str| ok(&instance(&format!("    vip_lease {v}\n"))).instances[0].vip_lease;
    assert_eq!(
        ok(&instance("")).instances[0].vip_lease,
        None,
        "auto by default"
    );
    assert_eq!(lease("auto"), None);
    assert_eq!(lease("0"), Some(Duration::ZERO));
    assert_eq!(lease("3"), Some(Duration::from_secs(3)));
    assert_eq!(lease("5s"), Some(Duration::from_secs(5)));
    let c = ok(&instance("    vip_lease 4\n"));
    roundtrip(&c);
    let c = ok(&instance("    vip_lease 0\n"));
    roundtrip(&c);
    let e = errors(&instance("    vip_lease 0.5\n"));
    assert_eq!(
        e,
        ["/etc/keepalived/keepalived.conf:2:15: error: instance \"VI_1\": vip_lease: 500ms is not whole \
          seconds (the kernel counts address lifetimes in seconds)"]
    );
}

#[test]
fn metrics_listen_in_global_defs() {
    let body = instance("");
    let c = ok(&format!(
        "global_defs {{\n metrics_listen 127.0.0.1:9650\n}}\n{body}"
    ));
    assert_eq!(
        c.global.metrics_listen,
        Some("127.0.0.1:9650".parse().unwrap())
    );
    roundtrip(&c);
    let e = errors(&format!("global_defs {{\n metrics_listen 9650\n}}\n{body}"));
    assert!(
        e.iter()
            .any(|e| e.contains(":2:") && e.contains("metrics_listen")),
        "{e:?}"
    );
}

#[test]
fn static_blocks_are_read() {
    let c = ok(&format!(
        "static_ipaddress {{\n  192.0.2.50/24 dev eth0 label eth0:st brd + scope link\n}}\n\
         static_routes {{\n  10.1.0.0/16 via 192.0.2.254 table 100\n  blackhole 10.2.0.0/16\n}}\n\
         static_rules {{\n  from 10.1.0.0/16 table 100 priority 100\n}}\n{}",
        instance("")
    ));
    assert_eq!(
        c.static_ips[0].to_string(),
        "192.0.2.50/24 dev eth0 brd 192.0.2.255 label eth0:st scope link"
    );
    let routes: Vec<String> = c.static_routes.iter().map(|r| r.to_string()).collect();
    assert_eq!(
        routes,
        [
            "10.1.0.0/16 via 192.0.2.254 table 100",
            "blackhole 10.2.0.0/16"
        ]
    );
    assert_eq!(c.static_rules[0].priority, Some(100));
    roundtrip(&c);
}

#[test]
fn a_rule_without_priority_gets_keepalived_s_with_its_warning() {
    let w = warnings(&instance(
        "    virtual_rules {\n        from 192.0.2.0/24 table 1\n    }\n",
    ));
    assert!(
        w.iter()
            .any(|w| w.contains(":3:9: warning:") && w.contains("setting to 16384")),
        "{w:#?}"
    );
}

#[test]
fn bad_routes_and_rules_are_errors_at_the_word() {
    let e = errors(&format!(
        "static_routes {{\n  10.1.0.0/16 via 192.0.2.254 mtu 1400\n}}\n{}",
        instance(
            "    virtual_routes {\n        10.9.0.0/24 dev eth0 table fancy\n    }\n    \
             virtual_rules {\n        from 10.0.0.0/8 goto 40 priority 5\n    }\n"
        )
    ));
    let expect = [
        ":2:31: error: static_routes: route option \"mtu\" is not supported by baton",
        ":6:36: error: vrrp_instance \"VI_1\": virtual_routes: table \"fancy\" is not a number",
        ":9:25: error: vrrp_instance \"VI_1\": virtual_rules: rule option \"goto\" is not supported",
    ];
    for x in expect {
        assert!(e.iter().any(|e| e.contains(x)), "{x}\n{e:#?}");
    }
}

#[test]
fn static_addresses_need_their_interface() {
    let e = errors(&format!(
        "static_ipaddress {{\n  192.0.2.50/24\n}}\n{}",
        instance("")
    ));
    assert!(
        e.iter()
            .any(|e| e.contains(":2:3: error: global: static_ips: 192.0.2.50/24: needs dev")),
        "{e:#?}"
    );
}

/// Issue 11, item 6: keywords once warned about, now read into the model.
#[test]
fn item6_keywords_are_read() {
    let c = ok(&format!(
        "global_defs {{\n    vrrp_mcast_group4 224.0.0.33\n    vrrp_mcast_group6 ff02::33\n    \
         net_namespace blue\n    vrrp_skip_check_adv_addr\n    max_auto_priority\n    \
         min_auto_priority_delay 500000\n    vrrp_rt_priority 10\n    vrrp_rlimit_rttime 20000\n}}\n\
         vrrp_script chk {{\n    script /bin/true\n}}\n\
         vrrp_sync_group G {{\n    group {{\n        VI_1\n    }}\n    \
         track_script {{\n        chk weight -20\n    }}\n    track_interface {{\n        eth1\n    }}\n}}\n{}",
        instance("    mcast_src_ip 192.0.2.77\n    dont_track_primary\n    skip_check_adv_addr off\n")
    ));
    let g = &c.global;
    assert_eq!(g.mcast_group4.to_string(), "224.0.0.33");
    assert_eq!(g.mcast_group6.to_string(), "ff02::33");
    assert_eq!(g.net_namespace.as_deref(), Some("blue"));
    assert!(g.skip_check_adv_addr);
    assert_eq!(g.max_auto_priority, 99, "no value: the maximum");
    assert_eq!(g.min_auto_priority_delay, Duration::from_millis(500));
    assert_eq!(g.rt_priority, Some(10));
    assert_eq!(g.rlimit_rttime, Some(20_000));
    let i = &c.instances[0];
    assert_eq!(i.mcast_src, Some("192.0.2.77".parse::<IpAddr>().unwrap()));
    assert!(i.dont_track_primary);
    assert_eq!(i.skip_check_adv_addr, Some(false));
    let s = &c.sync_groups[0];
    assert_eq!(s.track_scripts[0].name, "chk");
    assert_eq!(s.track_scripts[0].weight_override, Some(-20));
    assert_eq!(s.track_interfaces[0].name, "eth1");
    // The TOML written from it reads back the same.
    let back = parse_toml(&to_toml(&c), Path::new("c.toml")).expect("converted TOML reads");
    assert_eq!(back.global, c.global);
    assert_eq!(back.sync_groups, c.sync_groups);
    assert!(back.instances[0].dont_track_primary);
}

#[test]
fn item6_bad_values_are_warned_about_and_ignored() {
    let w = warnings(&format!(
        "global_defs {{\n    vrrp_mcast_group4 10.0.0.1\n    max_auto_priority 100\n}}\n{}",
        instance("")
    ));
    assert!(
        w.iter()
            .any(|m| m.contains("vrrp_mcast_group4: 10.0.0.1 is not an IPv4 multicast")),
        "{w:?}"
    );
    assert!(w.iter().any(|m| m.contains("max_auto_priority")), "{w:?}");
}
