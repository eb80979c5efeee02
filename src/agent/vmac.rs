//! keepalived's `use_vmac`: a macvlan interface with the virtual router's
//! MAC address (RFC 5798 7.3: 00:00:5e:00:01:VRID for IPv4,
//! 00:00:5e:00:02:VRID for IPv6) on top of the instance's interface.
//!
//! This module owns the macvlan's life and the kernel settings it needs.
//! The VIPs live on the macvlan, and the adverts and gratuitous ARPs / NAs
//! leave by it, so hosts and switches only ever see the virtual MAC for
//! the VIPs: after a failover a client's neighbour entry stays right.
//!
//! As keepalived 2.2.7 does, the macvlan is in `private` mode and the
//! adverts are received on it, not on the base interface: the kernel may
//! hand a frame whose source MAC is the macvlan's own (the master's
//! adverts, on every backup) to the macvlan alone, and every other
//! multicast frame reaches the macvlan too. (Seen in tests/netns_vmac.rs:
//! a backup listening on the base interface missed the master's adverts
//! now and then in `private` mode, and always in `bridge` mode, FRR's
//! choice, and elected itself too.) A bridge-mode macvlan itself misses
//! frames carrying its MAC as source: baton on one, a backup at a lower
//! priority than FRR's master, elected itself. FRR's vrrpd, though, which
//! receives on the base interface beside a bridge-mode macvlan, heard
//! every advert of baton's in the FRR interop test (kernel 6.18), which
//! does not square with "always" above; not looked into further.
//!
//! Where baton differs from keepalived 2.2.7:
//! - An interface of the macvlan's name that is a macvlan with the right
//!   MAC on the right base interface is reused (and left in place on exit);
//!   a macvlan with another MAC or base is deleted and created again (as
//!   keepalived does). Anything else of that name is an error: baton never
//!   deletes a physical interface.
//!
//! Kernel settings (`/proc/sys/net/ipv4/conf/IF/...`), as keepalived:
//! - on the macvlan: `arp_ignore=1` (answer ARP only for its own
//!   addresses, the VIPs), `accept_local=1` (hear another local instance),
//!   `rp_filter=0` (it has no address of its own to pass the reverse-path
//!   check), `promote_secondaries=1`; for an IPv4 instance IPv6 is disabled
//!   on it (`disable_ipv6=1`: a backup must send nothing with the virtual
//!   MAC, which would mislead the switches), for an IPv6 instance the kernel
//!   generates no address on it (`addr_gen_mode=1`) and baton adds the base
//!   interface's link-local address (or one made from the base MAC), the
//!   source of the adverts.
//! - on the base interface: `arp_ignore=1` and `arp_filter=1` (it must not
//!   answer ARP for the VIPs with its own MAC), and, beyond keepalived,
//!   `arp_announce=2` (its ARP requests must not name a VIP as sender);
//!   restored on exit.
//! - if `all.rp_filter` is set (the kernel uses the greater of `all` and
//!   the interface's value), every interface's and `default`'s `rp_filter`
//!   is raised to it and `all.rp_filter` is set to 0; restored on exit.

use std::net::{IpAddr, Ipv6Addr};
use std::path::{Path, PathBuf};

use tracing::{info, warn};

use super::garp::GarpSender;
use super::netlink::{LinkInfo, Netlink};

/// The virtual router MAC of `vrid` (RFC 5798 section 7.3).
pub fn virtual_mac(vrid: u8, v6: bool) -> [u8; 6] {
    [0x00, 0x00, 0x5e, 0x00, if v6 { 0x02 } else { 0x01 }, vrid]
}

/// keepalived's default macvlan name.
pub fn default_name(vrid: u8, v6: bool) -> String {
    if v6 {
        format!("vrrp6.{vrid}")
    } else {
        format!("vrrp.{vrid}")
    }
}

/// A link-local address made from a MAC (modified EUI-64), keepalived's
/// choice when the base interface has no link-local address.
pub fn link_local_from_mac(mac: [u8; 6]) -> Ipv6Addr {
    Ipv6Addr::new(
        0xfe80,
        0,
        0,
        0,
        u16::from_be_bytes([mac[0] ^ 0x02, mac[1]]),
        u16::from_be_bytes([mac[2], 0xff]),
        u16::from_be_bytes([0xfe, mac[3]]),
        u16::from_be_bytes([mac[4], mac[5]]),
    )
}

/// Kernel settings changed by baton, with the values to put back on exit.
#[derive(Debug, Default)]
pub struct Sysctls {
    root: PathBuf,
    /// In the order first changed; restored in reverse.
    saved: Vec<(PathBuf, String)>,
}

impl Sysctls {
    pub fn new() -> Self {
        Sysctls {
            root: PathBuf::from("/proc/sys/net"),
            saved: Vec::new(),
        }
    }

    fn path(&self, family: &str, ifname: &str, key: &str) -> PathBuf {
        self.root.join(family).join("conf").join(ifname).join(key)
    }

