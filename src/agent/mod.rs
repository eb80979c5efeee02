//! The IO shell: the only module that touches the operating system.

pub mod socket;
