//! The daemon's one owner of protocol state: a current_thread tokio loop
//! that feeds sockets, netlink events, signals, control requests and timers
//! into the VRRP cores and carries out their actions in order.
//!
//! Receive tasks only read and forward bytes; every decision and every
//! netlink write happens here, so VIP changes are applied in the order the
//! cores asked for them.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Instant;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use super::channel::{Channel, ChannelEvent, ChannelHandle, ChannelOptions};
use super::control::{
    self, ClusterInstanceStatus, ClusterStatus, InstanceStatus, InterfaceStatus, Pending, Reply,
    Request, Status,
};
use super::garp::GarpSender;
use super::netlink::{self as nlink, LinkEvent, NetEvent, Netlink, NetlinkError};
use super::notify::Notifier;
use super::script;
use super::socket::VrrpSocket;
use super::state::VipLedger;
use super::syncfs::{self, FsEvent};
use super::track::{TrackEvent, TrackState, Tracker};
use crate::cluster::sync::{Persisted, SyncSpec};
use crate::cluster::{
    self, Cluster, ClusterAction, ClusterConfig, LocalInstance, Policy, SyncAction, SyncConfig,
    SyncCore, SyncVersion,
};
use crate::config::model::{Config, Instance as InstanceCfg, Vip};
use crate::node::track;
use crate::vrrp::{self, Action, GarpSchedule, Instance, InstanceConfig, Received, RxStats, State};
use crate::wire::vrrp::{V3Checksum, Version};

const GROUP4: IpAddr = IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18));
const GROUP6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12));

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
    /// Write our pid here (`-p`), removed on exit.
    pub pid_file: Option<PathBuf>,
}

impl Options {
    pub fn new(config_path: PathBuf) -> Self {
        Options {
            config_path,
            config_id: None,
            control_socket: None,
            state_dir: None,
            pid_file: None,
        }
    }

