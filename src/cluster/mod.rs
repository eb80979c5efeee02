//! The cluster channel core (sans-IO): membership and heartbeats, the
//! seed's config-change messages (takeover, switchover, handoff), the
//! selection policy, and data sync.
//!
//! Messages travel in authenticated frames ([`crate::wire::frame`]) over a
//! TCP full mesh ([`crate::agent::channel`]); this module only decides.

pub mod change;
mod decide;
pub mod error;
pub mod key;
pub mod membership;
pub mod message;
pub mod sync;

pub use change::{Cluster, ClusterAction, ClusterConfig, LocalInstance, PeerView};
pub use error::OperatorError;
pub use membership::Policy;
pub use message::{InstanceBeat, Message, SyncVersion};
pub use sync::{SyncAction, SyncConfig, SyncCore};
