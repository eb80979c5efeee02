//! Data sync (method step 5): files that follow the control node. Sans-IO:
//! fed what the files hold, who is connected, whether this node is the
//! control node, messages, data chunks, write outcomes and the time;
//! drained of actions (messages, data frames, atomic writes, on_change
//! runs, state to persist, warnings).
//!
//! ```text
//!   control node C                                 peer P
//!   --------------                                 ------
//!   file edited: version (epoch, n+1)
//!   SyncOffer{name, v, digest, size, chunks, window} --> start (or resume)
//!                                    <----------   SyncAck{v, next: k}
//!   Data Chunk{name, v, k..} (a window's worth) -->
//!                                    <----------   SyncAck{v, next} per chunk
//!   Data Chunk{..} as acks free the window   ----> all in, size and digest
//!                                                  match: Write (atomic)
//!                                    <----------   SyncHave{name, v} (to all)
//!   every connected peer has v: committed
//!   SyncHave{.., committed: v}   -------------->   (status shows it)
//! ```
//!
//! Flow (a large file must not flood the channel it shares with heartbeats):
//! - A peer whose `SyncHave` says `acks` is sent chunks under a window
//!   ([`SyncConfig::window`] bytes unacknowledged per peer and file); an
//!   older peer gets every chunk at once (and everything again on retry).
//! - The receiver keeps a stopped transfer; an offer of the same content
//!   (digest, size, chunks; any version, any peer) resumes it: its first
//!   ack names the chunk it needs next. A windowed transfer with no ack for
//!   `retry_interval` is offered again, and so resumes.
//! - A receiver whose write fails answers `SyncAck{error}` and keeps the
//!   content; the sender retries after `retry_interval`, doubled per failed
//!   attempt up to `retry_max` ([`backoff`]); the retry's offer is written
//!   from the kept content, with no transfer. Both sides' views show why.
//!
//! Rules:
//! - Versions are `(epoch, counter)`, ordered lexicographically; the epoch
//!   is the cluster epoch of the sync instance under which the control
//!   node produced the version, so a later control node's versions order
//!   after everything its predecessors produced.
//! - Only the control node turns local edits into versions. An edit on
//!   another node is reported and not propagated.
//! - A node accepts any offer newer than what it holds (the newest epoch is
//!   the cluster's authority) and answers every offer with its `SyncHave`.
//! - A version is committed when every connected peer holds it.
//! - A new control node first settles: it waits for every connected peer's
//!   `SyncHave` (or `settle_timeout`), pulls the newest version any of them
//!   holds if it is newer than its own (`SyncRequest`), then re-stamps what
//!   it holds under its own epoch and serves it. A committed version was
//!   held by every live peer, the successor included, so it is never lost;
//!   a returning node's uncommitted version orders before the re-stamped
//!   one, so it never overwrites it.
//! - Nothing is silently overwritten: a write replaces a file only after
//!   keeping its current content beside it as `<path>.conflict-<epoch>`,
//!   unless that content is the version the cluster last gave this node
//!   ([`SyncAction::Write::keep_unless`]).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

use super::message::{Message, SyncVersion};

/// SHA-256 of a file's content.
pub type Digest = [u8; 32];

pub fn digest(bytes: &[u8]) -> Digest {
    Sha256::digest(bytes).into()
}

pub fn to_hex(d: &Digest) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(64);
    for b in d {
        let _ = write!(s, "{b:02x}");
    }
    s
}

pub fn from_hex(s: &str) -> Option<Digest> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut d = [0u8; 32];
    for (i, out) in d.iter_mut().enumerate() {
        *out = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(d)
}

/// The default chunk: well under the channel's 1 MiB frame payload.
pub const DEFAULT_CHUNK_SIZE: usize = 256 * 1024;

/// The default window: unacknowledged chunk bytes in flight per peer and
/// file. A few chunks keep a LAN busy; more would only queue on the
/// socket, ahead of the heartbeats that share the connection.
pub const DEFAULT_WINDOW: usize = 1024 * 1024;

/// The longest wait between retries to a peer that failed to write.
pub const DEFAULT_RETRY_MAX: Duration = Duration::from_secs(30);

/// The wait before retry `attempt` (1, 2, ...) to a peer that failed:
/// `retry` doubled per attempt, at most `max`.
pub fn backoff(retry: Duration, max: Duration, attempt: u32) -> Duration {
    let doublings = attempt.saturating_sub(1).min(16);
    retry.saturating_mul(1 << doublings).min(max.max(retry))
}

/// One Data frame of a transfer.
///
/// ```text
///  0        4     5           5+n        13+n        21+n    25+n    29+n
///  +--------+-----+-----------+----------+-----------+-------+-------+------
///  | "BSY1" | n   | name (n)  | epoch    | counter   | index | total | bytes
///  +--------+-----+-----------+----------+-----------+-------+-------+------
///     magic   u8     UTF-8      u64 BE     u64 BE     u32 BE  u32 BE
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk<'a> {
    pub name: &'a str,
    pub version: SyncVersion,
    pub index: u32,
    pub total: u32,
    pub bytes: &'a [u8],
}

const CHUNK_MAGIC: &[u8; 4] = b"BSY1";

impl<'a> Chunk<'a> {
    /// Parse a Data frame payload; `None` for anything that is not a
    /// well-formed chunk.
    pub fn parse(buf: &'a [u8]) -> Option<Chunk<'a>> {
        let rest = buf.strip_prefix(CHUNK_MAGIC)?;
        let (&n, rest) = rest.split_first()?;
        let n = usize::from(n);
        let name = std::str::from_utf8(rest.get(..n)?).ok()?;
        let rest = rest.get(n..)?;
        let fixed = rest.get(..24)?;
        let u64_at = |i: usize| -> Option<u64> {
            Some(u64::from_be_bytes(fixed.get(i..i + 8)?.try_into().ok()?))
        };
        let u32_at = |i: usize| -> Option<u32> {
            Some(u32::from_be_bytes(fixed.get(i..i + 4)?.try_into().ok()?))
        };
        Some(Chunk {
            name,
            version: SyncVersion {
                epoch: u64_at(0)?,
                counter: u64_at(8)?,
            },
            index: u32_at(16)?,
            total: u32_at(20)?,
            bytes: rest.get(24..)?,
        })
    }

    /// The Data frame payload; `None` when the name is over 255 bytes.
    pub fn emit(&self) -> Option<Vec<u8>> {
        let n = u8::try_from(self.name.len()).ok()?;
        let mut out = Vec::with_capacity(29 + self.name.len() + self.bytes.len());
        out.extend_from_slice(CHUNK_MAGIC);
        out.push(n);
        out.extend_from_slice(self.name.as_bytes());
        out.extend_from_slice(&self.version.epoch.to_be_bytes());
        out.extend_from_slice(&self.version.counter.to_be_bytes());
        out.extend_from_slice(&self.index.to_be_bytes());
        out.extend_from_slice(&self.total.to_be_bytes());
        out.extend_from_slice(self.bytes);
        Some(out)
    }
}

/// One synced file, as the core sees it (matched across nodes by name).
#[derive(Debug, Clone)]
pub struct SyncSpec {
    pub name: String,
    pub max_size: u64,
}

#[derive(Debug, Clone)]
pub struct SyncConfig {
    pub node: String,
    pub peers: Vec<String>,
    pub entries: Vec<SyncSpec>,
    pub chunk_size: usize,
    /// Unacknowledged chunk bytes in flight per peer and file (at least
    /// one chunk), for peers that acknowledge chunks.
    pub window: usize,
    /// A peer still behind the current version is sent it again after this.
    pub retry_interval: Duration,
    /// How long a new control node waits for its peers' `SyncHave`s, and
    /// then for a pulled version, before it serves what it holds.
    pub settle_timeout: Duration,
    /// A peer that could not write a version is retried after
    /// `retry_interval`, doubled per failed attempt up to this.
    pub retry_max: Duration,
}

impl SyncConfig {
    pub fn new(node: &str, peers: Vec<String>, entries: Vec<SyncSpec>) -> Self {
        SyncConfig {
            node: node.to_string(),
            peers,
            entries,
            chunk_size: DEFAULT_CHUNK_SIZE,
            window: DEFAULT_WINDOW,
            retry_interval: Duration::from_secs(1),
            settle_timeout: Duration::from_millis(500),
            retry_max: DEFAULT_RETRY_MAX,
        }
    }
}

/// What the local file holds, as the IO shell observed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    Missing,
    Content(Content),
    /// Larger than `max_size` (not read).
    TooLarge(u64),
}

/// A file's bytes and their digest, computed where the file was read (the
/// file worker's thread: hashing a large file must not stall the node).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    pub bytes: Arc<[u8]>,
    pub digest: Digest,
}

impl Content {
    pub fn new(bytes: impl Into<Arc<[u8]>>) -> Content {
        let bytes = bytes.into();
        let digest = digest(&bytes);
        Content { bytes, digest }
    }
}

/// What a node keeps across restarts per entry (the shell stores it).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Persisted {
    pub version: SyncVersion,
    pub digest: String,
    /// This node produced the version as control node.
    pub produced: bool,
    pub committed: Option<SyncVersion>,
}

/// An effect for the IO shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncAction {
    Send {
        peer: String,
        msg: Message,
    },
    Broadcast(Message),
    /// A Data frame payload ([`Chunk`]) for one peer.
    SendData {
        peer: String,
        bytes: Vec<u8>,
    },
    /// Replace the file atomically with `content`. If the file exists, its
    /// digest differs from `content`'s and is not `keep_unless`, first keep
    /// it as `<path>.conflict-<conflict_epoch>`. Answer with `write_done`.
    Write {
        name: String,
        version: SyncVersion,
        content: Arc<[u8]>,
        keep_unless: Option<Digest>,
        conflict_epoch: u64,
    },
    /// A version written here is committed: run the entry's `on_change`.
    RunOnChange {
        name: String,
        version: SyncVersion,
    },
    /// Store this entry's state (read back with [`SyncCore::restore`]).
    Persist {
        name: String,
        state: Persisted,
    },
    /// Something an operator should see in the log.
    Warn(String),
    Info(String),
}

