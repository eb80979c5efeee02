//! The `baton` command line: parse arguments, call into the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use baton::agent::control::{self, Request};

#[derive(Parser)]
#[command(
    name = "baton",
    version,
    about = "VRRP/ARP layer-2 failover agent (keepalived-compatible)",
    long_about = "VRRP/ARP layer-2 failover agent (keepalived-compatible).\n\n\
        Without a subcommand, baton runs the agent and accepts keepalived's \
        command-line flags, so `ExecStart=/usr/sbin/baton --dont-fork $DAEMON_ARGS` \
        works unchanged.",
    args_conflicts_with_subcommands = true,
    disable_version_flag = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

/// The agent's flags: every one of keepalived 2.2.7's (`keepalived
/// --help`), with its meaning where it has one for a VRRP-only daemon and
/// accepted (logged once) where it has none, plus baton's own.
#[derive(Args, Debug, Clone, Default)]
struct RunArgs {
    /// Configuration file: baton TOML or keepalived.conf (chosen by content).
    /// Default: /etc/baton/baton.toml, else /etc/keepalived/keepalived.conf.
    #[arg(short = 'f', long = "use-file")]
    file: Option<PathBuf>,
    /// Only run the VRRP subsystem (baton's only one; accepted).
    #[arg(short = 'P', long = "vrrp")]
    vrrp_only: bool,
    /// Only run the health checkers (baton has none: accepted, logged; VRRP runs).
    #[arg(short = 'C', long = "check")]
    checkers_only: bool,
    /// Don't run BFD (baton has none; accepted).
    #[arg(short = 'B', long = "no_bfd")]
    no_bfd: bool,
    /// Force all child processes to run (baton has one process; accepted).
    #[arg(long = "all")]
    all: bool,
    /// Log to the console (standard error) too.
    #[arg(short = 'l', long = "log-console")]
    log_console: bool,
    /// Detailed (debug) logging.
    #[arg(short = 'D', long = "log-detail")]
    log_detail: bool,
    /// Syslog facility: 0-7 (local0-local7), local0-local7, user or daemon
    /// (default).
    #[arg(short = 'S', long = "log-facility", value_parser = parse_facility)]
    log_facility: Option<String>,
    /// Don't log via syslog (without -l: to the console instead).
    #[arg(short = 'G', long = "no-syslog")]
    no_syslog: bool,
    /// umask for files baton creates (numeric: 022, 0077, 0x12...).
    #[arg(short = 'u', long = "umask", value_parser = parse_umask)]
    umask: Option<u32>,
    /// Drop VIPs on a transition caused by a signal (baton always removes
    /// VIPs when it leaves MASTER; accepted).
    #[arg(short = 'X', long = "release-vips")]
    release_vips: bool,
    /// Leave the VIPs configured when stopping (keepalived's -V).
    #[arg(short = 'V', long = "dont-release-vrrp")]
    dont_release_vrrp: bool,
    /// Don't remove IPVS topology on stop (baton has no IPVS; accepted).
    #[arg(short = 'I', long = "dont-release-ipvs")]
    dont_release_ipvs: bool,
    /// Don't respawn child processes (baton has none; accepted).
    #[arg(short = 'R', long = "dont-respawn")]
    dont_respawn: bool,
    /// Stay in the foreground (baton never forks; accepted).
    #[arg(short = 'n', long = "dont-fork")]
    dont_fork: bool,
    /// Log the configuration as read, at start.
    #[arg(short = 'd', long = "dump-conf")]
    dump_conf: bool,
    /// Write the pid to this file (removed on exit).
    #[arg(short = 'p', long = "pid")]
    pid_file: Option<PathBuf>,
    /// The VRRP process's pid file: baton's own pid (it is the VRRP process).
    #[arg(short = 'r', long = "vrrp_pid")]
    vrrp_pid_file: Option<PathBuf>,
    /// The checkers' pid file (baton has no checker process; accepted).
    #[arg(short = 'c', long = "checkers_pid")]
    checkers_pid_file: Option<PathBuf>,
    /// The BFD process's pid file (baton has none; accepted).
    #[arg(short = 'b', long = "bfd_pid")]
    bfd_pid_file: Option<PathBuf>,
    /// Log every address added or removed on the host (netlink).
    #[arg(short = 'a', long = "address-monitoring")]
    address_monitoring: bool,
    /// Enable SNMP (baton has no SNMP agent; accepted, logged).
    #[arg(short = 'x', long = "snmp")]
    snmp: bool,
    /// SNMP master agent socket (accepted, logged).
    #[arg(short = 'A', long = "snmp-agent-socket")]
    snmp_agent_socket: Option<PathBuf>,
    /// Run in network namespace NAME (/run/netns/NAME), before anything else.
    #[arg(short = 's', long = "namespace")]
    namespace: Option<String>,
    /// Produce a core dump on abnormal termination (RLIMIT_CORE unlimited).
    #[arg(short = 'm', long = "core-dump")]
    core_dump: bool,
    /// As -m; keepalived also sets /proc/sys/kernel/core_pattern, a host-wide
    /// setting baton leaves alone (logged).
    #[arg(short = 'M', long = "core-dump-pattern", num_args = 0..=1, require_equals = true, default_missing_value = "core")]
    core_dump_pattern: Option<String>,
    /// A missing included file is an error (as `includet`).
    #[arg(short = 'e', long = "all-config")]
    all_config: bool,
    /// keepalived.conf config id for `@id` lines (default: short host name).
    #[arg(short = 'i', long = "config-id")]
    config_id: Option<String>,
    /// Print the number of a keepalived signal function (STOP, RELOAD, DATA,
    /// STATS, STATS_CLEAR, JSON) and exit.
    #[arg(long = "signum")]
    signum: Option<String>,
    /// Test the configuration and exit: 0 valid, 5 invalid (as keepalived);
    /// the report goes to LOG_FILE when given, else stderr.
    #[arg(short = 't', long = "config-test", num_args = 0..=1, require_equals = true, default_missing_value = "")]
    config_test: Option<String>,
    /// Print the version and exit.
    #[arg(short = 'v', long = "version")]
    version: bool,
    /// Control socket (overrides the configuration's).
    #[arg(long = "control-socket")]
    control_socket: Option<PathBuf>,
    /// State directory (overrides the configuration's).
    #[arg(long = "state-dir")]
    state_dir: Option<PathBuf>,
}

