//! The lines of an instance's address blocks: `virtual_ipaddress { }` (and
//! `_excluded`), each line one address or more with their options, and
//! `unicast_peer { }`.

use std::net::IpAddr;

use super::reader::Reader;
use super::tree::Stmt;
use super::At;
use crate::config::model::Vip;

/// Options of a virtual address that baton takes (each with a value).
const VIP_OPTIONS: &[&str] = &["dev", "brd", "broadcast", "label", "scope"];
/// Options of a virtual address that baton does not implement.
const VIP_UNSUPPORTED_WITH_VALUE: &[&str] = &["peer", "preferred_lft", "track_group"];
const VIP_UNSUPPORTED_FLAGS: &[&str] = &[
    "home",
    "-nodad",
    "nodad",
    "mngtmpaddr",
    "noprefixroute",
    "autojoin",
    "no_track",
    "use_vmac",
];

impl Reader {
    /// The addresses of one line of a virtual_ipaddress block (usually one;
    /// several when a block is written on one line).
    pub(super) fn vips(&mut self, ctx: &str, key: &str, line: &Stmt) -> Vec<(Vip, At)> {
        let mut out = Vec::new();
        let mut current: Option<(Vec<&str>, At)> = None;
        let mut words = line.words.iter();
        while let Some(w) = words.next() {
            let text = w.text.as_str();
            if VIP_OPTIONS.contains(&text) && current.is_some() {
                if let Some((parts, _)) = current.as_mut() {
                    parts.push(text);
                    if let Some(value) = words.next() {
                        parts.push(&value.text);
                    }
                }
            } else if VIP_UNSUPPORTED_WITH_VALUE.contains(&text) {
                let value = words.next().map_or("", |v| v.text.as_str());
                self.warn(
                    w.at,
                    format!(
                        "{ctx}{key}: option \"{text} {value}\" is not supported by baton; ignored"
                    ),
                );
            } else if VIP_UNSUPPORTED_FLAGS.contains(&text) {
                self.warn(
                    w.at,
                    format!("{ctx}{key}: option \"{text}\" is not supported by baton; ignored"),
                );
            } else {
                if let Some(done) = current.take() {
                    out.extend(self.vip(ctx, key, done));
                }
                current = Some((vec![text], w.at));
            }
        }
        if let Some(done) = current {
            out.extend(self.vip(ctx, key, done));
        }
        out
    }

    fn vip(&mut self, ctx: &str, key: &str, (parts, at): (Vec<&str>, At)) -> Option<(Vip, At)> {
        let text = parts.join(" ");
        match text.parse::<Vip>() {
            Ok(vip) => Some((vip, at)),
            Err(e) => {
                self.warn(at, format!("{ctx}{key}: {e}; the address is ignored"));
                None
            }
        }
    }

    /// The peers of one line of a unicast_peer block.
    pub(super) fn peers(&mut self, ctx: &str, line: &Stmt) -> Vec<(IpAddr, At)> {
        let mut out = Vec::new();
        let mut words = line.words.iter();
        while let Some(w) = words.next() {
            match w.text.as_str() {
                "min_ttl" | "max_ttl" => {
                    words.next();
                    self.warn(
                        w.at,
                        format!(
                            "{ctx}unicast_peer: {} is not supported by baton; ignored",
                            w.text
                        ),
                    );
                }
                text => match text.parse::<IpAddr>() {
                    Ok(a) => out.push((a, w.at)),
                    Err(_) => self.warn(
                        w.at,
                        format!("{ctx}unicast_peer: \"{text}\" is not an IP address; ignored"),
                    ),
                },
            }
        }
        out
    }
}
