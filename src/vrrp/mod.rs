//! The VRRP protocol core (sans-IO).
