//! The command line: `serve`, `whiteboard`, `check-config`, and their flags, which override the config file.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

use crate::config::Config;

/// Exit status for every start-up error (bad flag, bad config, port in use), like clap's usage errors.
const EXIT_USAGE: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "convene",
    version,
    about = "A self-hosted meeting server in one binary"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the meeting server (web app, signaling, media, whiteboard relay, metrics).
    Serve(ServeArgs),
    /// Run only the whiteboard relay: a drop-in replacement for excalidraw-room / excalidraw-backend.
    Whiteboard(WhiteboardArgs),
    /// Mint a participant token (JWT) signed with `[auth] secret`.
    Token(crate::token::TokenArgs),
    /// Validate a config file, printing every problem; with --print, show the effective config.
    CheckConfig(CheckConfigArgs),
    /// Print every port the config needs, with protocol and purpose, for firewall rules.
    Ports(crate::ports::Args),
    /// Check a deployment from the outside (DNS, certificate, WebSockets through the proxy, media UDP).
    Doctor(crate::doctor::Args),
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Config file (TOML). Without it every default applies.
    #[arg(long, short, env = "CONVENE_CONFIG")]
    pub config: Option<PathBuf>,
    /// HTTP listen address, overriding `server.listen`.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Media UDP port, overriding `media.port` (0 picks a free port).
    #[arg(long)]
    pub media_port: Option<u16>,
}

#[derive(Debug, clap::Args)]
pub struct WhiteboardArgs {
    /// Config file (TOML); only `[server]`, `[log]` and `[whiteboard]` are used.
    #[arg(long, short, env = "CONVENE_CONFIG")]
    pub config: Option<PathBuf>,
    /// HTTP listen address, overriding `server.listen`.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
}

#[derive(Debug, clap::Args)]
pub struct CheckConfigArgs {
    pub file: PathBuf,
    /// Print the effective config (file plus defaults) when it is valid.
    #[arg(long)]
    pub print: bool,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => load(args.config.as_deref()).and_then(|mut config| {
            if let Some(listen) = args.listen {
                config.server.listen = listen;
            }
            if let Some(port) = args.media_port {
                config.media.port = port;
            }
            run(config, crate::serve::Mode::Full)
        }),
        Command::Whiteboard(args) => load(args.config.as_deref()).and_then(|mut config| {
            if let Some(listen) = args.listen {
                config.server.listen = listen;
            }
            run(config, crate::serve::Mode::WhiteboardOnly)
        }),
        Command::CheckConfig(args) => return check_config(&args),
        Command::Ports(args) => return crate::ports::main(args),
        Command::Doctor(args) => return crate::doctor::main(args),
        Command::Token(args) => crate::token::run_cli(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("convene: error: {e}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn load(path: Option<&std::path::Path>) -> Result<Config, crate::Error> {
    match path {
        Some(path) => Ok(Config::load(path)?),
        None => Ok(Config::default()),
    }
}

fn run(config: Config, mode: crate::serve::Mode) -> Result<(), crate::Error> {
    crate::logging::init(&config.log).map_err(|e| crate::Error::Startup(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| crate::Error::Startup(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(crate::serve::run(config, mode))
}

fn check_config(args: &CheckConfigArgs) -> ExitCode {
    match Config::load(&args.file) {
        Ok(config) => {
            if args.print {
                print!("{}", config.to_toml());
            } else {
                println!("{}: ok", args.file.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("convene: error: {e}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}
