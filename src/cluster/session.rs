//! One cluster-channel connection's session protocol, sans-IO.
//!
//! A [`Session`] is one end of one TCP connection of the cluster channel
//! ([`crate::agent::channel`] is the transport around it). It owns the
//! Hello exchange (nonces, the per-connection key derived from the cluster
//! key, one key per direction), sequence numbers in and out (so replayed
//! and reordered frames are refused), the proof of the key, the hello and
//! idle timeouts and, when asked for, heartbeat deadlines. It is fed bytes
//! and the time, and drained of events ([`poll_event`](Session::poll_event))
//! and of bytes to write ([`poll_transmit`](Session::poll_transmit)). No IO,
//! no clock, no randomness: nonces come in as arguments.
//!
//! ```text
//!   dialer                                    acceptor
//!   Session::dialer -> Hello{name, nonce_d}   Session::acceptor
//!                              ---------->    HelloReceived{name}: the
//!                                             transport checks the name,
//!                              <----------    admit(nonce_a) -> Hello,
//!   Keyed                                     Proof (Keyed)
//!   Proof's tag verifies:
//!   PeerProven: may send now
//!   first Message/Data         ---------->    PeerProven: may send now
//!                              <----------    first Message/Data
//! ```
//!
//! Rules (the wire format is [`crate::wire::frame`]):
//! - The acceptor proves the key first: its Hello is followed at once by a
//!   Proof, an empty frame sealed under the acceptor-to-dialer key, which
//!   is derived from the cluster key, both names and both nonces. The
//!   dialer sends nothing (no message, no data) until that Proof verified:
//!   whoever answers a dialer without the key hears nothing but, at most,
//!   a Close it cannot open.
//! - The acceptor sends nothing after its Proof until the dialer has proven
//!   the key in turn (its first Message or Data with a valid tag), so a
//!   stranger who dials in under a peer's name receives nothing but the
//!   Proof and, at most, a Close, neither of which it can open.
//! - Both proofs are tags under keys that depend on the cluster key, so
//!   each lets its receiver test guesses of the cluster key offline: the
//!   key must be random (it is at least 16 bytes; 32 from /dev/urandom is
//!   what the documentation asks for).
//! - The first bad frame ends the session with a typed [`Rejection`]; a
//!   Close from the peer, the hello timeout and the idle timeout (no valid
//!   frame for `dead_after`) end it too. After [`SessionEvent::Ended`] input
//!   is ignored and sends are refused; [`Session::close`] still writes a
//!   goodbye if the transport can deliver one.
//! - Heartbeats are optional ([`SessionConfig::heartbeat_interval`]): when
//!   set, [`SessionEvent::HeartbeatDue`] is raised whenever nothing has been
//!   sent for that long; what to send is the caller's choice. The daemon's
//!   channel leaves it off: its heartbeats are cluster messages.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::cluster::Message;
use crate::wire::frame::{
    encode, Decoder, FrameError, FrameType, Hello, SessionKey, MAX_HELLO_PAYLOAD, NONCE_LEN,
};

/// Longest Close reason kept from the peer (characters).
const MAX_CLOSE_REASON: usize = 200;

/// The largest frame payload accepted before the peer proved the key with
/// a valid tag: room for a heartbeat of a few hundred instances, far below
/// the megabyte of a sync chunk.
pub const MAX_UNPROVEN_PAYLOAD: usize = 64 * 1024;

/// Which end of the connection a session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Dialer,
    Acceptor,
}

/// Static settings of a session.
#[derive(Clone)]
pub struct SessionConfig {
    /// This node's name, sent in its Hello.
    pub me: String,
    /// The shared cluster key; the session keeps it only until the
    /// connection keys are derived.
    pub cluster_key: Vec<u8>,
    /// Older keys still accepted (a key rotation's grace period): a dialer
    /// takes the acceptor's Proof under any of them, an acceptor proves
    /// under the one [`Session::admit_with`] names. Empty: only
    /// `cluster_key`.
    pub old_keys: Vec<Vec<u8>>,
    /// Largest payload accepted once keyed (before: the Hello's maximum).
    pub max_payload: usize,
    /// The Hello exchange must be done this long after the session starts.
    pub hello_timeout: Duration,
    /// End a keyed session that has received no valid frame for this long.
    pub dead_after: Duration,
    /// Raise [`SessionEvent::HeartbeatDue`] when nothing was sent for this
    /// long (None: never).
    pub heartbeat_interval: Option<Duration>,
}

impl fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionConfig")
            .field("me", &self.me)
            .field("cluster_key", &"..")
            .field("old_keys", &self.old_keys.len())
            .field("max_payload", &self.max_payload)
            .field("hello_timeout", &self.hello_timeout)
            .field("dead_after", &self.dead_after)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .finish()
    }
}

/// What an outgoing payload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outbound {
    /// The JSON of a [`Message`].
    Message,
    /// Opaque bytes.
    Data,
}

impl Outbound {
    fn frame_type(self) -> FrameType {
        match self {
            Outbound::Message => FrameType::Message,
            Outbound::Data => FrameType::Data,
        }
    }
}

/// An output of the session, in the order it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    /// Acceptor only: the peer's Hello arrived, in this name. Call
    /// [`Session::admit`] to answer, or drop the session to refuse it.
    HelloReceived {
        name: String,
    },
    /// The Hellos are exchanged and the keys derived. Nobody may send
    /// yet: the peer has not proven the key.
    Keyed,
    /// The peer holds the key: for a dialer, the acceptor's Proof verified;
    /// for an acceptor, the dialer's first Message or Data frame did
    /// (raised before that frame's own event). This end may send now.
    PeerProven,
    Message(Message),
    /// An authenticated message of a type this version does not know,
    /// skipped (the transport counts it as `unknown_message`).
    Skipped {
        kind: String,
    },
    Data(Vec<u8>),
    /// Nothing was sent for `heartbeat_interval`.
    HeartbeatDue,
    /// The session is over (no more events).
    Ended(SessionEnd),
}

/// Why the peer or one of its frames was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Rejection {
    /// The frame failed a check of [`crate::wire::frame`], or the Hello
    /// was malformed.
    #[error("{0}")]
    Frame(#[from] FrameError),
    /// A valid frame whose payload is not a message this node understands.
    #[error("undecodable message: {0}")]
    BadMessage(String),
    /// The dialed address answered with another node's Hello.
    #[error("answered as {got:?}, expected {expected:?}")]
    WrongPeer { expected: String, got: String },
}

impl Rejection {
    /// A stable name for counters and logs: the [`FrameError::reason`]s,
    /// `bad_message`, and `bad_hello` for a wrong peer.
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::Frame(e) => e.reason(),
            Rejection::BadMessage(_) => "bad_message",
            Rejection::WrongPeer { .. } => "bad_hello",
        }
    }
}

