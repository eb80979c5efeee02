//! Packet formats. Pure: no IO, no clock. Every parser takes untrusted bytes
//! and returns an error (never panics) on anything malformed.

pub mod ah;
pub mod arp;
pub mod frame;
pub mod ip;
pub mod nd;
pub mod vrrp;

#[cfg(test)]
pub(crate) mod testutil;
