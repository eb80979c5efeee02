//! What `baton check` and `-t` look at on this host besides the file, as
//! keepalived's `-t` does: interfaces that do not exist (here, in this
//! network namespace), scripts that are missing, not executable, or unsafe
//! to run as root under `enable_script_security`, and users that do not
//! exist. Findings carry the position of the key that named them.
//!
//! These are errors for a config test (keepalived's exit status 5); the
//! daemon does not refuse to start on them: an interface may come later
//! (the instance waits in FAULT), a script may be installed later.

use crate::config::diag::{Diagnostics, Origins};
use crate::config::model::Config;

use super::script;

/// Every host finding about `config`.
pub fn check(config: &Config, origins: &Origins) -> Diagnostics {
    let mut d = Diagnostics::new();
    for (i, inst) in config.instances.iter().enumerate() {
        let what = format!("instance \"{}\"", inst.name);
        let p = format!("instance[{i}]");
        if !interface_exists(&inst.interface) {
            d.push(origins.error(
                &format!("{p}.interface"),
                format!(
                    "{what}: interface: {} does not exist on this host",
                    inst.interface
                ),
            ));
        }
        for (k, t) in inst.track_interfaces.iter().enumerate() {
            if !interface_exists(&t.name) {
                d.push(origins.error(
                    &format!("{p}.track_interface[{k}]"),
                    format!(
                        "{what}: track_interface: {} does not exist on this host",
                        t.name
                    ),
                ));
            }
        }
        let n = &inst.notify;
        for (key, cmd) in [
            ("notify_master", &n.master),
            ("notify_backup", &n.backup),
            ("notify_fault", &n.fault),
            ("notify_stop", &n.stop),
            ("notify", &n.generic),
        ] {
            let user = script::script_user_spec(None, &config.global);
            if let Some(e) = cmd
                .as_deref()
                .and_then(|c| unrunnable(c, user.as_deref(), config))
            {
                d.push(origins.error(&format!("{p}.{key}"), format!("{what}: {key}: {e}")));
            }
        }
    }
    for (g, group) in config.sync_groups.iter().enumerate() {
        for (k, t) in group.track_interfaces.iter().enumerate() {
            if !interface_exists(&t.name) {
                d.push(origins.error(
                    &format!("sync_group[{g}].track_interfaces[{k}]"),
                    format!(
                        "sync_group \"{}\": track_interface: {} does not exist on this host",
                        group.name, t.name
                    ),
                ));
            }
        }
    }
    for (k, s) in config.vrrp_scripts.iter().enumerate() {
        let p = format!("vrrp_script[{k}]");
        let what = format!("vrrp_script \"{}\"", s.name);
        if let Some(u) = &s.user {
            user_exists(&mut d, origins, &format!("{p}.user"), &what, u);
        }
        let user = script::script_user_spec(s.user.as_deref(), &config.global);
        if let Some(e) = unrunnable(&s.script, user.as_deref(), config) {
            d.push(origins.error(&format!("{p}.script"), format!("{what}: script: {e}")));
        }
    }
    // The devices that routes and static addresses name, as keepalived's
    // -t finds them.
    let mut devices: Vec<(String, String, &str)> = Vec::new();
    for (i, inst) in config.instances.iter().enumerate() {
        for (k, r) in inst.virtual_routes.iter().enumerate() {
            if let Some(dev) = &r.dev {
                devices.push((
                    format!("instance[{i}].virtual_routes[{k}]"),
                    format!("instance \"{}\": virtual_routes", inst.name),
                    dev,
                ));
            }
        }
    }
    for (k, v) in config.static_ips.iter().enumerate() {
        if let Some(dev) = &v.dev {
            devices.push((
                format!("global.static_ips[{k}]"),
                "global: static_ips".into(),
                dev,
            ));
        }
    }
    for (k, r) in config.static_routes.iter().enumerate() {
        if let Some(dev) = &r.dev {
            devices.push((
                format!("global.static_routes[{k}]"),
                "global: static_routes".into(),
                dev,
            ));
        }
    }
    for (path, what, dev) in devices {
        if !interface_exists(dev) {
            d.push(origins.error(
                &path,
                format!("{what}: dev {dev} does not exist on this host"),
            ));
        }
    }
    if let Some(u) = &config.global.script_user {
        user_exists(&mut d, origins, "global.script_user", "global", u);
    }
    for (k, s) in config.sync.iter().enumerate() {
        let what = format!("sync \"{}\"", s.name);
        if let Some(u) = &s.owner {
            user_exists(&mut d, origins, &format!("sync[{k}].owner"), &what, u);
        }
    }
    d.sort();
    d
}

