//! baton.toml reader and validation, through the public API. Every error
//! test checks the exact `file:line:col` and message.

use std::path::{Path, PathBuf};
use std::time::Duration;

use baton::config::model::{Family, Garp, InitialState, Selection, Version};
use baton::config::toml::{parse_toml, parse_toml_with};
use baton::config::{load, load_with, Config, Defaults, Diagnostics, Severity};

#[path = "support/bounds.rs"]
mod bounds;
use bounds::within_bounds;

fn conf(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("conf")
        .join(name)
}

fn ok(text: &str) -> Config {
    parse_toml(text, Path::new("baton.toml")).unwrap_or_else(|d| panic!("refused:\n{d}"))
}

/// Every error, displayed, in file order.
fn errors(text: &str) -> Vec<String> {
    match parse_toml(text, Path::new("baton.toml")) {
        Ok(c) => panic!("accepted: {c:#?}"),
        Err(d) => {
            assert!(d.has_errors());
            d.errors().map(|d| d.to_string()).collect()
        }
    }
}

fn warnings(text: &str) -> Vec<String> {
    let loaded = parse_toml_with(text, Path::new("baton.toml"), &Defaults::default())
        .unwrap_or_else(|d| panic!("refused:\n{d}"));
    loaded.warnings.iter().map(|d| d.to_string()).collect()
}

/// One instance named VI_1 on eth0; `body` follows the header (line 1), so
/// its first line is line 2.
fn instance(body: &str) -> String {
    format!("[[instance]]\n{body}")
}

// ---------------------------------------------------------------- examples

#[test]
fn examples_load_without_warnings() {
    for name in [
        "baton.toml",
        "minimal.toml",
        "two-instances-v2-v6.toml",
        "route-mode.toml",
    ] {
        let loaded =
            load_with(&conf(name), &Defaults::default()).unwrap_or_else(|d| panic!("{name}:\n{d}"));
        assert!(loaded.warnings.is_empty(), "{name}:\n{}", loaded.warnings);
    }
}

#[test]
fn full_example_values() {
    let c = load(&conf("baton.toml")).unwrap();
    assert_eq!(c.global.router_id, "lb1");
    assert_eq!(c.instances.len(), 2);
    let vi = &c.instances[0];
    assert_eq!((vi.name.as_str(), vi.interface.as_str()), ("VI_1", "eth0"));
    assert_eq!((vi.vrid, vi.priority, vi.version), (51, 150, Version::V3));
    assert_eq!(vi.virtual_ips[1].to_string(), "198.51.100.100/24 dev eth1");
    assert_eq!(vi.unicast_src, Some("192.0.2.11".parse().unwrap()));
    assert_eq!(vi.unicast_peers.len(), 2);
    assert_eq!(vi.track_interfaces[0].name, "eth1");
    assert_eq!(vi.track_interfaces[1].weight, -20);
    assert_eq!(vi.initial_state, Some(InitialState::Backup));
    assert_eq!(vi.garp.master_refresh, Some(Duration::from_secs(60)));
    let cluster = c.cluster.as_ref().unwrap();
    assert_eq!(cluster.node, "lb1");
    assert_eq!(cluster.listen, "192.0.2.11:7480".parse().unwrap());
    assert_eq!(cluster.peers[1].name, "lb3");
    assert_eq!(cluster.selection, Selection::Order);
    assert_eq!(cluster.order, ["lb1", "lb2", "lb3"]);
    assert_eq!(cluster.heartbeat_interval, Duration::from_millis(100));
    assert_eq!(c.sync_groups[0].instances, ["VI_1", "VI_2"]);
    let sync = &c.sync[0];
    assert_eq!(sync.name, "haproxy");
    assert_eq!(sync.mode, Some(0o640));
    assert_eq!(sync.max_size, 1 << 20);
    assert_eq!(sync.on_change.as_deref(), Some("systemctl reload haproxy"));
}

#[test]
fn two_instances_example() {
    let c = load(&conf("two-instances-v2-v6.toml")).unwrap();
    let (v4, v6) = (&c.instances[0], &c.instances[1]);
    assert_eq!((v4.version, v4.family()), (Version::V2, Family::V4));
    assert_eq!(v4.auth_pass.as_deref(), Some("s3cret"));
    assert_eq!((v6.version, v6.family()), (Version::V3, Family::V6));
    assert_eq!(v6.advert_interval, Duration::from_millis(100));
    assert_eq!(v6.virtual_ips[0].prefix_len, 64);
}

// ---------------------------------------------------------------- defaults

#[test]
fn defaults() {
    let c = ok(&instance(
        "name = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\nvirtual_ips = [\"192.0.2.1\"]\n",
    ));
    assert_eq!(c.global.router_id, "localhost");
    assert_eq!(c.global.control_socket, Path::new("/run/baton/baton.sock"));
    assert_eq!(c.global.state_dir, Path::new("/var/lib/baton"));
    assert!(c.cluster.is_none() && c.sync.is_empty() && c.sync_groups.is_empty());
    let i = &c.instances[0];
    assert_eq!(i.priority, 100);
    assert!(!i.address_owner());
    assert_eq!(i.version, Version::V3);
    assert_eq!(i.advert_interval, Duration::from_secs(1));
    assert!(i.preempt);
    assert_eq!(i.preempt_delay, Duration::ZERO);
    assert_eq!(i.virtual_ips[0].prefix_len, 32);
    assert_eq!(i.virtual_ips[0].dev, None);
    assert_eq!((i.unicast_src, i.unicast_peers.len()), (None, 0));
    assert_eq!(i.auth_pass, None);
    assert!(!i.v3_checksum_as_v2);
    assert_eq!(
        i.garp,
        Garp {
            master_delay: Duration::from_secs(5),
            master_repeat: 5,
            master_refresh: None,
            master_refresh_repeat: 1,
            interval: Duration::ZERO,
            na_interval: Duration::ZERO,
            lower_prio_delay: None,
            lower_prio_repeat: None,
        }
    );
    assert!(i.track_interfaces.is_empty());
    assert_eq!(i.initial_state, None);
}

#[test]
fn router_id_default_comes_from_the_caller_and_names_the_node() {
    let text = "[cluster]\nlisten = \"192.0.2.11:7480\"\npeers = [\"lb2=192.0.2.12:7480\"]\n\
                key_file = \"/etc/baton/cluster.key\"\n\
                [[instance]]\nname = \"A\"\ninterface = \"eth0\"\nvrid = 1\n\
                virtual_ips = [\"192.0.2.1\"]\n";
    let defaults = Defaults {
        router_id: "node7".into(),
    };
    let c = parse_toml_with(text, Path::new("b.toml"), &defaults)
        .unwrap()
        .config;
    assert_eq!(c.global.router_id, "node7");
    let cluster = c.cluster.unwrap();
    assert_eq!(cluster.node, "node7");
    assert_eq!(cluster.selection, Selection::Priority);
    assert_eq!(cluster.heartbeat_interval, Duration::from_millis(100));
}

