//! Routes and policy rules in keepalived's syntax (`virtual_routes`,
//! `virtual_rules`, `static_routes`, `static_rules`), parsed into a typed
//! model the agent turns into rtnetlink requests.
//!
//! The syntax is `ip route add` / `ip rule add`'s, as keepalived.conf(5)
//! gives it. baton takes the common subset and refuses the rest by name,
//! pointing at the word (keepalived's own reader knows more options:
//! nexthop groups, metrics like mtu or rtt, realms, uid ranges...):
//!
//! ```text
//! route: [blackhole|unreachable|prohibit|throw|unicast] [src ADDR] [to] PREFIX
//!        [via|gw ADDR] [dev IF] [scope S] [table T] [metric|priority|preference N]
//!        [protocol|proto P] [onlink] [inet|inet6] [no_track]
//! rule:  [from PREFIX|all] [to PREFIX|all] [table|lookup T]
//!        [priority|preference|pref N] [iif IF] [oif IF] [fwmark N[/MASK]]
//!        [blackhole|unreachable|prohibit] [protocol P] [inet|inet6] [no_track]
//! ```
//!
//! Like keepalived, both are added with protocol `keepalived` (18) unless
//! told otherwise, so `ip route`/`ip rule` show who put them there.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use super::model::{Family, ParseError};

/// keepalived's routing protocol number (`RTPROT_KEEPALIVED`).
pub const PROTO_KEEPALIVED: u8 = 18;
/// The preference keepalived gives a rule that has none (with a warning).
pub const DEFAULT_RULE_PRIORITY: u32 = 16384;

/// An address prefix with its host bits clear (`10.0.0.0/24`, `::/0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Prefix {
    pub addr: IpAddr,
    pub len: u8,
}

impl Prefix {
    pub fn family(&self) -> Family {
        Family::of(&self.addr)
    }

    fn default_of(family: Family) -> Prefix {
        let addr = match family {
            Family::V4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            Family::V6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        Prefix { addr, len: 0 }
    }

    /// `ADDR[/LEN]`; a bare address is a host prefix. Host bits must be
    /// clear (the kernel refuses them for routes and rules).
    fn parse(text: &str) -> Result<Prefix, String> {
        let (a, l) = match text.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (text, None),
        };
        let addr: IpAddr = a
            .parse()
            .map_err(|_| format!("\"{text}\" is not an address prefix"))?;
        let max = match addr {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        let len = match l {
            None => max,
            Some(l) => match l.parse::<u8>() {
                Ok(n) if n <= max && !l.starts_with('+') => n,
                _ => {
                    return Err(format!(
                        "\"{text}\": prefix length \"{l}\" is not in 0..={max}"
                    ))
                }
            },
        };
        let host_bits = match addr {
            IpAddr::V4(v4) => u32::from(v4).checked_shl(u32::from(len)).unwrap_or(0) != 0,
            IpAddr::V6(v6) => u128::from(v6).checked_shl(u32::from(len)).unwrap_or(0) != 0,
        };
        if host_bits {
            return Err(format!(
                "\"{text}\" has host bits set (a route or rule takes the network address)"
            ));
        }
        Ok(Prefix { addr, len })
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// What a route does with the packets it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RouteKind {
    /// Forward them (via a gateway or out of a device).
    #[default]
    Unicast,
    /// Drop them silently.
    Blackhole,
    /// Drop them with ICMP unreachable.
    Unreachable,
    /// Drop them with ICMP administratively prohibited.
    Prohibit,
    /// Leave this table; the rules continue.
    Throw,
}

impl RouteKind {
    fn name(self) -> &'static str {
        match self {
            RouteKind::Unicast => "unicast",
            RouteKind::Blackhole => "blackhole",
            RouteKind::Unreachable => "unreachable",
            RouteKind::Prohibit => "prohibit",
            RouteKind::Throw => "throw",
        }
    }

    fn from_word(w: &str) -> Option<RouteKind> {
        Some(match w {
            "unicast" => RouteKind::Unicast,
            "blackhole" => RouteKind::Blackhole,
            "unreachable" => RouteKind::Unreachable,
            "prohibit" => RouteKind::Prohibit,
            "throw" => RouteKind::Throw,
            _ => return None,
        })
    }
}

/// One route (`ip route add` arguments).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Route {
    pub kind: RouteKind,
    pub dst: Prefix,
    /// The preferred source address (`src`).
    pub src: Option<IpAddr>,
    /// The gateway (`via` / `gw`).
    pub via: Option<IpAddr>,
    pub dev: Option<String>,
    /// Numeric scope (`global` 0, `site` 200, `link` 253, `host` 254,
    /// `nowhere` 255); None: as `ip route` picks (link for a device route
    /// without gateway, else global).
    pub scope: Option<u8>,
    /// None: the main table.
    pub table: Option<u32>,
    pub metric: Option<u32>,
    /// None: `keepalived` ([`PROTO_KEEPALIVED`]), as keepalived does.
    pub protocol: Option<u8>,
    /// The gateway is on the link even if no prefix says so.
    pub onlink: bool,
    /// keepalived's `no_track`: accepted; baton never tracks routes.
    pub no_track: bool,
}

