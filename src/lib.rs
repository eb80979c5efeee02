//! baton: a VRRP/ARP layer-2 failover agent.
//!
//! The crate is split by the rule "IO lives in one place". Start with
//! [`node`]: it is where a baton node's rules live.
//! - [`node`]: one baton node, sans-IO: the VRRP instances, the cluster and
//!   sync cores, sync groups and tracking, and how they talk to each other;
//!   `handle(now, input)` / `poll_effect()` / `next_deadline()`.
//! - [`wire`]: packet and frame formats (VRRP v2/v3, gratuitous ARP,
//!   unsolicited NA, cluster frames); pure.
//! - [`vrrp`]: the RFC 5798 / 3768 state machine of one virtual router and
//!   its receive path; sans-IO.
//! - [`cluster`]: the cluster-channel cores (membership, takeover /
//!   switchover / handoff with epochs, data sync, one authenticated
//!   session); sans-IO.
//! - [`config`]: the typed configuration model, both readers (baton.toml,
//!   keepalived.conf) and validation with file:line:col diagnostics.
//! - [`agent`]: the daemon: the IO shell around one node (sockets, netlink,
//!   the channel's TCP transport, scripts, notify, control socket, signals).
//! - [`sim`]: the deterministic simulator: N node cores on virtual LANs and
//!   a virtual channel, with seeded faults, and simulation testing.
//! - [`lab`]: the network-namespace lab, prober and `baton demo`: a tool for
//!   tests, benches and newcomers, not part of the daemon.

pub mod agent;
pub mod cluster;
pub mod config;
pub mod lab;
pub mod node;
pub mod sim;
pub mod vrrp;
pub mod wire;
