//! The daemon: the IO shell around one [`Node`]. A current_thread tokio
//! loop turns OS events into node inputs and node effects into syscalls;
//! it makes no protocol decision of its own.
//!
//! One loop turn, always in this order:
//! 1. wait for the first of: TERM/INT (stop), HUP (reload), a netlink
//!    event, a VRRP packet, a cluster-channel event, a synced-file event,
//!    a tracker event, a control request, or the node's next deadline;
//! 2. hand it to the node as one [`Input`] (`Instant::now()` as the time;
//!    a VRRP packet's is when the kernel received it); VRRP packets are
//!    read by this loop from the sockets, up to [`RX_BURST`] per turn;
//! 3. hand it [`Input::Timeout`] too if a deadline has passed meanwhile
//!    (a flood on one queue never starves the timers), after the packets
//!    the sockets hold by then;
//! 4. drain [`Node::poll_effect`] and carry out each effect in order
//!    (a new master's first advert leaves before its VIPs are added, and
//!    the GARPs after them; notify scripts run in event order);
//! 5. sleep until [`Node::next_deadline`] (on a timerfd, to the
//!    microsecond: [`super::timer`]) or the next event.
//!
//! Every netlink write happens on this task, in the order the node asked
//! for it.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, Ipv6Addr};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tracing::{debug, error, info, warn};

use super::channel::{Channel, ChannelEvent, ChannelHandle, ChannelOptions};
use super::control::{self, Pending, Reply, Request, Status};
use super::garp::GarpSender;
use super::netlink::{self as nlink, LeaseRefresher, LinkEvent, NetEvent, Netlink, NetlinkError};
use super::notify::Notifier;
use super::on_change;
use super::script;
use super::socket::{ArrivalClock, RecvBatch, VrrpSocket};
use super::state::{StateLock, VipLedger};
use super::syncfs::{self, FsEvent};
use super::timer::DeadlineTimer;
use super::track::{TrackEvent, Tracker};
use super::vmac::{self, Sysctls, Vmac};
use crate::cluster;
use crate::config::model::{AuthType, Version};
use crate::config::model::{Config, Family, Instance as InstanceCfg, Route, Rule, Vip};
use crate::node::{self, Effect, IfaceId, Input, InstanceId, Level, Node};
/// Errors that stop the agent from starting.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("{0}")]
    Config(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
}

/// Giving the heap's free memory back to the kernel once a storm is over.
///
/// A storm (hundreds of instances changing state at once, a start, a
/// reload) allocates effects, log lines and netlink messages by the
/// hundred; glibc keeps the freed memory in the heap, so a node that went
/// through one stays a megabyte or more larger for good. A second after
/// the last turn that carried out many effects, the heap is trimmed
/// (`malloc_trim`: it returns whole free pages; a few microseconds on the
/// daemon's heap).
#[derive(Debug, Default)]
struct HeapTrim {
    due: Option<Instant>,
}

impl HeapTrim {
    /// A turn with at least this many effects other than adverts and
    /// lease refreshes is a storm.
    const STORM_EFFECTS: usize = 64;
    const QUIET: Duration = Duration::from_secs(1);

    fn storm(&mut self, now: Instant) {
        self.due = Some(now + Self::QUIET);
    }

    fn tick(&mut self, now: Instant) {
        if self.due.is_some_and(|d| d <= now) {
            self.due = None;
            trim_heap();
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim_heap() {
    // SAFETY: malloc_trim only walks and shrinks glibc's own heap, under
    // its lock; it takes no pointer and is safe to call at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim_heap() {}

/// Send the gathered adverts, those of one socket in a row with one
/// sendmmsg; what that does not take goes one by one, waiting for room.
async fn send_adverts(adverts: &mut Vec<(Rc<VrrpSocket>, IpAddr, Vec<u8>)>) {
    let mut rest = &adverts[..];
    while let Some((sock, _, _)) = rest.first() {
        let run = rest
            .iter()
            .take_while(|(s, _, _)| Rc::ptr_eq(s, sock))
            .count();
        let (group, after) = rest.split_at(run);
        let batch: Vec<(&[u8], IpAddr)> = group.iter().map(|(_, d, b)| (&b[..], *d)).collect();
        let sent = sock.try_send_many(&batch).unwrap_or(0);
        for (payload, dst) in &batch[sent..] {
            if let Err(e) = sock.send(payload, *dst).await {
                // A down link fails sends: the link watch turns that into
                // FAULT; do not flood the log.
                debug!("advert to {dst}: {e}");
            }
        }
        rest = after;
    }
    adverts.clear();
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> AgentError {
    let what = what.into();
    move |source| AgentError::Io { what, source }
}

fn nl_err(what: impl Into<String>) -> impl FnOnce(NetlinkError) -> AgentError {
    let what = what.into();
    move |e| AgentError::Config(format!("{what}: {e}"))
}

/// How the agent was started.
#[derive(Debug, Clone)]
pub struct Options {
    pub config_path: PathBuf,
    /// keepalived.conf config id (`-i`); None: the short host name.
    pub config_id: Option<String>,
    /// Overrides of the configuration's `control_socket` and `state_dir`.
    pub control_socket: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    /// Write our pid to each (`-p`, and `-r`: baton is its own VRRP
    /// process), removed on exit.
    pub pid_files: Vec<PathBuf>,
    /// keepalived's `-e`: a missing included file is an error.
    pub all_config: bool,
    /// keepalived's `-V`: leave the VIPs configured when stopping.
    pub keep_vips_on_stop: bool,
    /// keepalived's `-a`: log every address added or removed on the host.
    pub address_monitoring: bool,
    /// keepalived's `-d`: log the configuration as read, at start.
    pub dump_conf: bool,
    /// `-s NAME` was given (and entered): it overrides `net_namespace`.
    pub namespace_given: bool,
}

impl Options {
    pub fn new(config_path: PathBuf) -> Self {
        Options {
            config_path,
            config_id: None,
            control_socket: None,
            state_dir: None,
            pid_files: Vec::new(),
            all_config: false,
            keep_vips_on_stop: false,
            address_monitoring: false,
            namespace_given: false,
            dump_conf: false,
        }
    }

    /// Read the configuration with these options applied.
    pub fn load(&self) -> Result<Config, String> {
        let opts = crate::config::Options {
            config_id: self.config_id.clone(),
            all_config: self.all_config,
            ..crate::config::Options::from_host()
        };
        let loaded = crate::config::load_with_options(&self.config_path, &opts)
            .map_err(|d| d.to_string())?;
        for w in &loaded.warnings.0 {
            warn!("{w}");
        }
        let mut config = loaded.config;
        if let Some(s) = &self.control_socket {
            config.global.control_socket = s.clone();
        }
        if let Some(d) = &self.state_dir {
            config.global.state_dir = d.clone();
        }
        Ok(config)
    }
}

/// keepalived's `-s NAME` and `net_namespace NAME`: this thread (and every
/// thread and socket it makes afterwards) joins /run/netns/NAME. Call it
/// before the runtime starts: threads made earlier stay where they were.
pub fn enter_namespace(name: &str) -> std::io::Result<()> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(std::io::Error::other("not a namespace name"));
    }
    let f = std::fs::File::open(format!("/run/netns/{name}"))?;
    nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)
}

/// Load the configuration and run until TERM/INT.
pub fn run(opts: Options) -> Result<(), AgentError> {
    // A parent may have blocked these (the demo does, to clean up on
    // Ctrl-C): the agent must always see them.
    let mut set = nix::sys::signal::SigSet::empty();
    for s in [
        nix::sys::signal::Signal::SIGTERM,
        nix::sys::signal::Signal::SIGINT,
        nix::sys::signal::Signal::SIGHUP,
    ] {
        set.add(s);
    }
    let _ = set.thread_unblock();
    let config = opts.load().map_err(AgentError::Config)?;
    // keepalived's `net_namespace`: the same step as `-s NAME`, taken as
    // soon as the configuration names it, before any socket or thread.
    match &config.global.net_namespace {
        Some(ns) if opts.namespace_given => {
            info!("net_namespace {ns}: -s given on the command line takes precedence");
        }
        Some(ns) => {
            enter_namespace(ns)
                .map_err(|e| AgentError::Config(format!("net_namespace {ns}: {e}")))?;
            info!("running in network namespace {ns}");
        }
        None => {}
    }
    // Every user the configuration names, looked up once, here: never on
    // the protocol thread when a script starts.
    script::UserTable::resolve(&config).install();
    // Before anything else: a second agent on the same state directory
    // stops here, without touching the VIPs, the pid file or the socket.
    let _lock = StateLock::acquire(&config.global.state_dir).map_err(AgentError::Config)?;
    for p in &opts.pid_files {
        std::fs::write(p, format!("{}\n", std::process::id()))
            .map_err(io_err(format!("pid file {}", p.display())))?;
    }
    if opts.dump_conf {
        info!(
            "configuration {} as read (-d):\n{}",
            opts.config_path.display(),
            crate::config::convert::to_toml(&config)
        );
    }
    let pid_files = opts.pid_files.clone();
    let result = run_agent(config, opts);
    for p in &pid_files {
        let _ = std::fs::remove_file(p);
    }
    result
}

fn run_agent(config: Config, opts: Options) -> Result<(), AgentError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(io_err("tokio runtime"))?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let mut agent = Agent::start(config, opts).await?;
        // Every instance has its initial state (BACKUP, MASTER or FAULT).
        agent.sd.ready(&agent.summary());
        agent.run().await;
        agent.finish().await;
        Ok::<(), AgentError>(())
    })
}

/// Packets the loop takes from its sockets in one turn before it looks at
/// its timers and carries out effects again: a round of adverts from 255
/// instances, so that after a stall a backup reads every advert queued
/// before it runs the master-down timers they would have pushed back.
const RX_BURST: usize = 256;

/// Packets read before due timers run, at most: every advert the sockets
/// hold, as long as a flood does not keep them full. A packet counts from
/// its arrival, so one left unread when a master-down timer runs out
/// would make a backup take over from a master it did hear (before kernel
/// stamps, the late reading pushed the timer back instead).
const RX_BEFORE_TIMERS: usize = 16 * RX_BURST;

/// A loop this late for its timers may not have seen every packet that
/// came before them (the reactor looks when the loop waits): it asks the
/// sockets directly before the timers run.
const RX_LATE: Duration = Duration::from_micros(200);