/// What this node holds of an entry: the last version it produced or
/// applied (its content too, to serve it).
#[derive(Debug, Clone)]
struct Held {
    version: SyncVersion,
    digest: Digest,
    /// None after a restart until the file is read and matches.
    content: Option<Arc<[u8]>>,
    produced: bool,
    /// Known committed (this exact version, not just something later: a
    /// version produced on a branch that died is never committed).
    committed: bool,
    /// Another node offered different bytes under this very number (two
    /// control nodes under one epoch, in a split brain): whatever replaces
    /// it keeps this content as a conflict copy.
    contested: bool,
}

#[derive(Debug, Clone, Default)]
struct PeerSync {
    /// None: not heard since the connection came up.
    have: Option<Option<(SyncVersion, Digest)>>,
    /// The last version pushed to the peer and when.
    pushed: Option<(SyncVersion, Instant)>,
    /// When the connection came up, and when the control node last asked
    /// a peer it has not heard from for its `SyncHave`.
    since: Option<Instant>,
    asked: Option<Instant>,
    /// The peer acknowledges chunks (its `SyncHave` said so): it is sent
    /// under a window, and a retry resumes where it stopped.
    acks: bool,
    sending: Option<Sending>,
    /// The peer could not write what it was sent (until it holds the
    /// current version).
    failed: Option<Failure>,
    /// Since when the peer holds less than this node (see
    /// [`SyncCore::note_lag`]); None: it holds as much.
    behind_since: Option<Instant>,
}

/// A windowed transfer to one peer.
#[derive(Debug, Clone)]
struct Sending {
    version: SyncVersion,
    chunks: u32,
    /// The peer answered the offer (its first ack names where to start).
    started: bool,
    /// The next chunk to send, and the chunks the peer holds (`0..acked`).
    next: u32,
    acked: u32,
    /// The offer or the last ack: without progress for a retry interval
    /// the offer is sent again, and the peer's answer resumes it.
    progress: Instant,
}

#[derive(Debug, Clone)]
struct Failure {
    version: SyncVersion,
    reason: String,
    attempts: u32,
    retry_at: Instant,
    /// The retry went out: until the peer answers it, the usual retry
    /// interval applies.
    retried: bool,
}

impl PeerSync {
    /// When `version` is (next) due to be pushed to this peer; None: now
    /// (never pushed, or another version was).
    fn push_due(&self, version: SyncVersion, retry: Duration) -> Option<Instant> {
        if let Some(f) = self
            .failed
            .as_ref()
            .filter(|f| f.version == version && !f.retried)
        {
            return Some(f.retry_at);
        }
        if let Some(s) = self.sending.as_ref().filter(|s| s.version == version) {
            return Some(s.progress + retry);
        }
        match self.pushed {
            Some((v, t)) if v == version => Some(t + retry),
            _ => None,
        }
    }

    /// When a control node that has not heard what this peer holds asks it
    /// (again): a retry interval after the connection came up or the last
    /// ask. `SyncHave`s can be lost (a connection that closed under them
    /// while the other end's new one was already up, a lossy channel).
    fn ask_due(&self, retry: Duration) -> Option<Instant> {
        if self.have.is_some() {
            return None;
        }
        Some(self.asked.or(self.since)? + retry)
    }
}

/// A transfer being received. Kept when its sender goes away: an offer of
/// the same content (digest, size, chunks; under any version, from any
/// peer) resumes it at `next`.
#[derive(Debug, Clone)]
struct Incoming {
    from: String,
    version: SyncVersion,
    digest: Digest,
    size: u64,
    chunks: u32,
    next: u32,
    buf: Vec<u8>,
    /// The digest of `buf` so far: no pass over the whole file when it
    /// completes.
    hasher: Sha256,
    /// The sender wants `SyncAck`s.
    window: bool,
}

#[derive(Debug, Clone)]
struct Settle {
    until: Instant,
    pulling: Option<(String, SyncVersion)>,
    /// When the pulled version was last asked for: asked again every
    /// retry interval (an offer overtaken by its chunks, a request lost).
    asked: Option<Instant>,
}

#[derive(Debug, Clone)]
struct Entry {
    spec: SyncSpec,
    held: Option<Held>,
    committed: Option<SyncVersion>,
    /// The file's content as last observed (None: not observed yet).
    disk: Option<Observed>,
    disk_digest: Option<Digest>,
    peers: BTreeMap<String, PeerSync>,
    incoming: Option<Incoming>,
    /// A write in progress and the content it writes.
    writing: Option<(SyncVersion, Digest, Arc<[u8]>, bool)>,
    /// The peer whose windowed transfer is being written: told if the
    /// write fails.
    write_from: Option<String>,
    /// The last write failed: why, and the content (a retry offering the
    /// same digest is written again without a transfer).
    write_error: Option<String>,
    failed_write: Option<(Digest, Arc<[u8]>)>,
    settle: Option<Settle>,
    /// Warned about this local digest already (edit on a non-control node,
    /// oversize): do not repeat.
    warned: Option<Digest>,
    warned_size: Option<u64>,
    /// A version written here whose `on_change` waits for its commit (the
    /// control node's word that every peer holds it); a newer write
    /// replaces it, so a version that never commits never fires.
    on_change_pending: Option<SyncVersion>,
    /// When `committed` last changed, as [`SyncCore::note_lag`] saw it.
    committed_at: Option<(SyncVersion, Instant)>,
}

/// Per entry, for `baton status`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SyncView {
    pub name: String,
    pub version: Option<SyncVersion>,
    pub digest: Option<String>,
    pub committed: Option<SyncVersion>,
    /// Each connected peer's version (None: not reported yet or nothing).
    pub peers: Vec<(String, Option<SyncVersion>)>,
    /// The local file differs from the held version (an unsynced edit).
    pub locally_modified: bool,
    /// A transfer or write in progress.
    pub receiving: Option<SyncVersion>,
    /// Peers this (control) node could not bring up to date: why, and the
    /// attempts so far (retried with backoff).
    #[serde(default)]
    pub failing: Vec<PeerFailure>,
    /// This node could not write the last version it received: why.
    #[serde(default)]
    pub write_error: Option<String>,
    /// Size of the held content (None: not read back since a restart).
    #[serde(default)]
    pub bytes: Option<u64>,
    /// How long ago this node learned of the committed version.
    #[serde(default)]
    pub committed_age_ms: Option<u64>,
    /// Per connected peer: how far behind this node's version it is.
    #[serde(default)]
    pub lag: Vec<PeerLag>,
}

/// How far a peer is behind the version this node holds of an entry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PeerLag {
    pub peer: String,
    /// The peer holds an older version than this node, or none.
    pub behind: bool,
    /// For how long (0 when not behind).
    pub lag_ms: u64,
}

/// A peer that reported it could not write a version.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PeerFailure {
    pub peer: String,
    pub version: SyncVersion,
    pub reason: String,
    pub attempts: u32,
}

/// The data-sync core of one node.
#[derive(Debug)]
pub struct SyncCore {
    cfg: SyncConfig,
    entries: BTreeMap<String, Entry>,
    connected: BTreeSet<String>,
    control: bool,
    epoch: u64,
    actions: VecDeque<SyncAction>,
}

impl Entry {
    fn new(spec: SyncSpec) -> Entry {
        Entry {
            spec,
            held: None,
            committed: None,
            disk: None,
            disk_digest: None,
            peers: BTreeMap::new(),
            incoming: None,
            writing: None,
            write_from: None,
            write_error: None,
            failed_write: None,
            settle: None,
            warned: None,
            warned_size: None,
            on_change_pending: None,
            committed_at: None,
        }
    }
}

impl SyncCore {
    pub fn new(cfg: SyncConfig) -> Self {
        let entries = cfg
            .entries
            .iter()
            .map(|s| (s.name.clone(), Entry::new(s.clone())))
            .collect();
        SyncCore {
            cfg,
            entries,
            connected: BTreeSet::new(),
            control: false,
            epoch: 0,
            actions: VecDeque::new(),
        }
    }

    pub fn is_control(&self) -> bool {
        self.control
    }

    #[must_use]
    pub fn poll_action(&mut self) -> Option<SyncAction> {
        self.actions.pop_front()
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        let mut d: Option<Instant> = None;
        let mut at = |t: Instant| d = Some(d.map_or(t, |x| x.min(t)));
        for e in self.entries.values() {
            if let Some(s) = &e.settle {
                at(s.until);
                if let (Some(_), Some(t)) = (&s.pulling, s.asked) {
                    at(t + self.cfg.retry_interval);
                }
            }
            if self.control {
                for p in e.peers.values() {
                    if let Some(t) = p.ask_due(self.cfg.retry_interval) {
                        at(t);
                    }
                }
            }
            if self.control && e.settle.is_none() {
                let Some(h) = &e.held else { continue };
                for p in e.peers.values() {
                    let Some(have) = p.have else { continue };
                    if have != Some((h.version, h.digest)) {
                        if let Some(t) = p.push_due(h.version, self.cfg.retry_interval) {
                            at(t);
                        }
                    }
                }
            }
        }
        d
    }