impl Route {
    pub fn family(&self) -> Family {
        self.dst.family()
    }

    /// The scope the kernel is told: as given, else link for a unicast
    /// route out of a device with no gateway, else global (as `ip route`).
    pub fn effective_scope(&self) -> u8 {
        self.scope
            .unwrap_or(if self.kind == RouteKind::Unicast && self.via.is_none() {
                SCOPE_LINK
            } else {
                0
            })
    }
}

/// What a rule does with the packets it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RuleKind {
    /// Look the packet up in `table`.
    #[default]
    Table,
    Blackhole,
    Unreachable,
    Prohibit,
}

/// One policy rule (`ip rule add` arguments).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rule {
    pub family: Family,
    pub kind: RuleKind,
    pub from: Option<Prefix>,
    pub to: Option<Prefix>,
    /// For [`RuleKind::Table`]; None: the main table.
    pub table: Option<u32>,
    /// None only until a reader applies its default: keepalived's reader
    /// warns and takes [`DEFAULT_RULE_PRIORITY`], baton.toml refuses it.
    pub priority: Option<u32>,
    pub iif: Option<String>,
    pub oif: Option<String>,
    /// Firewall mark and mask.
    pub fwmark: Option<(u32, Option<u32>)>,
    /// None: `keepalived` ([`PROTO_KEEPALIVED`]).
    pub protocol: Option<u8>,
    pub no_track: bool,
}

/// A word that could not be taken: its index among the words, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WordError {
    pub word: usize,
    pub message: String,
}

const SCOPE_LINK: u8 = 253;
const SCOPES: &[(&str, u8)] = &[
    ("global", 0),
    ("universe", 0),
    ("site", 200),
    ("link", SCOPE_LINK),
    ("host", 254),
    ("nowhere", 255),
];
const TABLES: &[(&str, u32)] = &[("default", 253), ("main", 254), ("local", 255)];
const PROTOCOLS: &[(&str, u8)] = &[
    ("redirect", 1),
    ("kernel", 2),
    ("boot", 3),
    ("static", 4),
    ("ra", 9),
    ("dhcp", 16),
    ("keepalived", PROTO_KEEPALIVED),
    ("babel", 42),
    ("bgp", 186),
    ("isis", 187),
    ("ospf", 188),
    ("rip", 189),
    ("eigrp", 192),
];

/// Options of `ip route` / `ip rule` baton refuses by name (so that the
/// error says "not supported" rather than "unknown").
const ROUTE_UNSUPPORTED: &[&str] = &[
    "or",
    "nexthop",
    "tos",
    "dsfield",
    "mtu",
    "hoplimit",
    "advmss",
    "rtt",
    "rttvar",
    "reordering",
    "window",
    "cwnd",
    "ssthresh",
    "realms",
    "realm",
    "rto_min",
    "initcwnd",
    "initrwnd",
    "features",
    "quickack",
    "congctl",
    "fastopen_no_cookie",
    "pref",
    "vrf",
    "append",
    "track_group",
    "encap",
    "expires",
    "from",
    "nhid",
    "ttl-propagate",
    "lock",
    "local",
    "broadcast",
    "anycast",
    "multicast",
    "nat",
];
const RULE_UNSUPPORTED: &[&str] = &[
    "not",
    "tos",
    "dsfield",
    "realms",
    "goto",
    "nop",
    "suppress_prefixlength",
    "suppress_ifgroup",
    "uidrange",
    "ipproto",
    "ip_proto",
    "sport",
    "dport",
    "l3mdev",
    "track_group",
    "nat",
    "tun_id",
];