/// A turn that read at least [`RX_BUSY`] packets (a burst of adverts is
/// coming in) lets the next ones gather for this long, the thread asleep
/// (not woken by each packet or group, as a wait in the reactor is), unless
/// a timer is due sooner: at 255 x 10 ms a backup then wakes about a
/// thousand times a second, each time for a millisecond's adverts, however
/// the master's sends are grouped (a hold of 0.25 ms per 4 packets read
/// left it waking in the reactor for each of many small groups: 1,900-2,500
/// wake-ups a second in some runs, 1,100-1,400 with this). Each packet
/// keeps its kernel receive time; only a reaction to one (a master
/// yielding to a better one) may come this much later.
const RX_HOLD: Duration = Duration::from_millis(1);
const RX_BUSY: usize = 4;

/// A socket the loop reads VRRP (or AH) packets from itself: no task, no
/// queue and no copy between the socket and the node; a packet is handed
/// over from the receive buffer, timed by its kernel receive stamp.
struct RxSock {
    iface: usize,
    multicast_socket: bool,
    sock: Rc<VrrpSocket>,
    clock: ArrivalClock,
    /// Many datagrams per `recvmmsg`, made for the socket's family.
    batch: Box<RecvBatch>,
}

/// Ready when any of `socks` may have a packet (registers the loop's waker
/// with each otherwise); never with none.
fn rx_ready(socks: &[RxSock]) -> impl std::future::Future<Output = ()> + '_ {
    std::future::poll_fn(move |cx| {
        // Every socket is polled, so that each holds the waker.
        let mut ready = false;
        for s in socks {
            ready |= s.sock.poll_readable(cx).is_ready();
        }
        if ready {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
}

/// An interface as the shell uses it; its index in `Agent::ifaces` is its
/// [`IfaceId`] in the node.
struct Iface {
    name: String,
    index: u32,
    mac: [u8; 6],
    addr4: Option<std::net::Ipv4Addr>,
    addr6: Option<Ipv6Addr>,
    garp: GarpSender,
    sock4: Option<Rc<VrrpSocket>>,
    sock6: Option<Rc<VrrpSocket>>,
    /// The AH socket (protocol 51) for `auth_type AH` instances.
    ah_sock4: Option<Rc<VrrpSocket>>,
    /// The unicast AH socket, for `auth_type AH` with `unicast_peers`.
    ah_unicast_sock4: Option<Rc<VrrpSocket>>,
    /// Whether a unicast socket of this interface already receives.
    unicast_rx4: bool,
    unicast_rx6: bool,
}

struct Agent {
    opts: Options,
    node: Node,
    nl: Netlink,
    /// Lease refreshes, many in one write (None: the socket could not be
    /// opened, and each goes through `nl`).
    refresher: Option<LeaseRefresher>,
    ifaces: Vec<Iface>,
    /// The socket each instance's adverts leave by (multicast, or bound to
    /// unicast_src).
    socks: BTreeMap<InstanceId, Rc<VrrpSocket>>,
    /// The macvlan of each `use_vmac` instance.
    vmacs: BTreeMap<InstanceId, Vmac>,
    /// Kernel settings changed for them, restored on exit.
    sysctls: Sysctls,
    ledger: VipLedger,
    /// The sockets VRRP is received from, read by this loop.
    rx_socks: Vec<RxSock>,
    links: mpsc::UnboundedReceiver<NetEvent>,
    ctl: mpsc::Receiver<Pending>,
    cluster: Option<ChannelRt>,
    sync: Option<SyncIo>,
    tracker: Tracker,
    track_events: mpsc::Receiver<TrackEvent>,
    /// Notify scripts and FIFO, delivered in event order.
    notifier: Notifier,
    /// Operator requests waiting for the node's answer, by request id.
    waiting: BTreeMap<u64, tokio::sync::oneshot::Sender<Reply>>,
    next_request: u64,
    /// Stopping under `-V`: VIPs stay configured.
    keeping_vips: bool,
    /// The static addresses (keepalived's `static_ipaddress`) on their
    /// interfaces, put back when something removes them.
    static_ips: Vec<(u32, Vip)>,
    /// The static routes and rules as added (a reload changes them by
    /// difference).
    static_routes: Vec<Route>,
    static_rules: Vec<Rule>,
    /// Route and rule requests (virtual and static) the kernel refused.
    route_errors: u64,
    /// systemd notifications (`Type=notify`).
    sd: super::sdnotify::SdNotify,
    /// An instance changed state this turn: tell systemd's STATUS=.
    status_changed: bool,
    /// When to give the heap's free memory back ([`HeapTrim`]).
    heap_trim: HeapTrim,
    /// Realtime scheduling (vrrp_rt_priority, max_auto_priority).
    sched: super::sched::Scheduling,
    /// Reloads: the configuration is read (and its users looked up) on a
    /// blocking thread, its result comes back here.
    reloads: ReloadQueue,
    /// Start time and reload counts, for status and metrics.
    process: control::ProcessStatus,
    /// The metrics endpoint's snapshot, when `metrics_listen` is set.
    metrics: Option<super::metrics::Shared>,
    /// The endpoint itself (dropping it stops it).
    metrics_server: Option<super::metrics::Server>,
}

/// What a dump signal asks for.
#[derive(Debug, Clone, Copy)]
enum Dump {
    Data,
    Stats,
    Json,
}

impl Dump {
    fn file_name(self) -> &'static str {
        match self {
            Dump::Data => "baton.data",
            Dump::Stats => "baton.stats",
            Dump::Json => "baton.json",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Dump::Data => "data dump (SIGUSR1)",
            Dump::Stats => "stats dump (SIGUSR2)",
            Dump::Json => "JSON dump",
        }
    }
}

/// keepalived's stats dump, per instance: transitions and receive counters.
fn render_stats(status: &Status) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for i in &status.instances {
        let _ = writeln!(out, "VRRP Instance: {}", i.name);
        let _ = writeln!(out, "  State: {:?}", i.state);
        let _ = writeln!(out, "  Became master: {}", i.became_master);
        let _ = writeln!(out, "  Advertisements received: {}", i.rx.accepted);
        let _ = writeln!(out, "  Packets dropped: {}", i.rx.dropped_total());
        for (reason, n) in &i.rx.dropped {
            let _ = writeln!(out, "    {reason}: {n}");
        }
    }
    for f in &status.interfaces {
        let _ = writeln!(
            out,
            "Interface {} ({}), outside any instance:",
            f.name, f.family
        );
        for (reason, n) in &f.rx.dropped {
            let _ = writeln!(out, "    {reason}: {n}");
        }
    }
    out
}

/// A configuration read off the protocol thread, with its users and its
/// cluster key.
type Loaded = Result<(Config, script::UserTable, Option<Vec<u8>>), String>;

/// The reload in flight, if any, and who waits for it.
struct ReloadQueue {
    tx: mpsc::UnboundedSender<Loaded>,
    rx: mpsc::UnboundedReceiver<Loaded>,
    in_flight: bool,
    /// Another SIGHUP or request came while one was in flight: read the
    /// file again once it lands (the newer file wins).
    again: bool,
    /// Control requests answered when the reload they asked for lands.
    replies: Vec<tokio::sync::oneshot::Sender<Reply>>,
}

impl ReloadQueue {
    fn new() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        ReloadQueue {
            tx,
            rx,
            in_flight: false,
            again: false,
            replies: Vec::new(),
        }
    }
}

/// The netns tests' hook `BATON_TEST_CORRUPT_SYNC`: in debug builds only,
/// so a release binary has no such switch.
#[cfg(debug_assertions)]
fn corrupt_sync_hook() -> bool {
    std::env::var_os("BATON_TEST_CORRUPT_SYNC").is_some()
}

#[cfg(not(debug_assertions))]
fn corrupt_sync_hook() -> bool {
    false
}

/// The cluster channel's transport, when configured. Fields drop in
/// order: the handle first (connections say goodbye), then the thread.
struct ChannelRt {
    chan: ChannelHandle,
    events: mpsc::Receiver<ChannelEvent>,
    _thread: ChannelThread,
}

/// The thread the channel runs on: its own current_thread runtime, so
/// that connection handling (a flood of strangers' TCP connections, the
/// Hello and AEAD work of every frame) never takes time from the VRRP
/// timers of the protocol thread. Dropped, it stops the runtime after a
/// short grace for the goodbyes of the closing connections.
struct ChannelThread {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// How long the channel's runtime goes on after the agent let go of it:
/// time for `Close("shutdown")` to leave.
const CHANNEL_GOODBYE_GRACE: std::time::Duration = std::time::Duration::from_millis(50);

impl Drop for ChannelThread {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

type ChannelStart = (ChannelHandle, mpsc::Receiver<ChannelEvent>, ChannelThread);

/// Start the channel on a thread of its own (see [`ChannelThread`]).
fn start_channel_thread(
    me: &str,
    listen: std::net::SocketAddr,
    peers: Vec<(String, std::net::SocketAddr)>,
    key: Vec<u8>,
    opts: ChannelOptions,
) -> io::Result<ChannelStart> {
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let me = me.to_string();
    let thread = std::thread::Builder::new()
        .name("baton-channel".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = started_tx.send(Err(e));
                    return;
                }
            };
            let started = {
                let _in = rt.enter();
                Channel::start(&me, listen, peers, key, opts)
            };
            let ok = started.is_ok();
            let _ = started_tx.send(started);
            if ok {
                rt.block_on(async {
                    let _ = stop_rx.await;
                    tokio::time::sleep(CHANNEL_GOODBYE_GRACE).await;
                });
            }
        })?;
    let (chan, events) = started_rx
        .recv()
        .map_err(|_| io::Error::other("the channel thread ended before starting"))??;
    let thread = ChannelThread {
        stop: Some(stop_tx),
        thread: Some(thread),
    };
    Ok((chan, events, thread))
}

/// Data sync's IO, when `[[sync]]` entries exist: the file worker and the
/// on_change runner.
struct SyncIo {
    fs: syncfs::Worker,
    events: mpsc::UnboundedReceiver<FsEvent>,
    /// on_change commands, run one at a time in order.
    runner: on_change::Runner,
    /// Test hook (`BATON_TEST_CORRUPT_SYNC`, debug builds only): flip a byte of every chunk
    /// sent, so the netns tests can show a corrupt transfer changes nothing.
    corrupt: bool,
}

/// The next channel event, or never when there is no channel.
async fn next_channel_event(c: &mut Option<ChannelRt>) -> Option<ChannelEvent> {
    match c {
        Some(c) => c.events.recv().await,
        None => std::future::pending().await,
    }
}

/// The next file event, or never when data sync is off.
async fn next_sync_event(s: &mut Option<SyncIo>) -> Option<FsEvent> {
    match s {
        Some(s) => s.events.recv().await,
        None => std::future::pending().await,
    }
}