#[test]
fn ipv6_default_prefix_and_owner() {
    let c = ok(&instance(
        "name = \"V6\"\ninterface = \"eth0\"\nvrid = 9\npriority = 255\n\
         virtual_ips = [\"2001:db8::1\", \"2001:db8::2/64\"]\n",
    ));
    let i = &c.instances[0];
    assert_eq!(i.virtual_ips[0].prefix_len, 128);
    assert_eq!(i.family(), Family::V6);
    assert!(i.address_owner());
}

// ---------------------------------------------------------------- durations

#[test]
fn durations() {
    let c = ok(&instance(
        "name = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\nvirtual_ips = [\"192.0.2.1\"]\n\
         advert_interval = \"10ms\"\npreempt_delay = \"1m\"\n\
         [instance.garp]\nmaster_delay = \"1s 500ms\"\nmaster_refresh = \"2m\"\ninterval = \"100ms\"\n",
    ));
    let i = &c.instances[0];
    assert_eq!(i.advert_interval, Duration::from_millis(10));
    assert_eq!(i.preempt_delay, Duration::from_secs(60));
    assert_eq!(i.garp.master_delay, Duration::from_millis(1500));
    assert_eq!(i.garp.master_refresh, Some(Duration::from_secs(120)));
    assert_eq!(i.garp.interval, Duration::from_millis(100));
}

#[test]
fn bad_durations() {
    let text = instance(
        "name = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\nvirtual_ips = [\"192.0.2.1\"]\n\
         advert_interval = 1\npreempt_delay = \"1 fortnight\"\n",
    );
    let e = errors(&text);
    assert_eq!(e.len(), 2, "{e:#?}");
    assert_eq!(
        e[0],
        "baton.toml:6:19: error: instance \"VI_1\": advert_interval: expected a duration \
         string such as \"1s\" or \"100ms\", found integer 1"
    );
    assert!(
        e[1].starts_with(
            "baton.toml:7:17: error: instance \"VI_1\": preempt_delay: \"1 fortnight\" \
             is not a duration"
        ),
        "{}",
        e[1]
    );
}

// ---------------------------------------------------------------- unknown keys, types, syntax

#[test]
fn unknown_keys_are_errors_with_position() {
    let text = "[global]\nrouter_id = \"lb1\"\nrouterid = 1\n\
                [[instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\n\
                virtual_ips = [\"192.0.2.1\"]\n  priorty = 100\nadvert_int = 1\n\
                [instance.garp]\nrepeat = 3\n[globl]\n";
    assert_eq!(
        errors(text),
        [
            "baton.toml:3:1: error: global: unknown key \"routerid\" (did you mean \"router_id\"?)",
            "baton.toml:9:3: error: instance \"VI_1\": unknown key \"priorty\" (did you mean \"priority\"?)",
            "baton.toml:10:1: error: instance \"VI_1\": unknown key \"advert_int\" \
             (keepalived's \"advert_int\" is \"advert_interval\" here)",
            "baton.toml:12:1: error: instance \"VI_1\": garp: unknown key \"repeat\"",
            "baton.toml:13:2: error: unknown section or key \"globl\" (did you mean \"global\"?); \
             the file has [global], [cluster], [[instance]], [[sync]] and [[sync_group]]",
        ]
    );
}

#[test]
fn wrong_types_name_the_key() {
    let text = instance(
        "name = \"VI_1\"\ninterface = \"eth0\"\nvrid = \"51\"\npreempt = \"yes\"\n\
         virtual_ips = \"192.0.2.1\"\ntrack_interfaces = [\"eth1\", 2]\n",
    );
    assert_eq!(
        errors(&text),
        [
            "baton.toml:4:8: error: instance \"VI_1\": vrid: expected an integer, found string \"51\"",
            "baton.toml:5:11: error: instance \"VI_1\": preempt: expected true or false, found string \"yes\"",
            "baton.toml:6:15: error: instance \"VI_1\": virtual_ips: expected an array of strings, \
             found string \"192.0.2.1\"",
            "baton.toml:7:29: error: instance \"VI_1\": track_interfaces: expected a name or a table, found integer 2",
        ]
    );
}

#[test]
fn missing_required_keys_point_at_the_header() {
    let text = "# comment\n\n[[instance]]\nvrid = 1\nvirtual_ips = [\"192.0.2.1\"]\n";
    assert_eq!(
        errors(text),
        [
            "baton.toml:3:1: error: instance #1: missing key \"name\"",
            "baton.toml:3:1: error: instance #1: missing key \"interface\"",
        ]
    );
}

#[test]
fn instance_must_be_an_array_of_tables() {
    let text = "[instance]\nname = \"VI_1\"\n";
    assert_eq!(
        errors(text),
        ["baton.toml:1:1: error: instance: expected an array of tables ([[instance]]), found a table"]
    );
}

#[test]
fn syntax_errors_have_positions() {
    let text = "[global]\nrouter_id = lb1\n";
    let e = errors(text);
    assert!(
        e[0].starts_with("baton.toml:2:13: error: TOML syntax: "),
        "{e:?}"
    );
    let dup = "[global]\nrouter_id = \"a\"\nrouter_id = \"b\"\n";
    assert_eq!(
        errors(dup),
        ["baton.toml:3:1: error: TOML syntax: duplicate key router_id"]
    );
}

// ---------------------------------------------------------------- validation rules

#[test]
fn vrid_range() {
    for (value, col_text) in [("0", "0"), ("256", "256"), ("-1", "-1")] {
        let text = instance(&format!(
            "name = \"VI_1\"\ninterface = \"eth0\"\nvrid = {value}\nvirtual_ips = [\"192.0.2.1\"]\n"
        ));
        assert_eq!(
            errors(&text),
            [format!(
                "baton.toml:4:8: error: instance \"VI_1\": vrid: {col_text} is out of range 1..=255"
            )]
        );
    }
}

#[test]
fn priority_zero_is_refused() {
    let text = instance(
        "name = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\npriority = 0\nvirtual_ips = [\"192.0.2.1\"]\n",
    );
    assert_eq!(
        errors(&text),
        [
            "baton.toml:5:12: error: instance \"VI_1\": priority: 0 is out of range 1..=255 \
          (0 is what a master sends when it gives up)"
        ]
    );
}

