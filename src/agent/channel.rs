//! The cluster-channel transport: an encrypted and authenticated TCP full
//! mesh between the configured baton nodes.
//!
//! This module is the transport: it owns the sockets (listening, dialing with
//! backoff), the per-peer connection state and counters, and the timers. The
//! protocol of each connection (Hellos, keys, sequence numbers, the proof
//! of the key, the hello and idle timeouts) is a sans-IO
//! [`crate::cluster::session::Session`] that this module feeds with bytes
//! and the time, and whose output it writes. It does not decide anything:
//! it delivers [`ChannelEvent`]s to the daemon and sends what the daemon
//! gives it. Frames are [`crate::wire::frame`]; messages are
//! [`crate::cluster::Message`].
//!
//! ```text
//!   dialer (name sorts lower)                 acceptor
//!   -------------------------                 --------
//!   Hello{name, nonce_d}       ---------->    is name a peer that dials me?
//!                              <----------    Hello{name, nonce_a}, Proof
//!   both: k = SessionKey::derive(cluster_key, dialer, nonce_d, acceptor, nonce_a)
//!         (dialer->acceptor, acceptor->dialer) = k.split(); seq starts at 1
//!   Proof opens: acceptor is Up
//!   first daemon message       ---------->    opens: dialer is Up
//!                              <----------    daemon messages
//! ```
//!
//! Rules:
//! - One connection per pair: the lower name dials, the other accepts. An
//!   accepted Hello from an unknown name or from a peer that should accept
//!   instead is refused and counted.
//! - A peer is Up only once a frame with a valid tag has arrived from it: a
//!   node without the key never becomes Up and never has a message
//!   delivered. The acceptor proves the key first (its Proof); the dialer
//!   sends nothing before that Proof opened, and the acceptor nothing more
//!   before the dialer's first frame opened, so a stranger at either end
//!   receives nothing it can open. A new connection in a peer's name
//!   replaces an Up one only once it, too, has proven the key.
//! - Every frame after the Hellos is encrypted (ChaCha20-Poly1305, see
//!   [`crate::wire::frame`]): on the wire are the Hellos (names, nonces,
//!   version) and each frame's type, length and sequence number.
//! - Any rejected frame (bad CRC, bad tag, out of order...) or undecodable
//!   message closes the connection, is counted per peer and reason, and is
//!   logged at most once per peer and minute.
//! - A connection with no frame for `dead_after` is closed (heartbeats come
//!   from the daemon; this module only watches for silence).
//! - Every close this end makes on purpose sends a goodbye (Close frame)
//!   first, after whatever frame was half written. So when the Up
//!   connection ends with no goodbye from the peer (end of stream, reset),
//!   the peer's process died: `Down { died: true }`. Silence, timeouts and
//!   the close of a connection that is not the Up one never say that.
//! - Sends never block. Each connection has two bounded queues: messages
//!   (heartbeats, takeovers...) and data (sync chunks). The writer always
//!   takes a waiting message before the next data frame, so a message
//!   waits behind at most one data frame and what the kernel holds unsent,
//!   which `TCP_NOTSENT_LOWAT` keeps small. A peer whose message queue is
//!   full is disconnected (it cannot keep up: treat it as down); data
//!   beyond the data queue's bound is refused (`DataQueueFull`) and the
//!   connection stays: sync sends under a window and resumes.
//!
//! Tasks are `Send` and spawned with `tokio::spawn`, so the channel runs on
//! a current_thread runtime (inside or outside a `LocalSet`) or a
//! multi-threaded one. Dropping the last [`ChannelHandle`] stops every task;
//! open connections are told `Close("shutdown")` first.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info, warn};

use crate::cluster::session::{
    Outbound, Rejection, Session, SessionConfig, SessionEnd, SessionEvent,
};
use crate::cluster::Message;
use crate::wire::frame::{DEFAULT_MAX_PAYLOAD, NONCE_LEN};

/// How often a rejection is logged, at most, per peer.
const WARN_EVERY: Duration = Duration::from_secs(60);
/// Read chunk: bounds what the decoder holds beyond one frame.
const READ_CHUNK: usize = 16 * 1024;
/// Most connections that have not yet proven the key, all peers together.
const MAX_UNPROVEN: usize = 64;
/// How long a goodbye (Close frame) may take before the socket is dropped.
const CLOSE_GRACE: Duration = Duration::from_millis(100);
/// Unsent bytes the kernel may hold for a connection before the socket
/// stops taking more: what a message can find ahead of it there.
const NOTSENT_LOWAT: u32 = 128 * 1024;

#[derive(Debug, Clone)]
pub struct ChannelOptions {
    /// Close a connection that has delivered no frame for this long.
    /// Default 300 ms: 3 x the default heartbeat interval.
    pub dead_after: Duration,
    /// Connecting and the Hello exchange must finish within this.
    pub hello_timeout: Duration,
    /// Largest accepted payload.
    pub max_payload: usize,
    /// Messages queued per connection before the peer counts as too slow.
    pub queue_len: usize,
    /// Data frame bytes queued per connection; more is refused (and the
    /// connection kept).
    pub data_queue_bytes: usize,
    /// Reconnect delay: starts here, doubles per failure, capped, jittered
    /// (each wait is drawn between half and all of the current delay).
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// Capacity of the event queue to the daemon. When full, receiving
    /// waits (TCP pushes back on the peer); nothing is dropped.
    pub event_queue: usize,
    /// Refuse a Hello whose source address is not the configured address
    /// of the peer it names (`wrong_source`).
    pub check_peer_source: bool,
}

impl Default for ChannelOptions {
    fn default() -> Self {
        ChannelOptions {
            dead_after: Duration::from_millis(300),
            hello_timeout: Duration::from_secs(1),
            max_payload: DEFAULT_MAX_PAYLOAD,
            queue_len: 1024,
            data_queue_bytes: 8 << 20,
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(2),
            event_queue: 1024,
            check_peer_source: true,
        }
    }
}