    /// A reload's peers and entries. Entries that stay keep their versions
    /// and transfers; new ones start empty (the shell reads their files,
    /// persisted state is restored by the caller with [`restore`](Self::restore));
    /// gone ones are forgotten, and so are gone peers.
    pub fn reconfigure(&mut self, now: Instant, peers: Vec<String>, entries: Vec<SyncSpec>) {
        let gone: Vec<String> = self
            .connected
            .iter()
            .filter(|p| !peers.contains(p))
            .cloned()
            .collect();
        for p in &gone {
            self.disconnected(now, p);
        }
        self.entries
            .retain(|name, _| entries.iter().any(|s| &s.name == name));
        let mut added = Vec::new();
        for spec in &entries {
            match self.entries.get_mut(&spec.name) {
                Some(e) => e.spec = spec.clone(),
                None => {
                    added.push(spec.name.clone());
                    self.entries
                        .insert(spec.name.clone(), Entry::new(spec.clone()));
                }
            }
        }
        self.cfg.peers = peers;
        self.cfg.entries = entries;
        for n in &added {
            let connected: Vec<String> = self.connected.iter().cloned().collect();
            for peer in connected {
                if let Some(e) = self.entries.get_mut(n) {
                    e.peers.insert(
                        peer.clone(),
                        PeerSync {
                            since: Some(now),
                            ..PeerSync::default()
                        },
                    );
                }
                let msg = self.have_msg(n);
                self.actions.push_back(SyncAction::Send { peer, msg });
            }
            if self.control {
                if let Some(e) = self.entries.get_mut(n) {
                    e.settle = Some(Settle {
                        until: now + self.cfg.settle_timeout,
                        pulling: None,
                        asked: None,
                    });
                }
                self.try_settle(now, n);
            }
        }
    }

    /// State read back at start (before the first `local_file`).
    pub fn restore(&mut self, name: &str, p: &Persisted) {
        let Some(e) = self.entries.get_mut(name) else {
            return;
        };
        let Some(d) = from_hex(&p.digest) else {
            return;
        };
        e.held = Some(Held {
            version: p.version,
            digest: d,
            content: None,
            produced: p.produced,
            committed: p.committed == Some(p.version),
            contested: false,
        });
        e.committed = p.committed;
    }

    /// The cluster's view: is this node the control node, under which epoch.
    pub fn set_role(&mut self, now: Instant, control: bool, epoch: u64) {
        let was = self.control;
        self.control = control;
        self.epoch = epoch;
        if control && !was {
            let until = now + self.cfg.settle_timeout;
            for e in self.entries.values_mut() {
                e.settle = Some(Settle {
                    until,
                    pulling: None,
                    asked: None,
                });
            }
            let names: Vec<String> = self.entries.keys().cloned().collect();
            for n in names {
                self.try_settle(now, &n);
            }
        } else if !control && was {
            for e in self.entries.values_mut() {
                e.settle = None;
            }
        }
    }

    /// The shell observed the file (at start, and whenever it changed).
    pub fn local_file(&mut self, now: Instant, name: &str, observed: Observed) {
        let Some(e) = self.entries.get_mut(name) else {
            return;
        };
        e.disk_digest = match &observed {
            Observed::Content(c) => Some(c.digest),
            _ => None,
        };
        if let (Some(h), Some(d), Observed::Content(c)) = (&mut e.held, e.disk_digest, &observed) {
            if h.digest == d && h.content.is_none() {
                h.content = Some(c.bytes.clone());
            }
        }
        e.disk = Some(observed);
        self.serve(now, name);
        self.note_local_edit(name);
    }

    pub fn connected(&mut self, now: Instant, peer: &str) {
        if !self.cfg.peers.iter().any(|p| p == peer) {
            return;
        }
        self.connected.insert(peer.to_string());
        let names: Vec<String> = self.entries.keys().cloned().collect();
        for n in &names {
            if let Some(e) = self.entries.get_mut(n) {
                e.peers.insert(
                    peer.to_string(),
                    PeerSync {
                        since: Some(now),
                        ..PeerSync::default()
                    },
                );
            }
            let msg = self.have_msg(n);
            self.actions.push_back(SyncAction::Send {
                peer: peer.to_string(),
                msg,
            });
        }
    }

    pub fn disconnected(&mut self, now: Instant, peer: &str) {
        self.connected.remove(peer);
        let names: Vec<String> = self.entries.keys().cloned().collect();
        for n in names {
            let Some(e) = self.entries.get_mut(&n) else {
                continue;
            };
            e.peers.remove(peer);
            if let Some(i) = e.incoming.as_ref().filter(|i| i.from == peer) {
                self.actions.push_back(SyncAction::Warn(format!(
                    "sync {n}: {peer} left during the transfer of version {} ({} of {} bytes); the file is unchanged, and an offer of the same content resumes the transfer",
                    i.version,
                    i.buf.len(),
                    i.size
                )));
            }
            if let Some(s) = &mut e.settle {
                if s.pulling.as_ref().is_some_and(|p| p.0 == peer) {
                    s.pulling = None;
                }
            }
            self.try_settle(now, &n);
            self.serve(now, &n);
        }
    }

    pub fn handle_message(&mut self, now: Instant, peer: &str, msg: Message) {
        if !self.connected.contains(peer) {
            return;
        }
        match msg {
            Message::SyncOffer {
                name,
                version,
                digest,
                size,
                chunks,
                window,
            } => self.on_offer(now, peer, &name, version, &digest, size, chunks, window),
            Message::SyncAck {
                name,
                version,
                next,
                error,
            } => self.on_ack(now, peer, &name, version, next, error),
            Message::SyncHave {
                name,
                version,
                digest,
                committed,
                ask,
                acks,
            } => {
                if ask {
                    self.reply_have(peer, &name);
                }
                let Some(e) = self.entries.get_mut(&name) else {
                    return;
                };
                let have = match (version, digest.as_deref().and_then(from_hex)) {
                    (Some(v), Some(d)) => Some((v, d)),
                    _ => None,
                };
                let current = e.held.as_ref().map(|h| (h.version, h.digest));
                if let Some(p) = e.peers.get_mut(peer) {
                    p.have = Some(have);
                    p.acks = acks;
                    if have.is_some() && have == current {
                        p.sending = None;
                        p.failed = None;
                    }
                }
                // A settling control node pulling from this peer a version
                // it no longer holds (renumbered meanwhile by another
                // control node, or replaced): the peer answers the request
                // with this SyncHave, never with the version. Pick the
                // newest version heard again instead of asking for one
                // that will not come.
                if let Some(s) = &mut e.settle {
                    let gone = s
                        .pulling
                        .as_ref()
                        .is_some_and(|(p, v)| p == peer && have.map(|h| h.0) != Some(*v));
                    if gone {
                        s.pulling = None;
                        s.asked = None;
                    }
                }
                // A control node that finds a peer ahead of it (it took
                // over before that peer was heard) settles again: it
                // fetches the newer version before serving anything.
                let ahead = have.map(|h| h.0) > e.held.as_ref().map(|h| h.version);
                if self.control && e.settle.is_none() && e.writing.is_none() && ahead {
                    e.settle = Some(Settle {
                        until: now + self.cfg.settle_timeout,
                        pulling: None,
                        asked: None,
                    });
                }
                // Only a peer holding these very bytes under this number
                // speaks for ours (in a split brain two control nodes can
                // each produce the same number with other bytes).
                let same = have.is_some_and(|(v, d)| {
                    e.held
                        .as_ref()
                        .is_some_and(|h| h.version == v && h.digest == d)
                });
                if let Some(h) = e.held.as_mut().filter(|_| same) {
                    h.committed |= committed == Some(h.version) && !h.contested;
                }
                if let Some(h) = e.held.as_mut() {
                    if have.is_some_and(|(v, d)| v == h.version && d != h.digest) {
                        h.contested = true;
                        h.committed = false;
                    }
                }
                if committed > e.committed {
                    e.committed = committed;
                    self.persist(&name);
                }
                self.fire_on_change(&name);
                self.try_settle(now, &name);
                self.serve(now, &name);
            }
            Message::SyncRequest { name, version } => {
                let held = self
                    .entries
                    .get(&name)
                    .and_then(|e| e.held.as_ref())
                    .filter(|h| h.version == version && h.content.is_some())
                    .is_some();
                if held {
                    self.push(now, &name, peer);
                } else {
                    let msg = self.have_msg(&name);
                    self.actions.push_back(SyncAction::Send {
                        peer: peer.to_string(),
                        msg,
                    });
                }
            }
            _ => {}
        }
    }