/// Findings as text, each line ended (keepalived's warnings end with a
/// newline too); nothing for none.
fn with_newline(d: &baton::config::diag::Diagnostics) -> String {
    let text = d.to_string();
    if text.is_empty() || text.ends_with('\n') {
        text
    } else {
        text + "\n"
    }
}

/// `baton check`: the file, then (unless `no_host`) the host.
fn check(file: PathBuf, config_id: Option<String>, strict: bool, no_host: bool) -> ExitCode {
    match load(&file, config_id, strict) {
        Ok(loaded) => {
            eprint!("{}", with_newline(&loaded.warnings));
            if !no_host {
                let host = baton::agent::hostcheck::check(&loaded.config, &loaded.origins);
                eprint!("{}", with_newline(&host));
                if host.has_errors() || (strict && !host.is_empty()) {
                    return ExitCode::FAILURE;
                }
            }
            println!(
                "{}: OK ({} instance(s))",
                file.display(),
                loaded.config.instances.len()
            );
            ExitCode::SUCCESS
        }
        Err(diags) => {
            eprintln!("{diags}");
            ExitCode::FAILURE
        }
    }
}

/// `status --watch`: ask every `every`, redraw in place (cursor home, the
/// text, clear what is left below: no blank frame between two), until
/// interrupted; an agent that stops answering is shown, not fatal.
fn watch_status(
    socket: Option<PathBuf>,
    file: Option<PathBuf>,
    json: bool,
    every: Duration,
) -> ExitCode {
    use std::io::Write;
    let socket = match socket_path(socket, file) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let mut out = std::io::stdout();
    loop {
        let text = match control::request(&socket, &Request::Status {}, Duration::from_secs(5)) {
            Ok(reply) => match reply.status {
                Some(st) if json => serde_json::to_string(&st).unwrap_or_default() + "\n",
                Some(st) => control::render(&st),
                None => format!("error: {}\n", reply.error.unwrap_or_default()),
            },
            Err(e) => format!("error: {}: {e}\n", socket.display()),
        };
        let frame = if json {
            text
        } else {
            format!("\x1b[H{}\x1b[J", text.replace('\n', "\x1b[K\n"))
        };
        if out
            .write_all(frame.as_bytes())
            .and_then(|()| out.flush())
            .is_err()
        {
            // The reader went away (a closed pipe): done.
            return ExitCode::SUCCESS;
        }
        std::thread::sleep(every);
    }
}