impl ChannelOptions {
    /// Defaults with `dead_after` = 3 x `heartbeat_interval`.
    pub fn with_heartbeat(heartbeat_interval: Duration) -> Self {
        ChannelOptions {
            dead_after: heartbeat_interval * 3,
            ..Default::default()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelEvent {
    /// The peer proved the key: its messages follow.
    Up {
        peer: String,
    },
    /// The peer's connection ended (or a connection attempt in its name was
    /// rejected while it was not Up). `reason` starts with the counter name
    /// for rejections (`bad_tag: ...`). `died`: the peer's kernel closed
    /// the Up connection (end of stream or reset) without a goodbye first:
    /// its process is gone (every deliberate close sends a Close frame).
    Down {
        peer: String,
        reason: String,
        died: bool,
    },
    Message {
        peer: String,
        msg: Message,
    },
    Data {
        peer: String,
        bytes: Vec<u8>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStatus {
    pub name: String,
    pub addr: SocketAddr,
    /// Up: the handshake is done and the peer has proven the key.
    pub connected: bool,
    /// When the current connection came Up (None while down).
    pub since: Option<Instant>,
    /// When the last valid frame arrived from the peer.
    pub last_frame: Option<Instant>,
    /// Rejections in this peer's name: frame error reasons
    /// ([`crate::wire::frame::FrameError::reason`]), `bad_message`,
    /// `wrong_direction`.
    pub rejected: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SendError {
    #[error("{0}: not a configured peer")]
    UnknownPeer(String),
    #[error("{0}: not connected")]
    NotConnected(String),
    #[error("{peer}: payload of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        peer: String,
        len: usize,
        max: usize,
    },
    #[error("{0}: send queue full, connection dropped")]
    QueueFull(String),
    #[error("{0}: data queue full, data frame not sent")]
    DataQueueFull(String),
}

/// Starts the channel.
pub struct Channel;

impl Channel {
    /// Bind `listen`, start dialing the peers whose names sort above `me`
    /// and accepting the others. Must be called inside a tokio runtime.
    /// `peers` must not contain `me`; duplicate names keep the last address.
    pub fn start(
        me: &str,
        listen: SocketAddr,
        peers: Vec<(String, SocketAddr)>,
        key: Vec<u8>,
        opts: ChannelOptions,
    ) -> io::Result<(ChannelHandle, mpsc::Receiver<ChannelEvent>)> {
        let listener = bind_listener(listen)?;
        let (events, rx) = mpsc::channel(opts.event_queue.max(1));
        let (stop_tx, stop_rx) = watch::channel(());
        let peers: BTreeMap<String, Arc<PeerSlot>> = peers
            .into_iter()
            .filter(|(name, _)| name != me)
            .map(|(name, addr)| (name.clone(), Arc::new(PeerSlot::new(me, name, addr))))
            .collect();
        let (retire_tx, retire_rx) = oneshot::channel();
        let shared = Arc::new(Shared {
            me: me.to_string(),
            listen: Mutex::new(listen),
            retire: Mutex::new(Some(retire_tx)),
            keys: Mutex::new(KeyRing {
                current: key,
                old: None,
                generation: 0,
            }),
            opts,
            peers: Mutex::new(peers),
            rt: tokio::runtime::Handle::current(),
            unknown: Mutex::new(Unknown::default()),
            events,
            next_conn: AtomicU64::new(1),
            unproven: Mutex::default(),
            stop: stop_rx,
        });
        tokio::spawn(accept_loop(shared.clone(), listener, retire_rx));
        for slot in shared.slots().into_iter().filter(|s| s.dials) {
            tokio::spawn(dial_loop(shared.clone(), slot));
        }
        let handle = ChannelHandle {
            inner: Arc::new(Inner {
                shared,
                _stop: stop_tx,
            }),
        };
        Ok((handle, rx))
    }
}

/// The daemon's side of the channel. Cheap to clone; the channel stops when
/// the last clone is dropped.
#[derive(Clone)]
pub struct ChannelHandle {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    /// Dropped with the last handle: every task sees the sender go away.
    _stop: watch::Sender<()>,
}

impl ChannelHandle {
    /// Queue a message for one peer. Never blocks. A dialer's connection
    /// takes messages as soon as the Hellos are exchanged (its first
    /// message is what makes it Up at the other end); an accepted one only
    /// once the peer is Up.
    pub fn send(&self, peer: &str, msg: &Message) -> Result<(), SendError> {
        let payload: Arc<[u8]> = msg.to_json().into();
        self.queue(peer, Outbound::Message, payload)
    }

    /// Queue a message for every connected peer (see [`send`](Self::send)
    /// for which connections take messages). Returns how many took it.
    pub fn broadcast(&self, msg: &Message) -> usize {
        let payload: Arc<[u8]> = msg.to_json().into();
        let names: Vec<String> = self
            .inner
            .shared
            .slots()
            .iter()
            .map(|s| s.name.clone())
            .collect();
        names
            .iter()
            .filter(|p| self.queue(p, Outbound::Message, payload.clone()).is_ok())
            .count()
    }

    /// Queue opaque bytes (a Data frame) for one peer.
    pub fn send_data(&self, peer: &str, bytes: Vec<u8>) -> Result<(), SendError> {
        self.queue(peer, Outbound::Data, bytes.into())
    }

    fn queue(&self, peer: &str, kind: Outbound, payload: Arc<[u8]>) -> Result<(), SendError> {
        let shared = &self.inner.shared;
        let slot = shared
            .slot(peer)
            .ok_or_else(|| SendError::UnknownPeer(peer.to_string()))?;
        if payload.len() > shared.opts.max_payload {
            return Err(SendError::TooLarge {
                peer: peer.to_string(),
                len: payload.len(),
                max: shared.opts.max_payload,
            });
        }
        let mut st = lock(&slot.state);
        let Some(conn) = &st.active else {
            return Err(SendError::NotConnected(peer.to_string()));
        };
        if kind == Outbound::Data {
            let len = payload.len();
            let queued = conn.data_bytes.load(Ordering::Relaxed);
            if queued + len > shared.opts.data_queue_bytes.max(len) {
                return Err(SendError::DataQueueFull(peer.to_string()));
            }
            return match conn.data.try_send(Outgoing { kind, payload }) {
                Ok(()) => {
                    conn.data_bytes.fetch_add(len, Ordering::Relaxed);
                    Ok(())
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    st.active = None;
                    Err(SendError::NotConnected(peer.to_string()))
                }
                Err(mpsc::error::TrySendError::Full(_)) => {
                    Err(SendError::DataQueueFull(peer.to_string()))
                }
            };
        }
        match conn.tx.try_send(Outgoing { kind, payload }) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Closed(_)) => {
                st.active = None;
                Err(SendError::NotConnected(peer.to_string()))
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                conn.kill.send_replace(Some("send queue full"));
                st.active = None;
                Err(SendError::QueueFull(peer.to_string()))
            }
        }
    }

    /// Every configured peer, in name order.
    pub fn peers(&self) -> Vec<PeerStatus> {
        self.inner
            .shared
            .slots()
            .iter()
            .map(|slot| {
                let st = lock(&slot.state);
                PeerStatus {
                    name: slot.name.clone(),
                    addr: slot.addr,
                    connected: st.up.is_some(),
                    since: st.since,
                    last_frame: st.last_frame,
                    rejected: st.rejected.clone(),
                }
            })
            .collect()
    }

    /// Connections refused before a configured peer could be named:
    /// `unknown_peer`, `no_hello`, `hello_timeout`, `too_many_unproven`,
    /// and frame error reasons of the Hello.
    pub fn unknown_rejected(&self) -> BTreeMap<String, u64> {
        lock(&self.inner.shared.unknown).counts.clone()
    }

    /// The address the channel listens on (useful when bound to port 0).
    pub fn listen_addr(&self) -> SocketAddr {
        *lock(&self.inner.shared.listen)
    }

    /// A reload's new listen address: bind it, then stop accepting on the
    /// old one. Connections up stay up; new dials leave from the new
    /// address. On error nothing changed. Callable from any thread.
    pub fn rebind(&self, listen: SocketAddr) -> io::Result<()> {
        let shared = &self.inner.shared;
        let listener = {
            let _in = shared.rt.enter();
            bind_listener(listen)?
        };
        let (retire_tx, retire_rx) = oneshot::channel();
        if let Some(old) = lock(&shared.retire).replace(retire_tx) {
            let _ = old.send(());
        }
        *lock(&shared.listen) = listen;
        shared
            .rt
            .spawn(accept_loop(shared.clone(), listener, retire_rx));
        info!("cluster: listening on {listen}");
        Ok(())
    }

    /// A reload's peer list. Peers gone (or moved to another address) are
    /// closed (`Close("removed")`) and forgotten; new ones are dialed or
    /// awaited; the others keep their connections. Callable from any
    /// thread (new dialers run on the channel's runtime). Returns the
    /// names added and removed.
    pub fn set_peers(&self, peers: Vec<(String, SocketAddr)>) -> (Vec<String>, Vec<String>) {
        let shared = &self.inner.shared;
        let mut added = Vec::new();
        let mut removed = Vec::new();
        {
            let mut map = lock(&shared.peers);
            let gone: Vec<String> = map
                .values()
                .filter(|s| !peers.iter().any(|(n, a)| *n == s.name && *a == s.addr))
                .map(|s| s.name.clone())
                .collect();
            for name in gone {
                if let Some(slot) = map.remove(&name) {
                    slot.remove();
                    removed.push(name);
                }
            }
            for (name, addr) in peers {
                if name == shared.me || map.contains_key(&name) {
                    continue;
                }
                let slot = Arc::new(PeerSlot::new(&shared.me, name.clone(), addr));
                if slot.dials {
                    shared.rt.spawn(dial_loop(shared.clone(), slot.clone()));
                }
                map.insert(name.clone(), slot);
                added.push(name);
            }
        }
        (added, removed)
    }

    /// A reload's new cluster key. Peers proving either key are accepted
    /// for `grace`; this node proves the new one, or the old one to a
    /// peer that still holds only that. Connections keep running; when the
    /// grace ends, those keyed with the old key are closed (and redialed
    /// with the new one). Callable from any thread.
    /// Returns false (and changes nothing) when `key` is the current key.
    pub fn rotate_key(&self, key: Vec<u8>, grace: Duration) -> bool {
        let shared = self.inner.shared.clone();
        let generation = {
            let mut ring = lock(&shared.keys);
            if ring.current == key {
                return false;
            }
            let old = std::mem::replace(&mut ring.current, key);
            ring.old = Some((old, ring.generation));
            ring.generation += 1;
            ring.generation
        };
        // Every connection up now was keyed with what just became the old
        // key: its peer holds that one for sure.
        for slot in shared.slots() {
            lock(&slot.state).prefer_old = true;
        }
        info!(
            "cluster: new key; the old one is accepted for {}",
            humantime::format_duration(grace)
        );
        let rt = shared.rt.clone();
        rt.spawn(async move {
            tokio::select! {
                _ = stopped(shared.stop.clone()) => return,
                _ = tokio::time::sleep(grace) => {}
            }
            let old_generation = {
                let mut ring = lock(&shared.keys);
                if ring.generation != generation {
                    // A newer rotation took over this one's grace.
                    return;
                }
                ring.old.take().map(|(_, g)| g)
            };
            let Some(old_generation) = old_generation else {
                return;
            };
            info!("cluster: key grace over; the old key is no longer accepted");
            for slot in shared.slots() {
                let mut st = lock(&slot.state);
                st.prefer_old = false;
                if let Some(a) = st
                    .active
                    .as_ref()
                    .filter(|a| a.key_generation <= old_generation)
                {
                    a.kill.send_replace(Some("key rotated"));
                }
            }
        });
        true
    }
}

struct Shared {
    me: String,
    listen: Mutex<SocketAddr>,
    /// Stops the accept loop of the current listener (a reload rebinds).
    retire: Mutex<Option<oneshot::Sender<()>>>,
    keys: Mutex<KeyRing>,
    opts: ChannelOptions,
    peers: Mutex<BTreeMap<String, Arc<PeerSlot>>>,
    /// The runtime the channel's tasks run on (a reload's new dialers and
    /// timers go there too, whichever thread asks).
    rt: tokio::runtime::Handle,
    unknown: Mutex<Unknown>,
    events: mpsc::Sender<ChannelEvent>,
    next_conn: AtomicU64,
    unproven: Mutex<UnprovenTable>,
    stop: watch::Receiver<()>,
}

/// The cluster key, and during a rotation's grace the old one.
struct KeyRing {
    current: Vec<u8>,
    /// The old key and its generation, until the grace ends.
    old: Option<(Vec<u8>, u64)>,
    /// The current key's generation (0 at start, raised by each rotation).
    generation: u64,
}

#[derive(Default)]
struct Unknown {
    counts: BTreeMap<String, u64>,
    last_warn: Option<Instant>,
}

struct PeerSlot {
    name: String,
    addr: SocketAddr,
    /// This node dials the peer (its name sorts lower than the peer's).
    dials: bool,
    state: Mutex<PeerState>,
    /// Held while a state change and its event are published, so that the
    /// daemon sees Up, messages, Down in the order they happened even when
    /// an old and a new connection overlap.
    order: tokio::sync::Mutex<()>,
    /// A reload removed the peer: no more dialing, no connection goes Up.
    removed: std::sync::atomic::AtomicBool,
}

impl PeerSlot {
    fn new(me: &str, name: String, addr: SocketAddr) -> PeerSlot {
        PeerSlot {
            dials: me < name.as_str(),
            name,
            addr,
            state: Mutex::new(PeerState::default()),
            order: tokio::sync::Mutex::new(()),
            removed: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn is_removed(&self) -> bool {
        self.removed.load(Ordering::Relaxed)
    }

    /// Forget the peer: its connection is closed with a goodbye.
    fn remove(&self) {
        self.removed.store(true, Ordering::Relaxed);
        let mut st = lock(&self.state);
        if let Some(a) = st.active.take() {
            a.kill.send_replace(Some("removed"));
        }
        info!("cluster: peer {} ({}) removed", self.name, self.addr);
    }
}

#[derive(Default)]
struct PeerState {
    /// The connection that is Up, by id.
    up: Option<u64>,
    /// The connection that sends go to.
    active: Option<ConnRef>,
    since: Option<Instant>,
    last_frame: Option<Instant>,
    rejected: BTreeMap<String, u64>,
    last_warn: Option<Instant>,
    /// During a key rotation's grace: prove the old key to this peer when
    /// it dials (it has not shown it holds the new one).
    prefer_old: bool,
}

struct ConnRef {
    id: u64,
    /// The generation of the key the connection was keyed with.
    key_generation: u64,
    tx: mpsc::Sender<Outgoing>,
    /// Data frames, written only when no message waits; and their bytes.
    data: mpsc::Sender<Outgoing>,
    data_bytes: Arc<std::sync::atomic::AtomicUsize>,
    kill: Arc<watch::Sender<Option<&'static str>>>,
}

struct Outgoing {
    kind: Outbound,
    payload: Arc<[u8]>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not take the channel down with it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Resolves when the channel is stopped (the last handle was dropped).
async fn stopped(mut stop: watch::Receiver<()>) {
    while stop.changed().await.is_ok() {}
}

fn random_bytes<const N: usize>() -> io::Result<[u8; N]> {
    let mut out = [0u8; N];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut out)?;
    Ok(out)
}

/// A uniformly drawn duration in [d/2, d] (jitter: nodes that lost a peer
/// together do not all redial in step).
fn jitter(d: Duration) -> Duration {
    use std::hash::BuildHasher;
    let r = std::collections::hash_map::RandomState::new().hash_one(Instant::now());
    let half = d / 2;
    let extra = half.as_nanos() as u64;
    half + Duration::from_nanos(if extra == 0 { 0 } else { r % (extra + 1) })
}

/// Why a connection ended: the session's own reasons, and the transport's.
enum End {
    Eof,
    Io(io::Error),
    Session(SessionEnd),
    Killed(&'static str),
    Stopped,
}

impl End {
    fn rejection(&self) -> Option<&'static str> {
        match self {
            End::Session(e) => e.rejection().map(Rejection::reason),
            _ => None,
        }
    }

    fn describe(&self) -> String {
        match self {
            End::Eof => "connection closed by peer".into(),
            End::Io(e) => format!("connection error: {e}"),
            End::Session(e) => e.to_string(),
            End::Killed(r) => (*r).to_string(),
            End::Stopped => "channel stopped".into(),
        }
    }

    /// The peer's kernel ended the connection without a goodbye: end of
    /// stream (FIN) or a reset (RST, or writing after one). Its process
    /// died: every deliberate close sends a Close frame first. A network
    /// failure is silence (the idle timeout) or a timeout error, not this.
    fn peer_died(&self) -> bool {
        match self {
            End::Eof => true,
            // Not ECONNABORTED: this end's kernel aborted it (`ss -K`, a
            // local error), which says nothing of the peer.
            End::Io(e) => matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
            ),
            End::Session(_) | End::Killed(_) | End::Stopped => false,
        }
    }

    /// What to tell the peer in a Close frame, if it can still hear us.
    fn goodbye(&self) -> Option<&'static str> {
        match self {
            End::Eof | End::Io(_) => None,
            End::Session(e) => e.goodbye(),
            End::Killed(r) => Some(r),
            End::Stopped => Some("shutdown"),
        }
    }
}

impl Shared {
    /// The settings of a new connection's session. Heartbeats are the
    /// daemon's (cluster messages): the session only watches for silence.
    fn session_config(&self) -> SessionConfig {
        let ring = lock(&self.keys);
        SessionConfig {
            me: self.me.clone(),
            cluster_key: ring.current.clone(),
            old_keys: ring.old.iter().map(|(k, _)| k.clone()).collect(),
            max_payload: self.opts.max_payload,
            hello_timeout: self.opts.hello_timeout,
            dead_after: self.opts.dead_after,
            heartbeat_interval: None,
        }
    }

    fn slots(&self) -> Vec<Arc<PeerSlot>> {
        lock(&self.peers).values().cloned().collect()
    }

    fn slot(&self, name: &str) -> Option<Arc<PeerSlot>> {
        lock(&self.peers).get(name).cloned()
    }

    /// The generation of key `used` of a session configured now (0: the
    /// current key, 1: the old one).
    fn key_generation(&self, used: usize) -> u64 {
        let ring = lock(&self.keys);
        match (used, &ring.old) {
            (0, _) | (_, None) => ring.generation,
            (_, Some((_, g))) => *g,
        }
    }

    async fn emit(&self, ev: ChannelEvent) {
        // The daemon dropped its receiver: it is stopping too.
        let _ = self.events.send(ev).await;
    }

    /// Count a rejection of `slot`'s connection; the log names the
    /// address the bytes really came from (`remote`), else the configured
    /// one.
    fn count(&self, slot: &PeerSlot, remote: Option<SocketAddr>, reason: &str, detail: &str) {
        let now = Instant::now();
        let mut st = lock(&slot.state);
        *st.rejected.entry(reason.to_string()).or_default() += 1;
        if st
            .last_warn
            .is_none_or(|t| now.duration_since(t) >= WARN_EVERY)
        {
            st.last_warn = Some(now);
            warn!(
                "cluster: peer {} (from {}): rejected: {detail} (further rejections of this peer are only counted for a minute)",
                slot.name,
                remote.unwrap_or(slot.addr)
            );
        }
    }

    fn count_unknown(&self, from: SocketAddr, reason: &str, detail: &str) {
        let now = Instant::now();
        let mut u = lock(&self.unknown);
        *u.counts.entry(reason.to_string()).or_default() += 1;
        if u.last_warn
            .is_none_or(|t| now.duration_since(t) >= WARN_EVERY)
        {
            u.last_warn = Some(now);
            warn!(
                "cluster: connection from {from} refused: {detail} (further refusals of unknown sources are only counted for a minute)"
            );
        }
    }

    /// The connection proved the key: it is the peer's connection now.
    async fn mark_up(&self, slot: &PeerSlot, conn: ConnRef) {
        let _order = slot.order.lock().await;
        if slot.is_removed() {
            conn.kill.send_replace(Some("removed"));
            return;
        }
        let now = Instant::now();
        let replaced = {
            let mut st = lock(&slot.state);
            let old = st.up.replace(conn.id);
            let old_active = st.active.replace(conn);
            st.since = Some(now);
            old.map(|id| {
                if let Some(a) = old_active.filter(|a| a.id == id) {
                    a.kill.send_replace(Some("replaced by a new connection"));
                }
            })
        };
        if replaced.is_some() {
            info!(
                "cluster: peer {}: new connection replaces the old one",
                slot.name
            );
            self.emit(ChannelEvent::Down {
                peer: slot.name.clone(),
                reason: "replaced by a new connection".into(),
                died: false,
            })
            .await;
        }
        info!("cluster: peer {} ({}) up", slot.name, slot.addr);
        self.emit(ChannelEvent::Up {
            peer: slot.name.clone(),
        })
        .await;
    }

    /// Deliver an event from connection `id` if it is still the peer's Up
    /// connection (a replaced one goes quiet at once).
    async fn deliver(&self, slot: &PeerSlot, id: u64, ev: ChannelEvent) {
        let _order = slot.order.lock().await;
        if lock(&slot.state).up == Some(id) {
            self.emit(ev).await;
        }
    }

    async fn mark_end(&self, slot: &PeerSlot, id: u64, end: &End) {
        let _order = slot.order.lock().await;
        let was_up = {
            let mut st = lock(&slot.state);
            if st.active.as_ref().is_some_and(|a| a.id == id) {
                st.active = None;
            }
            if st.up == Some(id) {
                st.up = None;
                st.since = None;
                Some(true)
            } else if st.up.is_none() {
                Some(false)
            } else {
                // Another connection of this peer is Up: a failed newcomer
                // (maybe a stranger using the peer's name) changes nothing.
                None
            }
        };
        let reason = end.describe();
        match was_up {
            Some(true) => {
                info!("cluster: peer {} ({}) down: {reason}", slot.name, slot.addr);
            }
            Some(false) if end.rejection().is_some() => {}
            _ => return,
        }
        if matches!(end, End::Stopped) {
            return;
        }
        // Only the Up (proven, live) connection's close tells, and only
        // when the peer's listener confirms it: a process that died took
        // its listening socket with it (the connect is refused at once),
        // while a reset from a live peer (a firewall, `ss -K`) is answered.
        let died = was_up == Some(true) && end.peer_died() && listener_gone(slot.addr).await;
        self.emit(ChannelEvent::Down {
            peer: slot.name.clone(),
            reason,
            died,
        })
        .await;
    }
}

/// How long the death check waits for the peer's listener: a refused
/// connect comes back in one round trip; no answer at all (the host
/// itself gone, a partition) is silence, judged by heartbeats and VRRP.
const DEATH_CHECK: Duration = Duration::from_millis(100);
/// How long an accepted check connection must stay open to prove the
/// peer alive: a dying process may close its connections a moment before
/// its listener, which then resets what was queued on it (a live agent
/// waits a whole hello timeout for the check's Hello).
const DEATH_CHECK_HOLD: Duration = Duration::from_millis(30);

/// Whether the peer's listener is gone: its process died. A connect that
/// is refused, or accepted and then reset or closed at once, is a death;
/// one that stays open (the peer lives; it counts a connection closed
/// before its Hello) or gets no answer is not.
async fn listener_gone(addr: SocketAddr) -> bool {
    use tokio::io::AsyncReadExt;
    match tokio::time::timeout(DEATH_CHECK, tokio::net::TcpStream::connect(addr)).await {
        Ok(Err(e)) => e.kind() == io::ErrorKind::ConnectionRefused,
        Ok(Ok(mut probe)) => {
            let mut byte = [0u8; 1];
            match tokio::time::timeout(DEATH_CHECK_HOLD, probe.read(&mut byte)).await {
                Ok(Ok(0)) => true,
                Ok(Err(e)) => matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
                ),
                // Bytes (not ours to read) or still open: alive.
                Ok(Ok(_)) | Err(_) => false,
            }
        }
        Err(_) => false,
    }
}

/// How the Hello exchange went.
enum Handshake {
    /// Acceptor: the peer's Hello is in (admit it or drop the session).
    Hello(String),
    /// Dialer: Hellos exchanged, keys derived (the acceptor's Proof may be
    /// still to come: the session says PeerProven when it opened).
    Keyed,
}

/// Why the Hello exchange failed.
enum HandshakeError {
    Session(SessionEnd),
    Eof,
    Io(io::Error),
    WriteTimeout,
}

fn tokio_deadline(at: Option<Instant>) -> Option<tokio::time::Instant> {
    at.map(tokio::time::Instant::from_std)
}

/// Sleep until `at`; never if None.
async fn sleep_until(at: Option<Instant>) {
    match tokio_deadline(at) {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// The time to hand the session when its deadline `at` has passed by the
/// runtime's clock: never before `at`.
fn fired(at: Option<Instant>) -> Instant {
    let now = Instant::now();
    at.map_or(now, |at| now.max(at))
}

/// Write what the session has to send, all of it by `deadline`.
async fn flush(
    stream: &mut TcpStream,
    session: &mut Session,
    deadline: Option<Instant>,
) -> Result<(), HandshakeError> {
    while let Some(bytes) = session.poll_transmit() {
        let write = stream.write_all(&bytes);
        match tokio_deadline(deadline) {
            Some(d) => tokio::time::timeout_at(d, write)
                .await
                .map_err(|_| HandshakeError::WriteTimeout)?,
            None => write.await,
        }
        .map_err(HandshakeError::Io)?;
    }
    Ok(())
}

/// Run the Hello exchange of a new connection: write what the session
/// emits, feed it what arrives, until it has the peer's Hello (acceptor),
/// the keys (dialer) or fails. The session's deadline bounds it all. Events
/// behind the one returned stay queued in the session.
async fn handshake(
    stream: &mut TcpStream,
    session: &mut Session,
) -> Result<Handshake, HandshakeError> {
    let mut buf = [0u8; 512];
    loop {
        let deadline = session.next_deadline();
        flush(stream, session, deadline).await?;
        while let Some(ev) = session.poll_event() {
            match ev {
                SessionEvent::HelloReceived { name } => return Ok(Handshake::Hello(name)),
                SessionEvent::Keyed => return Ok(Handshake::Keyed),
                SessionEvent::Ended(e) => return Err(HandshakeError::Session(e)),
                // Nothing else comes before the keys.
                _ => {}
            }
        }
        tokio::select! {
            r = stream.read(&mut buf) => match r {
                Ok(0) => return Err(HandshakeError::Eof),
                Ok(n) => session.handle_read(Instant::now(), &buf[..n]),
                Err(e) => return Err(HandshakeError::Io(e)),
            },
            _ = sleep_until(deadline) => session.handle_timeout(fired(deadline)),
        }
    }
}

/// Unauthenticated connections from one source address at a time: a
/// stranger cannot fill the table on its own.
const MAX_UNPROVEN_PER_SOURCE: usize = 4;

/// Who holds the unproven connections: in all, and per source address.
#[derive(Default)]
struct UnprovenTable {
    total: usize,
    per_source: BTreeMap<std::net::IpAddr, usize>,
}

/// Counts a connection that has not (yet) proven the key.
struct Unproven<'a> {
    table: &'a Mutex<UnprovenTable>,
    source: std::net::IpAddr,
}

impl<'a> Unproven<'a> {
    /// A slot for a connection from `source`, or why not. A configured
    /// peer's address always has one slot of its own beyond the shared
    /// table, so strangers that fill it cannot keep a real peer out.
    fn take(
        table: &'a Mutex<UnprovenTable>,
        source: std::net::IpAddr,
        is_peer: bool,
    ) -> Result<Unproven<'a>, &'static str> {
        let mut t = lock(table);
        let mine = t.per_source.get(&source).copied().unwrap_or(0);
        if mine >= MAX_UNPROVEN_PER_SOURCE {
            return Err("too_many_unproven_from_source");
        }
        if t.total >= MAX_UNPROVEN && !(is_peer && mine == 0) {
            return Err("too_many_unproven");
        }
        t.total += 1;
        *t.per_source.entry(source).or_insert(0) += 1;
        Ok(Unproven { table, source })
    }
}

impl Drop for Unproven<'_> {
    fn drop(&mut self) {
        let mut t = lock(self.table);
        t.total = t.total.saturating_sub(1);
        if let Some(n) = t.per_source.get_mut(&self.source) {
            *n -= 1;
            if *n == 0 {
                t.per_source.remove(&self.source);
            }
        }
    }
}

/// A listening socket on `listen` (inside the channel's runtime).
fn bind_listener(listen: SocketAddr) -> io::Result<TcpListener> {
    let socket = if listen.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // A restarted node must get its port back while old connections
    // linger in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(listen)?;
    socket.listen(128)
}

async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    mut retire: oneshot::Receiver<()>,
) {
    let stop = stopped(shared.stop.clone());
    tokio::pin!(stop);
    loop {
        let accepted = tokio::select! {
            _ = &mut stop => return,
            _ = &mut retire => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, from)) => {
                tokio::spawn(accept_one(shared.clone(), stream, from));
            }
            Err(e) => {
                // Out of descriptors, mostly: do not spin.
                debug!("cluster: accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn accept_one(shared: Arc<Shared>, mut stream: TcpStream, from: SocketAddr) {
    let is_peer = shared.slots().iter().any(|p| p.addr.ip() == from.ip());
    let unproven = match Unproven::take(&shared.unproven, from.ip(), is_peer) {
        Ok(u) => u,
        Err(reason) => {
            shared.count_unknown(from, reason, "too many unauthenticated connections");
            return;
        }
    };
    let _ = stream.set_nodelay(true);
    let mut session = Session::acceptor(shared.session_config(), Instant::now());
    let hello = tokio::select! {
        _ = stopped(shared.stop.clone()) => return,
        h = handshake(&mut stream, &mut session) => h,
    };
    let name = match hello {
        Ok(Handshake::Hello(name)) => name,
        // An acceptor is keyed by `admit` only.
        Ok(Handshake::Keyed) => return,
        Err(HandshakeError::Session(SessionEnd::HelloTimeout)) => {
            return shared.count_unknown(from, "hello_timeout", "no hello in time")
        }
        Err(HandshakeError::Session(SessionEnd::Rejected(r))) => {
            return shared.count_unknown(from, r.reason(), &r.to_string());
        }
        Err(HandshakeError::Eof) => {
            return shared.count_unknown(from, "no_hello", "closed before its hello")
        }
        Err(HandshakeError::Io(e)) => {
            let detail = format!("closed before its hello: {e}");
            return shared.count_unknown(from, "no_hello", &detail);
        }
        Err(HandshakeError::Session(_) | HandshakeError::WriteTimeout) => return,
    };
    let Some(slot) = shared.slot(&name) else {
        let detail = format!("hello from unknown node {name:?}");
        return shared.count_unknown(from, "unknown_peer", &detail);
    };
    let slot = &*slot;
    if shared.opts.check_peer_source && from.ip() != slot.addr.ip() {
        let detail = format!(
            "hello in its name from {}, but it is configured at {} (check_peer_source)",
            from.ip(),
            slot.addr.ip()
        );
        return shared.count(slot, Some(from), "wrong_source", &detail);
    }
    if slot.dials {
        let detail = format!(
            "it dialed, but {} sorts lower than {} and dials it",
            shared.me, slot.name
        );
        return shared.count(slot, Some(from), "wrong_direction", &detail);
    }
    let nonce: [u8; NONCE_LEN] = match random_bytes() {
        Ok(n) => n,
        Err(e) => return warn!("cluster: /dev/urandom: {e}"),
    };
    // The reply is due by the hello deadline too.
    let deadline = session.next_deadline();
    let key = usize::from(lock(&slot.state).prefer_old);
    if session.admit_with(Instant::now(), nonce, key).is_err() {
        return;
    }
    if flush(&mut stream, &mut session, deadline).await.is_err() {
        return;
    }
    debug!(
        "cluster: {} connected from {from}, waiting for its first frame",
        slot.name
    );
    run_session(&shared, slot, stream, session, Some(unproven)).await;
}

async fn dial_loop(shared: Arc<Shared>, slot: Arc<PeerSlot>) {
    let slot = &*slot;
    let stop = stopped(shared.stop.clone());
    tokio::pin!(stop);
    let mut backoff = shared.opts.backoff_min;
    loop {
        if slot.is_removed() {
            return;
        }
        // Not raced against `stop`: a session ends itself on stop, after
        // its goodbye.
        let went_up = dial_once(&shared, slot).await;
        if went_up {
            backoff = shared.opts.backoff_min;
        }
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(jitter(backoff)) => {}
        }
        if !went_up {
            backoff = (backoff * 2).min(shared.opts.backoff_max);
        }
    }
}

/// One connection to a peer, from connect to close. True if it went Up.
async fn dial_once(shared: &Arc<Shared>, slot: &PeerSlot) -> bool {
    let hs = tokio::select! {
        _ = stopped(shared.stop.clone()) => return false,
        hs = dial_handshake(shared, slot) => hs,
    };
    let Some((stream, session)) = hs else {
        return false;
    };
    run_session(shared, slot, stream, session, None).await
}

/// Connect and exchange Hellos: the stream and its keyed session (which may
/// already hold early frames).
async fn dial_handshake(shared: &Arc<Shared>, slot: &PeerSlot) -> Option<(TcpStream, Session)> {
    let started = Instant::now();
    let deadline = tokio::time::Instant::from_std(started + shared.opts.hello_timeout);
    let connect = async {
        let socket = if slot.addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        // Leave from the address the peers know us by, when one is set.
        let listen = *lock(&shared.listen);
        if !listen.ip().is_unspecified() && listen.is_ipv4() == slot.addr.is_ipv4() {
            socket.bind(SocketAddr::new(listen.ip(), 0))?;
        }
        socket.connect(slot.addr).await
    };
    let mut stream = match tokio::time::timeout_at(deadline, connect).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            debug!("cluster: connect to {} ({}): {e}", slot.name, slot.addr);
            return None;
        }
        Err(_) => {
            debug!(
                "cluster: connect to {} ({}): timed out",
                slot.name, slot.addr
            );
            return None;
        }
    };
    let _ = stream.set_nodelay(true);
    let nonce: [u8; NONCE_LEN] = match random_bytes() {
        Ok(n) => n,
        Err(e) => {
            warn!("cluster: /dev/urandom: {e}");
            return None;
        }
    };
    // The connect time counts against the hello timeout.
    let mut session = Session::dialer(shared.session_config(), Some(&slot.name), nonce, started);
    match handshake(&mut stream, &mut session).await {
        Ok(_) => Some((stream, session)),
        // Its Hello was malformed, or it answered in another name.
        Err(HandshakeError::Session(SessionEnd::Rejected(r))) => {
            shared.count(slot, Some(slot.addr), r.reason(), &r.to_string());
            None
        }
        Err(HandshakeError::Session(_) | HandshakeError::WriteTimeout) => {
            debug!("cluster: {} ({}): no hello in time", slot.name, slot.addr);
            None
        }
        // The peer refused us (unknown to it, or it thinks it should dial).
        Err(HandshakeError::Eof) => {
            debug!(
                "cluster: {} ({}): closed during the hello",
                slot.name, slot.addr
            );
            None
        }
        Err(HandshakeError::Io(e)) => {
            debug!("cluster: {} ({}): hello: {e}", slot.name, slot.addr);
            None
        }
    }
}