    /// A Data frame from `peer`.
    pub fn handle_data(&mut self, now: Instant, peer: &str, bytes: &[u8]) {
        let Some(chunk) = Chunk::parse(bytes) else {
            self.actions.push_back(SyncAction::Warn(format!(
                "sync: malformed data frame from {peer} ({} bytes); ignored",
                bytes.len()
            )));
            return;
        };
        let name = chunk.name.to_string();
        let Some(e) = self.entries.get_mut(&name) else {
            return;
        };
        let Some(inc) = e.incoming.as_mut() else {
            return;
        };
        if inc.from != peer || inc.version != chunk.version {
            return;
        }
        // Already held: sent again by a sender that resumed from 0 (an
        // older node) or before it heard where to resume.
        if chunk.index < inc.next && chunk.total == inc.chunks {
            return;
        }
        // A windowed sender whose earlier chunk was dropped (its channel's
        // data queue was full): keep what is held; with no ack coming, the
        // sender offers again and resumes from `next`.
        if inc.window && chunk.index > inc.next && chunk.total == inc.chunks {
            return;
        }
        let fits = inc.buf.len() as u64 + chunk.bytes.len() as u64 <= inc.size;
        if chunk.index != inc.next || chunk.total != inc.chunks || !fits {
            let why = if fits {
                format!(
                    "chunk {}/{} where {}/{} was due",
                    chunk.index, chunk.total, inc.next, inc.chunks
                )
            } else {
                format!("more than the {} bytes offered", inc.size)
            };
            let v = inc.version;
            e.incoming = None;
            self.actions.push_back(SyncAction::Warn(format!(
                "sync {name}: transfer of version {v} from {peer} broken ({why}); the file is unchanged"
            )));
            self.announce(&name);
            return;
        }
        inc.buf.extend_from_slice(chunk.bytes);
        inc.hasher.update(chunk.bytes);
        inc.next = inc.next.saturating_add(1);
        if inc.window {
            let ack = Message::SyncAck {
                name: name.clone(),
                version: inc.version,
                next: inc.next,
                error: None,
            };
            self.actions.push_back(SyncAction::Send {
                peer: peer.to_string(),
                msg: ack,
            });
        }
        if inc.next < inc.chunks {
            return;
        }
        let Some(inc) = e.incoming.take() else {
            return;
        };
        let got: Digest = inc.hasher.finalize().into();
        if inc.buf.len() as u64 != inc.size || got != inc.digest {
            self.actions.push_back(SyncAction::Warn(format!(
                "sync {name}: version {} from {peer} is corrupt ({} bytes, digest {}, expected {} bytes, digest {}); the file is unchanged",
                inc.version,
                inc.buf.len(),
                short(&got),
                inc.size,
                short(&inc.digest)
            )));
            self.announce(&name);
            return;
        }
        let content: Arc<[u8]> = inc.buf.into();
        if let Some(e) = self.entries.get_mut(&name) {
            e.write_from = inc.window.then(|| peer.to_string());
        }
        self.write(&name, inc.version, inc.digest, content, false);
        let _ = now;
    }

    /// The shell finished a `Write` (Err: the old file is intact).
    pub fn write_done(
        &mut self,
        now: Instant,
        name: &str,
        version: SyncVersion,
        result: Result<Option<String>, String>,
    ) {
        let Some(e) = self.entries.get_mut(name) else {
            return;
        };
        let Some((v, d, content, produced)) = e.writing.take() else {
            return;
        };
        if v != version {
            e.writing = Some((v, d, content, produced));
            return;
        }
        let from = e.write_from.take();
        match result {
            Ok(conflict) => {
                e.write_error = None;
                e.failed_write = None;
                let changed = e.disk_digest != Some(d);
                e.held = Some(Held {
                    version: v,
                    digest: d,
                    content: Some(content.clone()),
                    produced,
                    committed: e.committed == Some(v),
                    contested: false,
                });
                e.disk_digest = Some(d);
                e.disk = Some(Observed::Content(Content {
                    bytes: content.clone(),
                    digest: d,
                }));
                if let Some(path) = conflict {
                    self.actions.push_back(SyncAction::Warn(format!(
                        "sync {name}: the local copy differed from every synced version; kept as {path}"
                    )));
                }
                self.actions.push_back(SyncAction::Info(format!(
                    "sync {name}: version {v} written ({} bytes)",
                    content.len()
                )));
                if changed {
                    e.on_change_pending = Some(v);
                } else if e.on_change_pending.is_some_and(|p| p < v) {
                    e.on_change_pending = None;
                }
                self.fire_on_change(name);
                self.persist(name);
                self.announce(name);
            }
            Err(err) => {
                e.write_error = Some(err.clone());
                e.failed_write = Some((d, content));
                self.actions.push_back(SyncAction::Warn(format!(
                    "sync {name}: cannot write version {v}: {err}; the old file is intact"
                )));
                if let Some(peer) = from {
                    self.actions.push_back(SyncAction::Send {
                        peer,
                        msg: Message::SyncAck {
                            name: name.to_string(),
                            version: v,
                            next: 0,
                            error: Some(err),
                        },
                    });
                }
                self.announce(name);
            }
        }
        self.pulled(now, name, version);
    }

    /// `version` is now held (or its write failed): a pull of it is over;
    /// settle on and serve.
    fn pulled(&mut self, now: Instant, name: &str, version: SyncVersion) {
        if let Some(s) = self.entries.get_mut(name).and_then(|e| e.settle.as_mut()) {
            if s.pulling.as_ref().is_some_and(|p| p.1 == version) {
                s.pulling = None;
                // A pull starts once every peer was heard or the settle
                // time was up: nothing more to wait for (the deadline was
                // pushed out for the pull only).
                s.until = s.until.min(now);
            }
        }
        self.try_settle(now, name);
        self.serve(now, name);
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        let names: Vec<String> = self.entries.keys().cloned().collect();
        for n in names {
            self.ask_silent(now, &n);
            let expired = self
                .entries
                .get(&n)
                .and_then(|e| e.settle.as_ref())
                .is_some_and(|s| s.until <= now);
            self.ask_pull_again(now, &n);
            if expired {
                let Some(e) = self.entries.get_mut(&n) else {
                    continue;
                };
                let writing = e.writing.is_some();
                let pulled = e.settle.as_mut().and_then(|s| s.pulling.take());
                if let Some((peer, v)) = pulled {
                    self.actions.push_back(SyncAction::Warn(format!(
                        "sync {n}: version {v} from {peer} did not arrive in time; serving this node's own version"
                    )));
                    self.finish_settle(now, &n);
                } else if writing {
                    self.finish_settle(now, &n);
                } else {
                    // Not every peer answered in time: still fetch the
                    // newest version of those that did before serving.
                    self.try_settle(now, &n);
                }
            }
            self.serve(now, &n);
        }
    }

    /// Per entry, for `baton status`.
    /// Note, per entry and peer, whether the peer holds less than this
    /// node and since when, and when the committed version changed. The
    /// node calls it after every input, so the times are as fine as its
    /// inputs (heartbeats come every `heartbeat_interval`).
    pub fn note_lag(&mut self, now: Instant) {
        for e in self.entries.values_mut() {
            let held = e.held.as_ref().map(|h| h.version);
            for p in e.peers.values_mut() {
                let theirs = p.have.flatten().map(|h| h.0);
                let behind = held.is_some() && theirs < held;
                match (behind, p.behind_since) {
                    (true, None) => p.behind_since = Some(now),
                    (false, Some(_)) => p.behind_since = None,
                    _ => {}
                }
            }
            if let Some(c) = e.committed {
                if e.committed_at.is_none_or(|(v, _)| v != c) {
                    e.committed_at = Some((c, now));
                }
            }
        }
    }

    /// Per entry, for `baton status` (ages as of `now`).
    pub fn views(&self, now: Instant) -> Vec<SyncView> {
        let age = |t: Instant| now.saturating_duration_since(t).as_millis() as u64;
        self.entries
            .values()
            .map(|e| SyncView {
                bytes: e
                    .held
                    .as_ref()
                    .and_then(|h| h.content.as_ref())
                    .map(|c| c.len() as u64),
                committed_age_ms: e.committed_at.map(|(_, t)| age(t)),
                lag: e
                    .peers
                    .iter()
                    .map(|(n, p)| PeerLag {
                        peer: n.clone(),
                        behind: p.behind_since.is_some(),
                        lag_ms: p.behind_since.map_or(0, age),
                    })
                    .collect(),
                name: e.spec.name.clone(),
                version: e.held.as_ref().map(|h| h.version),
                digest: e.held.as_ref().map(|h| to_hex(&h.digest)),
                committed: e.committed,
                peers: e
                    .peers
                    .iter()
                    .map(|(n, p)| (n.clone(), p.have.flatten().map(|h| h.0)))
                    .collect(),
                locally_modified: match (&e.held, e.disk_digest) {
                    (Some(h), Some(d)) => h.digest != d,
                    (None, Some(_)) => false,
                    (Some(_), None) => matches!(e.disk, Some(Observed::Missing)),
                    (None, None) => false,
                },
                receiving: e
                    .incoming
                    .as_ref()
                    .map(|i| i.version)
                    .or(e.writing.as_ref().map(|w| w.0)),
                failing: e
                    .peers
                    .iter()
                    .filter_map(|(n, p)| {
                        let f = p.failed.as_ref()?;
                        Some(PeerFailure {
                            peer: n.clone(),
                            version: f.version,
                            reason: f.reason.clone(),
                            attempts: f.attempts,
                        })
                    })
                    .collect(),
                write_error: e.write_error.clone(),
            })
            .collect()
    }

    /// The version this node holds of `name`.
    pub fn version(&self, name: &str) -> Option<SyncVersion> {
        self.entries.get(name)?.held.as_ref().map(|h| h.version)
    }

    pub fn committed(&self, name: &str) -> Option<SyncVersion> {
        self.entries.get(name)?.committed
    }

    // ---- internals ------------------------------------------------------

