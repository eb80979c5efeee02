//! The IO shell: the only module that touches the operating system.

pub mod channel;
pub mod control;
pub mod garp;
pub mod netlink;
pub mod notify;
pub mod runtime;
pub mod script;
pub mod socket;
pub mod state;
pub mod syncfs;
pub mod track;