/// Why a session ended on its own (the transport adds its own reasons:
/// end of stream, socket errors, shutdown).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SessionEnd {
    /// The Hello exchange did not finish within `hello_timeout`.
    #[error("no hello in time")]
    HelloTimeout,
    /// No valid frame for this long (`dead_after`).
    #[error("no frame for {0:?}")]
    Idle(Duration),
    #[error("{}: {}", .0.reason(), .0)]
    Rejected(Rejection),
    /// The peer sent a Close with this reason.
    #[error("closed by peer: {0}")]
    PeerClosed(String),
}

impl SessionEnd {
    pub fn rejection(&self) -> Option<&Rejection> {
        match self {
            SessionEnd::Rejected(r) => Some(r),
            _ => None,
        }
    }

    /// What to tell the peer in a Close frame, if it can still hear us.
    pub fn goodbye(&self) -> Option<&'static str> {
        match self {
            SessionEnd::HelloTimeout | SessionEnd::PeerClosed(_) => None,
            SessionEnd::Idle(_) => Some("idle"),
            SessionEnd::Rejected(r) => Some(r.reason()),
        }
    }
}

/// Why [`Session::send`] refused a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum SendRefused {
    #[error("the Hello exchange is not done")]
    NotKeyed,
    #[error("the peer has not proven the key yet")]
    NotProven,
    #[error("the session has ended")]
    Ended,
}

/// Why [`Session::admit`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum AdmitError {
    #[error("only an acceptor that has received a Hello admits")]
    NoHelloPending,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the peer's Hello (a dialer has sent its own).
    Hello,
    /// Acceptor: the peer's Hello is in, waiting for `admit`.
    Admit,
    Keyed,
    Ended,
}

/// One end of one connection. See the module documentation.
pub struct Session {
    role: Role,
    me: String,
    /// Until keyed; cleared afterwards. The current key first, then the
    /// old ones still accepted.
    keys: Vec<Vec<u8>>,
    /// Dialer, until the acceptor's Proof opened: the (send, receive) keys
    /// derived from each of `keys`.
    candidates: Vec<(SessionKey, SessionKey)>,
    /// Which of the keys this connection was keyed with (0: the current).
    key_used: usize,
    /// Dialer: the name the dialed address must answer with.
    expected: Option<String>,
    /// Dialer: the nonce of its Hello.
    own_nonce: [u8; NONCE_LEN],
    /// Acceptor: the peer's Hello, between `HelloReceived` and `admit`.
    peer_hello: Option<Hello>,
    peer: Option<String>,
    phase: Phase,
    dec: Decoder,
    send_key: Option<SessionKey>,
    recv_key: Option<SessionKey>,
    send_seq: u64,
    recv_seq: u64,
    proven: bool,
    goodbye_sent: bool,
    max_payload: usize,
    hello_deadline: Instant,
    dead_after: Duration,
    /// The idle timeout runs from here: keying, then each valid frame.
    /// (A dialer whose acceptor never proves the key ends on it too.)
    idle_from: Instant,
    last_frame: Option<Instant>,
    heartbeat_interval: Option<Duration>,
    /// Armed once this end may send.
    next_heartbeat: Option<Instant>,
    events: VecDeque<SessionEvent>,
    transmit: VecDeque<Vec<u8>>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("role", &self.role)
            .field("me", &self.me)
            .field("peer", &self.peer)
            .field("phase", &self.phase)
            .field("proven", &self.proven)
            .field("send_seq", &self.send_seq)
            .field("recv_seq", &self.recv_seq)
            .finish_non_exhaustive()
    }
}

impl Session {
    fn new(cfg: SessionConfig, role: Role, now: Instant) -> Session {
        Session {
            role,
            me: cfg.me,
            keys: std::iter::once(cfg.cluster_key)
                .chain(cfg.old_keys)
                .collect(),
            candidates: Vec::new(),
            key_used: 0,
            expected: None,
            own_nonce: [0; NONCE_LEN],
            peer_hello: None,
            peer: None,
            phase: Phase::Hello,
            dec: Decoder::new(MAX_HELLO_PAYLOAD),
            send_key: None,
            recv_key: None,
            send_seq: 1,
            recv_seq: 1,
            proven: false,
            goodbye_sent: false,
            max_payload: cfg.max_payload,
            hello_deadline: now + cfg.hello_timeout,
            dead_after: cfg.dead_after,
            idle_from: now,
            last_frame: None,
            heartbeat_interval: cfg.heartbeat_interval,
            next_heartbeat: None,
            events: VecDeque::new(),
            transmit: VecDeque::new(),
        }
    }

    /// The dialing end: its Hello (with `nonce`, fresh random bytes) is
    /// ready to write at once. `expected`: the name the other end must
    /// answer with (None: whoever answers, for test peers).
    pub fn dialer(
        cfg: SessionConfig,
        expected: Option<&str>,
        nonce: [u8; NONCE_LEN],
        now: Instant,
    ) -> Session {
        let mut s = Session::new(cfg, Role::Dialer, now);
        s.expected = expected.map(str::to_string);
        s.own_nonce = nonce;
        let hello = Hello {
            name: s.me.clone(),
            nonce,
        };
        s.transmit.push_back(hello.encode());
        s
    }

    /// The accepting end: it waits for the peer's Hello.
    pub fn acceptor(cfg: SessionConfig, now: Instant) -> Session {
        Session::new(cfg, Role::Acceptor, now)
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// The peer's name, once its Hello is in.
    pub fn peer(&self) -> Option<&str> {
        self.peer.as_deref()
    }

    pub fn is_keyed(&self) -> bool {
        self.send_key.is_some()
    }

    pub fn is_proven(&self) -> bool {
        self.proven
    }

    /// Which key the connection was keyed with: 0 the current one, 1.. the
    /// old ones of [`SessionConfig::old_keys`], in order. For a dialer it
    /// is settled once the peer is proven.
    pub fn key_used(&self) -> usize {
        self.key_used
    }

    pub fn is_ended(&self) -> bool {
        self.phase == Phase::Ended
    }

    /// When the last valid keyed frame arrived (any type).
    pub fn last_frame(&self) -> Option<Instant> {
        self.last_frame
    }

    /// The next event, in order.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    /// The next whole frame to write, in order.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) has something to do:
    /// the hello deadline, then the idle timeout or the next heartbeat.
    pub fn next_deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::Hello | Phase::Admit => Some(self.hello_deadline),
            Phase::Keyed => {
                let idle = self.idle_from + self.dead_after;
                Some(self.next_heartbeat.map_or(idle, |h| h.min(idle)))
            }
            Phase::Ended => None,
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        match self.phase {
            Phase::Hello | Phase::Admit => {
                if now >= self.hello_deadline {
                    self.end(SessionEnd::HelloTimeout);
                }
            }
            Phase::Keyed => {
                if now >= self.idle_from + self.dead_after {
                    self.end(SessionEnd::Idle(self.dead_after));
                    return;
                }
                if let (Some(due), Some(every)) = (self.next_heartbeat, self.heartbeat_interval) {
                    if now >= due {
                        self.events.push_back(SessionEvent::HeartbeatDue);
                        // Keep the period; after a long stall, restart it.
                        let next = due + every;
                        self.next_heartbeat = Some(if next > now { next } else { now + every });
                    }
                }
            }
            Phase::Ended => {}
        }
    }

