//! Sending prebuilt Ethernet frames (gratuitous ARP, unsolicited neighbour
//! advertisements) on one interface without ever blocking the event loop.
//!
//! pnet's datalink sender is blocking (it polls for POLLOUT), so each
//! interface gets a dedicated thread fed by a bounded queue: `send` only
//! enqueues, frames leave in the order given, and a failure is logged and
//! never fatal (the next announcement is another chance). When the
//! interface disappeared and came back, the thread opens it again.

use std::io;
use std::os::fd::IntoRawFd;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::thread;
use std::time::Duration;

use pnet_datalink::{Channel, Config, DataLinkSender};
use socket2::{Domain, Socket, Type};

/// Batches that may wait for the thread; beyond that, announcements are
/// dropped with a warning (they are repeated anyway, and a queue that long
/// means the interface cannot send).
const QUEUE_BATCHES: usize = 64;
/// How long one frame may wait for room in the socket's send buffer.
const WRITE_TIMEOUT: Duration = Duration::from_millis(200);

/// Sends frames on one interface from a thread of its own.
#[derive(Debug)]
pub struct GarpSender {
    ifname: String,
    queue: SyncSender<Batch>,
}

impl GarpSender {
    /// Open `ifname` for sending and start its thread. Fails if the
    /// interface does not exist or the packet socket cannot be opened.
    pub fn new(ifname: &str) -> io::Result<GarpSender> {
        let link = open(ifname)?;
        let (queue, batches) = mpsc::sync_channel(QUEUE_BATCHES);
        let name = ifname.to_owned();
        thread::Builder::new()
            .name(format!("garp-{ifname}"))
            .spawn(move || run(name, link, batches))?;
        Ok(GarpSender {
            ifname: ifname.to_owned(),
            queue,
        })
    }

    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// Queue `frames` (complete Ethernet frames) to be sent in order. Never
    /// blocks.
    pub fn send(&self, frames: Vec<Vec<u8>>) {
        self.send_paced(frames, Duration::ZERO);
    }

    /// As [`GarpSender::send`], with `gap` between frames (keepalived's
    /// `vrrp_garp_interval` / `vrrp_gna_interval`, for switches that rate
    /// limit ARP). The pacing happens on the sender thread.
    pub fn send_paced(&self, frames: Vec<Vec<u8>>, gap: Duration) {
        match self.queue.try_send(Batch { frames, gap }) {
            Ok(()) => {}
            Err(TrySendError::Full(batch)) => tracing::warn!(
                interface = %self.ifname,
                dropped = batch.frames.len(),
                "announcement queue full, frames dropped"
            ),
            Err(TrySendError::Disconnected(batch)) => tracing::warn!(
                interface = %self.ifname,
                dropped = batch.frames.len(),
                "announcement thread gone, frames dropped"
            ),
        }
    }
}

/// Frames to send in order, `gap` apart.
struct Batch {
    frames: Vec<Vec<u8>>,
    gap: Duration,
}

fn run(ifname: String, link: Box<dyn DataLinkSender>, batches: Receiver<Batch>) {
    let mut link = Some(link);
    // Ends when the GarpSender is dropped.
    while let Ok(Batch { frames, gap }) = batches.recv() {
        for (n, frame) in frames.into_iter().enumerate() {
            if n > 0 && !gap.is_zero() {
                thread::sleep(gap);
            }
            if link.is_none() {
                match open(&ifname) {
                    Ok(reopened) => link = Some(reopened),
                    Err(e) => {
                        tracing::warn!(interface = %ifname, error = %e, "cannot reopen for announcements");
                        break;
                    }
                }
            }
            let Some(sender) = link.as_mut() else { break };
            match sender.send_to(&frame, None) {
                Some(Ok(())) => {}
                Some(Err(e)) => {
                    tracing::warn!(interface = %ifname, error = %e, "announcement not sent");
                    // The interface was removed (perhaps re-created with a
                    // new index): open it again for the next frame.
                    if matches!(e.raw_os_error(), Some(libc::ENXIO | libc::ENODEV)) {
                        link = None;
                    }
                }
                None => {
                    tracing::warn!(interface = %ifname, "announcement not sent: channel closed");
                    link = None;
                }
            }
        }
    }
}

/// A send-only packet channel on `ifname`.
fn open(ifname: &str) -> io::Result<Box<dyn DataLinkSender>> {
    let interface = pnet_datalink::interfaces()
        .into_iter()
        .find(|i| i.name == ifname)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{ifname}: no such interface"),
            )
        })?;
    // pnet binds its packet socket to every protocol (ETH_P_ALL), so it
    // would also queue a copy of each frame the interface sees. We never
    // read it: give it our own socket with the smallest receive buffer, so
    // that the kernel drops those copies at once instead of holding them.
    let socket = Socket::new(Domain::PACKET, Type::RAW, None)?;
    socket.set_recv_buffer_size(0)?;
    let config = Config {
        write_timeout: Some(WRITE_TIMEOUT),
        read_buffer_size: 0,
        promiscuous: false,
        socket_fd: Some(socket.into_raw_fd()),
        ..Config::default()
    };
    match pnet_datalink::channel(&interface, config) {
        Ok(Channel::Ethernet(sender, _receiver)) => Ok(sender),
        Ok(_) => Err(io::Error::other(format!(
            "{ifname}: not an Ethernet channel"
        ))),
        Err(e) => Err(io::Error::new(
            e.kind(),
            format!("{ifname}: packet socket: {e}"),
        )),
    }
}