    fn read(path: &Path) -> Option<String> {
        std::fs::read_to_string(path)
            .ok()
            .map(|s| s.trim().to_string())
    }

    /// Set one value; with `restore`, remember the old one (once: the
    /// first change holds the value the host had).
    fn set(&mut self, path: PathBuf, value: &str, restore: bool) {
        let old = Self::read(&path);
        if old.as_deref() == Some(value) {
            return;
        }
        if let Err(e) = std::fs::write(&path, value) {
            warn!("cannot set {} to {value}: {e}", path.display());
            return;
        }
        if let (true, Some(old)) = (restore, old) {
            if !self.saved.iter().any(|(p, _)| *p == path) {
                self.saved.push((path, old));
            }
        }
    }

    /// keepalived's rule for `all.rp_filter`: the macvlan can only pass
    /// with it at 0, so the interfaces get its value each, and it goes to 0.
    fn clear_all_rp_filter(&mut self) {
        let all_path = self.path("ipv4", "all", "rp_filter");
        let all: u8 = match Self::read(&all_path).and_then(|v| v.parse().ok()) {
            Some(v) if v > 0 => v,
            _ => return,
        };
        let Ok(dir) = std::fs::read_dir(self.root.join("ipv4/conf")) else {
            return;
        };
        let mut names: Vec<String> = dir
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n != "all")
            .collect();
        names.sort();
        for name in names {
            let path = self.path("ipv4", &name, "rp_filter");
            let own: u8 = Self::read(&path).and_then(|v| v.parse().ok()).unwrap_or(0);
            if own < all {
                self.set(path, &all.to_string(), true);
            }
        }
        self.set(all_path, "0", true);
        info!("all.rp_filter was {all}: set on each interface instead, and to 0 (use_vmac)");
    }

    /// Put back every value changed, newest first.
    pub fn restore(&mut self) {
        while let Some((path, value)) = self.saved.pop() {
            if let Err(e) = std::fs::write(&path, &value) {
                // An interface deleted meanwhile has nothing to restore.
                if path.exists() {
                    warn!("cannot restore {} to {value}: {e}", path.display());
                }
            }
        }
    }
}

/// A macvlan an instance runs on.
pub struct Vmac {
    /// The instance it belongs to, for the log.
    pub instance: String,
    pub name: String,
    pub index: u32,
    pub mac: [u8; 6],
    /// Created by this run (deleted on exit), or found in place.
    pub created: bool,
    /// Gratuitous ARPs / NAs leave by the macvlan, with its MAC.
    pub garp: GarpSender,
}

/// What [`open`] needs to know about the instance.
pub struct VmacSpec<'a> {
    pub instance: &'a str,
    pub name: &'a str,
    pub vrid: u8,
    pub v6: bool,
    pub base: &'a LinkInfo,
    /// The base interface's link-local address, if it has one.
    pub base_link_local: Option<Ipv6Addr>,
}

/// Create (or reuse) the macvlan, set the kernel up for it, bring it up.
pub async fn open(nl: &Netlink, sysctls: &mut Sysctls, spec: VmacSpec<'_>) -> Result<Vmac, String> {
    let VmacSpec {
        instance,
        name,
        vrid,
        v6,
        base,
        base_link_local,
    } = spec;
    let mac = virtual_mac(vrid, v6);
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        format!("({instance}) use_vmac {name}: {what}: {e}")
    };
    let existing = nl.link_kind(name).await.map_err(|e| fail("look-up", &e))?;
    let created = match existing {
        Some(k) if !k.macvlan => {
            return Err(format!(
                "({instance}) use_vmac: interface {name} exists and is not a macvlan"
            ))
        }
        Some(k) if k.link.mac == Some(mac) && k.lower == Some(base.index) => {
            info!("({instance}) using the existing VMAC interface {name}");
            false
        }
        Some(k) => {
            info!(
                "({instance}) removing VMAC interface {name}: its MAC or base interface is not this instance's"
            );
            nl.delete_link(k.link.index)
                .await
                .map_err(|e| fail("delete", &e))?;
            true
        }
        None => true,
    };
    if !v6 {
        // Before the macvlan exists, so that it is not raised with the rest.
        sysctls.clear_all_rp_filter();
    }
    if created {
        nl.add_macvlan(name, base.index, mac)
            .await
            .map_err(|e| fail("create", &e))?;
        info!(
            "({instance}) created VMAC interface {name} on {} with MAC {}",
            base.name,
            fmt_mac(mac)
        );
    }
    let link = nl
        .link_by_name(name)
        .await
        .map_err(|e| fail("look-up", &e))?;
    let set_up = set_up(nl, sysctls, name, v6, base, base_link_local, link.index)
        .await
        .map_err(|(what, e)| fail(what, &e));
    let garp = match set_up {
        Ok(garp) => garp,
        Err(e) => {
            // A start that fails leaves no macvlan of its own behind.
            if created {
                if let Err(d) = nl.delete_link(link.index).await {
                    warn!("({instance}) cannot remove VMAC interface {name}: {d}");
                }
            }
            return Err(e);
        }
    };
    Ok(Vmac {
        instance: instance.to_string(),
        name: name.to_string(),
        index: link.index,
        mac,
        created,
        garp,
    })
}