#[test]
fn version_must_be_2_or_3() {
    let text = instance(
        "name = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\nversion = 4\nvirtual_ips = [\"192.0.2.1\"]\n",
    );
    assert_eq!(
        errors(&text),
        ["baton.toml:5:11: error: instance \"VI_1\": version: 4 is not 2 or 3"]
    );
}

#[test]
fn duplicate_instance_names() {
    let text = "[[instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = 1\nvirtual_ips = [\"192.0.2.1\"]\n\
                [[instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = 2\nvirtual_ips = [\"192.0.2.2\"]\n";
    assert_eq!(
        errors(text),
        ["baton.toml:7:8: error: instance \"VI_1\": name: already used by another instance (line 1)"]
    );
}

#[test]
fn duplicate_vrid_on_one_interface_and_family() {
    let text = "[[instance]]\nname = \"A\"\ninterface = \"eth0\"\nvrid = 7\nvirtual_ips = [\"192.0.2.1\"]\n\
                [[instance]]\nname = \"B\"\ninterface = \"eth0\"\nvrid = 7\nvirtual_ips = [\"192.0.2.2\"]\n";
    assert_eq!(
        errors(text),
        [
            "baton.toml:9:8: error: instance \"B\": vrid: 7 on eth0 (IPv4) is already used by \
          instance \"A\" (line 1)"
        ]
    );
    // Another family or another interface is another virtual router.
    ok(&text.replace("192.0.2.2", "2001:db8::2"));
    ok(&text.replacen("eth0", "eth1", 1));
}

#[test]
fn v2_refuses_ipv6() {
    let text = instance(
        "name = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\nversion = 2\n\
         virtual_ips = [\"2001:db8::1/64\", \"2001:db8::2/64\"]\n",
    );
    assert_eq!(
        errors(&text),
        [
            "baton.toml:6:16: error: instance \"VI_1\": virtual_ips: 2001:db8::1/64 is IPv6, \
          which version 2 does not carry; use version = 3"
        ]
    );
}

#[test]
fn v2_interval_whole_seconds() {
    let base = "name = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\nversion = 2\nvirtual_ips = [\"192.0.2.1\"]\n";
    let text = instance(&format!("{base}advert_interval = \"1500ms\"\n"));
    assert_eq!(
        errors(&text),
        [
            "baton.toml:7:19: error: instance \"VI_1\": advert_interval: 1s 500ms is not whole \
          seconds (version 2 counts in seconds)"
        ]
    );
    let text = instance(&format!("{base}advert_interval = \"256s\"\n"));
    assert_eq!(
        errors(&text),
        [
            "baton.toml:7:19: error: instance \"VI_1\": advert_interval: 4m 16s is out of range \
          1s..=255s (version 2)"
        ]
    );
    ok(&instance(&format!("{base}advert_interval = \"255s\"\n")));
}

#[test]
fn v3_interval_range_and_granularity() {
    let base = "name = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\nvirtual_ips = [\"192.0.2.1\"]\n";
    let text = instance(&format!("{base}advert_interval = \"15ms\"\n"));
    assert_eq!(
        errors(&text),
        ["baton.toml:6:19: error: instance \"VI_1\": advert_interval: 15ms is not a multiple of 10ms"]
    );
    for too in ["5ms", "41s", "0s"] {
        let text = instance(&format!("{base}advert_interval = \"{too}\"\n"));
        let e = errors(&text);
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with("baton.toml:6:19: error: instance \"VI_1\": advert_interval: ")
                && e[0].ends_with("is out of range 10ms..=40s 950ms (version 3)"),
            "{e:?}"
        );
    }
    ok(&instance(&format!("{base}advert_interval = \"40950ms\"\n")));
}

#[test]
fn auth_pass_rules() {
    let text = instance(
        "name = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\nvirtual_ips = [\"192.0.2.1\"]\n\
         auth_pass = \"secret\"\n",
    );
    assert_eq!(
        errors(&text),
        [
            "baton.toml:6:13: error: instance \"VI_1\": auth_pass: only version 2 has \
          authentication (RFC 5798 removed it); set version = 2 or remove auth_pass"
        ]
    );
    let text = instance(
        "name = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\nversion = 2\nvirtual_ips = [\"192.0.2.1\"]\n\
         auth_pass = \"123456789\"\n",
    );
    assert_eq!(
        errors(&text),
        ["baton.toml:7:13: error: instance \"VI_1\": auth_pass: 9 bytes long, at most 8"]
    );
    ok(&text.replace("123456789", "12345678"));
}

#[test]
fn at_least_one_vip() {
    let text = instance("name = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\nvirtual_ips = []\n");
    assert_eq!(
        errors(&text),
        ["baton.toml:5:15: error: instance \"VI_1\": virtual_ips: at least one virtual address is needed"]
    );
    // Left out, the error is at the instance's header.
    let text = instance("name = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\n");
    assert_eq!(
        errors(&text),
        ["baton.toml:1:1: error: instance \"VI_1\": virtual_ips: at least one virtual address is needed"]
    );
}

#[test]
fn bad_vips() {
    let text = instance(
        "name = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\n\
         virtual_ips = [\"192.0.2.1/24\", \"192.0.2.300\", \"192.0.2.2/40\", \"192.0.2.3 peer x\"]\n",
    );
    assert_eq!(
        errors(&text),
        [
            "baton.toml:5:32: error: instance \"VI_1\": virtual_ips: \"192.0.2.300\" is not an IP address",
            "baton.toml:5:47: error: instance \"VI_1\": virtual_ips: \"192.0.2.2/40\": prefix length \
             \"40\" is not in 1..=32",
            "baton.toml:5:63: error: instance \"VI_1\": virtual_ips: \"192.0.2.3 peer x\": unknown option \"peer\" \
             (ADDRESS[/PREFIX] [dev IFNAME] [brd ADDRESS] [label LABEL] [scope SCOPE])",
        ]
    );
}

#[test]
fn mixed_vip_families() {
    let text = instance(
        "name = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\n\
         virtual_ips = [\"192.0.2.1/24\",\n  \"2001:db8::1/64\"]\n",
    );
    assert_eq!(
        errors(&text),
        [
            "baton.toml:6:3: error: instance \"VI_1\": virtual_ips: 2001:db8::1/64 is IPv6 but \
          192.0.2.1/24 is IPv4: one instance has one address family (use two instances)"
        ]
    );
}

