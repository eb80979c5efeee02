//! The IO shell: the only module that touches the operating system.

pub mod garp;
pub mod netlink;
pub mod socket;