impl Agent {
    async fn start(config: Config, opts: Options) -> Result<Agent, AgentError> {
        let nl = Netlink::new().map_err(nl_err("netlink"))?;
        let ledger = VipLedger::open(&config.global.state_dir);
        // A crash (SIGKILL) leaves VIPs on the interface, and the kernel keeps
        // answering for them: remove what a previous run added, first of all.
        for (ifname, addr, prefix) in ledger.stale() {
            if let Ok(link) = nl.link_by_name(&ifname).await {
                match nl.delete_address(link.index, addr, prefix).await {
                    Ok(()) => warn!(
                        "removed stale VIP {addr}/{prefix} from {ifname} (left by a previous run)"
                    ),
                    Err(e) => warn!("cannot remove stale VIP {addr}/{prefix} from {ifname}: {e}"),
                }
            }
        }
        ledger.clear().map_err(io_err("state file"))?;
        // Subscribe before reading link states, so no change falls between.
        let links = nlink::watch(opts.address_monitoring).map_err(nl_err("netlink watch"))?;
        let (ctl_tx, ctl) = mpsc::channel(16);
        let (tracker, track_events) = Tracker::start(&config);
        control::serve(&config.global.control_socket, ctl_tx).map_err(io_err(format!(
            "control socket {}",
            config.global.control_socket.display()
        )))?;
        let mut agent = Agent {
            opts,
            node: Node::new(config.clone()),
            nl,
            refresher: LeaseRefresher::new()
                .inspect_err(|e| warn!("lease refreshes go one by one: {e}"))
                .ok(),
            ifaces: Vec::new(),
            socks: BTreeMap::new(),
            vmacs: BTreeMap::new(),
            sysctls: Sysctls::new(),
            ledger,
            rx_socks: Vec::new(),
            links,
            ctl,
            cluster: None,
            sync: None,
            tracker,
            track_events,
            notifier: Notifier::new(&config.global),
            waiting: BTreeMap::new(),
            next_request: 1,
            reloads: ReloadQueue::new(),
            keeping_vips: false,
            static_ips: Vec::new(),
            static_routes: Vec::new(),
            static_rules: Vec::new(),
            route_errors: 0,
            sd: super::sdnotify::SdNotify::from_env(),
            status_changed: false,
            heap_trim: HeapTrim::default(),
            process: control::ProcessStatus {
                start_time_unix: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_secs_f64(),
                ..Default::default()
            },
            metrics: None,
            metrics_server: None,
            sched: super::sched::Scheduling::start(&config.global),
        };
        if let Some(addr) = config.global.metrics_listen {
            let shared = super::metrics::Shared::default();
            let server = super::metrics::serve(addr, shared.clone())
                .map_err(io_err(format!("metrics_listen {addr}")))?;
            info!("metrics: serving GET /metrics on {}", server.bound());
            agent.metrics = Some(shared);
            agent.metrics_server = Some(server);
        }
        agent.add_statics(&config).await;
        for cfg in &config.instances {
            if let Err(e) = agent.add_instance(cfg.clone()).await {
                // A start that fails leaves no macvlan behind.
                agent.close_vmacs().await;
                return Err(e);
            }
        }
        if let Some(cc) = &config.cluster {
            let started = agent.start_cluster(cc).and_then(|c| {
                agent.cluster = Some(c);
                if config.sync.is_empty() {
                    return Ok(());
                }
                agent.sync = Some(agent.start_sync()?);
                Ok(())
            });
            if let Err(e) = started {
                agent.close_vmacs().await;
                return Err(e);
            }
        }
        // Tracked interfaces start from the kernel's view (a missing one is
        // down, as keepalived treats it).
        agent.report_tracked_links().await;
        // The tracker read the files already: apply those values before
        // the first health check, so a bad file faults from the start.
        agent.apply_pending_track_events();
        let delay = config.global.startup_delay;
        if !delay.is_zero() {
            info!("vrrp_startup_delay: waiting {delay:?} before starting the instances");
            tokio::time::sleep(delay).await;
        }
        agent.node.start(Instant::now());
        agent.apply_effects().await;
        info!(
            "baton {} started with {} instance(s)",
            env!("CARGO_PKG_VERSION"),
            agent.node.instance_ids().len()
        );
        Ok(agent)
    }

    fn start_cluster(
        &mut self,
        cc: &crate::config::model::Cluster,
    ) -> Result<ChannelRt, AgentError> {
        let key = cluster::key::load_key(&cc.key_file)
            .map_err(|e| AgentError::Config(format!("cluster: {e}")))?;
        let peers: Vec<(String, std::net::SocketAddr)> =
            cc.peers.iter().map(|p| (p.name.clone(), p.addr)).collect();
        let opts = ChannelOptions {
            check_peer_source: cc.check_peer_source,
            ..ChannelOptions::with_heartbeat(cc.heartbeat_interval)
        };
        let (chan, events, thread) = start_channel_thread(&cc.node, cc.listen, peers, key, opts)
            .map_err(io_err(format!("cluster channel on {}", cc.listen)))?;
        self.node.enable_cluster(Instant::now());
        info!(
            "cluster channel: node {} listening on {}, {} peer(s)",
            cc.node,
            cc.listen,
            cc.peers.len()
        );
        Ok(ChannelRt {
            chan,
            events,
            _thread: thread,
        })
    }

    fn start_sync(&mut self) -> Result<SyncIo, AgentError> {
        let config = self.node.config().clone();
        let state_file = config.global.state_dir.join("sync-state.json");
        let state = syncfs::load_state(&state_file);
        let instance = self
            .node
            .enable_sync(state, None)
            .ok_or_else(|| AgentError::Config("sync: no instance to follow".into()))?;
        let (fs, events) = syncfs::Worker::start(fs_entries(&config), state_file)
            .map_err(io_err("sync file worker"))?;
        info!(
            "data sync: {} file(s), following the master of {instance}",
            config.sync.len()
        );
        Ok(SyncIo {
            fs,
            events,
            runner: on_change::Runner::start(config.global.clone()),
            corrupt: corrupt_sync_hook(),
        })
    }
}

/// The file worker's view of the `[[sync]]` entries (owners looked up).
fn fs_entries(config: &Config) -> Vec<syncfs::FsEntry> {
    config
        .sync
        .iter()
        .map(|e| {
            let owner = e
                .owner
                .as_deref()
                .and_then(|spec| match script::resolve_user(spec) {
                    Ok(r) => Some((r.uid.as_raw(), r.gid.as_raw())),
                    Err(err) => {
                        error!(
                            "sync {}: owner {spec}: {err}; the file keeps its owner",
                            e.name
                        );
                        None
                    }
                });
            syncfs::FsEntry {
                name: e.name.clone(),
                path: e.path.clone(),
                mode: e.mode,
                owner,
                max_size: e.max_size,
            }
        })
        .collect()
}

impl Agent {
    /// Tell the node every tracked link's state as the kernel has it.
    async fn report_tracked_links(&mut self) {
        let tracked: Vec<String> = self
            .node
            .config()
            .tracked_interface_names()
            .into_iter()
            .map(String::from)
            .collect();
        for name in tracked {
            let up = self.nl.link_by_name(&name).await.is_ok_and(|l| l.up);
            self.node
                .handle(Instant::now(), Input::Link { name: &name, up });
        }
    }

    async fn iface(&mut self, name: &str) -> Result<usize, AgentError> {
        if let Some(i) = self.ifaces.iter().position(|f| f.name == name) {
            return Ok(i);
        }
        let link = self
            .nl
            .link_by_name(name)
            .await
            .map_err(nl_err(format!("interface {name}")))?;
        let mut addr4 = None;
        let mut addr6 = None;
        let addrs = self
            .nl
            .addresses(link.index)
            .await
            .map_err(nl_err(format!("addresses of {name}")))?;
        for a in addrs {
            match a.addr {
                // Our own VIPs are never the primary address.
                IpAddr::V4(v) if addr4.is_none() && !a.secondary && !self.is_vip(a.addr) => {
                    addr4 = Some(v)
                }
                IpAddr::V6(v) if addr6.is_none() && is_link_local(v) && !a.tentative => {
                    addr6 = Some(v)
                }
                _ => {}
            }
        }
        let mac = link.mac.ok_or_else(|| {
            AgentError::Config(format!("interface {name} has no Ethernet address"))
        })?;
        let garp = GarpSender::new(name).map_err(io_err(format!("packet socket on {name}")))?;
        let id = self.node.add_interface(name, link.up);
        debug_assert_eq!(id.0, self.ifaces.len());
        self.ifaces.push(Iface {
            name: name.to_string(),
            index: link.index,
            mac,
            addr4,
            addr6,
            garp,
            sock4: None,
            sock6: None,
            ah_sock4: None,
            ah_unicast_sock4: None,
            unicast_rx4: false,
            unicast_rx6: false,
        });
        Ok(self.ifaces.len() - 1)
    }

    fn is_vip(&self, a: IpAddr) -> bool {
        self.node
            .config()
            .instances
            .iter()
            .any(|i| i.virtual_ips.iter().any(|v| v.addr == a))
    }

    /// The shared multicast socket of an interface and family, opened on
    /// first use with its receive task. Its source address is pinned to
    /// `local` (the interface's primary IPv4 or own link-local address):
    /// left to the kernel, the source could become a VIP once one is
    /// configured (a link-local IPv6 VIP, say), and the checksum, computed
    /// over `local`, would no longer match.
    fn multicast_socket(
        &mut self,
        iface: usize,
        v4: bool,
        local: IpAddr,
    ) -> Result<Rc<VrrpSocket>, AgentError> {
        let f = &self.ifaces[iface];
        if let Some(s) = if v4 { &f.sock4 } else { &f.sock6 } {
            return Ok(s.clone());
        }
        let g = &self.node.config().global;
        let group = if v4 {
            IpAddr::V4(g.mcast_group4)
        } else {
            IpAddr::V6(g.mcast_group6)
        };
        let mut sock = VrrpSocket::open_group(&f.name, group)
            .map_err(io_err(format!("VRRP socket on {}", f.name)))?;
        sock.bind_source(local)
            .map_err(io_err(format!("{}: advert source {local}", f.name)))?;
        let sock = Rc::new(sock);
        self.spawn_receiver(iface, sock.clone(), true);
        let f = &mut self.ifaces[iface];
        if v4 {
            f.sock4 = Some(sock.clone());
        } else {
            f.sock6 = Some(sock.clone());
        }
        Ok(sock)
    }