/// `--watch SECS`: a positive number of seconds, at most an hour.
fn parse_watch(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("not a number of seconds: {s:?}"))?;
    if !(0.1..=3600.0).contains(&secs) {
        return Err("between 0.1 and 3600 seconds".into());
    }
    Ok(Duration::from_secs_f64(secs))
}

/// The configuration file when none is named: /etc/baton/baton.toml,
/// else keepalived's /etc/keepalived/keepalived.conf.
fn default_config() -> PathBuf {
    let baton = PathBuf::from("/etc/baton/baton.toml");
    let keepalived = PathBuf::from("/etc/keepalived/keepalived.conf");
    if !baton.exists() && keepalived.exists() {
        keepalived
    } else {
        baton
    }
}

/// keepalived's `-S`: 0-7, local0-local7, user or daemon.
fn parse_facility(s: &str) -> Result<String, String> {
    let ok = matches!(s, "user" | "daemon")
        || s.parse::<u8>().is_ok_and(|n| n <= 7)
        || s.strip_prefix("local")
            .is_some_and(|n| n.parse::<u8>().is_ok_and(|n| n <= 7));
    if ok {
        Ok(s.to_string())
    } else {
        Err("expected 0-7, local0-local7, user or daemon".into())
    }
}

/// keepalived's `-u`: a number as C's strtol with base 0 reads it (0x..
/// hex, a leading 0 octal, else decimal), at most 0777.
fn parse_umask(s: &str) -> Result<u32, String> {
    let v = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u32::from_str_radix(h, 16)
    } else if s.len() > 1 && s.starts_with('0') {
        u32::from_str_radix(&s[1..], 8)
    } else {
        s.parse()
    }
    .map_err(|_| format!("not a number: {s:?}"))?;
    if v > 0o777 {
        return Err(format!("{s} is more than 0777"));
    }
    Ok(v)
}

/// keepalived's `--signum` table (keepalived 2.2.7 on Linux).
fn signum(name: &str) -> Option<i32> {
    let rtmin = nix::libc::SIGRTMIN();
    Some(match name {
        "STOP" => nix::libc::SIGTERM,
        "RELOAD" => nix::libc::SIGHUP,
        "DATA" => nix::libc::SIGUSR1,
        "STATS" => nix::libc::SIGUSR2,
        "STATS_CLEAR" => rtmin + 29,
        "JSON" => rtmin + 2,
        _ => return None,
    })
}

// One value per process: the size of `Run` does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run the agent in the foreground.
    Run(RunArgs),
    /// Validate a configuration file: errors as file:line:col, exit 0 or 1.
    Check {
        /// Default: as the agent's (/etc/baton/baton.toml, else
        /// /etc/keepalived/keepalived.conf).
        #[arg(short = 'f', long = "use-file")]
        file: Option<PathBuf>,
        /// Warnings (unknown keywords, skipped blocks) are errors.
        #[arg(long)]
        strict: bool,
        /// keepalived.conf config id for `@id` lines (default: short host name).
        #[arg(short = 'i', long = "config-id")]
        config_id: Option<String>,
        /// Check the file only, not this host (its interfaces, scripts and
        /// users): for a configuration meant for another machine.
        #[arg(long)]
        no_host: bool,
    },
    /// Print the TOML equivalent of a configuration (keepalived.conf or TOML).
    Convert {
        #[arg(short = 'f', long = "use-file")]
        file: PathBuf,
        /// keepalived.conf config id for `@id` lines (default: short host name).
        #[arg(short = 'i', long = "config-id")]
        config_id: Option<String>,
    },
    /// Show every instance of a running agent.
    Status {
        /// Print the raw JSON status (with --watch: one compact document per
        /// line at each refresh).
        #[arg(long)]
        json: bool,
        /// Refresh every SECS seconds (default 1) in place, without flicker,
        /// until interrupted.
        #[arg(long, value_name = "SECS", num_args = 0..=1, default_missing_value = "1", value_parser = parse_watch)]
        watch: Option<Duration>,
        /// Control socket of the agent.
        #[arg(short = 's', long = "socket")]
        socket: Option<PathBuf>,
        /// Read the control socket path from this configuration file.
        #[arg(short = 'f', long = "use-file")]
        file: Option<PathBuf>,
    },
    /// Make a running agent read its configuration again (as SIGHUP) and
    /// print what the reload did; an invalid file changes nothing and its
    /// error is printed.
    Reload {
        /// Control socket of the agent.
        #[arg(short = 's', long = "socket")]
        socket: Option<PathBuf>,
        /// Read the control socket path from this configuration file.
        #[arg(short = 'f', long = "use-file")]
        file: Option<PathBuf>,
    },
    /// Move an instance to another node over the cluster channel
    /// (make-before-break); the choice holds until --clear.
    Switchover {
        /// The instance to move.
        instance: String,
        /// The node that should take it.
        #[arg(long, required_unless_present = "clear")]
        to: Option<String>,
        /// Tell only the named node (HANDOFF) instead of every node (SWITCHOVER).
        #[arg(long, conflicts_with = "clear")]
        unicast: bool,
        /// End an operator's choice: normal preemption resumes.
        #[arg(long, conflicts_with = "to")]
        clear: bool,
        /// Control socket of the local agent.
        #[arg(short = 's', long = "socket")]
        socket: Option<PathBuf>,
        /// Read the control socket path from this configuration file.
        #[arg(short = 'f', long = "use-file")]
        file: Option<PathBuf>,
    },
    /// A 3-node failover in network namespaces (needs root).
    Demo {
        /// Route mode instead: three subnets behind a router running FRR
        /// (BGP + BFD), the VIP moved by routing (needs FRR installed).
        #[arg(long)]
        route: bool,
    },
    /// Print a shell completion script (bash, zsh or fish) to standard output.
    Completions {
        #[arg(value_enum)]
        shell: Shell,
    },
}

