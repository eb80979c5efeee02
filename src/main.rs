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
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

/// The agent's flags: keepalived's, plus baton's own.
#[derive(Args, Debug, Clone)]
struct RunArgs {
    /// Configuration file: baton TOML or keepalived.conf (chosen by content).
    /// Default: /etc/baton/baton.toml, else /etc/keepalived/keepalived.conf.
    #[arg(short = 'f', long = "use-file")]
    file: Option<PathBuf>,
    /// Stay in the foreground (baton never forks; accepted for keepalived units).
    #[arg(short = 'n', long = "dont-fork")]
    dont_fork: bool,
    /// Log to the console (stderr). Always on; accepted for keepalived units.
    #[arg(short = 'l', long = "log-console")]
    log_console: bool,
    /// Detailed (debug) logging.
    #[arg(short = 'D', long = "log-detail")]
    log_detail: bool,
    /// Test the configuration and exit: 0 valid, 5 invalid (as keepalived),
    /// but a missing file is an error too.
    #[arg(short = 't', long = "config-test")]
    config_test: bool,
    /// Write the pid to this file (removed on exit).
    #[arg(short = 'p', long = "pid")]
    pid_file: Option<PathBuf>,
    /// keepalived.conf config id for `@id` lines (default: short host name).
    #[arg(short = 'i', long = "config-id")]
    config_id: Option<String>,
    /// Run the VRRP subsystem only (baton has no other; accepted).
    #[arg(short = 'P', long = "vrrp")]
    vrrp_only: bool,
    /// Syslog facility (accepted; baton logs to stderr for journald).
    #[arg(short = 'S', long = "log-facility")]
    log_facility: Option<String>,
    /// Control socket (overrides the configuration's).
    #[arg(long = "control-socket")]
    control_socket: Option<PathBuf>,
    /// State directory (overrides the configuration's).
    #[arg(long = "state-dir")]
    state_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the agent in the foreground.
    Run(RunArgs),
    /// Validate a configuration file: errors as file:line:col, exit 0 or 1.
    Check {
        #[arg(short = 'f', long = "use-file")]
        file: PathBuf,
        /// Warnings (unknown keywords, skipped blocks) are errors.
        #[arg(long)]
        strict: bool,
        /// keepalived.conf config id for `@id` lines (default: short host name).
        #[arg(short = 'i', long = "config-id")]
        config_id: Option<String>,
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
        /// Print the raw JSON status.
        #[arg(long)]
        json: bool,
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
    Demo,
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
    let file = args.file.clone().unwrap_or_else(|| {
        let baton = PathBuf::from("/etc/baton/baton.toml");
        let keepalived = PathBuf::from("/etc/keepalived/keepalived.conf");
        if !baton.exists() && keepalived.exists() {
            keepalived
        } else {
            baton
        }
    });
    if args.config_test {
        return match load(&file, args.config_id.clone(), false) {
            Ok(loaded) => {
                eprint!("{}", loaded.warnings);
                ExitCode::SUCCESS
            }
            Err(diags) => {
                eprintln!("{diags}");
                ExitCode::from(5)
            }
        };
    }
    init_logging(args.log_detail);
    let _ = (
        args.dont_fork,
        args.log_console,
        args.vrrp_only,
        &args.log_facility,
    );
    let opts = baton::agent::runtime::Options {
        config_path: file,
        config_id: args.config_id,
        control_socket: args.control_socket,
        state_dir: args.state_dir,
        pid_file: args.pid_file,
    };
    match baton::agent::runtime::run(opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
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
        } => match load(&file, config_id, strict) {
            Ok(loaded) => {
                eprint!("{}", loaded.warnings);
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
        },
        Command::Convert { file, config_id } => match load(&file, config_id, false) {
            Ok(loaded) => {
                eprint!("{}", loaded.warnings);
                print!("{}", baton::config::convert::to_toml(&loaded.config));
                ExitCode::SUCCESS
            }
            Err(diags) => {
                eprintln!("{diags}");
                ExitCode::FAILURE
            }
        },
        Command::Status { json, socket, file } => {
            ask(socket, file, &Request::Status {}, 5, |reply| {
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
            })
        }
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
        Command::Demo => {
            init_logging(false);
            match baton::lab::demo::run() {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("demo: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