fn named<T: Copy>(table: &[(&str, T)], w: &str) -> Option<T> {
    table.iter().find(|(n, _)| *n == w).map(|(_, v)| *v)
}

fn name_of<T: Copy + PartialEq>(table: &[(&'static str, T)], v: T) -> Option<&'static str> {
    table.iter().find(|(_, x)| *x == v).map(|(n, _)| *n)
}

fn parse_u32(w: &str) -> Option<u32> {
    match w.strip_prefix("0x").or_else(|| w.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => w.parse().ok().filter(|_| !w.starts_with('+')),
    }
}

/// The number of a scope name (`link` is 253) or of a number in text.
pub fn scope_number(w: &str) -> Option<u8> {
    named(SCOPES, w).or_else(|| w.parse().ok().filter(|_| !w.starts_with('+')))
}

fn parse_scope(w: &str) -> Result<u8, String> {
    named(SCOPES, w)
        .or_else(|| w.parse().ok().filter(|_| !w.starts_with('+')))
        .ok_or_else(|| format!("scope \"{w}\" is not host, link, site, global, nowhere or 0..255"))
}

fn parse_table(w: &str) -> Result<u32, String> {
    match named(TABLES, w).or_else(|| parse_u32(w)) {
        Some(0) => Err("table 0 is not a table (unspecified)".into()),
        Some(t) => Ok(t),
        None => Err(format!(
            "table \"{w}\" is not a number or main, local, default \
             (baton does not read rt_tables names)"
        )),
    }
}

fn parse_protocol(w: &str) -> Result<u8, String> {
    named(PROTOCOLS, w)
        .or_else(|| w.parse().ok().filter(|_| !w.starts_with('+')))
        .ok_or_else(|| format!("protocol \"{w}\" is not a known name or 0..255"))
}

fn write_table(f: &mut fmt::Formatter<'_>, t: u32) -> fmt::Result {
    match name_of(TABLES, t) {
        Some(n) => write!(f, " table {n}"),
        None => write!(f, " table {t}"),
    }
}

fn write_protocol(f: &mut fmt::Formatter<'_>, p: u8) -> fmt::Result {
    match name_of(PROTOCOLS, p) {
        Some(n) => write!(f, " protocol {n}"),
        None => write!(f, " protocol {p}"),
    }
}

/// Walks the words of one entry, remembering where it is for errors.
struct Words<'a> {
    words: &'a [&'a str],
    next: usize,
}

impl<'a> Words<'a> {
    fn new(words: &'a [&'a str]) -> Self {
        Words { words, next: 0 }
    }

    fn next(&mut self) -> Option<(usize, &'a str)> {
        let i = self.next;
        let w = self.words.get(i)?;
        self.next += 1;
        Some((i, w))
    }

    /// The value after option `key` (at index `at`).
    fn value(&mut self, at: usize, key: &str) -> Result<(usize, &'a str), WordError> {
        match self.next() {
            Some((i, v)) if v.trim().is_empty() => Err(err(i, format!("{key} has an empty value"))),
            Some(value) => Ok(value),
            None => Err(err(at, format!("{key} needs a value"))),
        }
    }
}

fn err(word: usize, message: impl Into<String>) -> WordError {
    WordError {
        word,
        message: message.into(),
    }
}

/// Store `value` in `slot`, refusing a second one.
fn once<T>(slot: &mut Option<T>, value: T, at: usize, key: &str) -> Result<(), WordError> {
    if slot.is_some() {
        return Err(err(at, format!("{key} given twice")));
    }
    *slot = Some(value);
    Ok(())
}

fn address(at: usize, w: &str, key: &str) -> Result<IpAddr, WordError> {
    w.parse()
        .map_err(|_| err(at, format!("{key} \"{w}\" is not an IP address")))
}

fn family_word(w: &str) -> Option<Family> {
    match w {
        "inet" | "-4" => Some(Family::V4),
        "inet6" | "-6" => Some(Family::V6),
        _ => None,
    }
}