    #[allow(clippy::too_many_arguments)]
    fn on_offer(
        &mut self,
        now: Instant,
        peer: &str,
        name: &str,
        version: SyncVersion,
        digest_hex: &str,
        size: u64,
        chunks: u32,
        window: bool,
    ) {
        let Some(e) = self.entries.get_mut(name) else {
            return;
        };
        let Some(d) = from_hex(digest_hex) else {
            return;
        };
        let ack = |next: u32| SyncAction::Send {
            peer: peer.to_string(),
            msg: Message::SyncAck {
                name: name.to_string(),
                version,
                next,
                error: None,
            },
        };
        let held_v = e.held.as_ref().map(|h| h.version);
        if Some(version) <= held_v {
            if let Some(h) = e
                .held
                .as_mut()
                .filter(|h| h.version == version && h.digest != d)
            {
                // The same number for other bytes (see `contested`); the
                // control node, told by our SyncHave, serves its bytes
                // under a new number.
                h.contested = true;
                h.committed = false;
            }
            self.reply_have(peer, name);
            return;
        }
        if let Some(w) = e.writing.as_ref().filter(|w| w.0 >= version) {
            // Whole and being written: nothing to send (a write that fails
            // is reported to a windowed sender).
            if window && w.0 == version {
                self.actions.push_back(ack(chunks));
            }
            return;
        }
        // The same content as a transfer that stopped (its sender left, or
        // went silent and offers again): resume it where it stopped.
        if let Some(inc) = e
            .incoming
            .as_mut()
            .filter(|i| i.digest == d && i.size == size && i.chunks == chunks)
        {
            inc.from = peer.to_string();
            inc.version = version;
            inc.window = window;
            let next = inc.next;
            if window {
                self.actions.push_back(ack(next));
            }
            return;
        }
        // Whole already, but the write failed (a full disk): write again,
        // with no transfer.
        if let Some((_, content)) = e.failed_write.clone().filter(|f| f.0 == d) {
            if window {
                self.actions.push_back(ack(chunks));
            }
            e.write_from = window.then(|| peer.to_string());
            self.write(name, version, d, content, false);
            return;
        }
        if size > e.spec.max_size {
            if e.warned_size != Some(size) {
                e.warned_size = Some(size);
                self.actions.push_back(SyncAction::Warn(format!(
                    "sync {name}: version {version} from {peer} is {size} bytes, above max_size {}; not applied",
                    e.spec.max_size
                )));
            }
            self.reply_have(peer, name);
            return;
        }
        // Same content under a newer number (a re-stamp by a new control
        // node): adopt the number; write only if the file itself differs.
        let same = e.held.as_ref().filter(|h| h.digest == d).cloned();
        if let Some(h) = same {
            if e.disk_digest == Some(d) {
                if let Some(hm) = &mut e.held {
                    hm.version = version;
                    hm.produced = false;
                    hm.committed = false;
                }
                e.incoming = None;
                self.persist(name);
                self.announce(name);
                // A version a settling control node was pulling has
                // arrived (by number only): the pull is done.
                self.pulled(now, name, version);
                return;
            }
            if let Some(content) = h.content {
                e.incoming = None;
                if window {
                    self.actions.push_back(ack(chunks));
                }
                e.write_from = window.then(|| peer.to_string());
                self.write(name, version, d, content, false);
                return;
            }
        }
        e.incoming = Some(Incoming {
            from: peer.to_string(),
            version,
            digest: d,
            size,
            chunks,
            next: 0,
            buf: Vec::with_capacity(size.min(e.spec.max_size) as usize),
            hasher: Sha256::new(),
            window,
        });
        if window {
            self.actions.push_back(ack(0));
        }
    }

    /// A peer's `SyncAck` of a windowed transfer from this node: more
    /// chunks go out as earlier ones land; an error is retried with
    /// backoff.
    fn on_ack(
        &mut self,
        now: Instant,
        peer: &str,
        name: &str,
        version: SyncVersion,
        next: u32,
        error: Option<String>,
    ) {
        let (retry, max) = (self.cfg.retry_interval, self.cfg.retry_max);
        let Some(p) = self
            .entries
            .get_mut(name)
            .and_then(|e| e.peers.get_mut(peer))
        else {
            return;
        };
        if let Some(reason) = error {
            let reason: String = reason.chars().take(200).collect();
            let attempts = p
                .failed
                .as_ref()
                .map_or(0, |f| f.attempts)
                .saturating_add(1);
            let wait = backoff(retry, max, attempts);
            p.sending = None;
            p.failed = Some(Failure {
                version,
                reason: reason.clone(),
                attempts,
                retry_at: now + wait,
                retried: false,
            });
            self.actions.push_back(SyncAction::Warn(format!(
                "sync {name}: {peer} could not write version {version}: {reason}; retrying in {} (attempt {attempts})",
                humantime::format_duration(wait)
            )));
            return;
        }
        let Some(s) = p.sending.as_mut().filter(|s| s.version == version) else {
            return;
        };
        let next = next.min(s.chunks);
        if !s.started {
            s.started = true;
            s.next = next;
        }
        s.acked = s.acked.max(next);
        s.next = s.next.max(s.acked);
        s.progress = now;
        self.fill_window(name, peer);
    }

    /// Send the chunks of a windowed transfer that the window allows.
    fn fill_window(&mut self, name: &str, peer: &str) {
        let chunk_size = self.cfg.chunk_size.max(1);
        let window = self.cfg.window.max(chunk_size);
        let Some(e) = self.entries.get_mut(name) else {
            return;
        };
        let Some(h) = &e.held else {
            return;
        };
        let Some(content) = h.content.clone() else {
            return;
        };
        let version = h.version;
        let Some(s) = e.peers.get_mut(peer).and_then(|p| p.sending.as_mut()) else {
            return;
        };
        if s.version != version || !s.started {
            return;
        }
        while s.next < s.chunks && (s.next - s.acked + 1) as usize * chunk_size <= window {
            let Some(bytes) = chunk_frame(name, version, s.next, s.chunks, &content, chunk_size)
            else {
                return;
            };
            s.next += 1;
            self.actions.push_back(SyncAction::SendData {
                peer: peer.to_string(),
                bytes,
            });
        }
    }

    /// Ask the shell to write; the outcome comes back via `write_done`.
    fn write(
        &mut self,
        name: &str,
        version: SyncVersion,
        d: Digest,
        content: Arc<[u8]>,
        produced: bool,
    ) {
        let Some(e) = self.entries.get_mut(name) else {
            return;
        };
        // The content the cluster last gave this node may be replaced
        // without a copy; anything else (a local edit, a version this node
        // produced that never committed, a file that predates the cluster)
        // is kept as a conflict.
        let keep_unless = e.held.as_ref().and_then(|h| {
            let own_uncommitted = h.produced && !h.committed;
            (!own_uncommitted && !h.contested).then_some(h.digest)
        });
        let conflict_epoch = e.held.as_ref().map_or(0, |h| h.version.epoch);
        e.writing = Some((version, d, content.clone(), produced));
        self.actions.push_back(SyncAction::Write {
            name: name.to_string(),
            version,
            content,
            keep_unless,
            conflict_epoch,
        });
    }

    fn note_local_edit(&mut self, name: &str) {
        if self.control {
            return;
        }
        let Some(e) = self.entries.get_mut(name) else {
            return;
        };
        let (Some(h), Some(d)) = (&e.held, e.disk_digest) else {
            return;
        };
        if h.digest != d && e.warned != Some(d) && e.writing.is_none() {
            e.warned = Some(d);
            self.actions.push_back(SyncAction::Warn(format!(
                "sync {name}: the file was edited on {}, which is not the control node; the edit is not propagated and is kept as a conflict copy when the next version arrives",
                self.cfg.node
            )));
        }
    }

    /// The control node's duty: turn a local edit into a version, push the
    /// current version to peers that lack it, record commits.
    fn serve(&mut self, now: Instant, name: &str) {
        if !self.control {
            return;
        }
        let Some(e) = self.entries.get_mut(name) else {
            return;
        };
        if e.settle.is_some() || e.writing.is_some() {
            return;
        }
        // A local edit (or the first content of a fresh cluster).
        match (&e.disk, e.disk_digest) {
            (Some(Observed::Content(c)), Some(d))
                if e.held.as_ref().map(|h| h.digest) != Some(d) =>
            {
                let size = c.bytes.len() as u64;
                if size > e.spec.max_size {
                    self.too_large(name, size);
                } else {
                    let version = next_version(e.held.as_ref().map(|h| h.version), self.epoch);
                    e.held = Some(Held {
                        version,
                        digest: d,
                        content: Some(c.bytes.clone()),
                        produced: true,
                        committed: false,
                        contested: false,
                    });
                    e.warned = None;
                    let size = c.bytes.len();
                    self.actions.push_back(SyncAction::Info(format!(
                        "sync {name}: version {version} ({size} bytes) from the local file"
                    )));
                    self.persist(name);
                    self.announce(name);
                }
            }
            (Some(Observed::TooLarge(size)), _) => {
                let size = *size;
                self.too_large(name, size);
            }
            _ => {}
        }
        // A peer holds other bytes under this node's number (both were
        // control nodes under one epoch in a split brain): serve ours under
        // a number after both, so that every node takes it.
        let epoch = self.epoch;
        let Some(e) = self.entries.get_mut(name) else {
            return;
        };
        let collided = e.held.as_ref().is_some_and(|h| {
            e.peers.values().any(|p| {
                p.have
                    .flatten()
                    .is_some_and(|(v, d)| v == h.version && d != h.digest)
            })
        });
        if let Some(h) = e.held.as_mut().filter(|h| collided && h.content.is_some()) {
            let old = h.version;
            h.version = next_version(Some(old), epoch);
            h.produced = true;
            h.committed = false;
            h.contested = false;
            let v = h.version;
            self.actions.push_back(SyncAction::Warn(format!(
                "sync {name}: a peer holds other content under version {old}; serving this node's as {v}"
            )));
            self.persist(name);
            self.announce(name);
        }
        let Some(e) = self.entries.get(name) else {
            return;
        };
        let Some(h) = &e.held else {
            return;
        };
        if h.content.is_none() {
            return;
        }
        let version = h.version;
        let behind: Vec<String> = e
            .peers
            .iter()
            .filter(|(_, p)| {
                let Some(have) = p.have else {
                    return false;
                };
                let current = have.is_some_and(|(v, d)| v == version && d == h.digest);
                let due = p
                    .push_due(version, self.cfg.retry_interval)
                    .is_none_or(|t| now >= t);
                !current && due
            })
            .map(|(n, _)| n.clone())
            .collect();
        for peer in behind {
            self.push(now, name, &peer);
        }
        self.update_commit(name);
    }