#[test]
fn unicast_family_matches_vips() {
    let text = instance(
        "name = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\nvirtual_ips = [\"192.0.2.1\"]\n\
         unicast_src = \"2001:db8::11\"\nunicast_peers = [\"192.0.2.12\", \"2001:db8::13\"]\n",
    );
    assert_eq!(
        errors(&text),
        [
            "baton.toml:6:15: error: instance \"VI_1\": unicast_src: 2001:db8::11 is IPv6 but \
             the virtual addresses are IPv4",
            "baton.toml:7:32: error: instance \"VI_1\": unicast_peers: 2001:db8::13 is IPv6 but \
             the virtual addresses are IPv4",
        ]
    );
}

const CLUSTER_INSTANCE: &str =
    "[[instance]]\nname = \"A\"\ninterface = \"eth0\"\nvrid = 1\nvirtual_ips = [\"192.0.2.1\"]\n";

#[test]
fn cluster_peers_must_parse() {
    let text = format!(
        "[cluster]\nnode = \"lb1\"\nlisten = \"192.0.2.11:7480\"\nkey_file = \"/k\"\n\
         peers = [\"lb2=192.0.2.12:7480\", \"lb3\", \"lb4=192.0.2.14\"]\n{CLUSTER_INSTANCE}"
    );
    assert_eq!(
        errors(&text),
        [
            "baton.toml:5:33: error: cluster: peers: \"lb3\" is not NAME=IP:PORT",
            "baton.toml:5:40: error: cluster: peers: \"192.0.2.14\" is not IP:PORT \
             (IPv6: [ADDR]:PORT)",
        ]
    );
}

#[test]
fn cluster_peer_names_unique_and_not_this_node() {
    let text = format!(
        "[cluster]\nnode = \"lb1\"\nlisten = \"192.0.2.11:7480\"\nkey_file = \"/k\"\n\
         peers = [\"lb2=192.0.2.12:7480\",\n  \"lb2=192.0.2.13:7480\",\n  \"lb1=192.0.2.14:7480\"]\n\
         {CLUSTER_INSTANCE}"
    );
    assert_eq!(
        errors(&text),
        [
            "baton.toml:6:3: error: cluster: peers: node name \"lb2\" is listed twice",
            "baton.toml:7:3: error: cluster: peers: \"lb1\" is this node (node = \"lb1\"); \
             list only the other nodes",
        ]
    );
}

#[test]
fn cluster_order_names_known_and_heartbeat_floor() {
    let text = format!(
        "[cluster]\nlisten = \"192.0.2.11:7480\"\nkey_file = \"/k\"\nnode = \"lb1\"\n\
         peers = [\"lb2=192.0.2.12:7480\"]\nheartbeat_interval = \"5ms\"\nselection = \"order\"\n\
         order = [\"lb1\", \"lb9\"]\n{CLUSTER_INSTANCE}"
    );
    assert_eq!(
        errors(&text),
        [
            "baton.toml:6:22: error: cluster: heartbeat_interval: 5ms is less than 10ms",
            "baton.toml:8:17: error: cluster: order: \"lb9\" is neither this node nor a peer",
        ]
    );
}

#[test]
fn cluster_selection_order_needs_a_list() {
    let text = format!(
        "[cluster]\nlisten = \"192.0.2.11:7480\"\nkey_file = \"/k\"\n\
         peers = [\"lb2=192.0.2.12:7480\"]\nselection = \"order\"\n{CLUSTER_INSTANCE}"
    );
    assert_eq!(
        errors(&text),
        [
            "baton.toml:5:13: error: cluster: selection: \"order\" needs an order list \
          (order = [\"lb1\", \"lb2\"])"
        ]
    );
    let text = text.replace("\"order\"\n", "\"fastest\"\n");
    assert_eq!(
        errors(&text),
        ["baton.toml:5:13: error: cluster: selection: \"fastest\" is not \"priority\" or \"order\""]
    );
}

#[test]
fn cluster_requires_listen_and_key_file() {
    let text = format!("\n[cluster]\nnode = \"lb1\"\n{CLUSTER_INSTANCE}");
    assert_eq!(
        errors(&text),
        [
            "baton.toml:2:1: error: cluster: missing key \"listen\"",
            "baton.toml:2:1: error: cluster: missing key \"key_file\"",
        ]
    );
}

#[test]
fn sync_names_unique() {
    let text = format!(
        "{CLUSTER_INSTANCE}[[sync]]\nname = \"cfg\"\npath = \"/etc/a\"\n\
         [[sync]]\nname = \"cfg\"\npath = \"/etc/b\"\n"
    );
    assert_eq!(
        errors(&text),
        ["baton.toml:10:8: error: sync \"cfg\": name: already used by another [[sync]] entry"]
    );
}

#[test]
fn sync_values() {
    let text =
        format!("{CLUSTER_INSTANCE}[[sync]]\npath = \"etc/a\"\nmode = 640\nmax_size = \"1MB\"\n");
    assert_eq!(
        errors(&text),
        [
            "baton.toml:7:8: error: sync \"etc/a\": path: \"etc/a\" is not an absolute path",
            "baton.toml:8:8: error: sync \"etc/a\": mode: 640 is not a file mode: write it in \
             octal, as \"0640\" or 0o640, at most 7777",
            "baton.toml:9:12: error: sync \"etc/a\": max_size: \"1MB\" is not a size: bytes as \
             an integer, or a string such as \"64KiB\" or \"1MiB\"",
        ]
    );
    let c = ok(&format!(
        "{CLUSTER_INSTANCE}[[sync]]\npath = \"/etc/a\"\nmode = 0o600\nmax_size = 4096\n"
    ));
    assert_eq!(c.sync[0].name, "/etc/a");
    assert_eq!((c.sync[0].mode, c.sync[0].max_size), (Some(0o600), 4096));
}

#[test]
fn sync_groups_name_known_instances() {
    let text =
        format!("{CLUSTER_INSTANCE}[[sync_group]]\nname = \"G\"\ninstances = [\"A\", \"B\"]\n");
    assert_eq!(
        errors(&text),
        ["baton.toml:8:19: error: sync_group \"G\": instances: no instance is called \"B\""]
    );
}

// ---------------------------------------------------------------- collection, warnings, IO

#[test]
fn all_errors_are_collected_in_file_order() {
    let text = "[global]\nstate_dir = \"var/lib/baton\"\nbogus = 1\n\
                [[instance]]\nname = \"A\"\ninterface = \"eth0\"\nvrid = 300\npriority = 0\n\
                virtual_ips = [\"192.0.2.1\"]\n\
                [[instance]]\nname = \"B\"\ninterface = \"eth0\"\nvrid = 2\nversion = 2\n\
                advert_interval = \"100ms\"\nauth_pass = \"far-too-long\"\n\
                virtual_ips = [\"192.0.2.2\", \"2001:db8::2\"]\n";
    let e = errors(text);
    let positions: Vec<&str> = e
        .iter()
        .map(|m| m.split(": error").next().unwrap())
        .collect();
    assert_eq!(
        positions,
        [
            "baton.toml:2:13",
            "baton.toml:3:1",
            "baton.toml:7:8",
            "baton.toml:8:12",
            "baton.toml:15:19",
            "baton.toml:16:13",
            "baton.toml:17:29",
        ],
        "{e:#?}"
    );
}