impl Route {
    /// A route from its words (keepalived's syntax); errors name the word.
    pub fn parse_words(words: &[&str]) -> Result<Route, WordError> {
        let mut ws = Words::new(words);
        let mut kind: Option<RouteKind> = None;
        let mut dst: Option<(usize, &str)> = None;
        let (mut src, mut via, mut dev, mut scope) = (None, None, None, None);
        let (mut table, mut metric, mut protocol) = (None, None, None);
        let (mut onlink, mut no_track) = (false, false);
        let mut family: Option<Family> = None;
        while let Some((i, w)) = ws.next() {
            match w {
                "src" => {
                    let (j, v) = ws.value(i, w)?;
                    once(&mut src, address(j, v, w)?, i, w)?;
                }
                "via" | "gw" => {
                    let (j, v) = ws.value(i, w)?;
                    once(&mut via, address(j, v, "via")?, i, "via")?;
                }
                "dev" | "oif" => {
                    let (_, v) = ws.value(i, w)?;
                    once(&mut dev, v.to_owned(), i, "dev")?;
                }
                "scope" => {
                    let (j, v) = ws.value(i, w)?;
                    once(&mut scope, parse_scope(v).map_err(|m| err(j, m))?, i, w)?;
                }
                "table" => {
                    let (j, v) = ws.value(i, w)?;
                    once(&mut table, parse_table(v).map_err(|m| err(j, m))?, i, w)?;
                }
                "metric" | "priority" | "preference" => {
                    let (j, v) = ws.value(i, w)?;
                    let n = parse_u32(v)
                        .ok_or_else(|| err(j, format!("metric \"{v}\" is not 0..4294967295")))?;
                    once(&mut metric, n, i, "metric")?;
                }
                "protocol" | "proto" => {
                    let (j, v) = ws.value(i, w)?;
                    once(
                        &mut protocol,
                        parse_protocol(v).map_err(|m| err(j, m))?,
                        i,
                        w,
                    )?;
                }
                "onlink" => onlink = true,
                "no_track" => no_track = true,
                "to" => {
                    let (j, v) = ws.value(i, w)?;
                    if dst.is_some() {
                        return Err(err(j, "a second destination"));
                    }
                    dst = Some((j, v));
                }
                _ if family_word(w).is_some() => {
                    if family.is_some() {
                        return Err(err(i, "the family given twice"));
                    }
                    family = family_word(w);
                }
                _ if RouteKind::from_word(w).is_some() => {
                    if kind.is_some() || dst.is_some() {
                        return Err(err(i, format!("\"{w}\" must come first, and once")));
                    }
                    kind = RouteKind::from_word(w);
                }
                _ if ROUTE_UNSUPPORTED.contains(&w) => {
                    return Err(err(
                        i,
                        format!("route option \"{w}\" is not supported by baton"),
                    ))
                }
                _ if dst.is_none() && !w.chars().all(|c| c.is_ascii_lowercase()) => {
                    dst = Some((i, w));
                }
                _ if dst.is_none() && w == "default" => dst = Some((i, w)),
                _ => return Err(err(i, format!("unknown route option \"{w}\""))),
            }
        }
        let Some((at, text)) = dst else {
            return Err(err(words.len(), "the route has no destination prefix"));
        };
        let dst = if text == "default" {
            Prefix::default_of(family.unwrap_or(Family::V4))
        } else {
            Prefix::parse(text).map_err(|m| err(at, m))?
        };
        let fam = dst.family();
        if family.is_some_and(|f| f != fam) {
            return Err(err(at, format!("{dst} is not {}", family.unwrap_or(fam))));
        }
        for (what, a) in [("src", src), ("via", via)] {
            if let Some(a) = a {
                if Family::of(&a) != fam {
                    return Err(err(at, format!("{what} {a} is not of the family of {dst}")));
                }
            }
        }
        let kind = kind.unwrap_or_default();
        if kind == RouteKind::Unicast && via.is_none() && dev.is_none() {
            return Err(err(
                at,
                format!("route {dst} needs via or dev (or a type: blackhole, unreachable, prohibit, throw)"),
            ));
        }
        if kind != RouteKind::Unicast && via.is_some() {
            return Err(err(at, format!("a {} route has no gateway", kind.name())));
        }
        if onlink && via.is_none() {
            return Err(err(at, "onlink needs a gateway (via)"));
        }
        Ok(Route {
            kind,
            dst,
            src,
            via,
            dev,
            scope,
            table,
            metric,
            protocol,
            onlink,
            no_track,
        })
    }
}

