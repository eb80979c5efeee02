//! A misbehaving cluster-channel peer for tests (tests/channel_*.rs and the
//! netns suite): it dials over a blocking socket and speaks through the
//! sans-IO [`Session`] like a real dialer, but hands out the frames it
//! builds as bytes, so a test can replay, corrupt, forge, or go silent at
//! will. Include it with `#[path = "support/forger.rs"] mod forger;`.

#![allow(dead_code)] // each test crate uses a part

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use baton::cluster::session::{Outbound, Session, SessionConfig, SessionEnd, SessionEvent};
use baton::cluster::Message;
use baton::wire::frame::{encode, FrameType, DEFAULT_MAX_PAYLOAD, NONCE_LEN};

pub struct RogueClient {
    stream: TcpStream,
    session: Session,
    /// The name the acceptor answered with.
    pub peer_name: String,
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

fn nonce() -> io::Result<[u8; NONCE_LEN]> {
    let mut out = [0u8; NONCE_LEN];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut out)?;
    Ok(out)
}

impl RogueClient {
    /// Dial `addr` claiming to be `name`, exchange Hellos, derive the
    /// session keys from `cluster_key` (the right one or not).
    pub fn connect(
        addr: SocketAddr,
        name: &str,
        cluster_key: &[u8],
        timeout: Duration,
    ) -> io::Result<RogueClient> {
        let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(timeout))?;
        let cfg = SessionConfig {
            me: name.to_string(),
            cluster_key: cluster_key.to_vec(),
            max_payload: DEFAULT_MAX_PAYLOAD,
            hello_timeout: timeout,
            // It goes silent when told, never on its own: the session's
            // timers are never run.
            dead_after: Duration::from_secs(3600),
            heartbeat_interval: None,
        };
        // Whoever answers.
        let mut session = Session::dialer(cfg, None, nonce()?, Instant::now());
        while let Some(b) = session.poll_transmit() {
            stream.write_all(&b)?;
        }
        let mut buf = [0u8; 512];
        loop {
            match session.poll_event() {
                Some(SessionEvent::Keyed) => break,
                Some(SessionEvent::Ended(e)) => return Err(invalid(e)),
                Some(_) => continue,
                None => {}
            }
            let n = stream.read(&mut buf)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionRefused,
                    "closed during the hello (refused)",
                ));
            }
            session.handle_read(Instant::now(), &buf[..n]);
        }
        let peer_name = session.peer().unwrap_or_default().to_string();
        Ok(RogueClient {
            stream,
            session,
            peer_name,
        })
    }

    /// A valid frame with the next sequence number (which it uses up).
    /// Message, Data and Close go through the session; a Hello is built
    /// unkeyed, as the handshake's.
    pub fn frame(&mut self, kind: FrameType, payload: &[u8]) -> Vec<u8> {
        let now = Instant::now();
        match kind {
            FrameType::Message | FrameType::Data => {
                let out = if kind == FrameType::Message {
                    Outbound::Message
                } else {
                    Outbound::Data
                };
                self.session
                    .send(now, out, payload)
                    .expect("the rogue's session sends once keyed");
            }
            FrameType::Close => self.session.close(&String::from_utf8_lossy(payload)),
            FrameType::Hello => return encode(FrameType::Hello, 0, payload, None),
        }
        std::iter::from_fn(|| self.session.poll_transmit())
            .flatten()
            .collect()
    }

    pub fn message_frame(&mut self, msg: &Message) -> Vec<u8> {
        self.frame(FrameType::Message, &msg.to_json())
    }

    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    pub fn send_message(&mut self, msg: &Message) -> io::Result<()> {
        let f = self.message_frame(msg);
        self.send_raw(&f)
    }

    /// The next message, data or close from the node; `Err` on timeout,
    /// end of stream or a frame that fails its checks (`InvalidData`).
    pub fn recv(&mut self, timeout: Duration) -> io::Result<SessionEvent> {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 4096];
        loop {
            match self.session.poll_event() {
                Some(ev @ (SessionEvent::Message(_) | SessionEvent::Data(_))) => return Ok(ev),
                Some(SessionEvent::Ended(SessionEnd::Rejected(r))) => return Err(invalid(r)),
                Some(ev @ SessionEvent::Ended(_)) => return Ok(ev),
                Some(_) => continue,
                None => {}
            }
            if self.session.is_ended() {
                return Err(invalid("the session has ended"));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::ErrorKind::TimedOut.into());
            }
            self.stream.set_read_timeout(Some(left))?;
            let n = self.stream.read(&mut buf)?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.session.handle_read(Instant::now(), &buf[..n]);
        }
    }

    /// Wait until the node closes the connection; true if it did within
    /// `timeout`. Frames received meanwhile are discarded.
    pub fn wait_closed(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.stream.set_read_timeout(Some(left)).is_err() {
                return false;
            }
            match self.stream.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return false
                }
                Err(_) => return true,
            }
        }
    }

    /// The raw socket, to do anything else.
    pub fn stream(&mut self) -> &mut TcpStream {
        &mut self.stream
    }
}
