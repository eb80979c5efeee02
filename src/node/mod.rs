//! One baton node, sans-IO.

pub mod track;