    /// Read the configuration with these options applied.
    pub fn load(&self) -> Result<Config, String> {
        let opts = crate::config::Options {
            config_id: self.config_id.clone(),
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
    if let Some(p) = &opts.pid_file {
        std::fs::write(p, format!("{}\n", std::process::id()))
            .map_err(io_err(format!("pid file {}", p.display())))?;
    }
    let pid_file = opts.pid_file.clone();
    let result = run_agent(config, opts);
    if let Some(p) = &pid_file {
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
        agent.run().await;
        agent.finish().await;
        Ok::<(), AgentError>(())
    })
}

/// A packet from a receive task.
struct RxPacket {
    iface: usize,
    multicast_socket: bool,
    src: IpAddr,
    dst: IpAddr,
    ttl: u8,
    bytes: Vec<u8>,
}

struct Iface {
    name: String,
    index: u32,
    mac: [u8; 6],
    up: bool,
    addr4: Option<Ipv4Addr>,
    addr6: Option<Ipv6Addr>,
    garp: GarpSender,
    sock4: Option<Rc<VrrpSocket>>,
    sock6: Option<Rc<VrrpSocket>>,
    /// Whether a unicast socket of this interface already receives.
    unicast_rx4: bool,
    unicast_rx6: bool,
    unmatched4: RxStats,
    unmatched6: RxStats,
}

/// One configured instance and what the IO shell keeps beside its core.
struct Slot {
    cfg: InstanceCfg,
    core: Instance,
    iface: usize,
    /// Socket the adverts leave by (multicast, or bound to unicast_src).
    sock: Rc<VrrpSocket>,
    holds_vips: bool,
    /// Why the instance is faulted or its priority lowered, for status.
    health: Vec<String>,
}

struct Agent {
    opts: Options,
    config: Config,
    nl: Netlink,
    ifaces: Vec<Iface>,
    slots: Vec<Slot>,
    ledger: VipLedger,
    rx_tx: mpsc::Sender<RxPacket>,
    rx: mpsc::Receiver<RxPacket>,
    links: mpsc::UnboundedReceiver<NetEvent>,
    ctl: mpsc::Receiver<Pending>,
    cluster: Option<ClusterRt>,
    sync: Option<SyncRt>,
    /// Tracked scripts, files and interfaces (keepalived's track_*).
    track: TrackState,
    tracker: Tracker,
    track_events: mpsc::Receiver<TrackEvent>,
    /// Notify scripts and FIFO, delivered in event order.
    notifier: Notifier,
    /// The last state each sync group was notified in.
    group_states: BTreeMap<String, State>,
}

/// Data sync beside the cluster channel, when `[[sync]]` entries exist:
/// the sans-IO core, the file worker, and the on_change runner.
struct SyncRt {
    core: SyncCore,
    fs: syncfs::Worker,
    events: mpsc::UnboundedReceiver<FsEvent>,
    /// The control node is the master of this instance.
    instance: String,
    entries: Vec<crate::config::model::SyncEntry>,
    state: BTreeMap<String, Persisted>,
    /// on_change commands, run one at a time in order.
    runner: mpsc::UnboundedSender<(String, SyncVersion, String)>,
    /// Test hook (`BATON_TEST_CORRUPT_SYNC`): flip a byte of every chunk
    /// sent, so the netns tests can show a corrupt transfer changes nothing.
    corrupt: bool,
}

/// The next file event, or never when data sync is off.
async fn next_sync_event(s: &mut Option<SyncRt>) -> Option<FsEvent> {
    match s {
        Some(s) => s.events.recv().await,
        None => std::future::pending().await,
    }
}

fn is_sync_message(msg: &cluster::Message) -> bool {
    matches!(
        msg,
        cluster::Message::SyncOffer { .. }
            | cluster::Message::SyncHave { .. }
            | cluster::Message::SyncRequest { .. }
    )
}

/// Run each on_change command to completion before the next (in order;
/// off the event loop). No shell: words split as [`script::split_command`].
fn spawn_on_change_runner() -> mpsc::UnboundedSender<(String, SyncVersion, String)> {
    let (tx, mut rx) = mpsc::unbounded_channel::<(String, SyncVersion, String)>();
    tokio::task::spawn_local(async move {
        while let Some((name, version, cmd)) = rx.recv().await {
            let words = script::split_command(&cmd);
            let Some((prog, args)) = words.split_first() else {
                continue;
            };
            let child = tokio::process::Command::new(prog)
                .args(args)
                .env("BATON_SYNC_NAME", &name)
                .env("BATON_SYNC_VERSION", version.to_string())
                .stdin(std::process::Stdio::null())
                .kill_on_drop(true)
                .spawn();
            let mut child = match child {
                Ok(c) => c,
                Err(e) => {
                    warn!("sync {name}: on_change {cmd:?}: {e}");
                    continue;
                }
            };
            match tokio::time::timeout(std::time::Duration::from_secs(60), child.wait()).await {
                Ok(Ok(st)) if st.success() => info!("sync {name}: on_change for {version} done"),
                Ok(Ok(st)) => warn!("sync {name}: on_change for {version} exited with {st}"),
                Ok(Err(e)) => warn!("sync {name}: on_change for {version}: {e}"),
                Err(_) => {
                    let _ = child.kill().await;
                    warn!("sync {name}: on_change for {version} killed after 60 s");
                }
            }
        }
    });
    tx
}

/// The cluster channel beside the VRRP cores, when configured.
struct ClusterRt {
    core: Cluster,
    chan: ChannelHandle,
    events: mpsc::Receiver<ChannelEvent>,
    /// Operator requests waiting for their outcome, by request id.
    waiting: BTreeMap<u64, tokio::sync::oneshot::Sender<Reply>>,
    next_id: u64,
}

/// The next channel event, or never when there is no channel.
async fn next_channel_event(c: &mut Option<ClusterRt>) -> Option<ChannelEvent> {
    match c {
        Some(c) => c.events.recv().await,
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
        let links = nlink::watch().map_err(nl_err("netlink watch"))?;
        let (rx_tx, rx) = mpsc::channel(1024);
        let (ctl_tx, ctl) = mpsc::channel(16);
        let (tracker, track_events) = Tracker::start(&config);
        control::serve(&config.global.control_socket, ctl_tx).map_err(io_err(format!(
            "control socket {}",
            config.global.control_socket.display()
        )))?;
        let mut agent = Agent {
            opts,
            config: config.clone(),
            nl,
            ifaces: Vec::new(),
            slots: Vec::new(),
            ledger,
            rx_tx,
            rx,
            links,
            ctl,
            cluster: None,
            sync: None,
            track: TrackState::new(&config),
            tracker,
            track_events,
            notifier: Notifier::new(&config.global),
            group_states: BTreeMap::new(),
        };
        for cfg in &config.instances {
            for (set, what) in [
                (cfg.use_vmac, "use_vmac"),
                (!cfg.virtual_routes.is_empty(), "virtual_routes"),
                (!cfg.virtual_rules.is_empty(), "virtual_rules"),
                (cfg.mcast_src.is_some(), "mcast_src"),
            ] {
                if set {
                    warn!(
                        "({}) {what} is read but not applied by this version",
                        cfg.name
                    );
                }
            }
            agent.add_instance(cfg.clone()).await?;
        }
        if let Some(cc) = &config.cluster {
            agent.cluster = Some(agent.start_cluster(cc)?);
            if !config.sync.is_empty() {
                agent.sync = Some(agent.start_sync(cc)?);
            }
        }
        // Tracked interfaces start from the kernel's view (a missing one is
        // down, as keepalived treats it).
        let tracked: std::collections::BTreeSet<String> = config
            .instances
            .iter()
            .flat_map(|i| i.track_interfaces.iter().map(|t| t.name.clone()))
            .collect();
        for name in tracked {
            let up = agent.nl.link_by_name(&name).await.is_ok_and(|l| l.up);
            agent.track.set_interface(&name, up);
        }
        // The tracker read the files already: apply those values before
        // the first health check, so a bad file faults from the start.
        agent.apply_pending_track_events();
        agent.refresh_health();
        let delay = config.global.startup_delay;
        if !delay.is_zero() {
            info!("vrrp_startup_delay: waiting {delay:?} before starting the instances");
            tokio::time::sleep(delay).await;
        }
        let now = Instant::now();
        for i in 0..agent.slots.len() {
            agent.slots[i].core.startup(now);
        }
        agent.apply_all().await;
        info!(
            "baton {} started with {} instance(s)",
            env!("CARGO_PKG_VERSION"),
            agent.slots.len()
        );
        Ok(agent)
    }

    fn start_cluster(&self, cc: &crate::config::model::Cluster) -> Result<ClusterRt, AgentError> {
        let key = cluster::key::load_key(&cc.key_file)
            .map_err(|e| AgentError::Config(format!("cluster: {e}")))?;
        let peers: Vec<(String, std::net::SocketAddr)> =
            cc.peers.iter().map(|p| (p.name.clone(), p.addr)).collect();
        let opts = ChannelOptions::with_heartbeat(cc.heartbeat_interval);
        let (chan, events) = Channel::start(&cc.node, cc.listen, peers.clone(), key, opts)
            .map_err(io_err(format!("cluster channel on {}", cc.listen)))?;
        let now = Instant::now();
        let locals = self
            .slots
            .iter()
            .map(|s| LocalInstance {
                name: s.cfg.name.clone(),
                state: s.core.state(),
                priority: s.core.priority(),
                address: Some(s.core.local_addr()),
                advert_interval: s.cfg.advert_interval,
                preempt: s.cfg.preempt,
                preempt_delay: s.cfg.preempt_delay,
            })
            .collect();
        let policy = match cc.selection {
            crate::config::model::Selection::Priority => Policy::Priority,
            crate::config::model::Selection::Order => Policy::Order(cc.order.clone()),
        };
        let core = Cluster::new(
            ClusterConfig {
                node: cc.node.clone(),
                peers: peers.into_iter().map(|p| p.0).collect(),
                heartbeat_interval: cc.heartbeat_interval,
                policy,
                switchover_timeout: std::time::Duration::from_secs(5),
            },
            locals,
            now,
        );
        info!(
            "cluster channel: node {} listening on {}, {} peer(s)",
            cc.node,
            cc.listen,
            cc.peers.len()
        );
        Ok(ClusterRt {
            core,
            chan,
            events,
            waiting: BTreeMap::new(),
            next_id: 1,
        })
    }

    fn start_sync(&self, cc: &crate::config::model::Cluster) -> Result<SyncRt, AgentError> {
        let instance = cc
            .sync_instance
            .clone()
            .or_else(|| self.config.instances.first().map(|i| i.name.clone()))
            .ok_or_else(|| AgentError::Config("sync: no instance to follow".into()))?;
        let entries = self.config.sync.clone();
        let specs = entries
            .iter()
            .map(|e| SyncSpec {
                name: e.name.clone(),
                max_size: e.max_size,
            })
            .collect();
        let peers = cc.peers.iter().map(|p| p.name.clone()).collect();
        let mut core = SyncCore::new(SyncConfig::new(&cc.node, peers, specs));
        let state_file = self.config.global.state_dir.join("sync-state.json");
        let state = syncfs::load_state(&state_file);
        for (name, p) in &state {
            core.restore(name, p);
        }
        let fs_entries = entries
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
            .collect();
        let (fs, events) =
            syncfs::Worker::start(fs_entries, state_file).map_err(io_err("sync file worker"))?;
        info!(
            "data sync: {} file(s), following the master of {instance}",
            entries.len()
        );
        Ok(SyncRt {
            core,
            fs,
            events,
            instance,
            entries,
            state,
            runner: spawn_on_change_runner(),
            corrupt: std::env::var_os("BATON_TEST_CORRUPT_SYNC").is_some(),
        })
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
        self.ifaces.push(Iface {
            name: name.to_string(),
            index: link.index,
            mac,
            up: link.up,
            addr4,
            addr6,
            garp,
            sock4: None,
            sock6: None,
            unicast_rx4: false,
            unicast_rx6: false,
            unmatched4: RxStats::default(),
            unmatched6: RxStats::default(),
        });
        Ok(self.ifaces.len() - 1)
    }

    fn is_vip(&self, a: IpAddr) -> bool {
        self.config
            .instances
            .iter()
            .any(|i| i.virtual_ips.iter().any(|v| v.addr == a))
    }

    /// The shared multicast socket of an interface and family, opened on
    /// first use with its receive task.
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
        let mut sock = if v4 {
            VrrpSocket::open_v4(&f.name, true)
        } else {
            VrrpSocket::open_v6(&f.name, true)
        }
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

    fn spawn_receiver(&self, iface: usize, sock: Rc<VrrpSocket>, multicast_socket: bool) {
        let tx = self.rx_tx.clone();
        tokio::task::spawn_local(async move {
            let mut buf = vec![0u8; 65536];
            loop {
                match sock.recv(&mut buf).await {
                    Ok(r) => {
                        let pkt = RxPacket {
                            iface,
                            multicast_socket,
                            src: r.src,
                            dst: r.dst,
                            ttl: r.ttl,
                            bytes: buf[r.payload].to_vec(),
                        };
                        if tx.send(pkt).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        warn!("VRRP receive: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                }
            }
        });
    }

    async fn add_instance(&mut self, cfg: InstanceCfg) -> Result<(), AgentError> {
        let iface = self.iface(&cfg.interface).await?;
        let v4 = cfg.virtual_ips.first().is_none_or(|v| v.addr.is_ipv4());
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
        let sock = if cfg.unicast_peers.is_empty() {
            self.multicast_socket(iface, v4, local)?
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
            s
        };
        let mut core = Instance::new(core_config(&cfg), local);
        if !self.ifaces[iface].up {
            core.set_fault(Instant::now(), true);
        }
        self.slots.push(Slot {
            cfg,
            core,
            iface,
            sock,
            holds_vips: false,
            health: Vec::new(),
        });
        Ok(())
    }

    async fn run(&mut self) {
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
        let mut hup = signal(SignalKind::hangup()).expect("SIGHUP handler");
        loop {
            let deadline = self.next_deadline();
            tokio::select! {
                biased;
                _ = term.recv() => { info!("SIGTERM: stopping"); break; }
                _ = int.recv() => { info!("SIGINT: stopping"); break; }
                _ = hup.recv() => self.reload().await,
                Some(ev) = self.links.recv() => self.on_net_event(ev).await,
                Some(p) = self.rx.recv() => self.on_packet(p),
                Some(ev) = next_channel_event(&mut self.cluster) => self.on_channel(ev),
                Some(ev) = next_sync_event(&mut self.sync) => self.on_sync_fs(ev),
                Some(ev) = self.track_events.recv() => {
                    if self.track.apply(&ev) {
                        self.refresh_health();
                    }
                }
                Some(req) = self.ctl.recv() => self.on_control(req).await,
                _ = sleep_until(deadline) => self.on_timers(),
            }
            self.apply_all().await;
        }
        self.hand_off().await;
        self.shutdown().await;
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.slots
            .iter()
            .filter_map(|s| s.core.next_deadline())
            .chain(self.cluster.as_ref().and_then(|c| c.core.next_deadline()))
            .chain(self.sync.as_ref().and_then(|s| s.core.next_deadline()))
            .min()
    }

    fn on_timers(&mut self) {
        let now = Instant::now();
        for s in &mut self.slots {
            if s.core.next_deadline().is_some_and(|d| d <= now) {
                s.core.handle_timeout(now);
            }
        }
        if let Some(c) = &mut self.cluster {
            if c.core.next_deadline().is_some_and(|d| d <= now) {
                c.core.handle_timeout(now);
            }
        }
        if let Some(s) = &mut self.sync {
            if s.core.next_deadline().is_some_and(|d| d <= now) {
                s.core.handle_timeout(now);
            }
        }
    }

    fn on_sync_fs(&mut self, ev: FsEvent) {
        let now = Instant::now();
        let Some(s) = &mut self.sync else {
            return;
        };
        match ev {
            FsEvent::Observed { name, observed } => s.core.local_file(now, &name, observed),
            FsEvent::Written {
                name,
                version,
                result,
            } => s.core.write_done(now, &name, version, result),
        }
    }

    fn on_channel(&mut self, ev: ChannelEvent) {
        let now = Instant::now();
        let Some(c) = &mut self.cluster else {
            return;
        };
        match ev {
            ChannelEvent::Up { peer } => {
                info!("cluster: {peer} connected");
                c.core.connected(now, &peer);
                if let Some(s) = &mut self.sync {
                    s.core.connected(now, &peer);
                }
            }
            ChannelEvent::Down { peer, reason } => {
                warn!("cluster: {peer} disconnected ({reason})");
                c.core.disconnected(now, &peer);
                if let Some(s) = &mut self.sync {
                    s.core.disconnected(now, &peer);
                }
            }
            ChannelEvent::Message { peer, msg } if is_sync_message(&msg) => {
                if let Some(s) = &mut self.sync {
                    s.core.handle_message(now, &peer, msg);
                }
            }
            ChannelEvent::Message { peer, msg } => c.core.handle_message(now, &peer, msg),
            ChannelEvent::Data { peer, bytes } => {
                if let Some(s) = &mut self.sync {
                    s.core.handle_data(now, &peer, &bytes);
                }
            }
        }
    }

    /// A graceful stop with the channel: hand every mastered instance to
    /// its successor (make-before-break) and wait, bounded, for it to take
    /// over before the VRRP shutdown (priority 0 stays the fallback for
    /// peers without the channel).
    async fn hand_off(&mut self) {
        let now = Instant::now();
        let handed = match &mut self.cluster {
            Some(c) => c.core.hand_off_all(now),
            None => return,
        };
        if handed.is_empty() {
            return;
        }
        info!("handing over {} before stopping", handed.join(", "));
        self.apply_all().await;
        let deadline = now + std::time::Duration::from_secs(2);
        let still_master = |a: &Agent| {
            a.slots
                .iter()
                .any(|s| handed.contains(&s.cfg.name) && s.core.state() == State::Master)
        };
        while still_master(self) && Instant::now() < deadline {
            let wake = self.next_deadline().map_or(deadline, |d| d.min(deadline));
            tokio::select! {
                Some(p) = self.rx.recv() => self.on_packet(p),
                Some(ev) = next_channel_event(&mut self.cluster) => self.on_channel(ev),
                _ = sleep_until(Some(wake)) => self.on_timers(),
            }
            self.apply_all().await;
        }
        if still_master(self) {
            warn!("handover not confirmed in time; stopping with priority 0");
        }
    }

    async fn shutdown(&mut self) {
        let now = Instant::now();
        for s in &mut self.slots {
            s.core.shutdown(now);
        }
        self.apply_all().await;
        self.tracker.stop();
        let _ = std::fs::remove_file(&self.config.global.control_socket);
    }

    /// Run what notifications are queued (notify_stop included), then exit.
    async fn finish(self) {
        self.notifier.close().await;
        info!("stopped");
    }

    fn on_packet(&mut self, p: RxPacket) {
        // The multicast socket sees unicast adverts too, and vice versa:
        // each handles only its own kind so nothing is processed twice.
        if p.multicast_socket != (p.dst == GROUP4 || p.dst == GROUP6) {
            return;
        }
        let now = Instant::now();
        let v4 = p.src.is_ipv4();
        let check_ttl = p.multicast_socket;
        let pkt = Received {
            src: p.src,
            dst: p.dst,
            ttl: if check_ttl { p.ttl } else { 255 },
            payload: &p.bytes,
        };
        let mut cores: Vec<&mut Instance> = self
            .slots
            .iter_mut()
            .filter(|s| s.iface == p.iface && s.core.local_addr().is_ipv4() == v4)
            .map(|s| &mut s.core)
            .collect();
        let f = &mut self.ifaces[p.iface];
        let unmatched = if v4 {
            &mut f.unmatched4
        } else {
            &mut f.unmatched6
        };
        if let vrrp::Delivery::Dropped(reason) = vrrp::dispatch(now, &mut cores, unmatched, pkt) {
            tracing::debug!("{}: dropped VRRP packet from {}: {reason}", f.name, p.src);
        }
    }

    async fn on_net_event(&mut self, ev: NetEvent) {
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
            }
            NetEvent::AddressAdded(_) | NetEvent::AddressRemoved(_) => {}
        }
    }

    fn on_link(&mut self, ev: LinkEvent) {
        let tracked = self.track.interface_up(&ev.name).is_some();
        let changed_track = tracked && self.track.set_interface(&ev.name, ev.up);
        let own = self.ifaces.iter().position(|f| f.index == ev.ifindex);
        let changed_own = match own {
            Some(i) if self.ifaces[i].up != ev.up => {
                self.ifaces[i].up = ev.up;
                true
            }
            _ => false,
        };
        if !(changed_own || changed_track) {
            return;
        }
        if ev.up {
            info!("Netlink reports {} up", ev.name);
        } else {
            warn!("Netlink reports {} down", ev.name);
        }
        self.refresh_health();
    }

    /// Recompute every instance's fault and effective priority from its own
    /// interface, its tracked scripts, interfaces and files (seed step 6:
    /// the node's own fault removes the VIPs at once), and its sync group
    /// (one member's fault faults them all, as keepalived).
    fn refresh_health(&mut self) {
        let now = Instant::now();
        let own: Vec<(bool, u8, Vec<String>)> = self
            .slots
            .iter()
            .map(|s| {
                let effect = track::instance_effect(&s.cfg, &self.config, &self.track);
                let f = &self.ifaces[s.iface];
                let mut reasons = effect.reasons;
                if !f.up {
                    reasons.insert(0, format!("interface {} down", f.name));
                }
                (!f.up || effect.fault, effect.priority, reasons)
            })
            .collect();
        for i in 0..self.slots.len() {
            let (mut fault, priority, mut reasons) = own[i].clone();
            let name = self.slots[i].cfg.name.clone();
            if let Some(group) = self
                .config
                .sync_groups
                .iter()
                .find(|g| g.instances.contains(&name))
            {
                for (j, other) in self.slots.iter().enumerate() {
                    if j != i && group.instances.contains(&other.cfg.name) && own[j].0 {
                        fault = true;
                        reasons.push(format!(
                            "sync group {}: {} faulted",
                            group.name, other.cfg.name
                        ));
                    }
                }
            }
            let slot = &mut self.slots[i];
            if slot.health != reasons {
                for r in reasons.iter().filter(|r| !slot.health.contains(r)) {
                    warn!("({name}) {r}");
                }
                slot.health = reasons;
            }
            slot.core.set_fault(now, fault);
            slot.core.set_priority(now, priority);
            let (state, prio) = (slot.core.state(), slot.core.priority());
            if let Some(c) = &mut self.cluster {
                c.core.local_update(now, &name, state, prio);
            }
        }
    }

    /// Apply the tracker's events that are already queued (its first file
    /// reads), without waiting for the event loop.
    fn apply_pending_track_events(&mut self) {
        while let Ok(ev) = self.track_events.try_recv() {
            self.track.apply(&ev);
        }
    }

    /// keepalived's sync groups: a member that becomes master pulls the
    /// others up; one that yields to another master takes the others down.
    fn follow_sync_group(&mut self, i: usize, from: State, to: State) {
        let name = self.slots[i].cfg.name.clone();
        let Some(group) = self
            .config
            .sync_groups
            .iter()
            .find(|g| g.instances.contains(&name))
            .cloned()
        else {
            return;
        };
        let now = Instant::now();
        let why = crate::vrrp::ClusterReason::SyncGroup;
        for slot in self.slots.iter_mut() {
            if slot.cfg.name == name || !group.instances.contains(&slot.cfg.name) {
                continue;
            }
            match (from, to) {
                (_, State::Master) => {
                    slot.core.take_over(now, why, None);
                }
                (State::Master, State::Backup) => {
                    slot.core.step_down(now, why, None);
                }
                _ => {}
            }
        }
        // The group's own notification, once all members agree.
        let states: Vec<State> = self
            .slots
            .iter()
            .filter(|s| group.instances.contains(&s.cfg.name))
            .map(|s| s.core.state())
            .collect();
        if let Some(&first) = states.first() {
            if states.iter().all(|s| *s == first)
                && self.group_states.get(&group.name) != Some(&first)
            {
                self.group_states.insert(group.name.clone(), first);
                info!("(group {}) Entering {first} STATE", group.name);
                self.notifier
                    .group_state_change(&group.name, &group.notify, first);
            }
        }
    }

    /// Drain every core's actions and carry them out in order, until the
    /// VRRP cores and the cluster core are both quiet.
    async fn apply_all(&mut self) {
        loop {
            let mut did = false;
            for i in 0..self.slots.len() {
                while let Some(action) = self.slots[i].core.poll_action() {
                    did = true;
                    self.apply(i, action).await;
                }
            }
            while let Some(action) = self.cluster.as_mut().and_then(|c| c.core.poll_action()) {
                did = true;
                self.apply_cluster(action);
            }
            if did {
                continue;
            }
            // Data sync last, once the VRRP and cluster cores are quiet (a
            // takeover's epoch is raised when its state change is drained).
            self.sync_role();
            while let Some(action) = self.sync.as_mut().and_then(|s| s.core.poll_action()) {
                did = true;
                self.apply_sync(action);
            }
            if !did {
                return;
            }
        }
    }

    /// The control node for data sync is the master of the sync instance.
    fn sync_role(&mut self) {
        let Some(s) = &mut self.sync else {
            return;
        };
        let master = self
            .slots
            .iter()
            .any(|sl| sl.cfg.name == s.instance && sl.core.state() == State::Master);
        let epoch = self
            .cluster
            .as_ref()
            .map_or(0, |c| c.core.epoch(&s.instance));
        s.core.set_role(Instant::now(), master, epoch);
    }

    fn apply_sync(&mut self, action: SyncAction) {
        let (Some(s), Some(c)) = (&mut self.sync, &self.cluster) else {
            return;
        };
        match action {
            SyncAction::Send { peer, msg } => {
                if let Err(e) = c.chan.send(&peer, &msg) {
                    tracing::debug!("sync: {} to {peer} not sent: {e}", msg.kind());
                }
            }
            SyncAction::Broadcast(msg) => {
                c.chan.broadcast(&msg);
            }
            SyncAction::SendData { peer, mut bytes } => {
                if s.corrupt {
                    if let Some(b) = bytes.last_mut() {
                        *b ^= 0x55;
                    }
                }
                if let Err(e) = c.chan.send_data(&peer, bytes) {
                    tracing::debug!("sync: data to {peer} not sent: {e}");
                }
            }
            SyncAction::Write {
                name,
                version,
                content,
                keep_unless,
                conflict_epoch,
            } => s.fs.send(syncfs::FsCommand::Write {
                name,
                version,
                content,
                keep_unless,
                conflict_epoch,
            }),
            SyncAction::RunOnChange { name, version } => {
                let cmd = s
                    .entries
                    .iter()
                    .find(|e| e.name == name)
                    .and_then(|e| e.on_change.clone());
                if let Some(cmd) = cmd {
                    let _ = s.runner.send((name, version, cmd));
                }
            }
            SyncAction::Persist { name, state } => {
                s.state.insert(name, state);
                s.fs.send(syncfs::FsCommand::SaveState(s.state.clone()));
            }
            SyncAction::Warn(m) => warn!("{m}"),
            SyncAction::Info(m) => info!("{m}"),
        }
    }

    fn apply_cluster(&mut self, action: ClusterAction) {
        let now = Instant::now();
        let Some(c) = &mut self.cluster else {
            return;
        };
        let slot =
            |slots: &mut Vec<Slot>, name: &str| slots.iter_mut().position(|s| s.cfg.name == name);
        match action {
            ClusterAction::Send { peer, msg } => {
                if let Err(e) = c.chan.send(&peer, &msg) {
                    tracing::debug!("cluster: {} to {peer} not sent: {e}", msg.kind());
                }
            }
            ClusterAction::Broadcast(msg) => {
                c.chan.broadcast(&msg);
            }
            ClusterAction::TakeOver {
                instance,
                why,
                unless_heard_since,
            } => {
                if let Some(i) = slot(&mut self.slots, &instance) {
                    if !self.slots[i].core.take_over(now, why, unless_heard_since) {
                        tracing::debug!("({instance}) cluster takeover ({why:?}) not needed");
                    }
                }
            }
            ClusterAction::StepDown {
                instance,
                why,
                new_master,
            } => {
                if let Some(i) = slot(&mut self.slots, &instance) {
                    self.slots[i].core.step_down(now, why, new_master);
                }
            }
            ClusterAction::SetGates { instance, gates } => {
                if let Some(i) = slot(&mut self.slots, &instance) {
                    self.slots[i].core.set_gates(gates);
                }
            }
            ClusterAction::SwitchoverDone { id, result } => {
                if let Some(tx) = c.waiting.remove(&id) {
                    let _ = tx.send(match result {
                        Ok(m) => Reply::message(m),
                        Err(e) => Reply::error(e),
                    });
                }
            }
        }
    }

    async fn apply(&mut self, i: usize, action: Action) {
        let slot = &self.slots[i];
        let name = slot.cfg.name.clone();
        match action {
            Action::SendAdvert(repr) => {
                let src = slot.core.local_addr();
                let mode = if slot.cfg.v3_checksum_as_v2 {
                    V3Checksum::WithoutPseudoHeader
                } else {
                    V3Checksum::WithPseudoHeader
                };
                let dsts: Vec<IpAddr> = if slot.cfg.unicast_peers.is_empty() {
                    vec![if src.is_ipv4() { GROUP4 } else { GROUP6 }]
                } else {
                    slot.cfg.unicast_peers.clone()
                };
                for dst in dsts {
                    match repr.to_bytes(src, dst, mode) {
                        Ok(bytes) => {
                            if let Err(e) = slot.sock.send(&bytes, dst).await {
                                // A down link fails sends: the link watch turns
                                // that into FAULT; do not flood the log.
                                tracing::debug!("({name}) advert to {dst}: {e}");
                            }
                        }
                        Err(e) => error!("({name}) cannot build advert: {e}"),
                    }
                }
            }
            Action::AddVips => {
                let targets = self.vip_targets(i).await;
                let entries: Vec<_> = targets
                    .iter()
                    .map(|(ifname, _, v)| (ifname.clone(), v.addr, v.prefix_len))
                    .collect();
                // Intent first: if we are killed after the add, the next start
                // still knows what to clean up.
                if let Err(e) = self.ledger.record(&entries) {
                    warn!("state file: {e}");
                }
                for (ifname, index, v) in &targets {
                    let label = v.label.as_deref();
                    if let Err(e) = self
                        .nl
                        .add_address(*index, v.addr, v.prefix_len, label)
                        .await
                    {
                        error!("({name}) cannot add VIP {v} on {ifname}: {e}");
                    }
                }
                self.slots[i].holds_vips = true;
                let all: Vec<Vip> = targets.into_iter().map(|t| t.2).collect();
                info!("({name}) setting VIPs: {}", vip_list(&all));
            }
            Action::RemoveVips => {
                let targets = self.vip_targets(i).await;
                for (ifname, index, v) in &targets {
                    if let Err(e) = self.nl.delete_address(*index, v.addr, v.prefix_len).await {
                        error!("({name}) cannot remove VIP {v} from {ifname}: {e}");
                    }
                }
                let entries: Vec<_> = targets
                    .iter()
                    .map(|(ifname, _, v)| (ifname.clone(), v.addr, v.prefix_len))
                    .collect();
                if let Err(e) = self.ledger.forget(&entries) {
                    warn!("state file: {e}");
                }
                self.slots[i].holds_vips = false;
                info!("({name}) removing VIPs");
            }
            Action::SendGarp { count } => {
                let f = &self.ifaces[slot.iface];
                let mut frames = Vec::new();
                for _ in 0..count {
                    for v in &slot.cfg.virtual_ips {
                        frames.push(match v.addr {
                            IpAddr::V4(a) => crate::wire::arp::gratuitous_arp(f.mac, a).to_vec(),
                            IpAddr::V6(a) => {
                                crate::wire::nd::unsolicited_na(f.mac, f.addr6.unwrap_or(a), a)
                            }
                        });
                    }
                }
                let gap = if slot.core.local_addr().is_ipv4() {
                    slot.cfg.garp.interval
                } else {
                    slot.cfg.garp.na_interval
                };
                f.garp.send_paced(frames, gap);
                tracing::debug!(
                    "({name}) sending {count} gratuitous ARP/NA per VIP on {}",
                    f.name
                );
            }
            Action::StateChange { from, to, reason } => {
                match to {
                    State::Master => info!("({name}) Entering MASTER STATE ({reason})"),
                    State::Backup => info!("({name}) Entering BACKUP STATE ({reason})"),
                    State::Fault => warn!("({name}) Entering FAULT STATE ({reason})"),
                    State::Initialize => info!("({name}) Stopped ({reason})"),
                }
                let prio = self.slots[i].core.priority();
                self.notifier
                    .state_change(&name, &self.slots[i].cfg.notify, to, prio);
                if let Some(c) = &mut self.cluster {
                    c.core.local_update(Instant::now(), &name, to, prio);
                }
                self.follow_sync_group(i, from, to);
            }
        }
    }

    /// Where each address of instance `i` goes: its `dev` (keepalived's
    /// `dev` option) or the instance's interface; advertised VIPs and
    /// `virtual_ipaddress_excluded` alike.
    async fn vip_targets(&self, i: usize) -> Vec<(String, u32, Vip)> {
        let slot = &self.slots[i];
        let home = &self.ifaces[slot.iface];
        let mut out = Vec::new();
        for v in slot
            .cfg
            .virtual_ips
            .iter()
            .chain(&slot.cfg.virtual_ips_excluded)
        {
            match v.dev.as_deref().filter(|d| *d != home.name) {
                None => out.push((home.name.clone(), home.index, v.clone())),
                Some(dev) => match self.nl.link_by_name(dev).await {
                    Ok(l) => out.push((dev.to_string(), l.index, v.clone())),
                    Err(e) => error!("({}) VIP {v}: interface {dev}: {e}", slot.cfg.name),
                },
            }
        }
        out
    }

    async fn on_control(&mut self, req: Pending) {
        let reply = match req.request {
            Request::Status {} => Reply::status(self.status()),
            Request::Reload {} => {
                self.reload().await;
                Reply::message("reloaded")
            }
            Request::Switchover {
                instance,
                to,
                unicast,
                clear,
            } => {
                let now = Instant::now();
                let Some(c) = &mut self.cluster else {
                    let _ = req.reply.send(Reply::error(
                        "switchover needs the cluster channel ([cluster] in the configuration)",
                    ));
                    return;
                };
                if clear {
                    match c.core.clear_pin(now, &instance) {
                        Ok(m) => Reply::message(m),
                        Err(e) => Reply::error(e),
                    }
                } else {
                    let Some(target) = to else {
                        let _ = req.reply.send(Reply::error("give --to NODE or --clear"));
                        return;
                    };
                    let id = c.next_id;
                    c.next_id += 1;
                    c.waiting.insert(id, req.reply);
                    c.core
                        .request_switchover(now, &instance, &target, unicast, id);
                    return;
                }
            }
        };
        let _ = req.reply.send(reply);
    }

    fn status(&self) -> Status {
        let instances = self
            .slots
            .iter()
            .map(|s| {
                let f = &self.ifaces[s.iface];
                let faults = s.health.clone();
                InstanceStatus {
                    name: s.cfg.name.clone(),
                    interface: f.name.clone(),
                    vrid: s.cfg.vrid,
                    version: match s.cfg.version {
                        Version::V2 => 2,
                        Version::V3 => 3,
                    },
                    state: s.core.state(),
                    base_priority: s.cfg.priority,
                    effective_priority: s.core.priority(),
                    local_address: Some(s.core.local_addr()),
                    master: s.core.master().map(|m| m.0),
                    master_priority: s.core.master().map(|m| m.1),
                    advert_interval_ms: s.cfg.advert_interval.as_millis() as u64,
                    master_adver_interval_ms: s.core.master_adver_interval().as_millis() as u64,
                    virtual_ips: s
                        .cfg
                        .virtual_ips
                        .iter()
                        .map(|v| format!("{}/{}", v.addr, v.prefix_len))
                        .collect(),
                    holds_vips: s.holds_vips,
                    became_master: s.core.times_became_master(),
                    faults,
                    rx: s.core.stats().clone(),
                }
            })
            .collect();
        let mut interfaces = Vec::new();
        for f in &self.ifaces {
            interfaces.push(InterfaceStatus {
                name: f.name.clone(),
                family: "ipv4".into(),
                rx: f.unmatched4.clone(),
            });
            interfaces.push(InterfaceStatus {
                name: f.name.clone(),
                family: "ipv6".into(),
                rx: f.unmatched6.clone(),
            });
        }
        let now = Instant::now();
        let cluster = self.cluster.as_ref().map(|c| ClusterStatus {
            node: c.core.node().to_string(),
            peers: c.core.peer_views(now),
            instances: self
                .slots
                .iter()
                .map(|s| ClusterInstanceStatus {
                    name: s.cfg.name.clone(),
                    epoch: c.core.epoch(&s.cfg.name),
                    master: c.core.master(now, &s.cfg.name),
                    pinned: c.core.pinned(now, &s.cfg.name),
                })
                .collect(),
            stale_ignored: c.core.stale_ignored,
            channel: c
                .chan
                .peers()
                .into_iter()
                .map(|p| control::ChannelPeerStatus {
                    name: p.name,
                    addr: p.addr.to_string(),
                    connected: p.connected,
                    rejected: p.rejected,
                })
                .collect(),
            sync: self.sync.as_ref().map_or(Vec::new(), |s| s.core.views()),
        });
        Status {
            cluster,
            router_id: self.config.global.router_id.clone(),
            pid: std::process::id(),
            config_file: self.opts.config_path.display().to_string(),
            instances,
            interfaces,
        }
    }

    /// SIGHUP: read the file again. An instance whose configuration did not
    /// change keeps running untouched (a master stays master, no VIP flap),
    /// and so does one where only its priority, preemption or GARP settings
    /// changed (applied in place, as keepalived does);
    /// a removed one is shut down (priority 0); a new or changed one starts
    /// afresh. A config that does not load is refused and nothing changes.
    async fn reload(&mut self) {
        let new = match self.opts.load() {
            Ok(c) => c,
            Err(d) => {
                error!("reload refused, keeping the running configuration:\n{d}");
                return;
            }
        };
        let now = Instant::now();
        let mut keep: BTreeMap<String, bool> = BTreeMap::new();
        for n in &new.instances {
            let mut same = self.slots.iter().any(|s| &s.cfg == n);
            // Same interface and sockets, only soft settings changed (a
            // priority, say): apply in place, no failover.
            if let Some(slot) = self.slots.iter_mut().find(|s| {
                !same
                    && s.cfg.name == n.name
                    && s.cfg.interface == n.interface
                    && s.cfg.unicast_src == n.unicast_src
                    && s.cfg.unicast_peers == n.unicast_peers
                    && s.cfg.v3_checksum_as_v2 == n.v3_checksum_as_v2
            }) {
                if slot.core.reconfigure(now, core_config(n)) {
                    info!("({}) reconfigured in place", n.name);
                    slot.cfg = n.clone();
                    same = true;
                }
            }
            keep.insert(n.name.clone(), same);
        }
        // Stop what goes away or changes.
        let mut i = 0;
        while i < self.slots.len() {
            if keep.get(&self.slots[i].cfg.name) == Some(&true) {
                i += 1;
                continue;
            }
            self.slots[i].core.shutdown(now);
            while let Some(a) = self.slots[i].core.poll_action() {
                self.apply(i, a).await;
            }
            self.slots.remove(i);
        }
        let tracking_changed = new.vrrp_scripts != self.config.vrrp_scripts
            || new.track_files != self.config.track_files;
        self.config = new.clone();
        if tracking_changed {
            // New scripts or files: start over (script states reset, as a
            // keepalived reload does).
            // What survives keeps its state: a failing check must not look
            // good again just because the file was re-read.
            let mut state = TrackState::new(&new);
            state.carry_over(&self.track);
            self.tracker.stop();
            let (tracker, events) = Tracker::start_from(&new, &state);
            self.tracker = tracker;
            self.track_events = events;
            self.track = state;
            self.apply_pending_track_events();
            let tracked: Vec<String> = new
                .instances
                .iter()
                .flat_map(|i| i.track_interfaces.iter().map(|t| t.name.clone()))
                .collect();
            for n in tracked {
                if self.track.interface_up(&n).is_none() {
                    let up = self.nl.link_by_name(&n).await.is_ok_and(|l| l.up);
                    self.track.set_interface(&n, up);
                }
            }
        }
        for n in new
            .instances
            .iter()
            .filter(|n| keep.get(&n.name) == Some(&false))
        {
            match self.add_instance(n.clone()).await {
                Ok(()) => {
                    let last = self.slots.len() - 1;
                    self.slots[last].core.startup(now);
                }
                Err(e) => error!("reload: instance {}: {e}", n.name),
            }
        }
        self.refresh_health();
        self.apply_all().await;
        info!("configuration reloaded: {} instance(s)", self.slots.len());
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

fn is_link_local(a: Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

/// The core's view of a configured instance.
pub fn core_config(cfg: &InstanceCfg) -> InstanceConfig {
    let auth = cfg.auth_pass.as_ref().map(|p| {
        let mut a = [0u8; 8];
        for (d, s) in a.iter_mut().zip(p.bytes()) {
            *d = s;
        }
        a
    });
    InstanceConfig {
        name: cfg.name.clone(),
        vrid: cfg.vrid,
        version: cfg.version,
        priority: cfg.priority,
        advert_interval: cfg.advert_interval,
        preempt: cfg.preempt,
        preempt_delay: cfg.preempt_delay,
        vips: cfg.virtual_ips.iter().map(|v| v.addr).collect(),
        auth,
        garp: GarpSchedule {
            repeat: cfg.garp.master_repeat,
            delay: cfg.garp.master_delay,
            refresh: cfg.garp.master_refresh.unwrap_or_default(),
            refresh_repeat: cfg.garp.master_refresh_repeat,
            lower_prio_repeat: cfg.garp.lower_prio_repeat(),
            lower_prio_delay: cfg.garp.lower_prio_delay(),
        },
        strict: cfg.strict_mode,
    }
}