/// Kernel settings, link up, link-local address and packet socket of a
/// macvlan that exists; on error, what failed and why.
async fn set_up(
    nl: &Netlink,
    sysctls: &mut Sysctls,
    name: &str,
    v6: bool,
    base: &LinkInfo,
    base_link_local: Option<Ipv6Addr>,
    index: u32,
) -> Result<GarpSender, (&'static str, String)> {
    for (key, value) in [
        ("arp_ignore", "1"),
        ("accept_local", "1"),
        ("rp_filter", "0"),
        ("promote_secondaries", "1"),
    ] {
        let path = sysctls.path("ipv4", name, key);
        sysctls.set(path, value, false);
    }
    if v6 {
        let path = sysctls.path("ipv6", name, "addr_gen_mode");
        sysctls.set(path, "1", false);
    } else {
        let path = sysctls.path("ipv6", name, "disable_ipv6");
        sysctls.set(path, "1", false);
        // arp_announce=2 is baton's addition to keepalived's pair: replies
        // from a VIP leave by the base interface (its route comes first), and
        // the ARP request that precedes them would otherwise carry the VIP
        // as sender, teaching the neighbours the base MAC for the VIP.
        for (key, value) in [
            ("arp_ignore", "1"),
            ("arp_filter", "1"),
            ("arp_announce", "2"),
        ] {
            let path = sysctls.path("ipv4", &base.name, key);
            sysctls.set(path, value, true);
        }
    }
    nl.set_link_up(index)
        .await
        .map_err(|e| ("set up", e.to_string()))?;
    if v6 {
        let ll = base_link_local
            .or_else(|| base.mac.map(link_local_from_mac))
            .ok_or((
                "link-local address",
                "the base interface has none".to_string(),
            ))?;
        nl.add_address(index, IpAddr::V6(ll), 64, None)
            .await
            .map_err(|e| ("add link-local address", e.to_string()))?;
    }
    GarpSender::new(name).map_err(|e| ("packet socket", e.to_string()))
}

/// Delete the macvlan if this run created it.
pub async fn close(nl: &Netlink, vmac: &Vmac) {
    let instance = &vmac.instance;
    if !vmac.created {
        return;
    }
    match nl.delete_link(vmac.index).await {
        Ok(()) => info!("({instance}) removed VMAC interface {}", vmac.name),
        Err(e) => warn!(
            "({instance}) cannot remove VMAC interface {}: {e}",
            vmac.name
        ),
    }
}

fn fmt_mac(m: [u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_macs_follow_rfc_5798() {
        assert_eq!(virtual_mac(51, false), [0, 0, 0x5e, 0, 1, 51]);
        assert_eq!(virtual_mac(255, true), [0, 0, 0x5e, 0, 2, 255]);
        assert_eq!(default_name(51, false), "vrrp.51");
        assert_eq!(default_name(7, true), "vrrp6.7");
    }

    #[test]
    fn link_local_from_mac_is_modified_eui64() {
        let a = link_local_from_mac([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
        assert_eq!(a, "fe80::5054:ff:fe12:3456".parse::<Ipv6Addr>().unwrap());
    }

    #[test]
    fn sysctls_are_restored_to_the_first_value_seen() {
        let dir = std::env::temp_dir().join(format!("baton-sysctl-{}", std::process::id()));
        let conf = dir.join("ipv4/conf");
        for ifname in ["all", "default", "eth0"] {
            std::fs::create_dir_all(conf.join(ifname)).unwrap();
        }
        std::fs::write(conf.join("all/rp_filter"), "2\n").unwrap();
        std::fs::write(conf.join("default/rp_filter"), "0\n").unwrap();
        std::fs::write(conf.join("eth0/rp_filter"), "1\n").unwrap();
        std::fs::write(conf.join("eth0/arp_ignore"), "0\n").unwrap();
        let mut s = Sysctls {
            root: dir.clone(),
            saved: Vec::new(),
        };
        s.clear_all_rp_filter();
        let p = s.path("ipv4", "eth0", "arp_ignore");
        s.set(p.clone(), "1", true);
        s.set(p, "2", true);
        let read = |f: &str| std::fs::read_to_string(conf.join(f)).unwrap();
        assert_eq!(read("all/rp_filter").trim(), "0");
        assert_eq!(read("default/rp_filter").trim(), "2");
        assert_eq!(read("eth0/rp_filter").trim(), "2");
        assert_eq!(read("eth0/arp_ignore").trim(), "2");
        s.restore();
        assert_eq!(read("all/rp_filter").trim(), "2");
        assert_eq!(read("default/rp_filter").trim(), "0");
        assert_eq!(read("eth0/rp_filter").trim(), "1");
        assert_eq!(read("eth0/arp_ignore").trim(), "0");
        let _ = std::fs::remove_dir_all(dir);
    }
}