    /// A pull not answered within a retry interval is asked for again.
    fn ask_pull_again(&mut self, now: Instant, name: &str) {
        let retry = self.cfg.retry_interval;
        let Some(s) = self.entries.get_mut(name).and_then(|e| e.settle.as_mut()) else {
            return;
        };
        let Some((peer, version)) = s.pulling.clone() else {
            return;
        };
        if s.asked.is_some_and(|t| now < t + retry) || now >= s.until {
            return;
        }
        s.asked = Some(now);
        self.actions.push_back(SyncAction::Send {
            peer,
            msg: Message::SyncRequest {
                name: name.to_string(),
                version,
            },
        });
    }

    /// The control node asks the peers it has not heard from what they hold.
    fn ask_silent(&mut self, now: Instant, name: &str) {
        if !self.control {
            return;
        }
        let retry = self.cfg.retry_interval;
        let Some(e) = self.entries.get_mut(name) else {
            return;
        };
        let mut silent = Vec::new();
        for (n, p) in e.peers.iter_mut() {
            if p.ask_due(retry).is_some_and(|t| t <= now) {
                p.asked = Some(now);
                silent.push(n.clone());
            }
        }
        for peer in silent {
            let Message::SyncHave {
                name,
                version,
                digest,
                committed,
                acks,
                ..
            } = self.have_msg(name)
            else {
                continue;
            };
            self.actions.push_back(SyncAction::Send {
                peer,
                msg: Message::SyncHave {
                    name,
                    version,
                    digest,
                    committed,
                    ask: true,
                    acks,
                },
            });
        }
    }

    fn too_large(&mut self, name: &str, size: u64) {
        let Some(e) = self.entries.get_mut(name) else {
            return;
        };
        if e.warned_size != Some(size) {
            e.warned_size = Some(size);
            let max = e.spec.max_size;
            self.actions.push_back(SyncAction::Warn(format!(
                "sync {name}: the file is {size} bytes, above max_size {max}; not synced (raise max_size, at most 1GiB)"
            )));
        }
    }

    fn update_commit(&mut self, name: &str) {
        let Some(e) = self.entries.get_mut(name) else {
            return;
        };
        let Some(h) = &e.held else {
            return;
        };
        let all = e.peers.values().all(|p| {
            p.have
                .flatten()
                .is_some_and(|(v, d)| v == h.version && d == h.digest)
        });
        if all && e.committed < Some(h.version) {
            let v = h.version;
            e.committed = Some(v);
            if let Some(h) = &mut e.held {
                h.committed = true;
            }
            self.actions.push_back(SyncAction::Info(format!(
                "sync {name}: version {v} committed ({} peer(s))",
                e.peers.len()
            )));
            self.persist(name);
            self.announce(name);
            self.fire_on_change(name);
        }
    }

    /// Run `on_change` for the pending version of `name` once the held
    /// copy is that version and known committed (these very bytes).
    fn fire_on_change(&mut self, name: &str) {
        let Some(e) = self.entries.get_mut(name) else {
            return;
        };
        let Some(p) = e.on_change_pending else {
            return;
        };
        let ready = e
            .held
            .as_ref()
            .is_some_and(|h| h.version == p && h.committed && !h.contested);
        if ready {
            e.on_change_pending = None;
            self.actions.push_back(SyncAction::RunOnChange {
                name: name.to_string(),
                version: p,
            });
        }
    }

    /// Send the held version of `name` to `peer`: offer, then chunks.
    fn push(&mut self, now: Instant, name: &str, peer: &str) {
        let chunk_size = self.cfg.chunk_size.max(1);
        let Some(e) = self.entries.get_mut(name) else {
            return;
        };
        let Some(h) = &e.held else {
            return;
        };
        let Some(content) = h.content.clone() else {
            return;
        };
        let total = content.len().div_ceil(chunk_size).max(1);
        let Ok(chunks) = u32::try_from(total) else {
            return;
        };
        let version = h.version;
        let mut window = false;
        if let Some(p) = e.peers.get_mut(peer) {
            p.pushed = Some((version, now));
            if let Some(f) = &mut p.failed {
                f.retried = true;
            }
            // A peer that acknowledges gets chunks as its acks come (the
            // first names where to start); an older one gets them all.
            window = p.acks;
            p.sending = window.then_some(Sending {
                version,
                chunks,
                started: false,
                next: 0,
                acked: 0,
                progress: now,
            });
        }
        self.actions.push_back(SyncAction::Send {
            peer: peer.to_string(),
            msg: Message::SyncOffer {
                name: name.to_string(),
                version,
                digest: to_hex(&h.digest),
                size: content.len() as u64,
                chunks,
                window,
            },
        });
        if window {
            return;
        }
        for index in 0..chunks {
            match chunk_frame(name, version, index, chunks, &content, chunk_size) {
                Some(bytes) => self.actions.push_back(SyncAction::SendData {
                    peer: peer.to_string(),
                    bytes,
                }),
                None => return,
            }
        }
    }

    /// A new control node: once every connected peer has said what it
    /// holds (or the settle time is up), pull anything newer, then re-stamp.
    fn try_settle(&mut self, now: Instant, name: &str) {
        let Some(e) = self.entries.get_mut(name) else {
            return;
        };
        let Some(s) = &mut e.settle else {
            return;
        };
        if s.pulling.is_some() || e.writing.is_some() {
            return;
        }
        let all_heard = e.peers.values().all(|p| p.have.is_some());
        if !all_heard && now < s.until {
            return;
        }
        let mine = e.held.as_ref().map(|h| h.version);
        let best = e
            .peers
            .iter()
            .filter_map(|(n, p)| p.have.flatten().map(|(v, _)| (v, n.clone())))
            .filter(|(v, _)| Some(*v) > mine)
            .max();
        if let Some((v, peer)) = best {
            s.pulling = Some((peer.clone(), v));
            s.asked = Some(now);
            s.until = now + self.cfg.settle_timeout.max(self.cfg.retry_interval * 5);
            self.actions.push_back(SyncAction::Info(format!(
                "sync {name}: {peer} holds version {v}, newer than this node's; fetching it before serving"
            )));
            self.actions.push_back(SyncAction::Send {
                peer,
                msg: Message::SyncRequest {
                    name: name.to_string(),
                    version: v,
                },
            });
            return;
        }
        self.finish_settle(now, name);
    }

    fn finish_settle(&mut self, now: Instant, name: &str) {
        let epoch = self.epoch;
        let Some(e) = self.entries.get_mut(name) else {
            return;
        };
        if e.settle.take().is_none() {
            return;
        }
        e.incoming = None;
        if let Some(h) = &mut e.held {
            if h.version.epoch < epoch && h.content.is_some() {
                let old = h.version;
                h.version = SyncVersion { epoch, counter: 1 };
                h.produced = true;
                h.committed = false;
                let v = h.version;
                self.actions.push_back(SyncAction::Info(format!(
                    "sync {name}: control node under epoch {epoch}: serving version {v} (content of {old})"
                )));
                self.persist(name);
                self.announce(name);
            }
        }
        self.serve(now, name);
    }

    fn have_msg(&self, name: &str) -> Message {
        let e = self.entries.get(name);
        let h = e.and_then(|e| e.held.as_ref());
        Message::SyncHave {
            name: name.to_string(),
            version: h.map(|h| h.version),
            digest: h.map(|h| to_hex(&h.digest)),
            committed: e.and_then(|e| e.committed),
            ask: false,
            acks: true,
        }
    }

    fn reply_have(&mut self, peer: &str, name: &str) {
        let msg = self.have_msg(name);
        self.actions.push_back(SyncAction::Send {
            peer: peer.to_string(),
            msg,
        });
    }

    /// Tell every connected peer what this node holds now.
    fn announce(&mut self, name: &str) {
        let msg = self.have_msg(name);
        self.actions.push_back(SyncAction::Broadcast(msg));
    }

    fn persist(&mut self, name: &str) {
        let Some(e) = self.entries.get(name) else {
            return;
        };
        if let Some(h) = &e.held {
            self.actions.push_back(SyncAction::Persist {
                name: name.to_string(),
                state: Persisted {
                    version: h.version,
                    digest: to_hex(&h.digest),
                    produced: h.produced,
                    committed: e.committed,
                },
            });
        }
    }
}

/// Chunk `index` of `content` as a Data frame payload.
fn chunk_frame(
    name: &str,
    version: SyncVersion,
    index: u32,
    total: u32,
    content: &[u8],
    chunk_size: usize,
) -> Option<Vec<u8>> {
    let start = (index as usize).saturating_mul(chunk_size);
    let end = start.saturating_add(chunk_size).min(content.len());
    Chunk {
        name,
        version,
        index,
        total,
        bytes: content.get(start..end).unwrap_or(&[]),
    }
    .emit()
}

/// The version after `held` for a change under `epoch`.
pub fn next_version(held: Option<SyncVersion>, epoch: u64) -> SyncVersion {
    match held {
        Some(h) if h.epoch >= epoch => SyncVersion {
            epoch: h.epoch,
            counter: h.counter.saturating_add(1),
        },
        _ => SyncVersion { epoch, counter: 1 },
    }
}

