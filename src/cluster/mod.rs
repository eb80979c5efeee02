//! The cluster channel core (sans-IO): membership and heartbeats, the
//! method's config-change messages (takeover, switchover, handoff), the
//! selection policy, data sync, and the session protocol of one channel
//! connection (handshake, keys, sequence numbers, timeouts).
//!
//! Messages travel in authenticated frames ([`crate::wire::frame`]) over a
//! TCP full mesh ([`crate::agent::channel`]); this module only decides.
//!
//! What each file owns:
//! - `change.rs`: [`Cluster`], the state and the flows. Inputs (connection
//!   events, messages, local VRRP state, operator requests, time), epochs
//!   and pins, pending operator requests, building the per-instance view
//!   and applying decisions as [`ClusterAction`]s.
//! - `decide.rs`: the per-instance decisions as pure functions of that view
//!   (master, successor, preempt, split brain, gates, request checks).
//! - `error.rs`: [`OperatorError`], why an operator's request failed.
//! - `membership.rs`: the peer table (liveness, vouching, beats) and the
//!   selection [`Policy`].
//! - `message.rs`: what nodes say to each other ([`Message`]).
//! - `key.rs`: the channel key file.
//! - `sync.rs`: data sync, its own core ([`SyncCore`]).

pub mod change;
mod decide;
pub mod error;
pub mod key;
pub mod membership;
pub mod message;
pub mod session;
pub mod sync;

pub use change::{Cluster, ClusterAction, ClusterConfig, LocalInstance, PeerView};
pub use error::OperatorError;
pub use membership::Policy;
pub use message::{InstanceBeat, Message, SyncVersion};
pub use sync::{SyncAction, SyncConfig, SyncCore};
