//! baton: a VRRP/ARP layer-2 failover agent.
//!
//! The crate is split by the rule "IO lives in one place":
//! - [`wire`]: packet formats (VRRP v2/v3, gratuitous ARP, unsolicited NA); pure.
//! - [`vrrp`]: the RFC 5798 / 3768 state machine of one virtual router; sans-IO.
//! - [`config`]: the typed configuration model, its readers and validation.
//! - [`sim`]: a deterministic simulator that drives the same cores on a virtual LAN.
//! - [`agent`]: the IO shell (sockets, netlink, signals, control socket).
//! - [`lab`]: the network-namespace lab, prober and `baton demo`: a tool for
//!   tests, benches and newcomers, not part of the daemon.

pub mod agent;
pub mod cluster;
pub mod config;
pub mod lab;
pub mod sim;
pub mod vrrp;
pub mod wire;