    /// The multicast or unicast AH socket of an interface, opened on first
    /// use with its receive task. One of each kind per interface is enough:
    /// the datagrams sent carry their own IPv4 header (source included),
    /// and a raw socket hears every AH packet of its interface (more would
    /// hand each over twice); the node keeps, of what each hears, the
    /// group's packets (multicast) or the others (unicast).
    fn ah_socket(&mut self, iface: usize, multicast: bool) -> Result<Rc<VrrpSocket>, AgentError> {
        let f = &self.ifaces[iface];
        let open = if multicast {
            &f.ah_sock4
        } else {
            &f.ah_unicast_sock4
        };
        if let Some(s) = open {
            return Ok(s.clone());
        }
        let what = if multicast { "AH" } else { "unicast AH" };
        let sock = VrrpSocket::open_ah_v4(&f.name, multicast)
            .map_err(io_err(format!("{what} socket on {}", f.name)))?;
        let sock = Rc::new(sock);
        self.spawn_receiver(iface, sock.clone(), multicast);
        let f = &mut self.ifaces[iface];
        if multicast {
            f.ah_sock4 = Some(sock.clone());
        } else {
            f.ah_unicast_sock4 = Some(sock.clone());
        }
        Ok(sock)
    }

    /// Read VRRP from `sock` in this loop from now on.
    fn spawn_receiver(&mut self, iface: usize, sock: Rc<VrrpSocket>, multicast_socket: bool) {
        let batch = Box::new(if sock.is_v6() {
            RecvBatch::new_v6()
        } else {
            RecvBatch::new(sock.is_ah())
        });
        self.rx_socks.push(RxSock {
            iface,
            multicast_socket,
            sock,
            clock: ArrivalClock::default(),
            batch,
        });
    }

    /// [`RX_HOLD`]: sleep (blocking the loop: nothing else is due before
    /// its end) so that a burst's next packets gather in the sockets.
    fn hold_rx(&mut self) {
        let until = Instant::now() + RX_HOLD;
        // Effects first (an advert to send, a reply) and no deadline
        // inside the hold.
        if self.node.has_effects() || self.node.next_deadline().is_some_and(|d| d <= until) {
            return;
        }
        std::thread::sleep(RX_HOLD);
    }

    /// Hand the node what the sockets hold, up to `budget` packets, each
    /// timed by its kernel receive stamp; a socket found empty has its
    /// readiness cleared (the next [`rx_ready`] waits for more).
    /// `now`: ask the kernel, whatever the reactor last saw (before due
    /// timers run: a packet may have come since the reactor's last look).
    fn drain_rx(&mut self, budget: usize, now: bool) -> usize {
        let mut budget = budget;
        let wanted = budget;
        let Agent { rx_socks, node, .. } = self;
        for s in rx_socks.iter_mut() {
            while budget > 0 {
                let batch = &mut *s.batch;
                let got = if now {
                    s.sock.recv_batch_now(batch)
                } else {
                    s.sock.try_recv_batch(batch)
                };
                let n = match got {
                    Ok(n) => n,
                    Err(e) => {
                        warn!("VRRP receive: {e}");
                        break;
                    }
                };
                budget = budget.saturating_sub(n);
                let arrivals = s.clock.batch();
                for k in 0..n {
                    let Some((data, received)) = batch.get(k) else {
                        break;
                    };
                    let r = match received {
                        Ok(r) => r,
                        Err(e) => {
                            warn!("VRRP receive on {}: {e}", s.sock.ifname());
                            continue;
                        }
                    };
                    let at = arrivals.of(r.stamp);
                    let (iface, multicast_socket) = (IfaceId(s.iface), s.multicast_socket);
                    let input = if s.sock.is_ah() {
                        Input::AhPacket {
                            iface,
                            multicast_socket,
                            packet: &data[r.payload],
                        }
                    } else {
                        Input::Packet {
                            iface,
                            multicast_socket,
                            src: r.src,
                            dst: r.dst,
                            ttl: r.ttl,
                            payload: &data[r.payload],
                        }
                    };
                    node.handle(at, input);
                }
                if n < RecvBatch::CAPACITY {
                    break;
                }
            }
        }
        wanted - budget
    }