fn short(d: &Digest) -> String {
    to_hex(d).chars().take(12).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(epoch: u64, counter: u64) -> SyncVersion {
        SyncVersion { epoch, counter }
    }

    #[test]
    fn chunk_round_trip_and_malformed() {
        let c = Chunk {
            name: "haproxy",
            version: v(3, 9),
            index: 1,
            total: 4,
            bytes: b"hello",
        };
        let bytes = c.emit().unwrap();
        assert_eq!(Chunk::parse(&bytes), Some(c));
        for n in 0..bytes.len() - 5 {
            assert_eq!(Chunk::parse(&bytes[..n]), None, "truncated at {n}");
        }
        let mut bad = bytes.clone();
        bad[0] = b'X';
        assert_eq!(Chunk::parse(&bad), None);
        let mut bad = bytes;
        bad[5] = 0xff; // not UTF-8
        assert_eq!(Chunk::parse(&bad), None);
        let long = "x".repeat(256);
        let c = Chunk {
            name: &long,
            version: v(1, 1),
            index: 0,
            total: 1,
            bytes: b"",
        };
        assert_eq!(c.emit(), None);
    }

    #[test]
    fn hex_round_trip() {
        let d = digest(b"abc");
        assert_eq!(
            to_hex(&d),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(from_hex(&to_hex(&d)), Some(d));
        assert_eq!(from_hex("zz"), None);
        assert_eq!(from_hex(&"é".repeat(32)), None);
    }

    /// A few sync cores wired to each other directly: messages and data
    /// frames delivered in order over the connected pairs, writes done at
    /// once, time moved by hand.
    struct Net {
        now: Instant,
        cores: Vec<SyncCore>,
        files: Vec<Option<Vec<u8>>>,
        links: BTreeSet<(usize, usize)>,
        queue: VecDeque<(usize, usize, Result<Message, Vec<u8>>)>,
        /// Messages and frames from this node are lost.
        mute: Option<usize>,
        /// (node, content) kept as conflict copies.
        conflicts: Vec<(usize, Vec<u8>)>,
        /// Data frames delivered, and the most ever queued on one link.
        data_delivered: usize,
        max_in_flight: usize,
        /// Cut every link once this many data frames were delivered.
        cut_after: Option<usize>,
        /// Writes on this node fail (a full disk).
        full: Option<usize>,
        /// The data frame sent as this one (counted from 1) is lost.
        lose_data: Option<usize>,
        data_sent: usize,
    }

    fn name(i: usize) -> String {
        format!("n{i}")
    }

    impl Net {
        fn new(nodes: usize) -> Net {
            let cores = (0..nodes)
                .map(|i| {
                    let peers = (0..nodes).filter(|&p| p != i).map(name).collect();
                    let spec = SyncSpec {
                        name: "cfg".into(),
                        max_size: 64 << 20,
                    };
                    SyncCore::new(SyncConfig::new(&name(i), peers, vec![spec]))
                })
                .collect();
            Net {
                now: Instant::now(),
                cores,
                files: vec![None; nodes],
                links: BTreeSet::new(),
                queue: VecDeque::new(),
                mute: None,
                conflicts: Vec::new(),
                data_delivered: 0,
                max_in_flight: 0,
                cut_after: None,
                full: None,
                lose_data: None,
                data_sent: 0,
            }
        }

        fn disconnect(&mut self, a: usize, b: usize) {
            self.links.remove(&(a, b));
            self.links.remove(&(b, a));
            let now = self.now;
            self.cores[a].disconnected(now, &name(b));
            self.cores[b].disconnected(now, &name(a));
        }

        /// Node `i` starts holding `version` of `content` (as persisted).
        fn holds(&mut self, i: usize, version: SyncVersion, content: &[u8], committed: bool) {
            let state = Persisted {
                version,
                digest: to_hex(&digest(content)),
                produced: false,
                committed: committed.then_some(version),
            };
            self.cores[i].restore("cfg", &state);
            self.edit(i, content);
        }

        fn edit(&mut self, i: usize, content: &[u8]) {
            self.files[i] = Some(content.to_vec());
            let now = self.now;
            self.cores[i].local_file(now, "cfg", Observed::Content(Content::new(content)));
            self.pump();
        }

        fn connect(&mut self, a: usize, b: usize) {
            self.links.insert((a, b));
            self.links.insert((b, a));
            let now = self.now;
            self.cores[a].connected(now, &name(b));
            self.cores[b].connected(now, &name(a));
            self.pump();
        }

        fn role(&mut self, i: usize, control: bool, epoch: u64) {
            let now = self.now;
            self.cores[i].set_role(now, control, epoch);
            self.pump();
        }

        fn advance(&mut self, d: Duration) {
            self.now += d;
            let now = self.now;
            for c in &mut self.cores {
                c.handle_timeout(now);
            }
            self.pump();
        }

        fn send(&mut self, from: usize, to: usize, what: Result<Message, Vec<u8>>) {
            if what.is_err() {
                self.data_sent += 1;
                if self.lose_data == Some(self.data_sent) {
                    return;
                }
            }
            if self.links.contains(&(from, to)) && self.mute != Some(from) {
                self.queue.push_back((from, to, what));
            }
        }

        /// Deliver everything until quiet (what is in flight on a pair that
        /// disconnected is lost).
        fn pump(&mut self) {
            loop {
                let mut did = false;
                for i in 0..self.cores.len() {
                    while let Some(a) = self.cores[i].poll_action() {
                        did = true;
                        self.act(i, a);
                    }
                }
                for (a, b) in self.links.clone() {
                    let queued = self
                        .queue
                        .iter()
                        .filter(|q| q.0 == a && q.1 == b && q.2.is_err())
                        .count();
                    self.max_in_flight = self.max_in_flight.max(queued);
                }
                if let Some((from, to, what)) = self.queue.pop_front() {
                    did = true;
                    if self.links.contains(&(from, to)) {
                        let now = self.now;
                        match what {
                            Ok(msg) => self.cores[to].handle_message(now, &name(from), msg),
                            Err(bytes) => {
                                self.cores[to].handle_data(now, &name(from), &bytes);
                                self.data_delivered += 1;
                                if self.cut_after == Some(self.data_delivered) {
                                    self.cut_after = None;
                                    self.disconnect(from, to);
                                }
                            }
                        }
                    }
                }
                if !did {
                    return;
                }
            }
        }

        fn act(&mut self, i: usize, a: SyncAction) {
            let peer_id = |p: &str| p[1..].parse::<usize>().expect("node name");
            match a {
                SyncAction::Send { peer, msg } => self.send(i, peer_id(&peer), Ok(msg)),
                SyncAction::Broadcast(msg) => {
                    for to in 0..self.cores.len() {
                        self.send(i, to, Ok(msg.clone()));
                    }
                }
                SyncAction::SendData { peer, bytes } => self.send(i, peer_id(&peer), Err(bytes)),
                SyncAction::Write {
                    name: n,
                    version,
                    content,
                    keep_unless,
                    ..
                } => {
                    let now = self.now;
                    if self.full == Some(i) {
                        let err = "No space left on device (os error 28)".to_string();
                        self.cores[i].write_done(now, &n, version, Err(err));
                        return;
                    }
                    if let Some(old) = self.files[i].take() {
                        let d = digest(&old);
                        if d != digest(&content) && Some(d) != keep_unless {
                            self.conflicts.push((i, old));
                        }
                    }
                    self.files[i] = Some(content.to_vec());
                    let now = self.now;
                    self.cores[i].write_done(now, &n, version, Ok(None));
                }
                _ => {}
            }
        }

        fn version(&self, i: usize) -> Option<SyncVersion> {
            self.cores[i].version("cfg")
        }
    }

    #[test]
    fn a_pull_answered_by_a_renumbering_ends_the_settle_at_once() {
        // n0 becomes the control node holding 1.1; n1 holds the same
        // bytes under a later number (2.1, a re-stamp n0 missed). n0 pulls
        // 2.1, which arrives as an offer of bytes it already has: n0 adopts
        // the number, and must then finish settling at once, not when the
        // pull times out.
        let mut net = Net::new(2);
        net.holds(0, v(1, 1), b"same", true);
        net.holds(1, v(2, 1), b"same", true);
        net.connect(0, 1);
        net.role(0, true, 3);
        assert_eq!(net.version(0), Some(v(3, 1)), "settled and re-stamped");
        assert_eq!(net.version(1), Some(v(3, 1)));
        assert_eq!(net.cores[0].committed("cfg"), Some(v(3, 1)));
    }

    #[test]
    fn a_control_node_asks_a_peer_whose_have_was_lost() {
        let mut net = Net::new(2);
        net.holds(0, v(1, 1), b"one", true);
        net.role(0, true, 1);
        // n1's SyncHave on connection is lost: n0 cannot know it is behind.
        net.mute = Some(1);
        net.connect(0, 1);
        net.mute = None;
        assert_eq!(net.version(1), None);
        net.advance(Duration::from_secs(1));
        assert_eq!(net.version(1), Some(v(1, 1)), "asked, answered, pushed");
        assert_eq!(net.files[1].as_deref(), Some(&b"one"[..]));
        assert_eq!(net.cores[0].committed("cfg"), Some(v(1, 1)));
    }

    #[test]
    fn a_settle_that_times_out_still_fetches_the_newest_version_heard() {
        // n0 takes over holding 1.1; n1 holds 2.1 (newer), n2 is silent.
        // When the settle time is up n0 must fetch 2.1 from n1 before it
        // re-stamps and serves, not serve its own older bytes.
        let mut net = Net::new(3);
        net.holds(0, v(1, 1), b"old", true);
        net.holds(1, v(2, 1), b"new", true);
        net.mute = Some(2);
        net.connect(0, 1);
        net.connect(0, 2);
        net.role(0, true, 3);
        assert_eq!(net.version(0), Some(v(1, 1)), "settling: waits for n2");
        net.advance(Duration::from_millis(500));
        assert_eq!(net.files[0].as_deref(), Some(&b"new"[..]));
        assert_eq!(net.version(0), Some(v(3, 1)));
        assert_eq!(net.files[1].as_deref(), Some(&b"new"[..]));
    }

    #[test]
    fn one_number_for_two_contents_is_served_again_under_a_new_number() {
        // Two control nodes under epoch 4 (a split brain) each produced
        // 4.1, with other bytes; n1's was committed on its side. n0 is the
        // control node when they meet: every node must end with n0's bytes
        // under one number, and n1 keeps its own as a conflict copy.
        let mut net = Net::new(2);
        net.holds(0, v(4, 1), b"from n0", false);
        net.holds(1, v(4, 1), b"from n1", true);
        net.role(0, true, 4);
        net.connect(0, 1);
        let now = net.version(0).expect("held");
        assert!(now > v(4, 1), "renumbered: {now}");
        assert_eq!(net.version(1), Some(now));
        assert_eq!(net.files[1].as_deref(), Some(&b"from n0"[..]));
        assert_eq!(net.cores[0].committed("cfg"), Some(now));
        assert_eq!(net.conflicts, vec![(1, b"from n1".to_vec())]);
    }

    #[test]
    fn a_pull_that_got_lost_is_asked_for_again() {
        // n0 takes over holding 1.1 and pulls n1's newer 2.1; the offer and
        // its chunks are lost (or the offer came after its chunks). n0
        // asks again a retry interval later instead of giving up after
        // the pull timeout and serving its older bytes.
        let mut net = Net::new(2);
        net.holds(0, v(1, 1), b"old", true);
        net.holds(1, v(2, 1), b"new", true);
        net.connect(0, 1);
        net.mute = Some(1);
        net.role(0, true, 3);
        net.mute = None;
        assert_eq!(net.version(0), Some(v(1, 1)));
        net.advance(Duration::from_secs(1));
        assert_eq!(net.files[0].as_deref(), Some(&b"new"[..]));
        assert_eq!(net.version(0), Some(v(3, 1)));
        assert_eq!(net.version(1), Some(v(3, 1)));
    }

    #[test]
    fn a_pull_of_a_version_the_peer_no_longer_holds_fetches_what_it_holds() {
        // n0 (holding nothing) heard n1 hold 3.4; before n0 takes over, n1
        // is renumbered to 4.1 (same bytes) by another, short-lived control
        // node, and n0 does not hear of it. n0 settles and asks n1 for 3.4;
        // n1 answers with its SyncHave of 4.1. n0 must fetch 4.1 at once,
        // not ask for 3.4 again until the pull times out (holding nothing,
        // serving nothing, meanwhile).
        let mut net = Net::new(2);
        net.holds(1, v(3, 4), b"data", true);
        net.connect(0, 1);
        let renumbered = Persisted {
            version: v(4, 1),
            digest: to_hex(&digest(b"data")),
            produced: false,
            committed: Some(v(3, 4)),
        };
        net.cores[1].restore("cfg", &renumbered);
        net.edit(1, b"data");
        net.role(0, true, 4);
        assert_eq!(net.version(0), Some(v(4, 1)), "pulled what n1 holds");
        assert_eq!(net.files[0].as_deref(), Some(&b"data"[..]));
        assert_eq!(net.cores[0].committed("cfg"), Some(v(4, 1)));
    }

    /// Content of `len` bytes that differs at every offset.
    fn big(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8) ^ ((i >> 8) as u8) ^ seed)
            .collect()
    }

    #[test]
    fn a_large_version_goes_out_under_the_window() {
        // 3 MiB in 256 KiB chunks under a 1 MiB window: never more than 4
        // chunks on a link, however the acks interleave.
        let mut net = Net::new(3);
        let content = big(3 << 20, 1);
        net.role(0, true, 1);
        net.connect(0, 1);
        net.connect(0, 2);
        net.edit(0, &content);
        assert_eq!(net.files[1].as_deref(), Some(&content[..]));
        assert_eq!(net.files[2].as_deref(), Some(&content[..]));
        assert_eq!(net.cores[0].committed("cfg"), net.version(0));
        assert_eq!(net.data_delivered, 2 * 12, "each chunk once");
        let window = DEFAULT_WINDOW / DEFAULT_CHUNK_SIZE;
        assert!(
            (1..=window).contains(&net.max_in_flight),
            "{} chunks in flight, window {window}",
            net.max_in_flight
        );
    }

    #[test]
    fn a_transfer_cut_short_resumes_where_it_stopped() {
        // The link drops after 5 of 8 chunks; once back, n1 answers the
        // offer with "from 5" and only chunks 5..8 travel again.
        let mut net = Net::new(2);
        let content = big(2 << 20, 2);
        net.role(0, true, 1);
        net.connect(0, 1);
        net.cut_after = Some(5);
        net.edit(0, &content);
        assert_eq!(net.files[1], None, "cut short");
        assert_eq!(net.data_delivered, 5);
        net.connect(0, 1);
        assert_eq!(net.files[1].as_deref(), Some(&content[..]));
        assert_eq!(net.data_delivered, 8, "resumed at chunk 5, nothing resent");
        assert_eq!(net.cores[0].committed("cfg"), net.version(0));
    }

    #[test]
    fn a_silent_transfer_is_offered_again_and_resumes() {
        // n1's answer to the offer is lost: n0 offers again after a retry
        // interval without progress (not before), and the transfer runs.
        let mut net = Net::new(2);
        let content = big(2 << 20, 3);
        net.role(0, true, 1);
        net.connect(0, 1);
        net.mute = Some(1);
        net.edit(0, &content);
        net.mute = None;
        assert_eq!(net.files[1], None);
        let before = net.data_delivered;
        net.advance(Duration::from_millis(999));
        assert_eq!(net.data_delivered, before, "no retry before the interval");
        net.advance(Duration::from_millis(1));
        assert_eq!(net.files[1].as_deref(), Some(&content[..]));
        assert_eq!(net.data_delivered, 8, "each chunk once");
    }

    #[test]
    fn a_chunk_lost_on_the_way_is_sent_again_from_where_the_peer_stands() {
        // The third chunk never arrives (a data queue was full): n1 keeps
        // chunks 0..2 and ignores the later ones; n0, without an ack for
        // a retry interval, offers again and sends from chunk 2.
        let mut net = Net::new(2);
        let content = big(2 << 20, 5);
        net.role(0, true, 1);
        net.connect(0, 1);
        net.lose_data = Some(3);
        net.edit(0, &content);
        assert_eq!(net.files[1], None);
        // Delivered so far: chunks 0, 1, 3, 4, 5 (the window refilled by
        // the acks of 0 and 1); n1 holds 0..2.
        assert_eq!(net.data_delivered, 5);
        net.advance(Duration::from_secs(1));
        assert_eq!(net.files[1].as_deref(), Some(&content[..]));
        assert_eq!(net.data_delivered, 5 + 6, "resumed at chunk 2");
        assert_eq!(net.cores[0].committed("cfg"), net.version(0));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let s = Duration::from_secs;
        assert_eq!(backoff(s(1), s(30), 1), s(1));
        assert_eq!(backoff(s(1), s(30), 2), s(2));
        assert_eq!(backoff(s(1), s(30), 3), s(4));
        assert_eq!(backoff(s(1), s(30), 6), s(30));
        assert_eq!(backoff(s(1), s(30), u32::MAX), s(30));
    }

    #[test]
    fn a_peer_that_cannot_write_is_retried_with_backoff_and_status_says_why() {
        let mut net = Net::new(2);
        let content = big(1 << 20, 4);
        net.role(0, true, 1);
        net.connect(0, 1);
        net.full = Some(1);
        net.edit(0, &content);
        let failing = |net: &Net| net.cores[0].views(Instant::now())[0].failing.clone();
        let f = failing(&net);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].peer, "n1");
        assert!(f[0].reason.contains("No space left"), "{}", f[0].reason);
        assert_eq!(f[0].attempts, 1);
        let here = net.cores[1].views(Instant::now())[0].write_error.clone();
        assert!(here.is_some_and(|e| e.contains("No space left")));
        let sent = net.data_delivered;
        assert_eq!(sent, 4);
        // Retried after 1 s, then 2 s, then 4 s: the content is whole on
        // n1, so a retry transfers nothing.
        let attempts = |net: &Net| failing(net).first().map_or(0, |f| f.attempts);
        net.advance(Duration::from_secs(1));
        assert_eq!(attempts(&net), 2);
        net.advance(Duration::from_millis(1999));
        assert_eq!(attempts(&net), 2, "backoff: 2 s after the second attempt");
        net.advance(Duration::from_millis(1));
        assert_eq!(attempts(&net), 3);
        net.advance(Duration::from_secs(3));
        assert_eq!(attempts(&net), 3);
        net.advance(Duration::from_secs(1));
        assert_eq!(attempts(&net), 4);
        assert_eq!(net.data_delivered, sent, "retries resend no chunk");
        // Space again: the next retry writes, and the failure clears.
        net.full = None;
        net.advance(Duration::from_secs(8));
        assert_eq!(net.files[1].as_deref(), Some(&content[..]));
        assert!(failing(&net).is_empty());
        assert_eq!(net.cores[1].views(Instant::now())[0].write_error, None);
        assert_eq!(net.cores[0].committed("cfg"), net.version(0));
    }

    #[test]
    fn next_version_orders_after_the_held_one() {
        assert_eq!(next_version(None, 2), v(2, 1));
        assert_eq!(next_version(Some(v(2, 1)), 2), v(2, 2));
        assert_eq!(next_version(Some(v(1, 7)), 3), v(3, 1));
        assert_eq!(next_version(Some(v(4, 2)), 3), v(4, 3));
    }
}