#[test]
fn warnings_do_not_refuse() {
    let text = instance(
        "name = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\nvirtual_ips = [\"192.0.2.1\"]\n\
         preempt = false\npreempt_delay = \"10s\"\n",
    );
    assert_eq!(
        warnings(&text),
        ["baton.toml:7:17: warning: instance \"VI_1\": preempt_delay: has no effect with preempt = false"]
    );
    // With an error beside them, warnings come back with the errors.
    let d = parse_toml(
        &text.replace("vrid = 51", "vrid = 0"),
        Path::new("baton.toml"),
    )
    .unwrap_err();
    assert_eq!(d.errors().count(), 1);
    assert_eq!(d.warnings().count(), 1);
    assert_eq!(d.warnings().next().unwrap().severity, Severity::Warning);
}

#[test]
fn missing_file_is_an_error_naming_the_path() {
    let path = Path::new("/nonexistent/baton-test/baton.toml");
    let d = load(path).unwrap_err();
    assert_eq!(d.len(), 1);
    let shown = d.to_string();
    assert!(
        shown.starts_with(
            "/nonexistent/baton-test/baton.toml: error: cannot read the config file: "
        ),
        "{shown}"
    );
}

#[test]
fn keepalived_conf_is_read_by_content() {
    let dir = std::env::temp_dir().join(format!("baton-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("baton.conf");
    std::fs::write(
        &path,
        "vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 7\n    \
         virtual_ipaddress {\n        192.0.2.7\n    }\n}\n",
    )
    .unwrap();
    let result = load(&path);
    std::fs::remove_dir_all(&dir).unwrap();
    let c = result.unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(c.instances[0].vrid, 7);
    assert_eq!(c.instances[0].version, Version::V2);
}

#[test]
fn diagnostics_are_a_std_error() {
    let d: Diagnostics = parse_toml("[global]\nx = 1\n", Path::new("a.toml")).unwrap_err();
    let e: Box<dyn std::error::Error> = Box::new(d);
    assert_eq!(
        e.to_string(),
        "a.toml: warning: no instance: this node runs no virtual router\n\
         a.toml:2:1: error: global: unknown key \"x\""
    );
}

// ---------------------------------------------------------------- robustness

mod never_panics {
    use super::*;
    use proptest::prelude::*;

    const EXAMPLE: &str = include_str!("../conf/baton.toml");

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn on_any_text(text in "\\PC{0,400}") {
            let _ = parse_toml(&text, Path::new("f"));
        }

        #[test]
        fn on_mangled_examples(cut in 0..EXAMPLE.len(), insert in "[\\[\\]=\"., 0-9a-z\n-]{0,12}") {
            let mut text = EXAMPLE.as_bytes()[..cut].to_vec();
            text.extend_from_slice(insert.as_bytes());
            text.extend_from_slice(&EXAMPLE.as_bytes()[cut..]);
            if let Ok(text) = String::from_utf8(text) {
                if let Err(d) = parse_toml(&text, Path::new("f")) {
                    // Every error has a position inside the text.
                    let lines = u32::try_from(text.lines().count()).unwrap() + 1;
                    for e in d.errors() {
                        prop_assert!(e.line >= 1 && e.line <= lines, "{e}");
                        prop_assert!(e.col >= 1, "{e}");
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------- bounds

/// `text` with `bad` at line `line` is refused with exactly one error, at
/// the value of `bad` (`KEY = VALUE`), that reads `message`; with `good` in
/// its place it is accepted.
fn bounded(text: &str, line: usize, bad: &str, good: &str, message: &str) {
    let col = bad.find(" = ").expect("KEY = VALUE") + 4;
    assert_eq!(
        errors(&text.replace("@LINE@", bad)),
        [format!("baton.toml:{line}:{col}: error: {message}")],
        "{bad}"
    );
    ok(&text.replace("@LINE@", good));
}

const BOUND_INSTANCE: &str = "[[instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\n\
                              virtual_ips = [\"192.0.2.1\"]\n";
const BOUND_CLUSTER: &str = "[cluster]\nlisten = \"192.0.2.11:7480\"\nkey_file = \"/k\"\n\
                             node = \"lb1\"\npeers = [\"lb2=192.0.2.12:7480\"]\n";

#[test]
fn garp_durations_and_counts_have_upper_bounds() {
    let garp = format!("{BOUND_INSTANCE}[instance.garp]\n@LINE@\n");
    let vi = "instance \"VI_1\": garp";
    for (bad, good, message) in [
        (
            "master_delay = \"4295s\"",
            "master_delay = \"4294s\"",
            "master_delay: 1h 11m 35s is more than 1h 11m 34s",
        ),
        (
            "lower_prio_delay = \"2h\"",
            "lower_prio_delay = \"1h\"",
            "lower_prio_delay: 2h is more than 1h 11m 34s",
        ),
        (
            "master_refresh = \"25h\"",
            "master_refresh = \"24h\"",
            "master_refresh: 1day 1h is more than 1day",
        ),
        (
            "interval = \"4295s\"",
            "interval = \"4294s\"",
            "interval: 1h 11m 35s is more than 1h 11m 34s",
        ),
        (
            "na_interval = \"100000000y\"",
            "na_interval = \"1s\"",
            "na_interval: 100000000years is more than 1h 11m 34s",
        ),
        (
            "master_repeat = 1001",
            "master_repeat = 1000",
            "master_repeat: 1001 is more than 1000",
        ),
        (
            "master_refresh_repeat = 4294967295",
            "master_refresh_repeat = 1000",
            "master_refresh_repeat: 4294967295 is more than 1000",
        ),
        (
            "lower_prio_repeat = 1001",
            "lower_prio_repeat = 1000",
            "lower_prio_repeat: 1001 is more than 1000",
        ),
    ] {
        bounded(&garp, 7, bad, good, &format!("{vi}: {message}"));
    }
}

#[test]
fn other_durations_and_counts_have_upper_bounds() {
    let preempt = format!("{BOUND_INSTANCE}@LINE@\n");
    bounded(
        &preempt,
        6,
        "preempt_delay = \"1001s\"",
        "preempt_delay = \"1000s\"",
        "instance \"VI_1\": preempt_delay: 16m 41s is more than 16m 40s",
    );
    let global = format!("[global]\n@LINE@\n{BOUND_INSTANCE}");
    bounded(
        &global,
        2,
        "startup_delay = \"4295s\"",
        "startup_delay = \"4294s\"",
        "global: startup_delay: 1h 11m 35s is more than 1h 11m 34s",
    );
    let script = format!(
        "[[vrrp_script]]\nname = \"chk\"\nscript = \"/bin/true\"\n@LINE@\n{BOUND_INSTANCE}"
    );
    for (bad, good, message) in [
        (
            "interval = \"2h\"",
            "interval = \"1h\"",
            "interval: 2h is more than 1h 11m 34s",
        ),
        (
            "timeout = \"4295s\"",
            "timeout = \"4294s\"",
            "timeout: 1h 11m 35s is more than 1h 11m 34s",
        ),
        ("rise = 1001", "rise = 1000", "rise: 1001 is more than 1000"),
        (
            "fall = 4294967295",
            "fall = 1000",
            "fall: 4294967295 is more than 1000",
        ),
    ] {
        bounded(
            &script,
            4,
            bad,
            good,
            &format!("vrrp_script \"chk\": {message}"),
        );
    }
    let file = format!("[[track_file]]\nname = \"f\"\npath = \"/run/f\"\n@LINE@\n{BOUND_INSTANCE}");
    for (bad, good, n) in [
        ("weight = 255", "weight = 254", 255),
        ("weight = -255", "weight = -254", -255),
    ] {
        bounded(
            &file,
            4,
            bad,
            good,
            &format!("track_file \"f\": weight: {n} is out of range -254..=254"),
        );
    }
    let cluster = format!("{BOUND_CLUSTER}@LINE@\n{BOUND_INSTANCE}");
    bounded(
        &cluster,
        6,
        "heartbeat_interval = \"11s\"",
        "heartbeat_interval = \"10s\"",
        "cluster: heartbeat_interval: 11s is more than 10s",
    );
}

#[test]
fn names_longer_than_messages_carry_are_refused() {
    let a = |n: usize| "a".repeat(n);
    let shown = format!("{}...", a(40));
    // Instance names: 64 bytes.
    let text = BOUND_INSTANCE.replace("VI_1", "@NAME@");
    ok(&text.replace("@NAME@", &a(64)));
    assert_eq!(
        errors(&text.replace("@NAME@", &a(65))),
        [format!(
            "baton.toml:2:8: error: instance \"{shown}\": name: \"{shown}\" is 65 bytes long, \
             at most 64 (it travels in cluster messages)"
        )]
    );
    // Node and peer names: what a Hello carries.
    let node = BOUND_CLUSTER.replace("node = \"lb1\"", "node = \"@NAME@\"");
    let node = format!("{node}{BOUND_INSTANCE}");
    ok(&node.replace("@NAME@", &a(255)));
    assert_eq!(
        errors(&node.replace("@NAME@", &a(256))),
        [format!(
            "baton.toml:4:8: error: cluster: node: \"{shown}\" is 256 bytes long, at most 255 \
             (what a cluster Hello carries)"
        )]
    );
    let peer = format!(
        "{}{BOUND_INSTANCE}",
        BOUND_CLUSTER.replace("lb2=", "@NAME@=")
    );
    ok(&peer.replace("@NAME@", &a(255)));
    assert_eq!(
        errors(&peer.replace("@NAME@", &a(256))),
        [format!(
            "baton.toml:5:10: error: cluster: peers: \"{shown}\" is 256 bytes long, at most 255 \
             (what a cluster Hello carries)"
        )]
    );
    // Sync names: 255 bytes, whether given or taken from the path.
    let sync =
        format!("{BOUND_CLUSTER}{BOUND_INSTANCE}[[sync]]\nname = \"@NAME@\"\npath = \"/etc/a\"\n");
    ok(&sync.replace("@NAME@", &a(255)));
    assert_eq!(
        errors(&sync.replace("@NAME@", &a(256))),
        [format!(
            "baton.toml:12:8: error: sync \"{shown}\": name: \"{shown}\" is 256 bytes long, \
             at most 255 (it travels in sync messages; give a long path a shorter name)"
        )]
    );
    let long_path = format!("/{}", a(300));
    let e = errors(&format!(
        "{BOUND_CLUSTER}{BOUND_INSTANCE}[[sync]]\npath = \"{long_path}\"\n"
    ));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("baton.toml:11:1: error: sync \"/aaa")
            && e[0].contains("name: \"/aaa")
            && e[0].contains("is 301 bytes long, at most 255"),
        "{e:?}"
    );
}

#[test]
fn sync_modes_with_setuid_setgid_or_sticky_are_refused() {
    let text = format!(
        "{BOUND_CLUSTER}{BOUND_INSTANCE}[[sync]]\nname = \"cfg\"\npath = \"/etc/a\"\n@LINE@\n"
    );
    for (bad, shown) in [
        ("mode = 0o4755", "4755"),
        ("mode = \"2750\"", "2750"),
        ("mode = 0o1777", "1777"),
        ("mode = \"6755\"", "6755"),
    ] {
        bounded(
            &text,
            14,
            bad,
            "mode = 0o777",
            &format!(
                "sync \"cfg\": mode: {shown} sets setuid, setgid or sticky; a synced file may \
                 have at most 0777"
            ),
        );
    }
}

/// Every numeric key of a full baton.toml, each with a valid value.
const NUMERIC_KEYS: &[(&str, &str)] = &[
    ("startup_delay", "\"1s\""),
    ("script_interval", "\"2s\""),
    ("script_timeout", "\"1s\""),
    ("script_weight", "-10"),
    ("rise", "2"),
    ("fall", "3"),
    ("file_weight", "1"),
    ("vrid", "51"),
    ("priority", "100"),
    ("version", "3"),
    ("advert_interval", "\"1s\""),
    ("preempt_delay", "\"0s\""),
    ("track_weight", "5"),
    ("master_delay", "\"5s\""),
    ("master_repeat", "5"),
    ("master_refresh", "\"60s\""),
    ("master_refresh_repeat", "1"),
    ("garp_interval", "\"0s\""),
    ("na_interval", "\"0s\""),
    ("lower_prio_delay", "\"5s\""),
    ("lower_prio_repeat", "5"),
    ("heartbeat_interval", "\"100ms\""),
    ("mode", "0o640"),
    ("max_size", "4096"),
];

const NUMERIC_TEMPLATE: &str = "[global]\nstartup_delay = @startup_delay@\n\
    [[vrrp_script]]\nname = \"chk\"\nscript = \"/bin/true\"\ninterval = @script_interval@\n\
    timeout = @script_timeout@\nweight = @script_weight@\nrise = @rise@\nfall = @fall@\n\
    [[track_file]]\nname = \"f\"\npath = \"/run/f\"\nweight = @file_weight@\n\
    [[instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = @vrid@\npriority = @priority@\n\
    version = @version@\nadvert_interval = @advert_interval@\npreempt_delay = @preempt_delay@\n\
    virtual_ips = [\"192.0.2.1/24\"]\n\
    track_scripts = [{ name = \"chk\", weight = @track_weight@ }]\ntrack_files = [\"f\"]\n\
    [instance.garp]\nmaster_delay = @master_delay@\nmaster_repeat = @master_repeat@\n\
    master_refresh = @master_refresh@\nmaster_refresh_repeat = @master_refresh_repeat@\n\
    interval = @garp_interval@\nna_interval = @na_interval@\n\
    lower_prio_delay = @lower_prio_delay@\nlower_prio_repeat = @lower_prio_repeat@\n\
    [cluster]\nlisten = \"192.0.2.11:7480\"\nkey_file = \"/k\"\nnode = \"lb1\"\n\
    peers = [\"lb2=192.0.2.12:7480\"]\nheartbeat_interval = @heartbeat_interval@\n\
    [[sync]]\nname = \"cfg\"\npath = \"/etc/a\"\nmode = @mode@\nmax_size = @max_size@\n";

fn numeric_config(key: usize, value: &str) -> String {
    let mut text = NUMERIC_TEMPLATE.to_string();
    for (k, (name, good)) in NUMERIC_KEYS.iter().enumerate() {
        let v = if k == key { value } else { good };
        text = text.replace(&format!("@{name}@"), v);
    }
    text
}

#[test]
fn the_numeric_template_is_valid() {
    assert!(!numeric_config(usize::MAX, "").contains('@'));
    within_bounds(&ok(&numeric_config(usize::MAX, "")));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

    /// Huge, negative and boundary numbers for any numeric key: an error or
    /// a config within bounds, never a panic.
    #[test]
    fn huge_numbers_never_panic(
        key in 0..NUMERIC_KEYS.len(),
        n in proptest::prop_oneof![
            0u64..3000,
            proptest::prelude::any::<u64>(),
            proptest::prelude::Just(u64::MAX),
            proptest::prelude::Just(u64::from(u32::MAX)),
            proptest::prelude::Just(4294u64),
            proptest::prelude::Just(4295u64),
        ],
        form in 0..6usize,
    ) {
        let value = match form {
            0 => n.to_string(),
            1 => format!("-{n}"),
            2 => format!("\"{n}\""),
            3 => format!("\"{n}s\""),
            4 => format!("\"{n}ms\""),
            _ => format!("\"{n}y\""),
        };
        if let Ok(c) = parse_toml(&numeric_config(key, &value), Path::new("baton.toml")) {
            within_bounds(&c);
        }
    }
}

// ---------------------------------------------------------------- vip_lease

#[test]
fn vip_lease_forms_and_bounds() {
    let base = "name = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\nvirtual_ips = [\"192.0.2.1\"]\n";
    let lease = |v: &str| ok(&instance(&format!("{base}vip_lease = {v}\n"))).instances[0].vip_lease;
    assert_eq!(
        ok(&instance(base)).instances[0].vip_lease,
        None,
        "auto by default"
    );
    assert_eq!(lease("\"auto\""), None);
    assert_eq!(lease("0"), Some(Duration::ZERO));
    assert_eq!(lease("\"0s\""), Some(Duration::ZERO));
    assert_eq!(lease("3"), Some(Duration::from_secs(3)));
    assert_eq!(lease("\"1m\""), Some(Duration::from_secs(60)));
    let e = errors(&instance(&format!(
        "{base}vip_lease = \"1500ms\"\n\n[[instance]]\nname = \"VI_2\"\ninterface = \"eth0\"\n\
         vrid = 52\nvirtual_ips = [\"192.0.2.2\"]\nvip_lease = \"2days\"\n"
    )));
    assert_eq!(
        e,
        [
            "baton.toml:6:13: error: instance \"VI_1\": vip_lease: 1s 500ms is not whole \
             seconds (the kernel counts address lifetimes in seconds)",
            "baton.toml:13:13: error: instance \"VI_2\": vip_lease: 2days is more than 1day \
             (0 keeps the VIPs for good)",
        ]
    );
    let e = errors(&instance(&format!("{base}vip_lease = \"soon\"\n")));
    assert!(
        e[0].starts_with(
            "baton.toml:6:13: error: instance \"VI_1\": vip_lease: \"soon\" is not \"auto\" \
             or a duration"
        ),
        "{e:?}"
    );
    let e = errors(&instance(&format!("{base}vip_lease = -1\n")));
    assert!(
        e[0].starts_with("baton.toml:6:13: error: instance \"VI_1\": vip_lease: -1"),
        "{e:?}"
    );
}

#[test]
fn metrics_listen_is_off_by_default_and_an_address_when_set() {
    let base = instance(
        "name = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\nvirtual_ips = [\"10.0.0.100/24\"]\n",
    );
    assert_eq!(ok(&base).global.metrics_listen, None);
    let on = format!("[global]\nmetrics_listen = \"127.0.0.1:9650\"\n{base}");
    assert_eq!(
        ok(&on).global.metrics_listen,
        Some("127.0.0.1:9650".parse().unwrap())
    );
    let e = errors(&format!("[global]\nmetrics_listen = \"localhost\"\n{base}"));
    assert!(
        e[0].contains("baton.toml:2:") && e[0].contains("IP:PORT"),
        "{e:?}"
    );
    let e = errors(&format!("[global]\nmetrics_listen = \"[::1]:0\"\n{base}"));
    assert!(e[0].contains("port 0 is not a port"), "{e:?}");
}

#[test]
fn routes_rules_and_statics_parse() {
    let c = ok(&format!(
        "[global]\nstatic_ips = [\"192.0.2.50/24 dev eth0 brd + label eth0:st\"]\n\
         static_routes = [\"10.1.0.0/16 via 192.0.2.254 table 100\"]\n\
         static_rules = [\"from 10.1.0.0/16 table 100 priority 100\"]\n\n{}",
        instance(
            "name = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\nvirtual_ips = [\"192.0.2.1/24\"]\n\
             virtual_routes = [\"src 192.0.2.1 10.9.0.0/24 via 192.0.2.254 table 100\", \"blackhole 10.8.0.0/16\"]\n\
             virtual_rules = [\"to 10.9.0.0/24 lookup 100 pref 90\"]\n"
        )
    ));
    assert_eq!(c.static_ips[0].brd, Some("192.0.2.255".parse().unwrap()));
    assert_eq!(c.static_routes[0].table, Some(100));
    assert_eq!(c.static_rules[0].priority, Some(100));
    let i = &c.instances[0];
    assert_eq!(i.virtual_routes.len(), 2);
    assert_eq!(i.virtual_rules[0].priority, Some(90));
}

#[test]
fn bad_routes_and_rules_are_errors_at_the_value() {
    let e = errors(&instance(
        "name = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\nvirtual_ips = [\"192.0.2.1/24\"]\n\
         virtual_routes = [\"10.9.0.0/24 via 192.0.2.254 nexthop via 192.0.2.1\"]\n\
         virtual_rules = [\"from 10.0.0.0/8 table 100\"]\n",
    ));
    assert!(
        e.iter().any(|e| e.starts_with("baton.toml:6:19: error:")
            && e.contains("at \"nexthop\": route option \"nexthop\" is not supported")),
        "{e:#?}"
    );
    assert!(
        e.iter()
            .any(|e| e.starts_with("baton.toml:7:18: error:") && e.contains("needs a priority")),
        "{e:#?}"
    );
    let e = errors("[global]\nstatic_ips = [\"192.0.2.50/24\"]\n");
    assert!(
        e.iter()
            .any(|e| e.starts_with("baton.toml:2:15: error:") && e.contains("needs dev")),
        "{e:#?}"
    );
}

/// Issue 11, item 6: the baton.toml keys of the keywords once warned about.
#[test]
fn item6_keys_are_read_and_checked() {
    let c = ok(&format!(
        "[global]\nmcast_group4 = \"224.0.0.33\"\nnet_namespace = \"blue\"\n\
         max_auto_priority = 5\nmin_auto_priority_delay = \"200ms\"\n\n{}\
         dont_track_primary = true\nskip_check_adv_addr = true\n\n\
         [[vrrp_script]]\nname = \"chk\"\nscript = \"/bin/true\"\n\n\
         [[sync_group]]\nname = \"G\"\ninstances = [\"VI_1\"]\ntrack_scripts = [\"chk\"]\n",
        instance(
            "name = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\nvirtual_ips = [\"192.0.2.1/24\"]\n"
        )
    ));
    assert_eq!(c.global.mcast_group4.to_string(), "224.0.0.33");
    assert_eq!(c.global.net_namespace.as_deref(), Some("blue"));
    assert_eq!(c.global.max_auto_priority, 5);
    assert_eq!(c.global.min_auto_priority_delay, Duration::from_millis(200));
    assert!(c.instances[0].dont_track_primary);
    assert_eq!(c.instances[0].skip_check_adv_addr, Some(true));
    assert_eq!(c.sync_groups[0].track_scripts[0].name, "chk");

    let e = errors(&format!(
        "[global]\nmcast_group4 = \"10.0.0.1\"\nmax_auto_priority = 100\n\n{}\
         [[sync_group]]\nname = \"G\"\ninstances = [\"VI_1\"]\ntrack_scripts = [\"nope\"]\n",
        instance(
            "name = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\nvirtual_ips = [\"192.0.2.1/24\"]\n"
        )
    ));
    assert!(
        e.iter()
            .any(|m| m.contains("mcast_group4: 10.0.0.1 is not an IPv4 multicast")),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|m| m.contains("max_auto_priority: 100 is out of range")),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|m| m.contains("track_scripts: no vrrp_script is called \"nope\"")),
        "{e:?}"
    );
}

// ---------------------------------------------------------------- route mode

const CLUSTER: &str =
    "[cluster]\nlisten = \"10.77.1.2:7480\"\nkey_file = \"/k\"\npeers = [\"b=10.77.2.2:7480\"]\n";

#[test]
fn route_mode_defaults_to_lo_and_has_no_vrid() {
    let c = ok(&format!(
        "{CLUSTER}[[instance]]\nname = \"RT\"\nmode = \"route\"\nvirtual_ips = [\"10.99.0.100/32\"]\n"
    ));
    let i = &c.instances[0];
    assert!(i.is_route());
    assert_eq!((i.interface.as_str(), i.vrid), ("lo", 0));
    let c = ok(&format!(
        "{CLUSTER}[[instance]]\nname = \"RT\"\nmode = \"route\"\ninterface = \"dummy0\"\nvirtual_ips = [\"10.99.0.100\"]\n"
    ));
    assert_eq!(c.instances[0].interface, "dummy0");
    assert_eq!(c.instances[0].virtual_ips[0].prefix_len, 32);
}

#[test]
fn route_mode_refuses_every_vrrp_key_where_it_stands() {
    let e = errors(&format!(
        "{CLUSTER}[[instance]]\nname = \"RT\"\nmode = \"route\"\nvrid = 7\nvirtual_ips = [\"10.99.0.100/32\"]\nunicast_peers = [\"10.0.0.1\"]\ngarp = {{ master_repeat = 1 }}\n"
    ));
    let why = "route mode sends no VRRP packets (the cluster channel elects the holder); \
               remove it or use mode = \"arp\"";
    assert_eq!(
        e,
        [
            format!("baton.toml:8:8: error: instance \"RT\": vrid: {why}"),
            format!("baton.toml:10:17: error: instance \"RT\": unicast_peers: {why}"),
            format!("baton.toml:11:8: error: instance \"RT\": garp: {why}"),
        ]
    );
}

#[test]
fn route_mode_needs_the_cluster_and_a_known_mode() {
    assert_eq!(
        errors(
            "[[instance]]\nname = \"RT\"\nmode = \"route\"\nvirtual_ips = [\"10.99.0.100/32\"]\n"
        ),
        [
            "baton.toml:3:8: error: instance \"RT\": mode: route mode needs [cluster]: the \
          cluster channel elects the holder (there are no VRRP packets)"
        ]
    );
    assert_eq!(
        errors(&instance(
            "name = \"VI_1\"\ninterface = \"eth0\"\nvrid = 1\nmode = \"bgp\"\nvirtual_ips = [\"10.0.0.1/24\"]\n"
        )),
        ["baton.toml:5:8: error: instance \"VI_1\": mode: \"bgp\" is not \"arp\" or \"route\""]
    );
}

#[test]
fn route_mode_warns_of_a_vip_wider_than_a_host() {
    let w = warnings(&format!(
        "{CLUSTER}[[instance]]\nname = \"RT\"\nmode = \"route\"\nvirtual_ips = [\"10.99.0.100/24\"]\n"
    ));
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].starts_with(
            "baton.toml:8:16: warning: instance \"RT\": virtual_ips: 10.99.0.100/24 in route mode"
        ),
        "{w:?}"
    );
}