/// Run an established connection until it ends; report the end. True if
/// the peer went Up on it.
///
/// The reader (bytes into the session, its events to the daemon, its
/// deadlines) and the writer (the daemon's queue through the session onto
/// the socket) run side by side, so that a daemon slow to take events does
/// not hold up sending, nor a peer slow to read hold up receiving. They
/// share the session under a lock that is never held across an await.
async fn run_session(
    shared: &Arc<Shared>,
    slot: &PeerSlot,
    stream: TcpStream,
    session: Session,
    mut unproven: Option<Unproven<'_>>,
) -> bool {
    let id = shared.next_conn.fetch_add(1, Ordering::Relaxed);
    let remote = stream.peer_addr().ok();
    // Messages queued behind a bulk of data would starve heartbeats: keep
    // the kernel's unsent bytes low (best effort).
    let _ = socket2::SockRef::from(&stream).set_tcp_notsent_lowat(NOTSENT_LOWAT);
    let (mut rd, mut wr) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Outgoing>(shared.opts.queue_len.max(1));
    let (data_tx, mut data_rx) = mpsc::channel::<Outgoing>(shared.opts.queue_len.max(1));
    let data_bytes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (kill_tx, kill_rx) = watch::channel(None);
    let kill = Arc::new(kill_tx);
    let conn = |key_generation| ConnRef {
        id,
        key_generation,
        tx: tx.clone(),
        data: data_tx.clone(),
        data_bytes: data_bytes.clone(),
        kill: kill.clone(),
    };
    // Either end's sends go to this connection once its peer has proven
    // the key (PeerProven: `mark_up`); a dialer hears the Proof first.
    if let Some(t) = session.last_frame() {
        lock(&slot.state).last_frame = Some(t);
    }
    let session = Mutex::new(session);
    // What is left of the frames being written when the session ends: it
    // is written before the goodbye (a goodbye after half a frame would
    // arrive as garbage, and a close without one reads as a crash).
    let mut unsent: Vec<u8> = Vec::new();
    let mut went_up = false;
    let end = {
        let reader = async {
            let mut buf = vec![0u8; READ_CHUNK];
            loop {
                loop {
                    let Some(ev) = lock(&session).poll_event() else {
                        break;
                    };
                    let ev = match ev {
                        SessionEvent::Message(msg) => ChannelEvent::Message {
                            peer: slot.name.clone(),
                            msg,
                        },
                        SessionEvent::Data(bytes) => ChannelEvent::Data {
                            peer: slot.name.clone(),
                            bytes,
                        },
                        SessionEvent::PeerProven => {
                            went_up = true;
                            unproven = None;
                            let used = lock(&session).key_used();
                            lock(&slot.state).prefer_old = used > 0;
                            let generation = shared.key_generation(used);
                            shared.mark_up(slot, conn(generation)).await;
                            continue;
                        }
                        SessionEvent::Skipped { kind } => {
                            let detail = format!("message type {kind:?} unknown here; skipped");
                            shared.count(slot, remote, "unknown_message", &detail);
                            continue;
                        }
                        SessionEvent::Ended(e) => return End::Session(e),
                        // Handshake events are behind us; heartbeats are
                        // the daemon's (not enabled here).
                        SessionEvent::HelloReceived { .. }
                        | SessionEvent::Keyed
                        | SessionEvent::HeartbeatDue => continue,
                    };
                    shared.deliver(slot, id, ev).await;
                }
                let deadline = lock(&session).next_deadline();
                let read = tokio::select! {
                    r = rd.read(&mut buf) => r,
                    _ = sleep_until(deadline) => {
                        lock(&session).handle_timeout(fired(deadline));
                        continue;
                    }
                };
                match read {
                    Ok(0) => return End::Eof,
                    Ok(n) => {
                        let now = Instant::now();
                        let heard = {
                            let mut s = lock(&session);
                            s.handle_read(now, &buf[..n]);
                            s.last_frame() == Some(now)
                        };
                        if heard {
                            lock(&slot.state).last_frame = Some(now);
                        }
                    }
                    Err(e) => return End::Io(e),
                }
            }
        };
        let writer = async {
            loop {
                // Messages first: a heartbeat never waits behind queued data.
                let out = tokio::select! {
                    biased;
                    m = rx.recv() => m,
                    d = data_rx.recv() => d,
                };
                let Some(out) = out else { break };
                if out.kind == Outbound::Data {
                    data_bytes.fetch_sub(out.payload.len(), Ordering::Relaxed);
                }
                let frames: Vec<Vec<u8>> = {
                    let mut s = lock(&session);
                    // Refused only once the session has ended: the reader
                    // is about to report why.
                    if s.send(Instant::now(), out.kind, &out.payload).is_err() {
                        continue;
                    }
                    std::iter::from_fn(|| s.poll_transmit()).collect()
                };
                // All of them: the session numbered them already, and the
                // goodbye's number comes after theirs.
                unsent = frames.concat();
                while !unsent.is_empty() {
                    match wr.write(&unsent).await {
                        Ok(0) => return End::Io(io::ErrorKind::WriteZero.into()),
                        Ok(n) => {
                            unsent.drain(..n);
                        }
                        Err(e) => return End::Io(e),
                    }
                }
            }
            End::Killed("send queue closed")
        };
        let killed = async {
            let mut k = kill_rx.clone();
            let why = match k.wait_for(|r| r.is_some()).await {
                Ok(r) => *r,
                Err(_) => None,
            };
            match why {
                Some(r) => End::Killed(r),
                // We hold the sender: never.
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            e = reader => e,
            e = writer => e,
            e = killed => e,
            _ = stopped(shared.stop.clone()) => End::Stopped,
        }
    };
    drop(unproven);
    if !went_up && !slot.dials && !matches!(end, End::Stopped) && lock(&shared.keys).old.is_some() {
        // An accepted connection that never came Up during a key rotation:
        // the dialer may not hold the key we proved. Try the other next.
        let mut st = lock(&slot.state);
        st.prefer_old = !st.prefer_old;
    }
    if let Some(r) = end.rejection() {
        shared.count(slot, remote, r, &end.describe());
    }
    if let Some(why) = end.goodbye() {
        let mut s = session.into_inner().unwrap_or_else(|e| e.into_inner());
        s.close(why);
        let mut bye = std::mem::take(&mut unsent);
        bye.extend(std::iter::from_fn(|| s.poll_transmit()).flatten());
        let _ = tokio::time::timeout(CLOSE_GRACE, wr.write_all(&bye)).await;
    }
    shared.mark_end(slot, id, &end).await;
    went_up
}

#[cfg(test)]
mod unproven_tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    #[test]
    fn one_source_cannot_fill_the_table_and_a_peer_keeps_a_slot() {
        let table = Mutex::new(UnprovenTable::default());
        let ip = |last: u8| IpAddr::V4(Ipv4Addr::new(10, 0, 0, last));
        let mut held = Vec::new();
        for _ in 0..MAX_UNPROVEN_PER_SOURCE {
            held.push(Unproven::take(&table, ip(1), false).expect("a slot"));
        }
        assert_eq!(
            Unproven::take(&table, ip(1), false).err(),
            Some("too_many_unproven_from_source")
        );
        // Many strangers fill the shared table...
        let mut last = 2u8;
        while lock(&table).total < MAX_UNPROVEN {
            for _ in 0..MAX_UNPROVEN_PER_SOURCE {
                if lock(&table).total < MAX_UNPROVEN {
                    held.push(Unproven::take(&table, ip(last), false).expect("a slot"));
                }
            }
            last += 1;
        }
        assert_eq!(
            Unproven::take(&table, ip(200), false).err(),
            Some("too_many_unproven")
        );
        // ...but a configured peer still gets its own slot, one.
        let peer = Unproven::take(&table, ip(250), true).expect("the peer's slot");
        assert!(Unproven::take(&table, ip(250), true).is_err());
        drop(peer);
        drop(held);
        assert_eq!(lock(&table).total, 0);
        assert!(lock(&table).per_source.is_empty());
    }
}