/// The shells `baton completions` writes for.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Shell {
    Bash,
    Zsh,
    Fish,
}

fn init_logging(detail: bool) {
    let level = if detail {
        tracing::Level::DEBUG
    } else {
        tracing::Level::INFO
    };
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}

/// The agent's log with keepalived's flags (see `agent::logging`):
/// syslog unless -G, the console with -l, the journal under systemd.
fn init_flag_logging(args: &RunArgs) {
    use baton::agent::logging::{self, Plan, SocketLayer};
    use tracing_subscriber::prelude::*;
    let level = if args.log_detail {
        tracing_subscriber::filter::LevelFilter::DEBUG
    } else {
        tracing_subscriber::filter::LevelFilter::INFO
    };
    let facility = logging::facility(args.log_facility.as_deref());
    let journal = logging::under_systemd()
        .then(|| SocketLayer::journal(std::path::Path::new(logging::JOURNAL_SOCKET), facility))
        .flatten();
    let syslog = (journal.is_none() && !args.no_syslog)
        .then(|| SocketLayer::syslog(std::path::Path::new(logging::SYSLOG_SOCKET), facility))
        .flatten();
    let plan = Plan::choose(
        args.log_console,
        args.no_syslog,
        journal.is_some(),
        syslog.is_some(),
    );
    let console = plan.console.then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_target(false)
    });
    tracing_subscriber::registry()
        .with(level)
        .with(console)
        .with(
            journal
                .filter(|_| plan.journal)
                .map(SocketLayer::nonblocking),
        )
        .with(syslog.filter(|_| plan.syslog).map(SocketLayer::nonblocking))
        .init();
}

fn load(
    file: &std::path::Path,
    config_id: Option<String>,
    strict: bool,
) -> Result<baton::config::Loaded, baton::config::Diagnostics> {
    let opts = baton::config::Options {
        config_id,
        strict,
        ..baton::config::Options::from_host()
    };
    baton::config::load_with_options(file, &opts)
}

