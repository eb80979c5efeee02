//! The typed configuration model, its readers and validation.
//!
//! [`load`] is the entry point: it reads a file, picks the reader by the
//! file's content ([`detect_format`]), and returns a checked [`Config`] or
//! every problem found, each as `file:line:col: error: message`.
//!
//! Apart from [`load`] / [`load_with`] / [`load_with_options`] (which read
//! the file, and keepalived.conf's includes), [`keepalived::RealFiles`] and
//! [`Defaults::from_host`] (which reads the host name), nothing here does IO.

pub mod check;
pub mod convert;
pub mod diag;
pub mod keepalived;
pub mod model;
pub mod route;
pub mod toml;
mod value;

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

/// How to read a config file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    pub defaults: Defaults,
    /// keepalived.conf's config id, which `@id` / `@^id` lines are compared
    /// with (the CLI's `-i/--config-id`). `None`: `defaults.router_id`, the
    /// short host name with [`Options::from_host`], as keepalived.
    pub config_id: Option<String>,
    /// Warnings are errors (the CLI's `check --strict`).
    pub strict: bool,
    /// keepalived's `-e`/`--all-config`: an `include` that matches no file
    /// is an error, not a warning.
    pub all_config: bool,
}

impl Options {
    /// Defaults from the host; not strict; the config id is the short host
    /// name.
    pub fn from_host() -> Self {
        Options {
            defaults: Defaults::from_host(),
            config_id: None,
            strict: false,
            all_config: false,
        }
    }
}

/// A checked config and the warnings found on the way.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Diagnostics,
    /// Where each part of the configuration was written (for findings
    /// made after loading, such as the host checks of `baton check`).
    pub origins: diag::Origins,
}

/// The formats a config file can be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// baton.toml (see baton.conf(5)).
    Toml,
    /// keepalived.conf (see [`keepalived`]).
    Keepalived,
}

/// keepalived.conf's usual first words.
const KEEPALIVED_OPENERS: &[&str] = &[
    "global_defs",
    "vrrp_instance",
    "vrrp_script",
    "vrrp_sync_group",
    "track_file",
    "vrrp_track_file",
    "virtual_server",
    "virtual_server_group",
    "static_ipaddress",
    "static_routes",
    "static_rules",
    "include",
    "includer",
    "includem",
    "includew",
    "includeb",
    "includea",
    "net_namespace",
    "cluster",
    "sync",
];

/// Which reader a text is for. The first line that is not blank or a
/// comment decides when it can: `[...]` is TOML; a keepalived keyword
/// (`global_defs`, `vrrp_instance X {`, `include`, ...), a `$NAME=`
/// parameter, an `@id` line or a `~SEQ` is keepalived.conf. Otherwise TOML
/// when the text parses as TOML with a `[global]`, `[[instance]]` or
/// `[cluster]` table, or when any line starts with `[` (a TOML file with a
/// syntax error is still TOML, and should get TOML errors; keepalived.conf
/// never starts a line with `[`). Anything else is taken for keepalived.conf.
pub fn detect_format(text: &str) -> Format {
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'));
    if let Some(line) = first {
        if line.starts_with('[') {
            return Format::Toml;
        }
        let word = line
            .split(|c: char| c.is_whitespace() || c == '{')
            .next()
            .unwrap_or("");
        if KEEPALIVED_OPENERS.contains(&word) || line.starts_with(['$', '@', '~']) {
            return Format::Keepalived;
        }
    }
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
    load_with_options(
        path,
        &Options {
            defaults: defaults.clone(),
            ..Options::default()
        },
    )
}

/// Reads, parses and checks the config file at `path`, in either format.
/// The CLI: `load_with_options(path, &Options { config_id: args.config_id,
/// strict: args.strict, ..Options::from_host() })`.
pub fn load_with_options(path: &Path, options: &Options) -> Result<Loaded, Diagnostics> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Diagnostics(vec![Diagnostic::error(
            path,
            Pos::NONE,
            format!("cannot read the config file: {e}"),
        )])
    })?;
    parse_with_options(&text, path, options)
}

/// Parses and checks a config text in whichever format it is in. `file` is
/// only used in diagnostics (and, for keepalived.conf, to find relative
/// includes).
pub fn parse_with(text: &str, file: &Path, defaults: &Defaults) -> Result<Loaded, Diagnostics> {
    parse_with_options(
        text,
        file,
        &Options {
            defaults: defaults.clone(),
            ..Options::default()
        },
    )
}

/// [`parse_with`] with all the options.
pub fn parse_with_options(
    text: &str,
    file: &Path,
    options: &Options,
) -> Result<Loaded, Diagnostics> {
    let result = match detect_format(text) {
        Format::Toml => toml::parse_toml_with(text, file, &options.defaults),
        Format::Keepalived => keepalived::parse_keepalived(text, file, options),
    };
    if options.strict {
        strictly(result)
    } else {
        result
    }
}

/// Every warning made an error.
pub fn strictly(result: Result<Loaded, Diagnostics>) -> Result<Loaded, Diagnostics> {
    let mut diags = match result {
        Ok(loaded) if loaded.warnings.is_empty() => return Ok(loaded),
        Ok(loaded) => loaded.warnings,
        Err(diags) => diags,
    };
    for d in &mut diags.0 {
        d.severity = Severity::Error;
    }
    Err(diags)
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
        assert_eq!(
            detect_format("! Configuration File\n\nglobal_defs {\n}\n"),
            Format::Keepalived
        );
        assert_eq!(
            detect_format("# x\ninclude /etc/keepalived/conf.d/*.conf\n"),
            Format::Keepalived
        );
        assert_eq!(
            detect_format("vrrp_instance VI_1{\n}\n"),
            Format::Keepalived
        );
        assert_eq!(detect_format("$PRIO=100\n"), Format::Keepalived);
        assert_eq!(detect_format("@lb1 $PRIO=100\n"), Format::Keepalived);
        assert_eq!(
            detect_format("# baton\n[global]\nrouter_id = \"a\"\n"),
            Format::Toml
        );
    }
}
