//! `convene-load`: the media forwarding benchmark's command line. Starts `convene serve` (or
//! targets a running server), runs a scenario one or more times and prints what it measured.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use convene_load::{Launch, Outcome, Scenario, Target, report, scenario};

/// Load generator for Convene's media forwarding (SFU): P publishers and S subscribers per
/// room over real signaling and WebRTC; reports per-subscriber rate, loss and jitter, and the
/// server's CPU, memory and CPU time per forwarded packet.
#[derive(Debug, Parser)]
#[command(name = "convene-load", version)]
struct Args {
    /// Server to load, e.g. http://10.0.0.5:8080. Without it a `convene serve` is started on
    /// 127.0.0.1 with a temporary config, once per run.
    #[arg(long)]
    url: Option<String>,
    /// With --url: pid of the server process, for its CPU time and memory.
    #[arg(long, requires = "url")]
    server_pid: Option<u32>,
    /// Prometheus endpoint (default: URL/metrics).
    #[arg(long)]
    metrics_url: Option<String>,
    /// Server binary to start (default: $CONVENE_BIN, else `convene` beside this program).
    #[arg(long)]
    convene_bin: Option<PathBuf>,
    /// CPUs for the started server (taskset list, e.g. "0"). Run this tool itself under
    /// `taskset -c 1` to keep the two apart.
    #[arg(long)]
    server_cpus: Option<String>,
    /// TOML file merged under the started server's generated config (e.g. [media] options).
    #[arg(long)]
    server_config: Option<PathBuf>,
    #[arg(long, default_value_t = 1)]
    rooms: usize,
    /// Publishers per room (they also receive each other).
    #[arg(long, default_value_t = 1)]
    publishers: usize,
    /// Subscribers per room (receive only).
    #[arg(long, default_value_t = 10)]
    subscribers: usize,
    /// Video bitrate per publisher (top layer with --simulcast); 0 for none.
    #[arg(long, default_value_t = 1500)]
    video_kbps: u32,
    #[arg(long, default_value_t = 30)]
    fps: u32,
    /// Audio bitrate per publisher; 0 for none.
    #[arg(long, default_value_t = 32)]
    audio_kbps: u32,
    /// Publish three simulcast layers (rids f, h, q at 1, 0.3 and 0.1 of --video-kbps).
    #[arg(long)]
    simulcast: bool,
    /// Clients started per second.
    #[arg(long, default_value_t = 50.0)]
    join_rate: f64,
    /// Most clients connecting at once.
    #[arg(long, default_value_t = 20)]
    max_joining: usize,
    /// Per client limit for join, ICE and DTLS.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    connect_timeout: Duration,
    /// Longest wait, after the last join, for media to reach every receiver.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    ready_timeout: Duration,
    /// Longest time for starting and connecting all clients.
    #[arg(long, default_value = "180s", value_parser = humantime::parse_duration)]
    ramp_timeout: Duration,
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Measurement window.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Repeat the scenario this many times (a fresh server each time when this tool starts it)
    /// and print the medians.
    #[arg(long, default_value_t = 1)]
    runs: usize,
    /// Address of the clients' UDP sockets (their ICE candidate).
    #[arg(long, default_value = "127.0.0.1")]
    local_ip: IpAddr,
    /// Receive buffer per client socket, bytes (capped by net.core.rmem_max).
    #[arg(long, default_value_t = 1 << 20)]
    rcvbuf: usize,
    #[arg(long, default_value = "load")]
    room_prefix: String,
    /// Token (JWT) for servers that require one.
    #[arg(long)]
    jwt: Option<String>,
    /// Generator threads (1: everything on one thread, best when pinned to one core).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// After the measured window, record every room through the admin API, measure a second
    /// window while recording, then check the recordings' files against what was sent
    /// (only with a server this tool starts).
    #[arg(long, conflicts_with = "url")]
    record: bool,
    /// Also print each run as one JSON line.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let extra_config = match &args.server_config {
        Some(p) => Some(std::fs::read_to_string(p)?),
        None => None,
    };
    let binary = match (&args.convene_bin, std::env::var_os("CONVENE_BIN")) {
        (Some(b), _) => b.clone(),
        (None, Some(b)) => PathBuf::from(b),
        (None, None) => std::env::current_exe()?.with_file_name("convene"),
    };
    let mut outcomes: Vec<Outcome> = Vec::new();
    for run in 0..args.runs.max(1) {
        let scenario = Scenario {
            rooms: args.rooms,
            publishers: args.publishers,
            subscribers: args.subscribers,
            video_kbps: args.video_kbps,
            fps: args.fps,
            audio_kbps: args.audio_kbps,
            simulcast: args.simulcast,
            join_rate: args.join_rate,
            max_joining: args.max_joining,
            connect_timeout: args.connect_timeout,
            ready_timeout: args.ready_timeout,
            ramp_timeout: args.ramp_timeout,
            warmup: args.warmup,
            duration: args.duration,
            local_ip: args.local_ip,
            rcvbuf: args.rcvbuf,
            // Rooms of an earlier run on the same server may still be winding down.
            room_prefix: format!("{}{run}", args.room_prefix),
            jwt: args.jwt.clone(),
            record: args.record,
        };
        let mut target = match &args.url {
            Some(url) => Target::attach(url, args.server_pid, args.metrics_url.as_deref())?,
            None => {
                Target::start(&Launch {
                    binary: binary.clone(),
                    cpus: args.server_cpus.clone(),
                    capacity: scenario.rooms.max(1) * (scenario.publishers + scenario.subscribers),
                    extra_config: extra_config.clone(),
                    record: args.record,
                })
                .await?
            }
        };
        if let (Some(pid), Some(log)) = (target.pid, target.log_path()) {
            eprintln!(
                "server {} (pid {pid}, log {})",
                target.base_url,
                log.display()
            );
        }
        // Every phase has its own limit; this one catches anything that still hangs.
        let bound = scenario.ramp_timeout
            + scenario.connect_timeout
            + scenario.ready_timeout
            + scenario.warmup
            + scenario.duration
            + Duration::from_secs(30)
            // Recording: a second window, plus starting, stopping and reading back the files.
            + if scenario.record {
                scenario.duration + Duration::from_secs(120)
            } else {
                Duration::ZERO
            };
        let result = tokio::time::timeout(bound, scenario::run(&scenario, &target)).await;
        target.stop().await;
        let outcome = match result {
            Ok(r) => r?,
            Err(_) => anyhow::bail!("run {run} did not finish within {bound:?}"),
        };
        if args.runs > 1 {
            println!("--- run {} of {}", run + 1, args.runs);
        }
        outcome.print();
        if args.json {
            println!("{}", outcome.to_json());
        }
        outcomes.push(outcome);
    }
    if outcomes.len() > 1 {
        report::print_medians(&outcomes);
    }
    Ok(())
}