    /// Bytes read from the connection.
    pub fn handle_read(&mut self, now: Instant, bytes: &[u8]) {
        if self.phase == Phase::Ended {
            return;
        }
        self.dec.push(bytes);
        self.process(now);
    }

    /// Answer the Hello announced by [`SessionEvent::HelloReceived`] with
    /// ours (`nonce`: fresh random bytes) and the Proof of the key, and
    /// derive the keys. Frames the peer sent right behind its Hello are
    /// processed now.
    pub fn admit(&mut self, now: Instant, nonce: [u8; NONCE_LEN]) -> Result<(), AdmitError> {
        self.admit_with(now, nonce, 0)
    }

    /// [`admit`](Self::admit), proving with key `key` (0: the current one,
    /// 1..: an old one still accepted; out of range: the current one). The
    /// dialer's frames must then be sealed under that key too.
    pub fn admit_with(
        &mut self,
        now: Instant,
        nonce: [u8; NONCE_LEN],
        key: usize,
    ) -> Result<(), AdmitError> {
        if self.phase != Phase::Admit {
            return Err(AdmitError::NoHelloPending);
        }
        self.key_used = if key < self.keys.len() { key } else { 0 };
        let theirs = self.peer_hello.take().ok_or(AdmitError::NoHelloPending)?;
        let hello = Hello {
            name: self.me.clone(),
            nonce,
        };
        self.transmit.push_back(hello.encode());
        let key = SessionKey::derive(
            &self.keys[self.key_used],
            &theirs.name,
            &theirs.nonce,
            &self.me,
            &nonce,
        );
        let (d2a, a2d) = key.split();
        self.keyed(now, a2d, d2a);
        // Sequence 1 of this direction, behind the Hello in one write.
        let proof = encode(FrameType::Proof, self.send_seq, &[], self.send_key.as_ref());
        self.send_seq += 1;
        self.transmit.push_back(proof);
        self.process(now);
        Ok(())
    }

    /// Queue a payload (encrypted) for the peer. Either end may send once
    /// the peer has proven the key ([`SessionEvent::PeerProven`]). The
    /// receiver's size limit is the caller's to respect.
    pub fn send(
        &mut self,
        now: Instant,
        kind: Outbound,
        payload: &[u8],
    ) -> Result<(), SendRefused> {
        match self.phase {
            Phase::Ended => return Err(SendRefused::Ended),
            Phase::Hello | Phase::Admit => return Err(SendRefused::NotKeyed),
            Phase::Keyed => {}
        }
        if !self.proven {
            return Err(SendRefused::NotProven);
        }
        let f = encode(
            kind.frame_type(),
            self.send_seq,
            payload,
            self.send_key.as_ref(),
        );
        self.send_seq += 1;
        self.transmit.push_back(f);
        if let (Some(_), Some(every)) = (self.next_heartbeat, self.heartbeat_interval) {
            self.next_heartbeat = Some(now + every);
        }
        Ok(())
    }

    /// A message, as JSON (see [`send`](Self::send)).
    pub fn send_message(&mut self, now: Instant, msg: &Message) -> Result<(), SendRefused> {
        self.send(now, Outbound::Message, &msg.to_json())
    }

    /// End the session from this side: a Close frame with `reason` is
    /// queued if the keys exist (even for an unproven peer: one with the
    /// key learns why, a stranger cannot open it) and none was sent yet. Works after [`SessionEvent::Ended`]
    /// too; the caller leaves it out if the peer cannot hear it any more
    /// (it closed), and finishes a half-written frame before it.
    pub fn close(&mut self, reason: &str) {
        if let (Some(k), false) = (&self.send_key, self.goodbye_sent) {
            let f = encode(FrameType::Close, self.send_seq, reason.as_bytes(), Some(k));
            self.send_seq += 1;
            self.transmit.push_back(f);
            self.goodbye_sent = true;
        }
        self.phase = Phase::Ended;
    }

    fn keyed(&mut self, now: Instant, send: SessionKey, recv: SessionKey) {
        self.send_key = Some(send);
        self.recv_key = Some(recv);
        // The connection keys are all that is needed from now on.
        for k in &mut self.keys {
            k.fill(0);
        }
        self.keys = Vec::new();
        // Until a frame's tag proves the key, a peer may not make us buffer
        // more than a small frame (a stranger's megabyte goes nowhere).
        self.dec
            .set_max_payload(self.max_payload.min(MAX_UNPROVEN_PAYLOAD));
        self.phase = Phase::Keyed;
        self.idle_from = now;
        self.events.push_back(SessionEvent::Keyed);
    }

    fn arm_heartbeat(&mut self, now: Instant) {
        self.next_heartbeat = self.heartbeat_interval.map(|every| now + every);
    }

    fn end(&mut self, why: SessionEnd) {
        self.phase = Phase::Ended;
        self.events.push_back(SessionEvent::Ended(why));
    }

    fn reject(&mut self, r: impl Into<Rejection>) {
        self.end(SessionEnd::Rejected(r.into()));
    }

    fn prove(&mut self, now: Instant) {
        if !self.proven {
            self.proven = true;
            self.dec.set_max_payload(self.max_payload);
            self.events.push_back(SessionEvent::PeerProven);
            self.arm_heartbeat(now);
        }
    }

    /// Decode what is buffered, as far as the phase allows.
    fn process(&mut self, now: Instant) {
        loop {
            match self.phase {
                Phase::Admit | Phase::Ended => return,
                Phase::Hello => {
                    if !self.process_hello(now) {
                        return;
                    }
                }
                Phase::Keyed => {
                    if !self.process_frame(now) {
                        return;
                    }
                }
            }
        }
    }

    /// The peer's Hello; true if there may be more to decode.
    fn process_hello(&mut self, now: Instant) -> bool {
        let hello = match self.dec.next_frame(0, None) {
            Ok(None) => return false,
            Ok(Some(f)) => Hello::parse(&f.payload),
            Err(e) => Err(e),
        };
        let theirs = match hello {
            Ok(h) => h,
            Err(e) => {
                self.reject(e);
                return false;
            }
        };
        self.peer = Some(theirs.name.clone());
        match self.role {
            Role::Acceptor => {
                self.events.push_back(SessionEvent::HelloReceived {
                    name: theirs.name.clone(),
                });
                self.peer_hello = Some(theirs);
                self.phase = Phase::Admit;
                false
            }
            Role::Dialer => {
                if let Some(expected) = self.expected.clone().filter(|e| *e != theirs.name) {
                    self.reject(Rejection::WrongPeer {
                        expected,
                        got: theirs.name,
                    });
                    return false;
                }
                // One candidate per accepted key: the Proof tells which
                // one the acceptor holds.
                self.candidates = self
                    .keys
                    .iter()
                    .map(|k| {
                        SessionKey::derive(
                            k,
                            &self.me,
                            &self.own_nonce,
                            &theirs.name,
                            &theirs.nonce,
                        )
                        .split()
                    })
                    .collect();
                let (d2a, a2d) = self.candidates[0].clone();
                self.keyed(now, d2a, a2d);
                true
            }
        }
    }