    /// Open what an instance needs (interface, address, socket) and add it
    /// to the node.
    async fn add_instance(&mut self, cfg: InstanceCfg) -> Result<InstanceId, AgentError> {
        let iface = self.iface(&cfg.interface).await?;
        let v4 = cfg.virtual_ips.first().is_none_or(|v| v.addr.is_ipv4());
        if cfg.is_route() {
            // Route mode: no VRRP socket, no advert source; the VIPs go on
            // the interface (lo) for the routing daemon to announce.
            let local = if v4 {
                IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)
            } else {
                IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
            };
            return Ok(self
                .node
                .add_instance(Instant::now(), cfg, IfaceId(iface), local));
        }
        let f = &self.ifaces[iface];
        let local: IpAddr = match (cfg.unicast_src, v4) {
            (Some(a), _) => a,
            (None, true) => f.addr4.map(IpAddr::V4).ok_or_else(|| {
                AgentError::Config(format!(
                    "{}: interface {} has no IPv4 address to send adverts from",
                    cfg.name, f.name
                ))
            })?,
            (None, false) => f.addr6.map(IpAddr::V6).ok_or_else(|| {
                AgentError::Config(format!(
                    "{}: interface {} has no IPv6 link-local address",
                    cfg.name, f.name
                ))
            })?,
        };
        let vmac = if cfg.use_vmac {
            Some(self.open_vmac(&cfg, iface, v4).await?)
        } else {
            None
        };
        let sock = match self.instance_socket(&cfg, iface, v4, local, vmac.as_ref()) {
            Ok(s) => s,
            Err(e) => {
                // A start that fails leaves no macvlan of its own behind.
                if let Some(v) = &vmac {
                    vmac::close(&self.nl, v).await;
                }
                return Err(e);
            }
        };
        // mcast_src_ip: the advert source and tie-breaker (the checksum
        // covers it), as keepalived's saddr.
        let local = match cfg.mcast_src {
            Some(src) if cfg.unicast_peers.is_empty() && vmac.is_none() => src,
            _ => local,
        };
        let id = self
            .node
            .add_instance(Instant::now(), cfg, IfaceId(iface), local);
        self.socks.insert(id, sock);
        if let Some(v) = vmac {
            self.vmacs.insert(id, v);
        }
        Ok(id)
    }

    /// The socket an instance sends its adverts by (and its receive task).
    fn instance_socket(
        &mut self,
        cfg: &InstanceCfg,
        iface: usize,
        v4: bool,
        local: IpAddr,
        vmac: Option<&Vmac>,
    ) -> Result<Rc<VrrpSocket>, AgentError> {
        let ah = cfg.auth_type == AuthType::Ah && cfg.version == Version::V2 && v4;
        if ah && vmac.is_some() {
            return Err(AgentError::Config(format!(
                "({}) auth_type AH with use_vmac is not supported",
                cfg.name
            )));
        }
        if ah && cfg.unicast_peers.is_empty() {
            // Plain VRRP is heard too (and dropped as auth_mismatch).
            self.multicast_socket(iface, v4, local)?;
            return self.ah_socket(iface, true);
        }
        if ah {
            // Unicast AH: plain VRRP from the peers is heard too (and
            // dropped as auth_mismatch) by the interface's receiving
            // unicast VRRP socket, opened here if no instance has one yet.
            if !self.ifaces[iface].unicast_rx4 {
                let f = &self.ifaces[iface];
                let s = VrrpSocket::open_v4(&f.name, false)
                    .map_err(io_err(format!("unicast VRRP socket on {}", f.name)))?;
                self.spawn_receiver(iface, Rc::new(s), false);
                self.ifaces[iface].unicast_rx4 = true;
            }
            return self.ah_socket(iface, false);
        }
        let f = &self.ifaces[iface];
        if let Some(v) = vmac.filter(|_| cfg.unicast_peers.is_empty()) {
            // Adverts are received on the macvlan, as keepalived does (see
            // agent::vmac); they leave by it too (source MAC: the virtual
            // one) unless vmac_xmit_base sends them from the base interface.
            let open = |ifname: &str, join: bool| {
                let mut s = if v4 {
                    VrrpSocket::open_v4(ifname, join)
                } else {
                    VrrpSocket::open_v6(ifname, join)
                }
                .map_err(io_err(format!("VRRP socket on {ifname}")))?;
                s.bind_source(local)
                    .map_err(io_err(format!("{ifname}: advert source {local}")))?;
                Ok::<_, AgentError>(Rc::new(s))
            };
            let rx = open(&v.name, true)?;
            let tx = if cfg.vmac_xmit_base {
                open(&f.name, false)
            } else {
                Ok(rx.clone())
            };
            self.spawn_receiver(iface, rx, true);
            tx
        } else if cfg.unicast_peers.is_empty() {
            let shared = self.multicast_socket(iface, v4, local)?;
            match cfg.mcast_src {
                // mcast_src_ip: this instance sends from a socket of its
                // own; the shared one still receives for it.
                Some(src) if src != local => {
                    let f = &self.ifaces[iface];
                    let mut s = if v4 {
                        VrrpSocket::open_v4(&f.name, false)
                    } else {
                        VrrpSocket::open_v6(&f.name, false)
                    }
                    .map_err(io_err(format!("VRRP socket on {}", f.name)))?;
                    s.set_transparent()
                        .and_then(|()| s.bind_source(src))
                        .map_err(io_err(format!("{}: mcast_src_ip {src}", cfg.name)))?;
                    Ok(Rc::new(s))
                }
                _ => Ok(shared),
            }
        } else {
            let mut s = if v4 {
                VrrpSocket::open_v4(&f.name, false)
            } else {
                VrrpSocket::open_v6(&f.name, false)
            }
            .map_err(io_err(format!("unicast VRRP socket on {}", f.name)))?;
            s.bind_source(local)
                .map_err(io_err(format!("{}: bind unicast_src {local}", cfg.name)))?;
            let s = Rc::new(s);
            // A raw socket sees every VRRP packet of its interface: one
            // receiving unicast socket per interface and family is enough
            // (more would hand each advert over twice); the others only send.
            let f = &mut self.ifaces[iface];
            let receiving = if v4 {
                &mut f.unicast_rx4
            } else {
                &mut f.unicast_rx6
            };
            if !*receiving {
                *receiving = true;
                self.spawn_receiver(iface, s.clone(), false);
            }
            Ok(s)
        }
    }

    /// The macvlan of a `use_vmac` instance, created (or reused) now.
    async fn open_vmac(
        &mut self,
        cfg: &InstanceCfg,
        iface: usize,
        v4: bool,
    ) -> Result<Vmac, AgentError> {
        let name = cfg
            .vmac_interface
            .clone()
            .unwrap_or_else(|| vmac::default_name(cfg.vrid, !v4));
        if let Some(other) = self.vmacs.values().find(|v| v.name == name) {
            return Err(AgentError::Config(format!(
                "({}) use_vmac: {} is already another instance's VMAC interface",
                cfg.name, other.name
            )));
        }
        let f = &self.ifaces[iface];
        let base = self
            .nl
            .link_by_index(f.index)
            .await
            .map_err(nl_err(format!("interface {}", f.name)))?;
        let spec = vmac::VmacSpec {
            instance: &cfg.name,
            name: &name,
            vrid: cfg.vrid,
            v6: !v4,
            base: &base,
            base_link_local: f.addr6,
        };
        vmac::open(&self.nl, &mut self.sysctls, spec)
            .await
            .map_err(AgentError::Config)
    }

    /// Delete the macvlans this run created and put the kernel settings
    /// back (not under `-V`: the VIPs stay, and with them what they need).
    async fn close_vmacs(&mut self) {
        if self.keeping_vips {
            return;
        }
        for v in std::mem::take(&mut self.vmacs).into_values() {
            vmac::close(&self.nl, &v).await;
        }
        self.sysctls.restore();
    }

    async fn run(&mut self) {
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
        let mut hup = signal(SignalKind::hangup()).expect("SIGHUP handler");
        // keepalived's dump signals: none of them may stop the agent.
        let mut usr1 = signal(SignalKind::user_defined1()).expect("SIGUSR1 handler");
        let mut usr2 = signal(SignalKind::user_defined2()).expect("SIGUSR2 handler");
        let rtmin = nix::libc::SIGRTMIN();
        let mut json = signal(SignalKind::from_raw(rtmin + 2)).expect("JSON signal handler");
        let mut clear =
            signal(SignalKind::from_raw(rtmin + 29)).expect("STATS_CLEAR signal handler");
        // systemd's watchdog: pinged from this loop, so a stuck loop is seen.
        let mut watchdog = self.sd.watchdog_interval().map(|p| {
            let mut t = tokio::time::interval(p);
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            t
        });
        // The metrics snapshot: refreshed this often while an endpoint runs
        // (a reload may start one: the tick always runs, and does nothing
        // without an endpoint).
        let mut metrics_tick = Some({
            let mut t = tokio::time::interval(std::time::Duration::from_millis(100));
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            t
        });
        let mut timer = DeadlineTimer::new();
        loop {
            let deadline = self.node.next_deadline();
            tokio::select! {
                biased;
                _ = term.recv() => { info!("SIGTERM: stopping"); self.sd.stopping(); break; }
                _ = int.recv() => { info!("SIGINT: stopping"); self.sd.stopping(); break; }
                _ = tick(&mut watchdog) => self.sd.watchdog(),
                _ = tick(&mut metrics_tick) => {
                    self.publish_metrics();
                    self.heap_trim.tick(Instant::now());
                }
                _ = hup.recv() => self.request_reload(None),
                _ = usr1.recv() => self.dump(Dump::Data),
                _ = usr2.recv() => self.dump(Dump::Stats),
                _ = json.recv() => self.dump(Dump::Json),
                _ = clear.recv() => {
                    self.node.clear_stats();
                    info!("statistics cleared (STATS_CLEAR signal)");
                }
                Some(loaded) = self.reloads.rx.recv() => self.reload_loaded(loaded).await,
                Some(ev) = self.links.recv() => self.on_net_event(ev).await,
                // What has come: one turn for the burst.
                _ = rx_ready(&self.rx_socks) => {
                    if self.drain_rx(RX_BURST, false) >= RX_BUSY {
                        self.hold_rx();
                    }
                }
                Some(ev) = next_channel_event(&mut self.cluster) => self.on_channel(ev),
                Some(ev) = next_sync_event(&mut self.sync) => self.on_sync_fs(ev),
                Some(ev) = self.track_events.recv() => {
                    self.node.handle(Instant::now(), Input::Track(ev));
                }
                Some(req) = self.ctl.recv() => self.on_control(req).await,
                _ = timer.until(deadline) => {}
            }
            // Due timers run on every turn, whatever the queues hold: the
            // select above is biased, and a flood of packets must not
            // starve the adverts. The deadline as the turn left it (the
            // node keeps it, no walk over the instances): a burst of
            // adverts has just pushed back their master-down timers.
            let now = Instant::now();
            // keepalived's max_auto_priority: a loop that wakes long after
            // its timer was due is raised to realtime scheduling.
            if let Some(due) = deadline {
                self.sched.woke(due, now);
            }
            if let Some(due) = self.node.next_deadline().filter(|d| *d <= now) {
                // Adverts that came before the timers ran out are heard
                // first (each timed by its arrival): a master-down timer
                // that an advert queued meanwhile pushed back must not fire.
                // A loop woken by the timer on time has just seen what the
                // sockets hold; one that comes late (busy meanwhile) asks
                // the kernel itself.
                let late = now.saturating_duration_since(due) > RX_LATE;
                let mut read = 0;
                while read < RX_BEFORE_TIMERS {
                    let n = self.drain_rx(RX_BURST, late);
                    read += n;
                    if n < RX_BURST {
                        break;
                    }
                }
                let now = Instant::now();
                if self.node.next_deadline().is_some_and(|d| d <= now) {
                    self.node.handle(now, Input::Timeout);
                }
            }
            self.apply_effects().await;
            if std::mem::take(&mut self.status_changed) {
                self.sd.status(&self.summary());
            }
        }
        self.hand_off().await;
        self.shutdown().await;
    }

    fn on_sync_fs(&mut self, ev: FsEvent) {
        let now = Instant::now();
        match ev {
            FsEvent::Observed { name, observed } => self.node.handle(
                now,
                Input::FileObserved {
                    name: &name,
                    observed,
                },
            ),
            FsEvent::Written {
                name,
                version,
                result,
            } => self.node.handle(
                now,
                Input::FileWritten {
                    name: &name,
                    version,
                    result,
                },
            ),
        }
    }

    fn on_channel(&mut self, ev: ChannelEvent) {
        let now = Instant::now();
        match ev {
            ChannelEvent::Up { peer } => {
                info!("cluster: {peer} connected");
                self.node.handle(now, Input::PeerUp { peer: &peer });
            }
            ChannelEvent::Down { peer, reason, died } => {
                if died {
                    warn!("cluster: {peer} disconnected ({reason}, no goodbye: its process died)");
                } else {
                    warn!("cluster: {peer} disconnected ({reason})");
                }
                self.node.handle(now, Input::PeerDown { peer: &peer, died });
            }
            ChannelEvent::Message { peer, msg } => {
                self.node.handle(now, Input::Message { peer: &peer, msg })
            }
            ChannelEvent::Data { peer, bytes } => self.node.handle(
                now,
                Input::Data {
                    peer: &peer,
                    bytes: &bytes,
                },
            ),
        }
    }

    /// A graceful stop with the channel: hand every mastered instance to
    /// its successor (make-before-break) and wait, bounded, for it to take
    /// over before the VRRP shutdown (priority 0 stays the fallback for
    /// peers without the channel).
    async fn hand_off(&mut self) {
        if self.cluster.is_none() {
            return;
        }
        let now = Instant::now();
        let handed = self.node.hand_off(now);
        if handed.is_empty() {
            return;
        }
        info!("handing over {} before stopping", handed.join(", "));
        self.apply_effects().await;
        let deadline = now + std::time::Duration::from_secs(2);
        // Route mode: also while our VIPs are being released (the routers
        // move to the successor while we still answer).
        let busy = |n: &crate::node::Node| n.masters_any(&handed) || n.releasing_any(&handed);
        while busy(&self.node) && Instant::now() < deadline {
            let wake = self
                .node
                .next_deadline()
                .map_or(deadline, |d| d.min(deadline));
            tokio::select! {
                _ = rx_ready(&self.rx_socks) => {
                    self.drain_rx(RX_BURST, false);
                }
                Some(ev) = next_channel_event(&mut self.cluster) => self.on_channel(ev),
                _ = sleep_until(Some(wake)) => self.node.handle(Instant::now(), Input::Timeout),
            }
            self.apply_effects().await;
        }
        if self.node.masters_any(&handed) {
            warn!("handover not confirmed in time; stopping with priority 0");
        }
    }

    async fn shutdown(&mut self) {
        self.keeping_vips = self.opts.keep_vips_on_stop;
        self.node.shutdown(Instant::now());
        self.apply_effects().await;
        self.remove_statics().await;
        self.close_vmacs().await;
        self.tracker.stop();
        if let Some(s) = &self.sync {
            s.runner.kill_all();
        }
        let _ = std::fs::remove_file(&self.node.config().global.control_socket);
    }

    /// Run what notifications are queued (notify_stop included), then exit.
    async fn finish(self) {
        self.notifier.close().await;
        info!("stopped");
    }

    async fn on_net_event(&mut self, ev: NetEvent) {
        if let NetEvent::AddressRemoved(a) = &ev {
            self.restore_static_address(a.ifindex, a.addr).await;
        }
        match ev {
            NetEvent::Link(l) => self.on_link(l),
            NetEvent::Overrun => {
                // Notifications were lost: read every link we use again.
                warn!("netlink notifications overran; re-reading links");
                for i in 0..self.ifaces.len() {
                    let name = self.ifaces[i].name.clone();
                    match self.nl.link_by_name(&name).await {
                        Ok(l) => self.on_link(LinkEvent {
                            ifindex: l.index,
                            name,
                            up: l.up,
                            removed: false,
                        }),
                        Err(_) => self.on_link(LinkEvent {
                            ifindex: self.ifaces[i].index,
                            name,
                            up: false,
                            removed: true,
                        }),
                    }
                }
                self.report_tracked_links().await;
            }
            NetEvent::AddressAdded(ref a) | NetEvent::AddressRemoved(ref a)
                if self.opts.address_monitoring =>
            {
                let what = if matches!(ev, NetEvent::AddressAdded(_)) {
                    "added"
                } else {
                    "removed"
                };
                let dev = self
                    .ifaces
                    .iter()
                    .find(|f| f.index == a.ifindex)
                    .map_or_else(|| format!("ifindex {}", a.ifindex), |f| f.name.clone());
                info!("address {what}: {}/{} on {dev} (-a)", a.addr, a.prefix_len);
            }
            NetEvent::AddressAdded(_) | NetEvent::AddressRemoved(_) => {}
            NetEvent::RuleRemoved { family, priority } => {
                self.restore_static_rule(family, priority).await;
            }
        }
    }

    fn on_link(&mut self, ev: LinkEvent) {
        self.node.handle(
            Instant::now(),
            Input::Link {
                name: &ev.name,
                up: ev.up,
            },
        );
    }

    /// Apply the tracker's events that are already queued (its first file
    /// reads), without waiting for the event loop.
    fn apply_pending_track_events(&mut self) {
        while let Ok(ev) = self.track_events.try_recv() {
            self.node.handle(Instant::now(), Input::Track(ev));
        }
    }

    /// Carry out the node's effects, in order, until it has none left.
    ///
    /// Adverts and lease refreshes are gathered and go out in batches (one
    /// sendmmsg per socket, one netlink write): a batch goes before any
    /// other effect, so only adverts and refreshes change places among
    /// themselves, which nothing depends on (a refreshed address is there
    /// already).
    async fn apply_effects(&mut self) {
        let mut adverts: Vec<(Rc<VrrpSocket>, IpAddr, Vec<u8>)> = Vec::new();
        // Effects beyond adverts and lease refreshes (the steady state).
        let mut changes = 0;
        while let Some(effect) = self.node.poll_effect() {
            match effect {
                Effect::SendAdvert {
                    instance,
                    dst,
                    bytes,
                } => self.gather_advert(&mut adverts, instance, dst, bytes),
                Effect::RefreshVips {
                    instance,
                    name,
                    iface,
                    vips,
                    lease,
                    metric,
                    readd: false,
                } if self.refresher.is_some() => {
                    let targets = self.vip_targets(instance, &name, iface, &vips).await;
                    if let Some(r) = &mut self.refresher {
                        for (ifname, index, v) in targets {
                            let what = format!("({name}) VIP {v} on {ifname}");
                            r.queue(index, &v, lease, metric, what);
                        }
                    }
                }
                other => {
                    changes += 1;
                    send_adverts(&mut adverts).await;
                    self.flush_refreshes();
                    self.apply(other).await;
                }
            }
        }
        send_adverts(&mut adverts).await;
        self.flush_refreshes();
        if changes >= HeapTrim::STORM_EFFECTS {
            self.heap_trim.storm(Instant::now());
        }
    }

    /// Write the queued lease refreshes (nothing when none is queued).
    fn flush_refreshes(&mut self) {
        let failures = self.refresher.as_mut().map(LeaseRefresher::flush);
        for f in failures.into_iter().flatten() {
            warn!("cannot refresh the lease of {}: {}", f.what, f.error);
        }
    }

    /// Add an advert to those [`send_adverts`] sends together.
    fn gather_advert(
        &self,
        adverts: &mut Vec<(Rc<VrrpSocket>, IpAddr, Vec<u8>)>,
        instance: InstanceId,
        dst: IpAddr,
        bytes: Vec<u8>,
    ) {
        if let Some(sock) = self.socks.get(&instance) {
            adverts.push((Rc::clone(sock), dst, bytes));
        }
    }

    async fn apply(&mut self, effect: Effect) {
        match effect {
            // Gathered by apply_effects; one alone goes the same way.
            Effect::SendAdvert {
                instance,
                dst,
                bytes,
            } => {
                let mut one = Vec::new();
                self.gather_advert(&mut one, instance, dst, bytes);
                send_adverts(&mut one).await;
            }
            Effect::SendAhAdvert {
                instance,
                dst,
                packet,
            } => {
                if let Some(sock) = self.socks.get(&instance) {
                    if let Err(e) = sock.send(&packet, dst).await {
                        debug!("AH advert to {dst}: {e}");
                    }
                }
            }
            Effect::AddVips {
                instance,
                name,
                iface,
                vips,
                lease,
                metric,
            } => {
                let targets = self.vip_targets(instance, &name, iface, &vips).await;
                let entries: Vec<_> = targets
                    .iter()
                    .map(|(ifname, _, v)| (ifname.clone(), v.addr, v.prefix_len))
                    .collect();
                // Intent first: if we are killed after the add, the next start
                // still knows what to clean up (queued to the ledger's thread).
                self.ledger.record(&entries);
                for (ifname, index, v) in &targets {
                    if let Err(e) = self.nl.add_vip(*index, v, lease, metric).await {
                        error!("({name}) cannot add VIP {v} on {ifname}: {e}");
                    }
                }
                let all: Vec<Vip> = targets.into_iter().map(|t| t.2).collect();
                info!(
                    "({name}) setting VIPs: {}{}",
                    vip_list(&all),
                    lease_note(lease)
                );
            }
            Effect::RefreshVips {
                instance,
                name,
                iface,
                vips,
                lease,
                metric,
                readd,
            } => {
                // Already in the ledger since their AddVips.
                for (ifname, index, v) in self.vip_targets(instance, &name, iface, &vips).await {
                    if readd {
                        // The address is gone for one netlink round trip.
                        let _ = self.nl.delete_address(index, v.addr, v.prefix_len).await;
                    }
                    if let Err(e) = self.nl.add_vip(index, &v, lease, metric).await {
                        warn!("({name}) cannot refresh the lease of VIP {v} on {ifname}: {e}");
                    }
                }
            }
            Effect::RemoveVips { name, .. } if self.keeping_vips => {
                info!("({name}) leaving the VIPs configured on stop (-V)");
            }
            Effect::RemoveVips {
                instance,
                name,
                iface,
                vips,
            } => {
                let targets = self.vip_targets(instance, &name, iface, &vips).await;
                for (ifname, index, v) in &targets {
                    if let Err(e) = self.nl.delete_address(*index, v.addr, v.prefix_len).await {
                        error!("({name}) cannot remove VIP {v} from {ifname}: {e}");
                    }
                }
                let entries: Vec<_> = targets
                    .iter()
                    .map(|(ifname, _, v)| (ifname.clone(), v.addr, v.prefix_len))
                    .collect();
                self.ledger.forget(&entries);
                info!("({name}) removing VIPs");
            }
            Effect::AddRoutes {
                name,
                routes,
                rules,
                ..
            } => {
                // keepalived's log lines, which operators grep for.
                if !routes.is_empty() {
                    info!("({name}) setting Virtual Routes");
                }
                if !rules.is_empty() {
                    info!("({name}) setting Virtual Rules");
                }
                self.add_routes(&format!("({name}) "), &routes, &rules)
                    .await;
            }
            Effect::RemoveRoutes { name, .. } if self.keeping_vips => {
                info!("({name}) leaving the virtual routes and rules on stop (-V)");
            }
            Effect::RemoveRoutes {
                name,
                routes,
                rules,
                ..
            } => {
                if !rules.is_empty() {
                    info!("({name}) removing Virtual Rules");
                }
                if !routes.is_empty() {
                    info!("({name}) removing Virtual Routes");
                }
                self.remove_routes(&format!("({name}) "), &routes, &rules)
                    .await;
            }
            Effect::SendGarp {
                instance,
                iface,
                count,
                vips,
                gap,
            } => {
                let f = &self.ifaces[iface.0];
                // With use_vmac they carry the virtual MAC, from the macvlan.
                let (mac, garp, ifname) = match self.vmacs.get(&instance) {
                    Some(v) => (v.mac, &v.garp, &v.name),
                    None => (f.mac, &f.garp, &f.name),
                };
                let mut frames = Vec::new();
                for _ in 0..count {
                    for addr in &vips {
                        frames.push(match *addr {
                            IpAddr::V4(a) => crate::wire::arp::gratuitous_arp(mac, a).to_vec(),
                            IpAddr::V6(a) => {
                                crate::wire::nd::unsolicited_na(mac, f.addr6.unwrap_or(a), a)
                            }
                        });
                    }
                }
                garp.send_paced(frames, gap);
                debug!("sending {count} gratuitous ARP/NA per VIP on {ifname}");
            }
            Effect::StateChanged {
                name,
                to,
                reason,
                priority,
                notify,
                ..
            } => {
                match to {
                    crate::vrrp::State::Master => {
                        info!("({name}) Entering MASTER STATE ({reason})")
                    }
                    crate::vrrp::State::Backup => {
                        info!("({name}) Entering BACKUP STATE ({reason})")
                    }
                    crate::vrrp::State::Fault => warn!("({name}) Entering FAULT STATE ({reason})"),
                    crate::vrrp::State::Initialize => info!("({name}) Stopped ({reason})"),
                }
                self.notifier.state_change(&name, &notify, to, priority);
                self.status_changed = true;
            }
            Effect::GroupStateChanged {
                group,
                state,
                notify,
            } => {
                info!("(group {group}) Entering {state} STATE");
                self.notifier.group_state_change(&group, &notify, state);
            }
            Effect::Send { peer, msg } => {
                if let Some(c) = &self.cluster {
                    if let Err(e) = c.chan.send(&peer, &msg) {
                        debug!("cluster: {} to {peer} not sent: {e}", msg.kind());
                    }
                }
            }
            Effect::Broadcast(msg) => {
                if let Some(c) = &self.cluster {
                    c.chan.broadcast(&msg);
                }
            }
            Effect::SendData { peer, mut bytes } => {
                if let (Some(c), Some(s)) = (&self.cluster, &self.sync) {
                    if s.corrupt {
                        if let Some(b) = bytes.last_mut() {
                            *b ^= 0x55;
                        }
                    }
                    if let Err(e) = c.chan.send_data(&peer, bytes) {
                        debug!("sync: data to {peer} not sent: {e}");
                    }
                }
            }
            Effect::WriteFile {
                name,
                version,
                content,
                keep_unless,
                conflict_epoch,
            } => {
                if let Some(s) = &self.sync {
                    s.fs.send(syncfs::FsCommand::Write {
                        name,
                        version,
                        content,
                        keep_unless,
                        conflict_epoch,
                    });
                }
            }
            Effect::RunOnChange {
                name,
                version,
                command,
            } => {
                if let Some(s) = &self.sync {
                    s.runner.queue(name, version, command);
                }
            }
            Effect::SaveSyncState(state) => {
                if let Some(s) = &self.sync {
                    s.fs.send(syncfs::FsCommand::SaveState(state));
                }
            }
            Effect::Reply { id, result } => {
                if let Some(tx) = self.waiting.remove(&id) {
                    let _ = tx.send(match result {
                        Ok(m) => Reply::message(m),
                        Err(e) => Reply::error(e.to_string()),
                    });
                }
            }
            Effect::Log { level, message } => match level {
                Level::Debug => debug!("{message}"),
                Level::Info => info!("{message}"),
                Level::Warn => warn!("{message}"),
                Level::Error => error!("{message}"),
            },
        }
    }

    /// Routes first (a rule may send packets to their table), then rules.
    /// Every failure is logged with `who` and counted.
    async fn add_routes(&mut self, who: &str, routes: &[Route], rules: &[Rule]) {
        for route in routes {
            let result = match self.route_oif(route).await {
                Ok(oif) => self.nl.add_route(route, oif).await,
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                self.route_errors += 1;
                error!("{who}cannot add route {route}: {e}");
            }
        }
        for rule in rules {
            if let Err(e) = self.nl.add_rule(rule).await {
                self.route_errors += 1;
                error!("{who}cannot add rule {rule}: {e}");
            }
        }
    }

    /// The reverse of [`Agent::add_routes`]: rules first, then routes.
    async fn remove_routes(&mut self, who: &str, routes: &[Route], rules: &[Rule]) {
        for rule in rules {
            if let Err(e) = self.nl.delete_rule(rule).await {
                self.route_errors += 1;
                error!("{who}cannot remove rule {rule}: {e}");
            }
        }
        for route in routes {
            let result = match self.route_oif(route).await {
                Ok(oif) => self.nl.delete_route(route, oif).await,
                // The device is gone, and its routes with it.
                Err(NetlinkError::NoSuchInterface(_)) => Ok(()),
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                self.route_errors += 1;
                error!("{who}cannot remove route {route}: {e}");
            }
        }
    }

    /// The index of a route's `dev`, if it names one.
    async fn route_oif(&self, route: &Route) -> Result<Option<u32>, NetlinkError> {
        match &route.dev {
            None => Ok(None),
            Some(dev) => Ok(Some(self.nl.link_by_name(dev).await?.index)),
        }
    }

    /// keepalived's static_ipaddress, static_routes and static_rules: added
    /// once at start whatever the VRRP states, removed at stop.
    async fn add_statics(&mut self, config: &Config) {
        self.add_static_ips(&config.static_ips).await;
        self.add_routes("static: ", &config.static_routes, &config.static_rules)
            .await;
        self.static_routes = config.static_routes.clone();
        self.static_rules = config.static_rules.clone();
        let n = config.static_ips.len() + config.static_routes.len() + config.static_rules.len();
        if n > 0 {
            info!(
                "static: {} address(es), {} route(s), {} rule(s) set",
                config.static_ips.len(),
                config.static_routes.len(),
                config.static_rules.len()
            );
        }
    }

    async fn add_static_ips(&mut self, vips: &[Vip]) {
        for vip in vips {
            let Some(dev) = vip.dev.as_deref() else {
                continue;
            };
            match self.nl.link_by_name(dev).await {
                Ok(link) => {
                    if let Err(e) = self.nl.add_vip(link.index, vip, Duration::ZERO, None).await {
                        self.route_errors += 1;
                        error!("cannot add static address {vip}: {e}");
                    }
                    self.static_ips.push((link.index, vip.clone()));
                }
                Err(e) => {
                    self.route_errors += 1;
                    error!("cannot add static address {vip}: {e}");
                }
            }
        }
    }

    async fn remove_static_ips(&mut self, gone: Vec<(u32, Vip)>) {
        for (index, vip) in gone {
            if let Err(e) = self
                .nl
                .delete_address(index, vip.addr, vip.prefix_len)
                .await
            {
                self.route_errors += 1;
                error!("cannot remove static address {vip}: {e}");
            }
        }
    }

    /// The reverse of [`Agent::add_statics`], as keepalived does at stop.
    async fn remove_statics(&mut self) {
        let (routes, rules) = (
            std::mem::take(&mut self.static_routes),
            std::mem::take(&mut self.static_rules),
        );
        self.remove_routes("static: ", &routes, &rules).await;
        let ips = std::mem::take(&mut self.static_ips);
        self.remove_static_ips(ips).await;
    }

    /// A reload: the static entries no longer configured go, the new ones
    /// come (keepalived does the same); the others are left alone.
    async fn reload_statics(&mut self, new: &Config) {
        use crate::node::missing;
        let gone = (
            missing(&self.static_routes, &new.static_routes),
            missing(&self.static_rules, &new.static_rules),
        );
        let added = (
            missing(&new.static_routes, &self.static_routes),
            missing(&new.static_rules, &self.static_rules),
        );
        self.remove_routes("static: ", &gone.0, &gone.1).await;
        let (keep, gone_ips): (Vec<_>, Vec<_>) = std::mem::take(&mut self.static_ips)
            .into_iter()
            .partition(|(_, v)| new.static_ips.contains(v));
        self.remove_static_ips(gone_ips).await;
        let new_ips: Vec<Vip> = new
            .static_ips
            .iter()
            .filter(|v| !keep.iter().any(|(_, k)| k == *v))
            .cloned()
            .collect();
        self.static_ips = keep;
        self.add_static_ips(&new_ips).await;
        self.add_routes("static: ", &added.0, &added.1).await;
        self.static_routes = new.static_routes.clone();
        self.static_rules = new.static_rules.clone();
    }

    /// A static address was removed by someone else: put it back, as
    /// keepalived does ("Restoring deleted static address").
    async fn restore_static_address(&mut self, ifindex: u32, addr: IpAddr) {
        let Some((_, vip)) = self
            .static_ips
            .iter()
            .find(|(i, v)| *i == ifindex && v.addr == addr)
            .cloned()
        else {
            return;
        };
        warn!("restoring deleted static address {vip}");
        if let Err(e) = self.nl.add_vip(ifindex, &vip, Duration::ZERO, None).await {
            self.route_errors += 1;
            error!("cannot restore static address {vip}: {e}");
        }
    }

    /// A static rule was removed by someone else: put it back, as
    /// keepalived does ("Restoring deleted static rule"). keepalived does
    /// not put back static routes, and neither does baton.
    async fn restore_static_rule(&mut self, family: Family, priority: Option<u32>) {
        let rules: Vec<Rule> = self
            .static_rules
            .iter()
            .filter(|r| r.family == family && r.priority == priority)
            .cloned()
            .collect();
        for rule in rules {
            warn!("restoring deleted static rule {rule}");
            if let Err(e) = self.nl.add_rule(&rule).await {
                self.route_errors += 1;
                error!("cannot restore static rule {rule}: {e}");
            }
        }
    }

    /// Where each address goes: its `dev` (keepalived's `dev` option) or
    /// the instance's interface (its macvlan with `use_vmac`).
    async fn vip_targets(
        &self,
        instance: InstanceId,
        name: &str,
        iface: IfaceId,
        vips: &[Vip],
    ) -> Vec<(String, u32, Vip)> {
        let base = &self.ifaces[iface.0];
        let (home, home_index) = match self.vmacs.get(&instance) {
            Some(v) => (&v.name, v.index),
            None => (&base.name, base.index),
        };
        let mut out = Vec::new();
        for v in vips {
            match v
                .dev
                .as_deref()
                .filter(|d| *d != base.name && *d != home.as_str())
            {
                None => out.push((home.clone(), home_index, v.clone())),
                Some(dev) => match self.nl.link_by_name(dev).await {
                    Ok(l) => out.push((dev.to_string(), l.index, v.clone())),
                    Err(e) => error!("({name}) VIP {v}: interface {dev}: {e}"),
                },
            }
        }
        out
    }

    async fn on_control(&mut self, req: Pending) {
        let reply = match req.request {
            Request::Status {} => Reply::status(self.status()),
            Request::Reload {} => {
                self.request_reload(Some(req.reply));
                return;
            }
            Request::Switchover {
                instance,
                to,
                unicast,
                clear,
            } => {
                let id = self.next_request;
                self.next_request += 1;
                self.waiting.insert(id, req.reply);
                self.node.handle(
                    Instant::now(),
                    Input::Switchover {
                        id,
                        instance: &instance,
                        to: to.as_deref(),
                        unicast,
                        clear,
                    },
                );
                return;
            }
        };
        let _ = req.reply.send(reply);
    }

    fn status(&self) -> Status {
        let mut status = self.node.status(Instant::now());
        status.pid = std::process::id();
        status.config_file = self.opts.config_path.display().to_string();
        if let (Some(cs), Some(c)) = (&mut status.cluster, &self.cluster) {
            cs.channel = c
                .chan
                .peers()
                .into_iter()
                .map(|p| control::ChannelPeerStatus {
                    name: p.name,
                    addr: p.addr.to_string(),
                    connected: p.connected,
                    rejected: p.rejected,
                })
                .collect();
            cs.rejected_unknown = c.chan.unknown_rejected();
        }
        status.process = self.process.clone();
        status
    }

    /// Swap a fresh snapshot in for the metrics endpoint (never waits on a
    /// scraper: the lock is only held by a clone on the other side).
    fn publish_metrics(&self) {
        let Some(shared) = &self.metrics else {
            return;
        };
        let snap = super::metrics::Snapshot {
            status: self.status(),
            taken: std::time::SystemTime::now(),
        };
        if let Ok(mut s) = shared.lock() {
            *s = Some(snap);
        }
    }

    /// One line for systemd's STATUS=: each instance and its state.
    fn summary(&self) -> String {
        let st = self.node.status(Instant::now());
        let parts: Vec<String> = st
            .instances
            .iter()
            .map(|i| format!("{} {:?}", i.name, i.state).to_uppercase())
            .collect();
        format!("{} instance(s): {}", parts.len(), parts.join(", "))
    }

    /// keepalived's USR1 (data), USR2 (stats) and JSON signals: the state
    /// as text or JSON, written (0600, never through a symlink) next to the
    /// control socket, on a blocking thread.
    fn dump(&mut self, what: Dump) {
        let status = self.status();
        let text = match what {
            Dump::Data => format!(
                "{}\n# configuration\n{}",
                control::render(&status),
                crate::config::convert::to_toml(self.node.config())
            ),
            Dump::Stats => format!(
                "{}Route and rule requests refused by the kernel: {}\n",
                render_stats(&status),
                self.route_errors
            ),
            Dump::Json => serde_json::to_string_pretty(&status).unwrap_or_default() + "\n",
        };
        let dir = self
            .node
            .config()
            .global
            .control_socket
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/run/baton"));
        let path = dir.join(what.file_name());
        tokio::task::spawn_blocking(
            move || match syncfs::write_private(&path, text.as_bytes()) {
                Ok(()) => info!("{} written to {}", what.title(), path.display()),
                Err(e) => warn!("{}: {}: {e}", what.title(), path.display()),
            },
        );
    }

    /// SIGHUP or `baton reload`: read the file again on a blocking thread
    /// (the file system and the name service may be slow; the protocol
    /// thread goes on meanwhile), then [`reload_loaded`](Self::reload_loaded).
    fn request_reload(&mut self, reply: Option<tokio::sync::oneshot::Sender<Reply>>) {
        self.reloads.replies.extend(reply);
        if self.reloads.in_flight {
            self.reloads.again = true;
            return;
        }
        self.reloads.in_flight = true;
        self.sd.reloading();
        let opts = self.opts.clone();
        let tx = self.reloads.tx.clone();
        tokio::task::spawn_blocking(move || {
            let loaded = opts.load().and_then(|c| {
                // A key file that cannot be read refuses the whole reload.
                let key = match &c.cluster {
                    Some(cc) => Some(
                        cluster::key::load_key(&cc.key_file)
                            .map_err(|e| format!("cluster: {e}"))?,
                    ),
                    None => None,
                };
                let users = script::UserTable::resolve(&c);
                Ok((c, users, key))
            });
            let _ = tx.send(loaded);
        });
    }

    /// Apply a configuration read by [`request_reload`](Self::request_reload)
    /// and answer who asked for it.
    async fn reload_loaded(&mut self, loaded: Loaded) {
        // Reading the configuration and rebuilding instances allocate.
        self.heap_trim.storm(Instant::now());
        self.reloads.in_flight = false;
        let applied = match loaded {
            Ok((new, users, key)) => {
                let new = self.keep_unreloadable(new);
                self.reload(new, users, key).await
            }
            Err(d) => Err(d),
        };
        let reply = match applied {
            Ok(done) => {
                let global = self.node.config().global.clone();
                self.sched.update(&global);
                self.process.reloads += 1;
                self.process.last_reload_ok = Some(true);
                Reply::message(format!("reloaded\n{done}"))
            }
            Err(d) => {
                self.process.reload_failures += 1;
                self.process.last_reload_ok = Some(false);
                error!("reload refused, keeping the running configuration:\n{d}");
                Reply::error(format!(
                    "reload refused, the running configuration is kept:\n{d}"
                ))
            }
        };
        for r in std::mem::take(&mut self.reloads.replies) {
            let _ = r.send(reply.clone());
        }
        self.sd.ready(&self.summary());
        if std::mem::take(&mut self.reloads.again) {
            self.request_reload(None);
        }
    }

    /// What a reload cannot change, kept as running, with a warning: the
    /// network namespace (as keepalived) and the multicast groups (the
    /// sockets joined them at start).
    fn keep_unreloadable(&self, mut new: Config) -> Config {
        let old = &self.node.config().global;
        let g = &mut new.global;
        if g.net_namespace != old.net_namespace {
            warn!("reload: net_namespace cannot change; the running namespace is kept");
            g.net_namespace.clone_from(&old.net_namespace);
        }
        if (g.mcast_group4, g.mcast_group6) != (old.mcast_group4, old.mcast_group6) {
            warn!("reload: vrrp_mcast_group4/6 cannot change; restart baton for new groups");
            g.mcast_group4 = old.mcast_group4;
            g.mcast_group6 = old.mcast_group6;
        }
        new
    }

    /// Apply a new configuration as [`node::plan_reload`] decides; what
    /// was done, or why nothing was.
    async fn reload(
        &mut self,
        new: Config,
        users: script::UserTable,
        key: Option<Vec<u8>>,
    ) -> Result<String, String> {
        let now = Instant::now();
        let plan = node::plan_reload(self.node.config(), &new);
        if let Some(why) = &plan.refused {
            return Err(why.clone());
        }
        // What can fail comes first, before anything changed: the file
        // worker of data sync starting, the channel starting or rebinding.
        // A failure refuses the whole reload.
        let mut new_sync = None;
        if plan.sync_started {
            let state_file = new.global.state_dir.join("sync-state.json");
            let (fs, events) = syncfs::Worker::start(fs_entries(&new), state_file)
                .map_err(|e| format!("data sync: cannot start the file worker: {e}"))?;
            new_sync = Some((fs, events));
        }
        let mut new_channel = None;
        if let (true, Some(cc), Some(key)) = (plan.cluster_started, &new.cluster, &key) {
            let peers = cc.peers.iter().map(|p| (p.name.clone(), p.addr)).collect();
            let opts = ChannelOptions {
                check_peer_source: cc.check_peer_source,
                ..ChannelOptions::with_heartbeat(cc.heartbeat_interval)
            };
            let (chan, events, thread) =
                start_channel_thread(&cc.node, cc.listen, peers, key.clone(), opts)
                    .map_err(|e| format!("cluster channel on {}: {e}", cc.listen))?;
            new_channel = Some(ChannelRt {
                chan,
                events,
                _thread: thread,
            });
        }
        // A new metrics_listen: the new endpoint is bound now (the old one
        // stops once nothing can refuse the reload).
        let old_metrics = self.node.config().global.metrics_listen;
        let mut new_metrics = None;
        if new.global.metrics_listen != old_metrics {
            new_metrics = Some(match new.global.metrics_listen {
                Some(addr) => {
                    let shared = self.metrics.clone().unwrap_or_default();
                    let server = super::metrics::serve(addr, shared.clone())
                        .map_err(|e| format!("metrics_listen {addr}: {e}"))?;
                    Some((shared, server))
                }
                None => None,
            });
        }
        if let (Some((_, to)), Some(c)) = (plan.listen_changed, &self.cluster) {
            c.chan
                .rebind(to)
                .map_err(|e| format!("cluster listen {to}: {e}"))?;
        }
        users.install();
        let metrics_done = match new_metrics {
            None => String::new(),
            Some(None) => {
                self.metrics = None;
                self.metrics_server = None;
                "metrics: endpoint stopped\n".to_string()
            }
            Some(Some((shared, server))) => {
                let line = format!("metrics: serving GET /metrics on {}\n", server.bound());
                self.metrics = Some(shared);
                self.metrics_server = Some(server);
                self.publish_metrics();
                line
            }
        };
        // Nothing is refused from here on.
        self.reload_statics(&new).await;
        // The channel first: a new peer is dialed while the node learns of
        // it, a removed one is closed before the node forgets it.
        let mut key_rotated = false;
        if let (Some(c), Some(cc), false) = (&self.cluster, &new.cluster, plan.cluster_stopped) {
            if plan.peers_changed() {
                c.chan
                    .set_peers(cc.peers.iter().map(|p| (p.name.clone(), p.addr)).collect());
            }
            if let Some(key) = key {
                key_rotated = c.chan.rotate_key(key, cc.key_grace);
            }
        }
        if plan.sync_entries_changed() && !plan.sync_stopped {
            if let Some(s) = &self.sync {
                s.fs.send(syncfs::FsCommand::SetEntries(fs_entries(&new)));
            }
        }
        let stopped = self.node.reload(now, new.clone(), &plan);
        if plan.sync_stopped || plan.cluster_stopped {
            if let Some(s) = self.sync.take() {
                s.runner.stop();
                info!("data sync stopped: the file worker ends, the files stay");
            }
        }
        if plan.cluster_stopped {
            if let Some(c) = self.cluster.take() {
                // Its goodbyes leave on its own thread; joined off this one.
                tokio::task::spawn_blocking(move || drop(c));
                info!("cluster channel stopped: the instances run on VRRP alone");
            }
        }
        if let Some(c) = new_channel {
            self.cluster = Some(c);
            self.node.enable_cluster(now);
            if let Some(cc) = &new.cluster {
                info!(
                    "cluster channel: node {} listening on {}, {} peer(s)",
                    cc.node,
                    cc.listen,
                    cc.peers.len()
                );
            }
        }
        if let Some((fs, events)) = new_sync {
            let state_file = new.global.state_dir.join("sync-state.json");
            let state = syncfs::load_state(&state_file);
            match self.node.enable_sync(state, None) {
                Some(instance) => {
                    info!(
                        "data sync: {} file(s), following the master of {instance}",
                        new.sync.len()
                    );
                    self.sync = Some(SyncIo {
                        fs,
                        events,
                        runner: on_change::Runner::start(new.global.clone()),
                        corrupt: corrupt_sync_hook(),
                    });
                    if let Some(c) = &self.cluster {
                        let up: Vec<String> = c
                            .chan
                            .peers()
                            .into_iter()
                            .filter(|p| p.connected)
                            .map(|p| p.name)
                            .collect();
                        self.node.sync_connected(now, &up);
                    }
                }
                None => error!("data sync: no instance to follow; not started"),
            }
        }
        // The stopped instances' last adverts (priority 0) leave first.
        self.apply_effects().await;
        for id in stopped {
            self.socks.remove(&id);
            if let Some(v) = self.vmacs.remove(&id) {
                vmac::close(&self.nl, &v).await;
            }
        }
        if plan.tracking_changed {
            // New scripts or files: the tracker starts over from the states
            // the node carried over.
            self.tracker.stop();
            let (tracker, events) = Tracker::start_from(&new, self.node.track());
            self.tracker = tracker;
            self.track_events = events;
            self.apply_pending_track_events();
        }
        self.report_tracked_links().await;
        for name in &plan.start {
            let Some(cfg) = new.instance(name) else {
                continue;
            };
            if let Err(e) = self.add_instance(cfg.clone()).await {
                error!("reload: instance {name}: {e}");
            }
        }
        self.apply_effects().await;
        let done = format!(
            "{plan}key rotated: {}\n{metrics_done}",
            if key_rotated { "yes" } else { "no" }
        );
        info!(
            "configuration reloaded: {} instance(s)\n{done}",
            self.node.instance_ids().len()
        );
        Ok(done)
    }
}