impl Rule {
    /// A rule from its words (keepalived's syntax); errors name the word.
    pub fn parse_words(words: &[&str]) -> Result<Rule, WordError> {
        let mut ws = Words::new(words);
        let mut kind: Option<RuleKind> = None;
        let mut from: Option<(usize, &str)> = None;
        let mut to: Option<(usize, &str)> = None;
        let (mut table, mut priority, mut protocol) = (None, None, None);
        let (mut iif, mut oif, mut fwmark) = (None, None, None);
        let mut no_track = false;
        let mut family: Option<Family> = None;
        while let Some((i, w)) = ws.next() {
            match w {
                "from" | "to" => {
                    let v = ws.value(i, w)?;
                    let slot = if w == "from" { &mut from } else { &mut to };
                    once(slot, v, i, w)?;
                }
                "table" | "lookup" => {
                    let (j, v) = ws.value(i, w)?;
                    once(
                        &mut table,
                        parse_table(v).map_err(|m| err(j, m))?,
                        i,
                        "table",
                    )?;
                }
                "priority" | "preference" | "pref" | "order" => {
                    let (j, v) = ws.value(i, w)?;
                    let n = parse_u32(v)
                        .ok_or_else(|| err(j, format!("priority \"{v}\" is not 0..4294967295")))?;
                    once(&mut priority, n, i, "priority")?;
                }
                "iif" | "dev" => {
                    let (_, v) = ws.value(i, w)?;
                    once(&mut iif, v.to_owned(), i, "iif")?;
                }
                "oif" => {
                    let (_, v) = ws.value(i, w)?;
                    once(&mut oif, v.to_owned(), i, w)?;
                }
                "fwmark" => {
                    let (j, v) = ws.value(i, w)?;
                    let (m, mask) = match v.split_once('/') {
                        Some((m, k)) => (m, Some(k)),
                        None => (v, None),
                    };
                    let bad = || err(j, format!("fwmark \"{v}\" is not MARK or MARK/MASK"));
                    let m = parse_u32(m).ok_or_else(bad)?;
                    let mask = match mask {
                        Some(k) => Some(parse_u32(k).ok_or_else(bad)?),
                        None => None,
                    };
                    once(&mut fwmark, (m, mask), i, w)?;
                }
                "protocol" | "proto" => {
                    let (j, v) = ws.value(i, w)?;
                    once(
                        &mut protocol,
                        parse_protocol(v).map_err(|m| err(j, m))?,
                        i,
                        w,
                    )?;
                }
                "type" => {
                    let (j, v) = ws.value(i, w)?;
                    let k = rule_kind(v).ok_or_else(|| {
                        err(
                            j,
                            format!("rule type \"{v}\" is not blackhole, unreachable or prohibit"),
                        )
                    })?;
                    once(&mut kind, k, i, "type")?;
                }
                "no_track" => no_track = true,
                _ if family_word(w).is_some() => {
                    if family.is_some() {
                        return Err(err(i, "the family given twice"));
                    }
                    family = family_word(w);
                }
                _ if rule_kind(w).is_some() => {
                    once(&mut kind, rule_kind(w).unwrap_or_default(), i, "type")?
                }
                _ if RULE_UNSUPPORTED.contains(&w) => {
                    return Err(err(
                        i,
                        format!("rule option \"{w}\" is not supported by baton"),
                    ))
                }
                _ => return Err(err(i, format!("unknown rule option \"{w}\""))),
            }
        }
        let prefix = |p: Option<(usize, &str)>| -> Result<Option<(usize, Prefix)>, WordError> {
            match p {
                None | Some((_, "all")) => Ok(None),
                Some((j, t)) => Prefix::parse(t)
                    .map(|p| Some((j, p)))
                    .map_err(|m| err(j, m)),
            }
        };
        let from = prefix(from)?;
        let to = prefix(to)?;
        let mut fam = family;
        for (j, p) in from.iter().chain(to.iter()) {
            match fam {
                Some(f) if f != p.family() => {
                    return Err(err(*j, format!("{p} is not {f} like the rest of the rule")))
                }
                _ => fam = Some(p.family()),
            }
        }
        let kind = kind.unwrap_or_default();
        if kind != RuleKind::Table && table.is_some() {
            return Err(err(0, "a rule with a type (blackhole...) has no table"));
        }
        Ok(Rule {
            family: fam.unwrap_or(Family::V4),
            kind,
            from: from.map(|p| p.1),
            to: to.map(|p| p.1),
            table,
            priority,
            iif,
            oif,
            fwmark,
            protocol,
            no_track,
        })
    }
}

