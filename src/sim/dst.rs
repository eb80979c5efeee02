//! Deterministic simulation testing.
