//! The typed configuration model, its readers and validation.
//!
//! [`load`] is the entry point: it reads a file, picks the reader by the
//! file's content ([`detect_format`]), and returns a checked [`Config`] or
//! every problem found, each as `file:line:col: error: message`.
//!
//! Apart from [`load`] / [`load_with`] (which read the file) and
//! [`Defaults::from_host`] (which reads the host name), nothing here does IO.

pub mod check;
pub mod diag;
pub mod model;
pub mod toml;

use std::path::Path;

pub use diag::{Diagnostic, Diagnostics, Origins, Pos, Severity};
pub use model::Config;

/// Values a reader uses for what the file leaves out and only the host knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Defaults {
    /// `global.router_id` (and so `cluster.node`) when not set.
    pub router_id: String,
}

impl Default for Defaults {
    /// `router_id = "localhost"`: for tests and tools that must not depend
    /// on the host.
    fn default() -> Self {
        Defaults {
            router_id: "localhost".to_string(),
        }
    }
}

impl Defaults {
    /// The short host name (up to the first dot) from
    /// /proc/sys/kernel/hostname, as keepalived's default router_id;
    /// "localhost" when it cannot be read.
    pub fn from_host() -> Self {
        let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        Defaults {
            router_id: short_hostname(&name).unwrap_or("localhost").to_string(),
        }
    }
}

fn short_hostname(name: &str) -> Option<&str> {
    let short = name.trim().split('.').next()?;
    (!short.is_empty()).then_some(short)
}

/// A checked config and the warnings found on the way.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Diagnostics,
}

/// The formats a config file can be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// baton.toml (see baton.conf(5)).
    Toml,
    /// keepalived.conf. No reader yet: [`load`] refuses it with a diagnostic.
    Keepalived,
}

/// Which reader a text is for. TOML when it parses as TOML with a
/// `[global]`, `[[instance]]` or `[cluster]` table, or when any line starts
/// with `[` (a TOML file with a syntax error is still TOML, and should get
/// TOML errors; keepalived.conf never starts a line with `[`). Anything
/// else is taken for keepalived.conf.
pub fn detect_format(text: &str) -> Format {
    let (doc, errors) = ::toml::de::DeTable::parse_recoverable(text);
    let has_baton_table = ["global", "instance", "cluster"]
        .iter()
        .any(|key| doc.get_ref().get(*key).is_some());
    if errors.is_empty() && has_baton_table {
        return Format::Toml;
    }
    if text.lines().any(|line| line.trim_start().starts_with('[')) {
        Format::Toml
    } else {
        Format::Keepalived
    }
}

/// Reads, parses and checks the config file at `path`. The router id
/// defaults to the short host name.
pub fn load(path: &Path) -> Result<Config, Diagnostics> {
    load_with(path, &Defaults::from_host()).map(|loaded| loaded.config)
}

/// [`load`] with the given defaults, keeping the warnings.
pub fn load_with(path: &Path, defaults: &Defaults) -> Result<Loaded, Diagnostics> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Diagnostics(vec![Diagnostic::error(
            path,
            Pos::NONE,
            format!("cannot read the config file: {e}"),
        )])
    })?;
    parse_with(&text, path, defaults)
}

/// Parses and checks a config text in whichever format it is in. `file` is
/// only used in diagnostics.
pub fn parse_with(text: &str, file: &Path, defaults: &Defaults) -> Result<Loaded, Diagnostics> {
    match detect_format(text) {
        Format::Toml => toml::parse_toml_with(text, file, defaults),
        // The keepalived.conf reader plugs in here.
        Format::Keepalived => Err(Diagnostics(vec![Diagnostic::error(
            file,
            Pos::new(1, 1),
            "this is not baton TOML (no [global], [[instance]] or [cluster] table); \
             reading keepalived.conf is not supported yet",
        )])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_hostnames() {
        assert_eq!(short_hostname("lb1.example.net\n"), Some("lb1"));
        assert_eq!(short_hostname("lb1\n"), Some("lb1"));
        assert_eq!(short_hostname("\n"), None);
        assert_eq!(short_hostname(".x"), None);
    }

    #[test]
    fn formats() {
        assert_eq!(detect_format("[global]\nrouter_id = \"a\"\n"), Format::Toml);
        assert_eq!(detect_format("[[instance]]\nname = \n"), Format::Toml);
        assert_eq!(
            detect_format("vrrp_instance VI_1 {\n  state MASTER\n}\n"),
            Format::Keepalived
        );
        assert_eq!(detect_format(""), Format::Keepalived);
    }
}