fn rule_kind(w: &str) -> Option<RuleKind> {
    Some(match w {
        "blackhole" => RuleKind::Blackhole,
        "unreachable" => RuleKind::Unreachable,
        "prohibit" => RuleKind::Prohibit,
        _ => return None,
    })
}

fn from_text<T>(s: &str, parse: fn(&[&str]) -> Result<T, WordError>) -> Result<T, ParseError> {
    let words: Vec<&str> = s.split_whitespace().collect();
    parse(&words).map_err(|e| match words.get(e.word) {
        Some(w) => ParseError(format!("\"{s}\": at \"{w}\": {}", e.message)),
        None => ParseError(format!("\"{s}\": {}", e.message)),
    })
}

impl FromStr for Route {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        from_text(s, Route::parse_words)
    }
}

impl FromStr for Rule {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        from_text(s, Rule::parse_words)
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind != RouteKind::Unicast {
            write!(f, "{} ", self.kind.name())?;
        }
        if let Some(src) = self.src {
            write!(f, "src {src} ")?;
        }
        write!(f, "{}", self.dst)?;
        if let Some(via) = self.via {
            write!(f, " via {via}")?;
        }
        if let Some(dev) = &self.dev {
            write!(f, " dev {dev}")?;
        }
        if let Some(s) = self.scope {
            match name_of(SCOPES, s) {
                Some(n) => write!(f, " scope {n}")?,
                None => write!(f, " scope {s}")?,
            }
        }
        if let Some(t) = self.table {
            write_table(f, t)?;
        }
        if let Some(m) = self.metric {
            write!(f, " metric {m}")?;
        }
        if let Some(p) = self.protocol {
            write_protocol(f, p)?;
        }
        if self.onlink {
            f.write_str(" onlink")?;
        }
        if self.no_track {
            f.write_str(" no_track")?;
        }
        Ok(())
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        let mut word = |f: &mut fmt::Formatter<'_>, text: fmt::Arguments<'_>| {
            let r = write!(f, "{sep}{text}");
            sep = " ";
            r
        };
        if self.family == Family::V6 && self.from.is_none() && self.to.is_none() {
            word(f, format_args!("inet6"))?;
        }
        if let Some(p) = self.from {
            word(f, format_args!("from {p}"))?;
        }
        if let Some(p) = self.to {
            word(f, format_args!("to {p}"))?;
        }
        if let Some(i) = &self.iif {
            word(f, format_args!("iif {i}"))?;
        }
        if let Some(o) = &self.oif {
            word(f, format_args!("oif {o}"))?;
        }
        if let Some((m, mask)) = self.fwmark {
            match mask {
                Some(k) => word(f, format_args!("fwmark {m:#x}/{k:#x}"))?,
                None => word(f, format_args!("fwmark {m:#x}"))?,
            }
        }
        if let Some(p) = self.priority {
            word(f, format_args!("priority {p}"))?;
        }
        match self.kind {
            RuleKind::Table => {
                if let Some(t) = self.table {
                    let t = match name_of(TABLES, t) {
                        Some(n) => n.to_owned(),
                        None => t.to_string(),
                    };
                    word(f, format_args!("table {t}"))?;
                }
            }
            RuleKind::Blackhole => word(f, format_args!("blackhole"))?,
            RuleKind::Unreachable => word(f, format_args!("unreachable"))?,
            RuleKind::Prohibit => word(f, format_args!("prohibit"))?,
        }
        if let Some(p) = self.protocol {
            let p = match name_of(PROTOCOLS, p) {
                Some(n) => n.to_owned(),
                None => p.to_string(),
            };
            word(f, format_args!("protocol {p}"))?;
        }
        if self.no_track {
            word(f, format_args!("no_track"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(s: &str) -> Route {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn route_err(s: &str) -> WordError {
        let words: Vec<&str> = s.split_whitespace().collect();
        Route::parse_words(&words).expect_err(s)
    }

    fn rule_err(s: &str) -> WordError {
        let words: Vec<&str> = s.split_whitespace().collect();
        Rule::parse_words(&words).expect_err(s)
    }

    #[test]
    fn keepalived_man_page_routes_parse() {
        let r = route("src 192.168.100.1 to 192.168.109.0/24 via 192.168.200.254 dev eth1");
        assert_eq!(r.src, Some("192.168.100.1".parse().unwrap()));
        assert_eq!(r.dst.to_string(), "192.168.109.0/24");
        assert_eq!(r.via, Some("192.168.200.254".parse().unwrap()));
        assert_eq!(r.dev.as_deref(), Some("eth1"));
        assert_eq!(r.effective_scope(), 0);
        let r = route("192.168.111.0/24 dev eth2 no_track");
        assert!(r.no_track);
        assert_eq!(r.effective_scope(), SCOPE_LINK);
        let r = route("blackhole 192.168.114.0/24");
        assert_eq!(r.kind, RouteKind::Blackhole);
        let r = route("0.0.0.0/0 gw 192.168.0.1 table 100");
        assert_eq!(r.table, Some(100));
        assert_eq!(r.dst.len, 0);
        let r = route("default via fd00::1 inet6 metric 5 proto static onlink scope global");
        assert_eq!(r.dst.to_string(), "::/0");
        assert_eq!((r.metric, r.protocol, r.onlink), (Some(5), Some(4), true));
        let r = route("10.1.0.0/16 dev eth0 table main priority 7");
        assert_eq!((r.table, r.metric), (Some(254), Some(7)));
    }

    #[test]
    fn routes_round_trip_through_display() {
        for s in [
            "src 10.0.0.1 10.9.0.0/24 via 10.0.0.254 dev eth1 scope link table 100 metric 3 protocol bgp onlink no_track",
            "unreachable 10.8.0.0/16 table main",
            "fd00:1::/64 dev eth0 protocol 99",
        ] {
            let r = route(s);
            assert_eq!(r.to_string().parse::<Route>().unwrap(), r, "{s}");
        }
    }

    #[test]
    fn bad_routes_name_the_word() {
        let cases: &[(&str, usize, &str)] = &[
            ("10.0.0.0/24 via 10.0.0.1 or 10.0.0.2", 3, "not supported"),
            ("10.0.0.0/24 via nowhere", 2, "not an IP address"),
            ("10.0.0.0/24 dev eth0 mtu 1400", 3, "not supported"),
            ("10.0.0.0/24 dev eth0 frobnicate", 3, "unknown route option"),
            ("10.0.0.1/24 dev eth0", 0, "host bits"),
            ("10.0.0.0/33 dev eth0", 0, "prefix length"),
            ("10.0.0.0/24", 0, "needs via or dev"),
            ("10.0.0.0/24 via fd00::1", 0, "family"),
            ("10.0.0.0/24 dev eth0 table", 3, "needs a value"),
            ("10.0.0.0/24 dev eth0 table fancy", 4, "rt_tables"),
            ("10.0.0.0/24 dev eth0 table 0", 4, "table 0"),
            ("10.0.0.0/24 dev eth0 scope galaxy", 4, "scope"),
            ("10.0.0.0/24 dev eth0 metric -1", 4, "metric"),
            ("10.0.0.0/24 dev eth0 dev eth1", 3, "twice"),
            ("blackhole 10.0.0.0/24 via 10.0.0.1", 1, "no gateway"),
            ("10.0.0.0/24 dev eth0 onlink", 0, "onlink"),
            ("dev eth0", 2, "no destination"),
        ];
        for (text, word, what) in cases {
            let e = route_err(text);
            assert_eq!(e.word, *word, "{text}: {e:?}");
            assert!(e.message.contains(what), "{text}: {e:?}");
        }
    }

    #[test]
    fn rules_parse() {
        let r: Rule = "from 192.168.2.0/24 table 1".parse().unwrap();
        assert_eq!(r.from.unwrap().to_string(), "192.168.2.0/24");
        assert_eq!(
            (r.table, r.priority, r.kind),
            (Some(1), None, RuleKind::Table)
        );
        let r: Rule =
            "to 10.0.0.0/8 lookup 100 pref 100 iif eth0 oif eth1 fwmark 0x10/0xff no_track"
                .parse()
                .unwrap();
        assert_eq!(r.priority, Some(100));
        assert_eq!(r.fwmark, Some((16, Some(255))));
        assert_eq!(
            (r.iif.as_deref(), r.oif.as_deref()),
            (Some("eth0"), Some("eth1"))
        );
        let r: Rule = "inet6 fwmark 3 prohibit preference 9".parse().unwrap();
        assert_eq!((r.family, r.kind), (Family::V6, RuleKind::Prohibit));
        let r: Rule = "from all to fd00::/8 type unreachable priority 4"
            .parse()
            .unwrap();
        assert_eq!(
            (r.family, r.kind, r.from),
            (Family::V6, RuleKind::Unreachable, None)
        );
        for s in [
            "from 10.0.0.0/8 to 10.1.0.0/16 iif a oif b fwmark 0x1/0x3 priority 7 table 100 protocol static no_track",
            "inet6 fwmark 0x3 priority 9 blackhole",
        ] {
            let r: Rule = s.parse().unwrap();
            assert_eq!(r.to_string(), s);
        }
    }

    #[test]
    fn bad_rules_name_the_word() {
        let cases: &[(&str, usize, &str)] = &[
            ("from 10.0.0.0/8 goto 40", 2, "not supported"),
            ("not from 10.0.0.0/8", 0, "not supported"),
            ("from 10.0.0.0/8 table 1 wibble", 4, "unknown rule option"),
            ("from 10.0.0.5/8 table 1", 1, "host bits"),
            ("from 10.0.0.0/8 to fd00::/8", 3, "IPv4"),
            ("fwmark 1/x table 1", 1, "fwmark"),
            ("from 10.0.0.0/8 priority", 2, "needs a value"),
            ("from 10.0.0.0/8 prohibit table 5", 0, "no table"),
            ("from 10.0.0.0/8 type nat", 3, "rule type"),
        ];
        for (text, word, what) in cases {
            let e = rule_err(text);
            assert_eq!(e.word, *word, "{text}: {e:?}");
            assert!(e.message.contains(what), "{text}: {e:?}");
        }
    }

    /// Every sequence of up to three words from a vocabulary of keywords,
    /// values and junk: parsing never panics, an error always names a word
    /// that exists or the end of the line, and what parses prints back as
    /// text that parses to the same (what `baton convert` relies on).
    #[test]
    fn any_word_sequence_parses_or_fails_cleanly() {
        let vocab = [
            "to",
            "via",
            "dev",
            "src",
            "table",
            "metric",
            "from",
            "priority",
            "blackhole",
            "fwmark",
            "inet6",
            "default",
            "all",
            "10.0.0.0/8",
            "fd00::/8",
            "10.0.0.1",
            "0/0",
            "/",
            "1/",
            "4294967296",
            "0x",
            "eth0",
            "",
            "scope",
            "type",
            "onlink",
        ];
        let n = vocab.len();
        for len in 0..=3u32 {
            for mut k in 0..n.pow(len) {
                let mut words = Vec::new();
                for _ in 0..len {
                    words.push(vocab[k % n]);
                    k /= n;
                }
                match Route::parse_words(&words) {
                    Err(e) => assert!(e.word <= words.len(), "{words:?}: {e:?}"),
                    Ok(r) => assert_eq!(r.to_string().parse::<Route>(), Ok(r), "{words:?}"),
                }
                match Rule::parse_words(&words) {
                    Err(e) => assert!(e.word <= words.len(), "{words:?}: {e:?}"),
                    Ok(r) => assert_eq!(r.to_string().parse::<Rule>(), Ok(r), "{words:?}"),
                }
            }
        }
    }

    #[test]
    fn text_errors_quote_the_word() {
        let e = "10.0.0.0/24 via 10.0.0.1 realms 3"
            .parse::<Route>()
            .unwrap_err();
        assert!(e.0.contains("at \"realms\""), "{e}");
    }
}
