//! A misbehaving cluster-channel peer for tests (tests/channel_*.rs and the
//! netns suite): it dials over a blocking socket and speaks the protocol
//! with `wire::frame` alone (Hello, keys, the acceptor's Proof, sealed
//! frames), but hands out the frames it builds as bytes, so a test can
//! replay, corrupt, forge, or go silent at will. Include it with
//! `#[path = "support/forger.rs"] mod forger;`.

#![allow(dead_code)] // each test crate uses a part

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use baton::cluster::Message;
use baton::wire::frame::{
    encode, Decoder, Frame, FrameType, Hello, SessionKey, DEFAULT_MAX_PAYLOAD, MAX_HELLO_PAYLOAD,
    NONCE_LEN,
};

pub struct RogueClient {
    stream: TcpStream,
    dec: Decoder,
    send_key: SessionKey,
    recv_key: SessionKey,
    send_seq: u64,
    recv_seq: u64,
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

/// The next frame of `dec`, reading `stream` as needed.
fn read_frame(
    stream: &mut TcpStream,
    dec: &mut Decoder,
    seq: u64,
    key: Option<&SessionKey>,
    what: &str,
) -> io::Result<Frame> {
    let mut buf = [0u8; 4096];
    loop {
        if let Some(f) = dec.next_frame(seq, key).map_err(invalid)? {
            return Ok(f);
        }
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                format!("closed during the {what} (refused)"),
            ));
        }
        dec.push(&buf[..n]);
    }
}

impl RogueClient {
    /// Dial `addr` claiming to be `name`, exchange Hellos, derive the
    /// session keys from `cluster_key` (the right one or not) and check the
    /// acceptor's Proof like a real dialer: `InvalidData` if it fails.
    pub fn connect(
        addr: SocketAddr,
        name: &str,
        cluster_key: &[u8],
        timeout: Duration,
    ) -> io::Result<RogueClient> {
        let mut r = RogueClient::connect_unverified(addr, name, cluster_key, timeout)?;
        let proof = read_frame(
            &mut r.stream,
            &mut r.dec,
            r.recv_seq,
            Some(&r.recv_key),
            "proof",
        )?;
        if proof.kind != FrameType::Proof {
            return Err(invalid(format!("expected a proof, got {:?}", proof.kind)));
        }
        r.recv_seq += 1;
        Ok(r)
    }

    /// Like [`connect`](Self::connect), but the acceptor's Proof is left
    /// unread and unchecked (the next [`recv`](Self::recv) returns it):
    /// a stranger that sends anyway.
    pub fn connect_unverified(
        addr: SocketAddr,
        name: &str,
        cluster_key: &[u8],
        timeout: Duration,
    ) -> io::Result<RogueClient> {
        let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(timeout))?;
        let my_nonce = nonce()?;
        let hello = Hello {
            name: name.to_string(),
            nonce: my_nonce,
        };
        stream.write_all(&hello.encode())?;
        let mut dec = Decoder::new(MAX_HELLO_PAYLOAD);
        let f = read_frame(&mut stream, &mut dec, 0, None, "hello")?;
        let theirs = Hello::parse(&f.payload).map_err(invalid)?;
        dec.set_max_payload(DEFAULT_MAX_PAYLOAD);
        let k = SessionKey::derive(cluster_key, name, &my_nonce, &theirs.name, &theirs.nonce);
        let (send_key, recv_key) = k.split();
        Ok(RogueClient {
            stream,
            dec,
            send_key,
            recv_key,
            send_seq: 1,
            recv_seq: 1,
            peer_name: theirs.name,
        })
    }

    /// A valid frame with the next sequence number (which it uses up); a
    /// Hello is built unsealed, as the handshake's.
    pub fn frame(&mut self, kind: FrameType, payload: &[u8]) -> Vec<u8> {
        if kind == FrameType::Hello {
            return encode(FrameType::Hello, 0, payload, None);
        }
        let f = encode(kind, self.send_seq, payload, Some(&self.send_key));
        self.send_seq += 1;
        f
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

    /// The next frame from the node, opened; `Err` on timeout, end of
    /// stream or a frame that fails its checks (`InvalidData`).
    pub fn recv(&mut self, timeout: Duration) -> io::Result<Frame> {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 4096];
        loop {
            match self.dec.next_frame(self.recv_seq, Some(&self.recv_key)) {
                Ok(Some(f)) => {
                    self.recv_seq += 1;
                    return Ok(f);
                }
                Ok(None) => {}
                Err(e) => return Err(invalid(e)),
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
            self.dec.push(&buf[..n]);
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
