//! `baton status --json` against its published schema,
//! dist/status.schema.json: a node of the simulator with the cluster
//! channel and data sync (every section filled), one without the channel,
//! and proof that the checker refuses a document that strays from the
//! schema. tests/netns_metrics.rs checks the real daemon's output too.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use baton::cluster::Policy;
use baton::node::status::STATUS_SCHEMA_VERSION;
use baton::sim::{instance, Sim};
use serde_json::Value;

#[path = "support/schema.rs"]
mod schema;

fn schema() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/dist/status.schema.json"
    ))
    .expect("dist/status.schema.json");
    serde_json::from_str(&text).expect("the schema is JSON")
}

fn lab(cluster: bool) -> Sim {
    let mut sim = Sim::new(7);
    for (i, p) in [200u8, 150].iter().enumerate() {
        let mut c = instance("VI_1", 51, *p, &[IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100))]);
        c.advert_interval = Duration::from_millis(100);
        sim.add_node(&format!("n{i}"), i as u8 + 1, vec![c]);
    }
    if cluster {
        sim.enable_cluster(Duration::from_millis(100), Policy::Priority);
        sim.enable_sync("VI_1", &[("cfg", 1 << 20)]);
    }
    sim.start_all();
    sim.run_for(Duration::from_secs(3));
    if cluster {
        sim.edit_file(0, "cfg", b"backend a\n");
        sim.run_for(Duration::from_millis(500));
    }
    sim
}

fn status_json(sim: &Sim, node: usize) -> Value {
    let status = sim.node(node).expect("node").status(sim.now());
    serde_json::to_value(status).expect("status serializes")
}

#[test]
fn a_cluster_node_with_sync_follows_the_schema() {
    let schema = schema();
    assert_eq!(
        schema["properties"]["schema_version"]["const"],
        STATUS_SCHEMA_VERSION
    );
    let sim = lab(true);
    for node in 0..2 {
        let doc = status_json(&sim, node);
        // Every section is present and filled, so no field goes unchecked.
        assert!(
            !doc["cluster"]["peers"].as_array().unwrap().is_empty(),
            "{doc}"
        );
        assert!(
            !doc["cluster"]["sync"].as_array().unwrap().is_empty(),
            "{doc}"
        );
        assert!(doc["instances"][0]["state"].is_string(), "{doc}");
        let errors = schema::check(&schema, &doc);
        assert!(
            errors.is_empty(),
            "n{node}:\n{}\n{doc:#}",
            errors.join("\n")
        );
    }
}

#[test]
fn a_plain_vrrp_node_follows_the_schema() {
    let schema = schema();
    let doc = status_json(&lab(false), 0);
    assert!(doc["cluster"].is_null(), "{doc}");
    let errors = schema::check(&schema, &doc);
    assert!(errors.is_empty(), "{}\n{doc:#}", errors.join("\n"));
}

/// The checker is strict: an unknown field, a missing one, a wrong type and
/// a state outside the enum are each reported.
#[test]
fn the_checker_refuses_what_the_schema_does_not_say() {
    let schema = schema();
    let good = status_json(&lab(true), 0);
    let mut cases: Vec<(&str, Value)> = Vec::new();
    let mut extra = good.clone();
    extra["instances"][0]["surprise"] = Value::from(1);
    cases.push(("surprise", extra));
    let mut missing = good.clone();
    missing["cluster"]["peers"][0]
        .as_object_mut()
        .unwrap()
        .remove("rtt_us");
    cases.push(("rtt_us", missing));
    let mut wrong = good.clone();
    wrong["pid"] = Value::from("1234");
    cases.push(("pid", wrong));
    let mut state = good.clone();
    state["instances"][0]["state"] = Value::from("LEADER");
    cases.push(("state", state));
    let mut version = good.clone();
    version["schema_version"] = Value::from(2);
    cases.push(("schema_version", version));
    for (what, doc) in cases {
        let errors = schema::check(&schema, &doc);
        assert!(
            errors.iter().any(|e| e.contains(what)),
            "{what} not reported: {errors:?}"
        );
    }
}

/// A route-mode instance (no VRRP: vrid 0, no local address) beside an
/// ARP one follows the schema too.
#[test]
fn a_route_mode_node_follows_the_schema() {
    let schema = schema();
    let mut sim = Sim::new(8);
    for (i, p) in [200u8, 150].iter().enumerate() {
        let mut arp = instance("VI_1", 51, *p, &[IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100))]);
        arp.advert_interval = Duration::from_millis(100);
        let mut route = baton::config::model::Instance::new_route("RT");
        route.priority = *p;
        route.virtual_ips =
            instance("x", 1, 1, &[IpAddr::V4(Ipv4Addr::new(10, 99, 0, 1))]).virtual_ips;
        sim.add_node(&format!("n{i}"), i as u8 + 1, vec![arp, route]);
    }
    sim.enable_cluster(Duration::from_millis(100), Policy::Priority);
    sim.start_all();
    sim.run_for(Duration::from_secs(3));
    let doc = status_json(&sim, 0);
    assert_eq!(doc["instances"][1]["mode"], "route", "{doc}");
    assert_eq!(doc["instances"][1]["vrid"], 0, "{doc}");
    assert_eq!(doc["instances"][1]["holds_vips"], true, "{doc}");
    assert_eq!(doc["instances"][0]["mode"], "arp", "{doc}");
    let errors = schema::check(&schema, &doc);
    assert!(errors.is_empty(), "{}\n{doc:#}", errors.join("\n"));
}
