//! Deterministic simulator: VRRP cores on a virtual LAN with virtual time.