/// The next tick of an optional interval (never without one).
async fn tick(t: &mut Option<tokio::time::Interval>) {
    match t {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

fn vip_list(vips: &[Vip]) -> String {
    vips.iter()
        .map(|v| format!("{}/{}", v.addr, v.prefix_len))
        .collect::<Vec<_>>()
        .join(" ")
}

fn lease_note(lease: std::time::Duration) -> String {
    if lease.is_zero() {
        String::new()
    } else {
        format!(" (lease {} s, refreshed while master)", lease.as_secs())
    }
}

fn is_link_local(a: Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The heap is trimmed a quiet second after the last storm, once: a
    /// storm that goes on keeps pushing the trim back.
    #[test]
    fn heap_trim_waits_for_a_quiet_second_after_the_last_storm() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut trim = HeapTrim::default();
        trim.tick(t0 + ms(5000));
        assert_eq!(trim.due, None, "no storm, no trim");
        trim.storm(t0);
        trim.tick(t0 + ms(900));
        assert_eq!(trim.due, Some(t0 + HeapTrim::QUIET), "not yet");
        trim.storm(t0 + ms(950));
        trim.tick(t0 + ms(1000));
        assert_eq!(
            trim.due,
            Some(t0 + ms(950) + HeapTrim::QUIET),
            "pushed back"
        );
        trim.tick(t0 + ms(1950));
        assert_eq!(trim.due, None, "trimmed");
    }
}
