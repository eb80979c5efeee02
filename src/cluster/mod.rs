//! The cluster channel core (sans-IO): membership and heartbeats, the
//! seed's config-change messages (takeover, switchover, handoff), the
//! selection policy, data sync, and the session protocol of one channel
//! connection (handshake, keys, sequence numbers, timeouts).
//!
//! Messages travel in authenticated frames ([`crate::wire::frame`]) over a
//! TCP full mesh ([`crate::agent::channel`]); this module only decides.

pub mod change;
pub mod key;
pub mod membership;
pub mod message;
pub mod session;
pub mod sync;

pub use change::{Cluster, ClusterAction, ClusterConfig, LocalInstance, PeerView};
pub use membership::Policy;
pub use message::{InstanceBeat, Message, SyncVersion};
pub use sync::{SyncAction, SyncConfig, SyncCore};