    /// A dialer's first keyed frame, the acceptor's Proof: tried under
    /// each candidate key; the first that opens it is the connection's.
    fn next_first_frame(&mut self) -> Result<Option<crate::wire::frame::Frame>, FrameError> {
        let mut first_err = None;
        for (i, (send, recv)) in self.candidates.iter().enumerate() {
            match self.dec.next_frame(self.recv_seq, Some(recv)) {
                Ok(Some(f)) => {
                    self.key_used = i;
                    self.send_key = Some(send.clone());
                    self.recv_key = Some(recv.clone());
                    self.candidates = Vec::new();
                    return Ok(Some(f));
                }
                Ok(None) => return Ok(None),
                // The bytes stay buffered: the next candidate tries them.
                Err(FrameError::BadTag) => {
                    first_err.get_or_insert(FrameError::BadTag);
                }
                Err(e) => return Err(e),
            }
        }
        Err(first_err.unwrap_or(FrameError::BadTag))
    }

    /// One keyed frame; true if there may be more.
    fn process_frame(&mut self, now: Instant) -> bool {
        let next = if self.candidates.len() > 1 {
            self.next_first_frame()
        } else {
            self.dec.next_frame(self.recv_seq, self.recv_key.as_ref())
        };
        let frame = match next {
            Ok(Some(f)) => f,
            Ok(None) => return false,
            Err(e) => {
                self.reject(e);
                return false;
            }
        };
        self.recv_seq += 1;
        self.last_frame = Some(now);
        self.idle_from = now;
        // A dialer hears the acceptor's Proof first, and only then.
        let proof_due = self.role == Role::Dialer && !self.proven;
        match frame.kind {
            FrameType::Proof if proof_due => {
                self.prove(now);
                true
            }
            FrameType::Proof => {
                self.reject(FrameError::BadHello("a proof out of place"));
                false
            }
            // A Close needs no proof first: its tag is one.
            FrameType::Message | FrameType::Data if proof_due => {
                self.reject(FrameError::BadHello("expected the acceptor's proof"));
                false
            }
            FrameType::Close => {
                let r = String::from_utf8_lossy(&frame.payload);
                self.end(SessionEnd::PeerClosed(
                    r.chars().take(MAX_CLOSE_REASON).collect(),
                ));
                false
            }
            FrameType::Message => match Message::from_json(&frame.payload) {
                Ok(msg) => {
                    self.prove(now);
                    self.events.push_back(SessionEvent::Message(msg));
                    true
                }
                // A newer peer's message type (a rolling upgrade): skip
                // it, keep the connection; the frame itself was genuine.
                Err(e) => match Message::unknown_kind(&frame.payload) {
                    Some(kind) => {
                        self.prove(now);
                        self.events.push_back(SessionEvent::Skipped { kind });
                        true
                    }
                    None => {
                        self.reject(Rejection::BadMessage(e.to_string()));
                        false
                    }
                },
            },
            FrameType::Data => {
                self.prove(now);
                self.events.push_back(SessionEvent::Data(frame.payload));
                true
            }
            // The decoder refuses a Hello once keyed.
            FrameType::Hello => {
                self.reject(FrameError::BadHello("hello after handshake"));
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::frame::{fix_crc, CRC_LEN, HEADER_LEN, OVERHEAD, TAG_LEN};

    /// An empty sealed frame (the Proof) is all overhead.
    const OVERHEAD_OF_PROOF: usize = OVERHEAD;

    const KEY: &[u8] = b"test cluster key, 32 bytes long!";
    const HELLO_TIMEOUT: Duration = Duration::from_secs(1);
    const DEAD_AFTER: Duration = Duration::from_millis(300);
    const ND: [u8; NONCE_LEN] = [1; NONCE_LEN];
    const NA: [u8; NONCE_LEN] = [2; NONCE_LEN];

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn cfg(me: &str, key: &[u8]) -> SessionConfig {
        SessionConfig {
            me: me.into(),
            cluster_key: key.to_vec(),
            old_keys: Vec::new(),
            max_payload: 1 << 20,
            hello_timeout: HELLO_TIMEOUT,
            dead_after: DEAD_AFTER,
            heartbeat_interval: None,
        }
    }

    fn hb(node: &str) -> Message {
        Message::Heartbeat {
            stamp: None,
            echo: Vec::new(),
            node: node.into(),
            instances: vec![],
        }
    }

    fn events(s: &mut Session) -> Vec<SessionEvent> {
        std::iter::from_fn(|| s.poll_event()).collect()
    }

    fn bytes(s: &mut Session) -> Vec<u8> {
        std::iter::from_fn(|| s.poll_transmit()).flatten().collect()
    }

    /// Everything `from` has to write, read by `to`.
    fn pump(now: Instant, from: &mut Session, to: &mut Session) {
        let b = bytes(from);
        to.handle_read(now, &b);
    }

    fn ended(evs: &[SessionEvent]) -> Option<&SessionEnd> {
        match evs.last() {
            Some(SessionEvent::Ended(e)) => Some(e),
            _ => None,
        }
    }

    /// Dialer "a" and acceptor "b" (with KEY), Hellos and the acceptor's
    /// Proof exchanged at `now`: the dialer may send, the acceptor waits.
    fn keyed_pair(now: Instant) -> (Session, Session) {
        let mut a = Session::dialer(cfg("a", KEY), Some("b"), ND, now);
        let mut b = Session::acceptor(cfg("b", KEY), now);
        pump(now, &mut a, &mut b);
        assert_eq!(
            events(&mut b),
            [SessionEvent::HelloReceived { name: "a".into() }]
        );
        b.admit(now, NA).unwrap();
        assert_eq!(events(&mut b), [SessionEvent::Keyed]);
        pump(now, &mut b, &mut a);
        assert_eq!(
            events(&mut a),
            [SessionEvent::Keyed, SessionEvent::PeerProven]
        );
        (a, b)
    }

    /// The frame types in `bytes` (whole frames of one direction), read
    /// from their clear headers.
    fn frame_types(bytes: &[u8]) -> Vec<FrameType> {
        let mut out = vec![];
        let mut at = 0;
        while at + HEADER_LEN <= bytes.len() {
            let kind = FrameType::from_u8(bytes[at + 4]).unwrap();
            let len = u32::from_be_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
            let trailer = if kind == FrameType::Hello {
                32
            } else {
                TAG_LEN
            };
            at += HEADER_LEN + len + CRC_LEN + trailer;
            out.push(kind);
        }
        assert_eq!(at, bytes.len());
        out
    }

    #[test]
    fn handshake_in_memory_then_both_ways() {
        let t0 = Instant::now();
        let (mut a, mut b) = keyed_pair(t0);
        assert_eq!((a.peer(), b.peer()), (Some("b"), Some("a")));
        // The acceptor proved the key; the dialer has not yet.
        assert!(a.is_keyed() && b.is_keyed() && a.is_proven() && !b.is_proven());
        // The acceptor says nothing until the dialer proved the key.
        assert_eq!(b.send_message(t0, &hb("b")), Err(SendRefused::NotProven));
        assert!(b.poll_transmit().is_none());
        a.send_message(t0, &hb("a")).unwrap();
        a.send(t0, Outbound::Data, &[1, 2, 3]).unwrap();
        pump(t0, &mut a, &mut b);
        assert_eq!(
            events(&mut b),
            [
                SessionEvent::PeerProven,
                SessionEvent::Message(hb("a")),
                SessionEvent::Data(vec![1, 2, 3])
            ]
        );
        assert!(b.is_proven());
        assert_eq!(b.last_frame(), Some(t0));
        b.send_message(t0, &hb("b")).unwrap();
        pump(t0, &mut b, &mut a);
        assert_eq!(events(&mut a), [SessionEvent::Message(hb("b"))]);
        // A goodbye ends the other side with its reason.
        a.close("shutdown");
        assert!(a.is_ended());
        assert_eq!(a.send_message(t0, &hb("a")), Err(SendRefused::Ended));
        pump(t0, &mut a, &mut b);
        assert_eq!(
            events(&mut b),
            [SessionEvent::Ended(SessionEnd::PeerClosed(
                "shutdown".into()
            ))]
        );
        assert_eq!(b.next_deadline(), None);
        assert_eq!(
            SessionEnd::PeerClosed("shutdown".into()).to_string(),
            "closed by peer: shutdown"
        );
    }

    /// The session writes exactly the frames of `wire::frame`, in the
    /// order of the module documentation: the protocol can be spoken with
    /// `wire::frame` alone.
    #[test]
    fn bytes_on_the_wire_are_the_frames_of_wire_frame() {
        let t0 = Instant::now();
        let mut a = Session::dialer(cfg("a", KEY), Some("b"), ND, t0);
        let hello_a = Hello {
            name: "a".into(),
            nonce: ND,
        }
        .encode();
        assert_eq!(bytes(&mut a), hello_a);
        let mut b = Session::acceptor(cfg("b", KEY), t0);
        b.handle_read(t0, &hello_a);
        let _ = events(&mut b);
        b.admit(t0, NA).unwrap();
        let hello_b = bytes(&mut b);
        let (d2a, a2d) = SessionKey::derive(KEY, "a", &ND, "b", &NA).split();
        let mut want = Hello {
            name: "b".into(),
            nonce: NA,
        }
        .encode();
        want.extend(encode(FrameType::Proof, 1, &[], Some(&a2d)));
        assert_eq!(hello_b, want);
        a.handle_read(t0, &hello_b);
        a.send_message(t0, &hb("a")).unwrap();
        a.send(t0, Outbound::Data, b"x").unwrap();
        let mut want = encode(FrameType::Message, 1, &hb("a").to_json(), Some(&d2a));
        want.extend(encode(FrameType::Data, 2, b"x", Some(&d2a)));
        assert_eq!(bytes(&mut a), want);
        b.handle_read(t0, &want);
        b.close("idle");
        assert_eq!(
            bytes(&mut b),
            encode(FrameType::Close, 2, b"idle", Some(&a2d))
        );
    }

    #[test]
    fn byte_by_byte_and_frames_behind_the_hello() {
        let t0 = Instant::now();
        let mut a = Session::dialer(cfg("a", KEY), Some("b"), ND, t0);
        let mut b = Session::acceptor(cfg("b", KEY), t0);
        // The dialer's Hello and first message in one burst, fed one byte
        // at a time: the message waits behind the Hello until admitted.
        let mut burst = bytes(&mut a);
        let mut b_hello = Hello {
            name: "b".into(),
            nonce: NA,
        }
        .encode();
        let (_, a2d) = SessionKey::derive(KEY, "a", &ND, "b", &NA).split();
        b_hello.extend(encode(FrameType::Proof, 1, &[], Some(&a2d)));
        a.handle_read(t0, &b_hello);
        assert_eq!(
            events(&mut a),
            [SessionEvent::Keyed, SessionEvent::PeerProven]
        );
        a.send_message(t0, &hb("a")).unwrap();
        burst.extend(bytes(&mut a));
        for byte in &burst {
            b.handle_read(t0, std::slice::from_ref(byte));
        }
        assert_eq!(
            events(&mut b),
            [SessionEvent::HelloReceived { name: "a".into() }]
        );
        b.admit(t0, NA).unwrap();
        assert_eq!(
            events(&mut b),
            [
                SessionEvent::Keyed,
                SessionEvent::PeerProven,
                SessionEvent::Message(hb("a"))
            ]
        );
        assert_eq!(b.admit(t0, NA), Err(AdmitError::NoHelloPending));
    }

    /// A dialer "a" with `a_key`, its Hello read by acceptor "b" (KEY),
    /// which admits it: b's Hello and Proof are returned, unread by a.
    fn admitted(t0: Instant, a_key: &[u8]) -> (Session, Session, Vec<u8>) {
        let mut a = Session::dialer(cfg("a", a_key), Some("b"), ND, t0);
        let mut b = Session::acceptor(cfg("b", KEY), t0);
        pump(t0, &mut a, &mut b);
        let _ = events(&mut b);
        b.admit(t0, NA).unwrap();
        assert_eq!(events(&mut b), [SessionEvent::Keyed]);
        let reply = bytes(&mut b);
        assert_eq!(frame_types(&reply), [FrameType::Hello, FrameType::Proof]);
        (a, b, reply)
    }

    /// A dialer whose key differs from the acceptor's (or an acceptor
    /// that does not hold the cluster key): the Proof fails, the dialer
    /// ends with a typed rejection and has written nothing but its Hello,
    /// then at most a Close that the other end cannot open.
    #[test]
    fn wrong_key_dialer_refuses_the_proof_and_sends_nothing() {
        let t0 = Instant::now();
        let (mut a, mut b, reply) = admitted(t0, b"some other key, also 32 bytes!!!");
        a.handle_read(t0, &reply);
        let end = SessionEnd::Rejected(Rejection::Frame(FrameError::BadTag));
        assert_eq!(
            events(&mut a),
            [SessionEvent::Keyed, SessionEvent::Ended(end.clone())]
        );
        assert!(!a.is_proven() && a.last_frame().is_none());
        assert_eq!(end.goodbye(), Some("bad_tag"));
        assert!(end.to_string().starts_with("bad_tag: "), "{end}");
        assert_eq!(a.send_message(t0, &hb("a")), Err(SendRefused::Ended));
        assert_eq!(a.send(t0, Outbound::Data, b"x"), Err(SendRefused::Ended));
        assert_eq!(a.poll_transmit(), None);
        // Its goodbye is all it writes, and the acceptor cannot open it.
        a.close("bad_tag");
        let bye = bytes(&mut a);
        assert_eq!(frame_types(&bye), [FrameType::Close]);
        b.handle_read(t0, &bye);
        assert_eq!(events(&mut b), [SessionEvent::Ended(end)]);
        assert!(!b.is_proven() && b.last_frame().is_none());
    }

    /// A key rotation: a dialer that holds the new and the old key takes
    /// an acceptor still on the old one; an acceptor told to prove with
    /// its old key serves a dialer still on the old one; a dialer with the
    /// new key only refuses an acceptor on the old one.
    #[test]
    fn either_key_during_a_rotation() {
        const NEW: &[u8] = b"the rotated key, also 32 bytes!!";
        let t0 = Instant::now();
        let both = |me: &str| SessionConfig {
            old_keys: vec![KEY.to_vec()],
            ..cfg(me, NEW)
        };
        let connect = |a: &mut Session, b: &mut Session, key: usize| {
            pump(t0, a, b);
            events(b);
            b.admit_with(t0, NA, key).unwrap();
            pump(t0, b, a);
            a.send_message(t0, &hb("a")).ok();
            pump(t0, a, b);
            (events(a), events(b))
        };
        // Rotated dialer, acceptor on the old key.
        let mut a = Session::dialer(both("a"), Some("b"), ND, t0);
        let mut b = Session::acceptor(cfg("b", KEY), t0);
        let (ea, eb) = connect(&mut a, &mut b, 0);
        assert!(ea.contains(&SessionEvent::PeerProven), "{ea:?}");
        assert!(eb.contains(&SessionEvent::Message(hb("a"))), "{eb:?}");
        assert_eq!(a.key_used(), 1);
        // Rotated acceptor proving with the old key, dialer on the old key.
        let mut a = Session::dialer(cfg("a", KEY), Some("b"), ND, t0);
        let mut b = Session::acceptor(both("b"), t0);
        let (ea, eb) = connect(&mut a, &mut b, 1);
        assert!(ea.contains(&SessionEvent::PeerProven), "{ea:?}");
        assert!(eb.contains(&SessionEvent::Message(hb("a"))), "{eb:?}");
        assert_eq!(b.key_used(), 1);
        // Both rotated: the new key.
        let mut a = Session::dialer(both("a"), Some("b"), ND, t0);
        let mut b = Session::acceptor(both("b"), t0);
        let (ea, _) = connect(&mut a, &mut b, 0);
        assert!(ea.contains(&SessionEvent::PeerProven), "{ea:?}");
        assert_eq!(a.key_used(), 0);
        // After the grace: the old key is refused.
        let mut a = Session::dialer(cfg("a", NEW), Some("b"), ND, t0);
        let mut b = Session::acceptor(cfg("b", KEY), t0);
        let (ea, _) = connect(&mut a, &mut b, 0);
        let end = SessionEnd::Rejected(Rejection::Frame(FrameError::BadTag));
        assert_eq!(ea.last(), Some(&SessionEvent::Ended(end)), "{ea:?}");
    }

    /// Before the Proof has opened, the dialer sends nothing: not on
    /// keying, not on a heartbeat deadline (none is armed), and not when
    /// asked. An acceptor that never proves is left by the idle timeout.
    #[test]
    fn dialer_sends_nothing_before_the_proof() {
        let t0 = Instant::now();
        let every = ms(50);
        let mut a = Session::dialer(
            SessionConfig {
                heartbeat_interval: Some(every),
                ..cfg("a", KEY)
            },
            Some("b"),
            ND,
            t0,
        );
        let hello_a = bytes(&mut a);
        assert_eq!(frame_types(&hello_a), [FrameType::Hello]);
        let (_, _, reply) = admitted(t0, KEY);
        // The Hello alone: keyed, not proven.
        let split = reply.len() - (OVERHEAD_OF_PROOF);
        a.handle_read(t0, &reply[..split]);
        assert_eq!(events(&mut a), [SessionEvent::Keyed]);
        assert!(a.is_keyed() && !a.is_proven());
        assert_eq!(a.send_message(t0, &hb("a")), Err(SendRefused::NotProven));
        assert_eq!(
            a.send(t0, Outbound::Data, b"x"),
            Err(SendRefused::NotProven)
        );
        assert_eq!(a.next_deadline(), Some(t0 + DEAD_AFTER));
        a.handle_timeout(t0 + every);
        assert_eq!(events(&mut a), []);
        assert_eq!(a.poll_transmit(), None);
        // The Proof, byte by byte: proven on its last byte, and only then.
        for (i, byte) in reply[split..].iter().enumerate() {
            assert!(!a.is_proven(), "after {i} bytes of the proof");
            a.handle_read(t0 + ms(1), std::slice::from_ref(byte));
        }
        assert_eq!(events(&mut a), [SessionEvent::PeerProven]);
        assert_eq!(a.next_deadline(), Some(t0 + ms(1) + every));
        a.send_message(t0 + ms(1), &hb("a")).unwrap();
        assert_eq!(frame_types(&bytes(&mut a)), [FrameType::Message]);

        // An acceptor that never proves: the idle timeout ends it.
        let mut a = Session::dialer(cfg("a", KEY), Some("b"), ND, t0);
        let _ = bytes(&mut a);
        a.handle_read(t0, &reply[..split]);
        let _ = events(&mut a);
        a.handle_timeout(t0 + DEAD_AFTER);
        assert_eq!(
            events(&mut a),
            [SessionEvent::Ended(SessionEnd::Idle(DEAD_AFTER))]
        );
        assert_eq!(a.poll_transmit(), None);
    }

    /// A forged Proof (right length, bit flipped, CRC made right), an
    /// acceptor that skips it and sends a genuine message first, and a
    /// Proof where none belongs: each a typed rejection, nothing sent.
    #[test]
    fn forged_missing_or_misplaced_proof_refused() {
        let t0 = Instant::now();
        let (mut a, _, mut reply) = admitted(t0, KEY);
        let last = reply.len() - 1;
        reply[last] ^= 0x01;
        a.handle_read(t0, &reply);
        let evs = events(&mut a);
        assert_eq!(
            ended(&evs).and_then(|e| e.rejection()),
            Some(&Rejection::Frame(FrameError::BadTag))
        );
        assert!(!a.is_proven() && a.poll_transmit().is_none());

        // The acceptor's Hello, then a genuine message where the Proof
        // belongs.
        let (mut a, _, reply) = admitted(t0, KEY);
        let (_, a2d) = SessionKey::derive(KEY, "a", &ND, "b", &NA).split();
        let mut skip = reply[..reply.len() - OVERHEAD_OF_PROOF].to_vec();
        skip.extend(encode(
            FrameType::Message,
            1,
            &hb("b").to_json(),
            Some(&a2d),
        ));
        a.handle_read(t0, &skip);
        let evs = events(&mut a);
        let r = ended(&evs).and_then(|e| e.rejection()).unwrap();
        assert_eq!(
            r,
            &Rejection::Frame(FrameError::BadHello("expected the acceptor's proof"))
        );
        assert!(!evs.iter().any(|e| matches!(e, SessionEvent::Message(_))));
        assert!(!a.is_proven() && a.poll_transmit().is_none());

        // A second Proof to a dialer, a Proof to an acceptor.
        let (mut a, mut b) = keyed_pair(t0);
        a.handle_read(t0, &encode(FrameType::Proof, 2, &[], Some(&a2d)));
        let evs = events(&mut a);
        assert_eq!(
            ended(&evs)
                .and_then(|e| e.rejection())
                .map(|r| r.to_string()),
            Some("bad hello: a proof out of place".into())
        );
        let (d2a, _) = SessionKey::derive(KEY, "a", &ND, "b", &NA).split();
        b.handle_read(t0, &encode(FrameType::Proof, 1, &[], Some(&d2a)));
        let evs = events(&mut b);
        assert_eq!(
            ended(&evs).and_then(|e| e.rejection()).map(|r| r.reason()),
            Some("bad_hello")
        );
        assert!(!b.is_proven());
    }

    #[test]
    fn dialer_refuses_another_node_answering() {
        let t0 = Instant::now();
        let mut a = Session::dialer(cfg("a", KEY), Some("b"), ND, t0);
        let c = Hello {
            name: "c".into(),
            nonce: NA,
        };
        a.handle_read(t0, &c.encode());
        let evs = events(&mut a);
        let r = ended(&evs).and_then(|e| e.rejection()).unwrap();
        assert_eq!(r.reason(), "bad_hello");
        assert_eq!(r.to_string(), "answered as \"c\", expected \"b\"");
        assert!(!a.is_keyed());
        // Without an expectation (a test peer), anyone will do.
        let mut a = Session::dialer(cfg("a", KEY), None, ND, t0);
        a.handle_read(t0, &c.encode());
        assert_eq!(events(&mut a), [SessionEvent::Keyed]);
        assert_eq!(a.peer(), Some("c"));
    }

    #[test]
    fn acceptor_refuses_a_keyed_frame_before_the_hello() {
        let t0 = Instant::now();
        let mut b = Session::acceptor(cfg("b", KEY), t0);
        let k = SessionKey::derive(KEY, "a", &ND, "b", &NA);
        b.handle_read(t0, &encode(FrameType::Message, 0, b"{}", Some(&k)));
        let evs = events(&mut b);
        assert_eq!(
            ended(&evs).and_then(|e| e.rejection()).map(|r| r.reason()),
            Some("bad_hello")
        );
        // Someone speaking another protocol.
        let mut b = Session::acceptor(cfg("b", KEY), t0);
        b.handle_read(t0, b"GET / HTTP/1.1\r\n");
        assert_eq!(
            events(&mut b),
            [SessionEvent::Ended(SessionEnd::Rejected(
                FrameError::BadMagic.into()
            ))]
        );
    }

    #[test]
    fn replayed_and_reordered_frames_refused() {
        let t0 = Instant::now();
        let (mut a, mut b) = keyed_pair(t0);
        a.send_message(t0, &hb("a")).unwrap();
        let first = bytes(&mut a);
        b.handle_read(t0, &first);
        b.handle_read(t0, &first);
        let evs = events(&mut b);
        assert_eq!(
            evs[..2],
            [SessionEvent::PeerProven, SessionEvent::Message(hb("a"))]
        );
        let r = ended(&evs).and_then(|e| e.rejection()).unwrap();
        assert_eq!(
            r,
            &Rejection::Frame(FrameError::OutOfOrder {
                expected: 2,
                got: 1
            })
        );
        assert_eq!(r.reason(), "out_of_order");
        // Input after the end is ignored.
        b.handle_read(t0, &first);
        assert_eq!(events(&mut b), []);

        let (mut a, mut b) = keyed_pair(t0);
        a.send(t0, Outbound::Data, b"1").unwrap();
        let one = bytes(&mut a);
        a.send(t0, Outbound::Data, b"2").unwrap();
        let two = bytes(&mut a);
        b.handle_read(t0, &two);
        b.handle_read(t0, &one);
        assert_eq!(
            events(&mut b),
            [SessionEvent::Ended(SessionEnd::Rejected(
                FrameError::OutOfOrder {
                    expected: 1,
                    got: 2
                }
                .into()
            ))]
        );
    }

    /// Line noise (CRC) and forgery (CRC made right, tag wrong) are told
    /// apart.
    #[test]
    fn tampered_frames_refused_crc_apart_from_tag() {
        let t0 = Instant::now();
        for (fix, reason) in [(false, "bad_crc"), (true, "bad_tag")] {
            let (mut a, mut b) = keyed_pair(t0);
            a.send_message(t0, &hb("a")).unwrap();
            let mut f = bytes(&mut a);
            f[HEADER_LEN + 3] ^= 0x10;
            if fix {
                fix_crc(&mut f);
            }
            b.handle_read(t0, &f);
            let evs = events(&mut b);
            assert_eq!(evs.len(), 1, "{evs:?}");
            let r = ended(&evs).and_then(|e| e.rejection()).unwrap();
            assert_eq!(r.reason(), reason);
        }
    }

    #[test]
    fn a_large_frame_before_the_proof_is_refused_after_it_is_fine() {
        let t0 = Instant::now();
        let big = vec![7u8; MAX_UNPROVEN_PAYLOAD + 1];
        // First frame of the connection: too big to buffer unproven.
        let (mut a, mut b) = keyed_pair(t0);
        a.send(t0, Outbound::Data, &big).unwrap();
        pump(t0, &mut a, &mut b);
        let evs = events(&mut b);
        let end = ended(&evs).expect("refused");
        assert!(end.to_string().starts_with("oversized"), "{end}");
        // Once a small frame proved the key, the same frame passes.
        let (mut a, mut b) = keyed_pair(t0);
        a.send(t0, Outbound::Data, b"small").unwrap();
        a.send(t0, Outbound::Data, &big).unwrap();
        pump(t0, &mut a, &mut b);
        let evs = events(&mut b);
        assert!(ended(&evs).is_none(), "{evs:?}");
        assert!(evs
            .iter()
            .any(|e| matches!(e, SessionEvent::Data(d) if d.len() == big.len())));
    }

    #[test]
    fn unknown_message_types_are_skipped_and_the_connection_stays() {
        let t0 = Instant::now();
        let (mut a, mut b) = keyed_pair(t0);
        a.send(t0, Outbound::Message, b"{\"type\":\"launch_missiles\"}")
            .unwrap();
        a.send(
            t0,
            Outbound::Message,
            b"{\"type\":\"clear_pin\",\"instance\":\"VI_1\",\"epoch\":2}",
        )
        .unwrap();
        pump(t0, &mut a, &mut b);
        let evs = events(&mut b);
        assert!(ended(&evs).is_none(), "{evs:?}");
        assert!(
            evs.iter()
                .any(|e| matches!(e, SessionEvent::Skipped { kind } if kind == "launch_missiles")),
            "{evs:?}"
        );
        assert!(
            evs.iter()
                .any(|e| matches!(e, SessionEvent::Message(Message::ClearPin { .. }))),
            "the next message still arrives: {evs:?}"
        );
    }

    #[test]
    fn undecodable_message_and_late_hello_refused() {
        let t0 = Instant::now();
        let (mut a, mut b) = keyed_pair(t0);
        // A known type without its fields: malformed, not merely new.
        a.send(t0, Outbound::Message, b"{\"type\":\"takeover\"}")
            .unwrap();
        pump(t0, &mut a, &mut b);
        let evs = events(&mut b);
        let end = ended(&evs).unwrap();
        assert_eq!(evs.len(), 1, "not proven by a bad message: {evs:?}");
        assert_eq!(end.goodbye(), Some("bad_message"));
        assert!(
            end.to_string()
                .starts_with("bad_message: undecodable message: "),
            "{end}"
        );
        // A valid frame still counts as heard from.
        assert_eq!(b.last_frame(), Some(t0));

        let (_, mut b) = keyed_pair(t0);
        b.handle_read(
            t0,
            &Hello {
                name: "a".into(),
                nonce: ND,
            }
            .encode(),
        );
        let evs = events(&mut b);
        assert_eq!(
            ended(&evs).and_then(|e| e.rejection()).map(|r| r.reason()),
            Some("bad_hello")
        );
    }

    #[test]
    fn hello_timeout_at_its_virtual_time() {
        let t0 = Instant::now();
        let mut b = Session::acceptor(cfg("b", KEY), t0);
        assert_eq!(b.next_deadline(), Some(t0 + HELLO_TIMEOUT));
        b.handle_timeout(t0 + HELLO_TIMEOUT - ms(1));
        assert_eq!(events(&mut b), []);
        // Still running while the transport decides on the name.
        b.handle_read(
            t0 + ms(10),
            &Hello {
                name: "a".into(),
                nonce: ND,
            }
            .encode(),
        );
        let _ = events(&mut b);
        assert_eq!(b.next_deadline(), Some(t0 + HELLO_TIMEOUT));
        b.handle_timeout(t0 + HELLO_TIMEOUT);
        assert_eq!(
            events(&mut b),
            [SessionEvent::Ended(SessionEnd::HelloTimeout)]
        );
        assert_eq!(SessionEnd::HelloTimeout.goodbye(), None);
    }

    #[test]
    fn idle_timeout_fires_at_the_right_virtual_time() {
        let t0 = Instant::now();
        let (mut a, mut b) = keyed_pair(t0);
        // From keying.
        assert_eq!(b.next_deadline(), Some(t0 + DEAD_AFTER));
        // Each valid frame restarts it.
        let t1 = t0 + ms(200);
        a.send_message(t1, &hb("a")).unwrap();
        pump(t1, &mut a, &mut b);
        let _ = events(&mut b);
        assert_eq!(b.next_deadline(), Some(t1 + DEAD_AFTER));
        b.handle_timeout(t0 + DEAD_AFTER);
        b.handle_timeout(t1 + DEAD_AFTER - ms(1));
        assert_eq!(events(&mut b), []);
        // Sending does not keep the receive side alive.
        b.send_message(t1 + ms(250), &hb("b")).unwrap();
        assert_eq!(b.next_deadline(), Some(t1 + DEAD_AFTER));
        b.handle_timeout(t1 + DEAD_AFTER);
        let end = SessionEnd::Idle(DEAD_AFTER);
        assert_eq!(events(&mut b), [SessionEvent::Ended(end.clone())]);
        assert_eq!(end.to_string(), "no frame for 300ms");
        assert_eq!(end.goodbye(), Some("idle"));
        assert_eq!(b.next_deadline(), None);
        b.close("idle");
        pump(t1, &mut b, &mut a);
        assert_eq!(
            events(&mut a),
            [
                SessionEvent::Message(hb("b")),
                SessionEvent::Ended(SessionEnd::PeerClosed("idle".into()))
            ]
        );
        assert!(a.is_ended());
    }

    #[test]
    fn heartbeats_due_at_the_right_times() {
        let t0 = Instant::now();
        let every = ms(100);
        let with_hb = |me: &str| SessionConfig {
            heartbeat_interval: Some(every),
            dead_after: ms(1000),
            ..cfg(me, KEY)
        };
        let mut a = Session::dialer(with_hb("a"), Some("b"), ND, t0);
        let mut b = Session::acceptor(with_hb("b"), t0);
        pump(t0, &mut a, &mut b);
        b.admit(t0, NA).unwrap();
        pump(t0, &mut b, &mut a);
        let _ = (events(&mut a), events(&mut b));
        // The dialer may send (the Proof opened): due one interval after
        // it. The acceptor may not: only its idle timeout.
        assert_eq!(a.next_deadline(), Some(t0 + every));
        assert_eq!(b.next_deadline(), Some(t0 + ms(1000)));
        a.handle_timeout(t0 + ms(99));
        assert_eq!(events(&mut a), []);
        a.handle_timeout(t0 + ms(100));
        assert_eq!(events(&mut a), [SessionEvent::HeartbeatDue]);
        // Not raised twice; the period is kept when the timer fires late.
        a.handle_timeout(t0 + ms(104));
        assert_eq!(events(&mut a), []);
        assert_eq!(a.next_deadline(), Some(t0 + ms(200)));
        // Anything sent restarts the interval.
        a.send_message(t0 + ms(150), &hb("a")).unwrap();
        assert_eq!(a.next_deadline(), Some(t0 + ms(250)));
        a.handle_timeout(t0 + ms(200));
        assert_eq!(events(&mut a), []);
        // After a long stall: one event, then a full interval.
        a.handle_timeout(t0 + ms(600));
        assert_eq!(events(&mut a), [SessionEvent::HeartbeatDue]);
        assert_eq!(a.next_deadline(), Some(t0 + ms(700)));
        // The acceptor's heartbeats start once the dialer is proven.
        pump(t0 + ms(150), &mut a, &mut b);
        let _ = events(&mut b);
        assert_eq!(b.next_deadline(), Some(t0 + ms(250)));
        b.handle_timeout(t0 + ms(250));
        assert_eq!(events(&mut b), [SessionEvent::HeartbeatDue]);
        // The idle timeout wins when both are due.
        a.handle_timeout(t0 + ms(1000));
        assert_eq!(
            events(&mut a),
            [SessionEvent::Ended(SessionEnd::Idle(ms(1000)))]
        );
    }

    #[test]
    fn config_debug_hides_the_key() {
        let c = cfg("a", KEY);
        assert!(!format!("{c:?}").contains("test cluster key"));
        let s = Session::acceptor(c, Instant::now());
        assert!(!format!("{s:?}").contains("test cluster key"));
    }
}
