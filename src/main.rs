//! The `baton` command line: parse arguments, call into the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use baton::agent::control::{self, Request};

#[derive(Parser)]
#[command(
    name = "baton",
    version,
    about = "VRRP/ARP layer-2 failover agent (keepalived-compatible)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the agent in the foreground.
    Run {
        /// Configuration file (baton TOML).
        #[arg(
            short = 'f',
            long = "use-file",
            default_value = "/etc/baton/baton.toml"
        )]
        file: PathBuf,
        /// Stay in the foreground (baton never forks; accepted for keepalived units).
        #[arg(short = 'n', long = "dont-fork")]
        dont_fork: bool,
        /// Log to the console (stderr). Always on; accepted for keepalived units.
        #[arg(short = 'l', long = "log-console")]
        log_console: bool,
        /// Detailed (debug) logging.
        #[arg(short = 'D', long = "log-detail")]
        log_detail: bool,
    },
    /// Validate a configuration file: errors as file:line:col, exit 0 or 1.
    Check {
        #[arg(short = 'f', long = "use-file")]
        file: PathBuf,
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
        .with_target(false)
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run {
            file, log_detail, ..
        } => {
            init_logging(log_detail);
            match baton::agent::runtime::run(baton::agent::runtime::Options { config_path: file }) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Check { file } => match baton::config::load(&file) {
            Ok(cfg) => {
                println!(
                    "{}: OK ({} instance(s))",
                    file.display(),
                    cfg.instances.len()
                );
                ExitCode::SUCCESS
            }
            Err(diags) => {
                eprintln!("{diags}");
                ExitCode::FAILURE
            }
        },
        Command::Status { json, socket, file } => {
            let socket = match (socket, file) {
                (Some(s), _) => s,
                (None, Some(f)) => match baton::config::load(&f) {
                    Ok(c) => c.global.control_socket,
                    Err(d) => {
                        eprintln!("{d}");
                        return ExitCode::FAILURE;
                    }
                },
                (None, None) => control::default_socket(),
            };
            match control::request(&socket, &Request::Status {}, Duration::from_secs(5)) {
                Ok(reply) if reply.ok => {
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
                }
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
        Command::Demo => {
            init_logging(false);
            match baton::agent::demo::run() {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("demo: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