fn interface_exists(name: &str) -> bool {
    nix::net::if_::if_nametoindex(name).is_ok()
}

fn user_exists(d: &mut Diagnostics, origins: &Origins, path: &str, what: &str, spec: &str) {
    if let Err(e) = script::resolve_user(spec) {
        d.push(origins.error(path, format!("{what}: user: {e}")));
    }
}

/// Why `command` cannot run as `user` (not found, not executable, refused
/// by `enable_script_security`), if it cannot: the agent's own preparation.
fn unrunnable(command: &str, user: Option<&str>, config: &Config) -> Option<String> {
    script::ScriptCommand::prepare(command, user, &config.global).err()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn load(text: &str) -> crate::config::Loaded {
        let opts = crate::config::Options {
            config_id: Some("t".into()),
            ..crate::config::Options::from_host()
        };
        crate::config::keepalived::parse_keepalived(text, Path::new("k.conf"), &opts)
            .expect("a valid file")
    }

    #[test]
    fn missing_interface_script_and_user_are_errors_at_their_keys() {
        let l = load(
            "global_defs {\n  script_user baton-no-such-user\n}\n\
             vrrp_script chk {\n  script \"/nonexistent/check.sh\"\n}\n\
             vrrp_instance VI_1 {\n  interface bt-no-such0\n  virtual_router_id 51\n  \
             priority 100\n  virtual_ipaddress {\n    192.0.2.1/24\n  }\n  \
             track_script {\n    chk\n  }\n}\n",
        );
        let d = check(&l.config, &l.origins);
        let text = d.to_string();
        assert!(d.has_errors(), "{text}");
        assert!(
            text.contains("k.conf:8:") && text.contains("bt-no-such0 does not exist"),
            "{text}"
        );
        assert!(text.contains("/nonexistent/check.sh"), "{text}");
        assert!(text.contains("baton-no-such-user"), "{text}");
    }

    #[test]
    fn missing_route_and_static_devices_are_errors_at_their_lines() {
        let l = load(
            "static_ipaddress {\n  192.0.2.9/24 dev bt-no-such1\n}\n\
             static_routes {\n  10.1.0.0/16 dev bt-no-such2\n}\n\
             vrrp_instance VI_1 {\n  interface lo\n  virtual_router_id 51\n  \
             priority 100\n  virtual_ipaddress {\n    192.0.2.1/24\n  }\n  \
             virtual_routes {\n    10.2.0.0/16 dev bt-no-such3\n    10.3.0.0/16 dev lo\n  }\n}\n",
        );
        let text = check(&l.config, &l.origins).to_string();
        for want in [
            ":2:3: error: global: static_ips: dev bt-no-such1 does not exist",
            ":5:3: error: global: static_routes: dev bt-no-such2 does not exist",
            ":15:5: error: instance \"VI_1\": virtual_routes: dev bt-no-such3 does not exist",
        ] {
            assert!(text.contains(want), "{want}\n{text}");
        }
        assert!(!text.contains(" lo "), "{text}");
    }

    #[test]
    fn a_clean_host_config_has_no_findings() {
        let l = load(
            "vrrp_instance VI_1 {\n  interface lo\n  virtual_router_id 51\n  \
             priority 100\n  virtual_ipaddress {\n    192.0.2.1/24\n  }\n}\n",
        );
        let d = check(&l.config, &l.origins);
        assert!(!d.has_errors(), "{d}");
    }
}