/// The agent (or, with -t, a config test), from keepalived-style flags.
fn run(args: RunArgs) -> ExitCode {
    if args.version {
        println!(
            "baton {} (keepalived 2.2.7 command line and configuration)",
            env!("CARGO_PKG_VERSION")
        );
        return ExitCode::SUCCESS;
    }
    if let Some(name) = &args.signum {
        return match signum(name) {
            Some(n) => {
                println!("{n}");
                ExitCode::SUCCESS
            }
            None => {
                eprintln!("Unknown sigfunc {name}");
                ExitCode::from(1)
            }
        };
    }
    if let Some(ns) = &args.namespace {
        // Before anything else (threads, sockets, the config's interfaces).
        if let Err(e) = baton::agent::runtime::enter_namespace(ns) {
            eprintln!("network namespace {ns}: {e}");
            return ExitCode::FAILURE;
        }
    }
    if let Some(mask) = args.umask {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
    }
    let file = args.file.clone().unwrap_or_else(default_config);
    if let Some(log_file) = &args.config_test {
        let opts = baton::config::Options {
            config_id: args.config_id.clone(),
            all_config: args.all_config,
            ..baton::config::Options::from_host()
        };
        // As keepalived's -t: the file, then the host (interfaces,
        // scripts, users); any error is status 5.
        let (report, code) = match baton::config::load_with_options(&file, &opts) {
            Ok(loaded) => {
                let host = baton::agent::hostcheck::check(&loaded.config, &loaded.origins);
                // keepalived's -t is 5 for what it warns about too (an
                // unknown keyword, a fallback); notes are what it passes
                // over in silence.
                let code = if host.has_errors() || loaded.warnings.has_warnings() {
                    ExitCode::from(5)
                } else {
                    ExitCode::SUCCESS
                };
                (
                    format!("{}{}", with_newline(&loaded.warnings), with_newline(&host)),
                    code,
                )
            }
            Err(diags) => (format!("{diags}\n"), ExitCode::from(5)),
        };
        if log_file.is_empty() {
            eprint!("{report}");
        } else if let Err(e) = std::fs::write(log_file, &report) {
            eprintln!("{log_file}: {e}");
            eprint!("{report}");
        }
        return code;
    }
    init_flag_logging(&args);
    log_accepted_flags(&args);
    if args.core_dump || args.core_dump_pattern.is_some() {
        let inf = nix::sys::resource::RLIM_INFINITY;
        if let Err(e) =
            nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, inf, inf)
        {
            tracing::warn!("-m: cannot lift the core size limit: {e}");
        }
    }
    let opts = baton::agent::runtime::Options {
        config_path: file,
        config_id: args.config_id,
        control_socket: args.control_socket,
        state_dir: args.state_dir,
        pid_files: args
            .pid_file
            .into_iter()
            .chain(args.vrrp_pid_file)
            .collect(),
        all_config: args.all_config,
        keep_vips_on_stop: args.dont_release_vrrp,
        address_monitoring: args.address_monitoring,
        dump_conf: args.dump_conf,
        namespace_given: args.namespace.is_some(),
    };
    match baton::agent::runtime::run(opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// One log line per keepalived flag that has no meaning for baton.
fn log_accepted_flags(a: &RunArgs) {
    let accepted: [(bool, &str); 12] = [
        (a.vrrp_only, "-P (baton only runs VRRP)"),
        (
            a.checkers_only,
            "-C (baton has no health checkers; VRRP runs)",
        ),
        (a.no_bfd, "-B (baton has no BFD)"),
        (a.all, "--all (baton is one process)"),
        (
            a.release_vips,
            "-X (baton removes VIPs whenever it leaves MASTER)",
        ),
        (a.dont_release_ipvs, "-I (baton has no IPVS)"),
        (a.dont_respawn, "-R (baton has no child processes)"),
        (a.dont_fork, "-n (baton never forks)"),
        (
            a.checkers_pid_file.is_some(),
            "-c (baton has no checker process)",
        ),
        (a.bfd_pid_file.is_some(), "-b (baton has no BFD process)"),
        (
            a.snmp || a.snmp_agent_socket.is_some(),
            "-x/-A (baton has no SNMP agent)",
        ),
        (
            a.core_dump_pattern.is_some(),
            "-M (core dumps on, as -m; the host's core_pattern is left alone)",
        ),
    ];
    for (_, what) in accepted.iter().filter(|(on, _)| *on) {
        tracing::info!("keepalived flag accepted, nothing to do: {what}");
    }
}

/// The control socket: `-s`, else the one the config file names, else the default.
fn socket_path(socket: Option<PathBuf>, file: Option<PathBuf>) -> Result<PathBuf, ExitCode> {
    match (socket, file) {
        (Some(s), _) => Ok(s),
        (None, Some(f)) => match baton::config::load(&f) {
            Ok(c) => Ok(c.global.control_socket),
            Err(d) => {
                eprintln!("{d}");
                Err(ExitCode::FAILURE)
            }
        },
        (None, None) => Ok(control::default_socket()),
    }
}

/// Send one request to the local agent; `ok` handles a successful reply,
/// errors are printed and exit 1.
fn ask(
    socket: Option<PathBuf>,
    file: Option<PathBuf>,
    req: &Request,
    timeout_secs: u64,
    ok: impl FnOnce(control::Reply) -> ExitCode,
) -> ExitCode {
    let socket = match socket_path(socket, file) {
        Ok(s) => s,
        Err(code) => return code,
    };
    match control::request(&socket, req, Duration::from_secs(timeout_secs)) {
        Ok(reply) if reply.ok => ok(reply),
        Ok(reply) => {
            eprintln!("error: {}", reply.error.unwrap_or_default());
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Run(cli.run));
    match command {
        Command::Run(args) => run(args),
        Command::Check {
            file,
            strict,
            config_id,
            no_host,
        } => check(
            file.unwrap_or_else(default_config),
            config_id,
            strict,
            no_host,
        ),
        Command::Convert { file, config_id } => match load(&file, config_id, false) {
            Ok(loaded) => {
                eprint!("{}", with_newline(&loaded.warnings));
                print!("{}", baton::config::convert::to_toml(&loaded.config));
                ExitCode::SUCCESS
            }
            Err(diags) => {
                eprintln!("{diags}");
                ExitCode::FAILURE
            }
        },
        Command::Status {
            json,
            watch,
            socket,
            file,
        } => match watch {
            None => ask(socket, file, &Request::Status {}, 5, |reply| {
                let Some(status) = reply.status else {
                    eprintln!("agent sent no status");
                    return ExitCode::FAILURE;
                };
                if json {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&status).unwrap_or_default()
                    );
                } else {
                    print!("{}", control::render(&status));
                }
                ExitCode::SUCCESS
            }),
            Some(every) => watch_status(socket, file, json, every),
        },
        Command::Reload { socket, file } => ask(socket, file, &Request::Reload {}, 30, |reply| {
            println!("{}", reply.message.unwrap_or_default().trim_end());
            ExitCode::SUCCESS
        }),
        Command::Switchover {
            instance,
            to,
            unicast,
            clear,
            socket,
            file,
        } => {
            let req = Request::Switchover {
                instance,
                to,
                unicast,
                clear,
            };
            ask(socket, file, &req, 15, |reply| {
                println!("{}", reply.message.unwrap_or_default());
                ExitCode::SUCCESS
            })
        }
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let shell = match shell {
                Shell::Bash => clap_complete::Shell::Bash,
                Shell::Zsh => clap_complete::Shell::Zsh,
                Shell::Fish => clap_complete::Shell::Fish,
            };
            clap_complete::generate(shell, &mut Cli::command(), "baton", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Command::Demo { route } => {
            init_logging(false);
            match baton::lab::demo::run(route) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("demo: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// man/baton.8 as roff writes option names: `\-\-name`, `\-x`.
    fn man() -> String {
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/man/baton.8"))
            .expect("man/baton.8")
    }

    fn roff(flag: &str) -> String {
        flag.replace('-', "\\-")
    }

    /// Every flag and subcommand of the command line is in man/baton.8:
    /// the page cannot drift from the code.
    #[test]
    fn every_flag_and_subcommand_is_in_the_man_page() {
        let man = man();
        let cli = Cli::command();
        let mut missing = Vec::new();
        let check = |cmd: &clap::Command, context: &str, missing: &mut Vec<String>| {
            for arg in cmd.get_arguments() {
                if arg.is_positional() || ["help", "version"].contains(&arg.get_id().as_str()) {
                    continue;
                }
                if let Some(long) = arg.get_long() {
                    let text = roff(&format!("--{long}"));
                    if !man.contains(&text) {
                        missing.push(format!("{context}--{long}"));
                    }
                }
                if let Some(short) = arg.get_short() {
                    let text = roff(&format!("-{short}"));
                    if !man.contains(&text) {
                        missing.push(format!("{context}-{short}"));
                    }
                }
            }
        };
        check(&cli, "", &mut missing);
        for sub in cli.get_subcommands() {
            let name = sub.get_name();
            if !man.contains(&format!(".B {name}")) && !man.contains(&format!("baton {name}")) {
                missing.push(format!("subcommand {name}"));
            }
            check(sub, &format!("{name} "), &mut missing);
        }
        assert!(missing.is_empty(), "missing from man/baton.8: {missing:?}");
    }

    #[test]
    fn completions_name_every_subcommand() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "baton", &mut out);
            let text = String::from_utf8(out).unwrap();
            for sub in Cli::command().get_subcommands() {
                assert!(
                    text.contains(sub.get_name()),
                    "{shell:?} lacks {}",
                    sub.get_name()
                );
            }
            assert!(
                text.contains("dont-release-vrrp"),
                "{shell:?} lacks the flags"
            );
        }
    }
}
