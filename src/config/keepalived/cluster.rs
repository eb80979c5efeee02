//! `cluster { }`: baton's cluster channel (an extension; keepalived does not
//! have it).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::lexer::Word;
use super::reader::{Block, Keywords, Reader, Top};
use super::tree::Stmt;
use crate::config::model::{Cluster, Peer, Selection};
use crate::config::value::parse_selection;

/// The cluster block being read.
struct ClusterBlock {
    node: Option<String>,
    listen: Option<SocketAddr>,
    key_file: Option<PathBuf>,
    peers: Vec<Peer>,
    order: Vec<String>,
    heartbeat: Duration,
    selection: Selection,
    sync_instance: Option<String>,
    accept_foreign_adverts: bool,
    check_peer_source: bool,
    key_grace: Duration,
}

const CTX: &str = "cluster: ";

impl Block for ClusterBlock {
    fn ctx(&self) -> &str {
        CTX
    }
}

/// `cluster { }`.
pub(super) fn read(r: &mut Reader, _: &mut Top, s: &Stmt) {
    let Some(items) = r.block_of("", s) else {
        return;
    };
    r.record("cluster", s.at());
    let mut b = ClusterBlock {
        node: None,
        listen: None,
        key_file: None,
        peers: Vec::new(),
        order: Vec::new(),
        heartbeat: Cluster::DEFAULT_HEARTBEAT_INTERVAL,
        selection: Selection::Priority,
        sync_instance: None,
        accept_foreign_adverts: false,
        check_peer_source: true,
        key_grace: Cluster::DEFAULT_KEY_GRACE,
    };
    r.keywords(&KEYWORDS, &mut b, items);
    if b.listen.is_none() && !r.origins.is_reported("cluster.listen") {
        r.error(s.at(), format!("{CTX}listen is missing"));
        r.origins.mark_reported("cluster.listen");
    }
    if b.key_file.is_none() {
        r.error(s.at(), format!("{CTX}key_file is missing"));
        r.origins.mark_reported("cluster.key_file");
    }
    r.config.cluster = Some(Cluster {
        node: b.node.unwrap_or_else(|| r.config.global.router_id.clone()),
        listen: b.listen.unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0))),
        peers: b.peers,
        key_file: b.key_file.unwrap_or_default(),
        heartbeat_interval: b.heartbeat,
        selection: b.selection,
        order: b.order,
        sync_instance: b.sync_instance,
        accept_foreign_adverts: b.accept_foreign_adverts,
        check_peer_source: b.check_peer_source,
        key_grace: b.key_grace,
    });
}

const KEYWORDS: Keywords<ClusterBlock> = Keywords {
    known: &[
        ("node", node),
        ("listen", listen),
        ("peers", peers_or_order),
        ("key_file", key_file),
        ("heartbeat_interval", heartbeat_interval),
        ("selection", selection),
        ("order", peers_or_order),
        ("sync_instance", sync_instance),
        ("accept_foreign_adverts", accept_foreign_adverts),
        ("check_peer_source", check_peer_source),
        ("key_grace", key_grace),
    ],
    unsupported: &[],
};

fn node(r: &mut Reader, b: &mut ClusterBlock, item: &Stmt) {
    if let Some(w) = r.single(CTX, item) {
        b.node = Some(w.text.clone());
        r.record("cluster.node", w.at);
    }
}

fn listen(r: &mut Reader, b: &mut ClusterBlock, item: &Stmt) {
    if let Some(w) = r.single(CTX, item) {
        match w.text.parse::<SocketAddr>() {
            Ok(a) => {
                b.listen = Some(a);
                r.record("cluster.listen", w.at);
            }
            Err(_) => {
                r.error(
                    w.at,
                    format!(
                        "{CTX}listen: \"{}\" is not IP:PORT (IPv6: [ADDR]:PORT)",
                        w.text
                    ),
                );
                r.origins.mark_reported("cluster.listen");
            }
        }
    }
}

fn key_file(r: &mut Reader, b: &mut ClusterBlock, item: &Stmt) {
    if let Some(w) = r.single(CTX, item) {
        b.key_file = Some(PathBuf::from(&w.text));
        r.record("cluster.key_file", w.at);
    }
}

fn heartbeat_interval(r: &mut Reader, b: &mut ClusterBlock, item: &Stmt) {
    if let Some((d, at)) = r.duration(CTX, item) {
        b.heartbeat = d;
        r.record("cluster.heartbeat_interval", at);
    }
}

fn accept_foreign_adverts(r: &mut Reader, b: &mut ClusterBlock, item: &Stmt) {
    if let Some(on) = r.flag(CTX, item) {
        b.accept_foreign_adverts = on;
        r.record("cluster.accept_foreign_adverts", item.at());
    }
}

fn check_peer_source(r: &mut Reader, b: &mut ClusterBlock, item: &Stmt) {
    if let Some(on) = r.flag(CTX, item) {
        b.check_peer_source = on;
        r.record("cluster.check_peer_source", item.at());
    }
}

fn key_grace(r: &mut Reader, b: &mut ClusterBlock, item: &Stmt) {
    if let Some((d, at)) = r.duration(CTX, item) {
        b.key_grace = d;
        r.record("cluster.key_grace", at);
    }
}

fn sync_instance(r: &mut Reader, b: &mut ClusterBlock, item: &Stmt) {
    if let Some(w) = r.single(CTX, item) {
        b.sync_instance = Some(w.text.clone());
        r.record("cluster.sync_instance", w.at);
    }
}

fn selection(r: &mut Reader, b: &mut ClusterBlock, item: &Stmt) {
    if let Some(w) = r.single(CTX, item) {
        match parse_selection(&w.text) {
            Some(selection) => b.selection = selection,
            None => r.warn(
                w.at,
                format!(
                    "{CTX}selection: \"{}\" is not priority or order; ignored",
                    w.text
                ),
            ),
        }
        r.record("cluster.selection", w.at);
    }
}

/// `peers` and `order`: words on the keyword's line and in its block.
fn peers_or_order(r: &mut Reader, b: &mut ClusterBlock, item: &Stmt) {
    r.record(&format!("cluster.{}", item.key()), item.at());
    let words: Vec<&Word> = item
        .args()
        .iter()
        .chain(item.items().iter().flat_map(|l| l.words.iter()))
        .collect();
    for w in words {
        if item.key() == "order" {
            r.record(&format!("cluster.order[{}]", b.order.len()), w.at);
            b.order.push(w.text.clone());
            continue;
        }
        match w.text.parse::<Peer>() {
            Ok(peer) => {
                r.record(&format!("cluster.peers[{}]", b.peers.len()), w.at);
                b.peers.push(peer);
            }
            Err(e) => r.error(w.at, format!("{CTX}peers: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::keepalived::table_tests::check_table;

    #[test]
    fn keyword_table() {
        check_table(&KEYWORDS, |k| format!("cluster {{\n {k}\n}}\n"));
    }
}
