//! The daemon: the IO shell around one [`crate::node::Node`] (sockets,
//! netlink, the channel's TCP transport, scripts, notify, control socket,
//! signals). It makes no protocol decision: [`runtime`] turns OS events into
//! node inputs and node effects into syscalls.

pub mod channel;
pub mod control;
pub mod garp;
pub mod hostcheck;
pub mod logging;
pub mod metrics;
pub mod netlink;
pub mod notify;
pub mod on_change;
pub mod runtime;
pub mod sched;
pub mod script;
pub mod sdnotify;
pub mod socket;
pub mod state;
pub mod syncfs;
pub mod timer;
pub mod track;
pub mod vmac;
