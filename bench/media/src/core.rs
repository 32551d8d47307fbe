//! `convene-core`: the media core's own CPU cost per forwarded packet, without sockets or a kernel.
//!
//! One publisher (microphone and camera) and S receive-only subscribers join one room in the test
//! kit's virtual network and virtual time; the thread's CPU clock is read around every call into
//! the core, so the clients' share (their str0m stacks) is left out. What remains is what a server
//! pays in user space per datagram it sends: str0m's receive, payloading, SRTP and Convene's
//! forwarding. It varies far less between runs than `convene-load`'s process-wide figure on a
//! shared machine, so small changes to the forwarding path can be compared. After each run the
//! subscribers leave one by one, and the core's time per leave is reported too.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use convene_media::SfuConfig;
use convene_proto::MediaSource;
use convene_testkit::Harness;

/// The server's allocator (see `crates/server/src/main.rs`): str0m allocates per packet, so the
/// allocator is part of the cost measured.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The media core's CPU time per forwarded packet, measured in virtual time without sockets.
#[derive(Debug, Parser)]
#[command(name = "convene-core", version)]
struct Args {
    /// Receive-only subscribers of the one publisher.
    #[arg(long, default_value_t = 200)]
    subscribers: usize,
    /// Video frame length as a multiple of the test kit's usual 900 bytes: 1, 2, 4 or 8 (7,200
    /// bytes, 7 packets: about a 1.5 Mbit/s camera's frame at 30 fps).
    #[arg(long, default_value_t = 8)]
    video_scale: usize,
    /// Virtual time before measuring: everyone connects and the retransmission caches fill.
    #[arg(long, default_value = "6s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Virtual time measured.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Measurements, each after its own warm-up with fresh clients.
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if !convene_testkit::frames::SCALES.contains(&args.video_scale) {
        eprintln!(
            "--video-scale must be one of {:?}",
            convene_testkit::frames::SCALES
        );
        return ExitCode::FAILURE;
    }
    println!(
        "scenario: 1 publisher (audio 50 frames/s, video 20 frames/s of {} bytes) -> {} subscribers; warm-up {:?}, measured {:?} of virtual time",
        900 * args.video_scale,
        args.subscribers,
        args.warmup,
        args.duration
    );
    let mut per_packet = Vec::new();
    for run in 1..=args.runs {
        let Some(m) = measure(&args, run as u64) else {
            return ExitCode::FAILURE;
        };
        println!(
            "run {run}: core cpu {:.3} s for {} datagrams sent ({} frames forwarded): {:.0} ns per datagram; then {:.0} µs per leave, the subscribers leaving one by one",
            m.cpu.as_secs_f64(),
            m.datagrams,
            m.frames,
            m.ns_per_datagram(),
            m.leaves.as_secs_f64() * 1e6 / args.subscribers.max(1) as f64
        );
        per_packet.push(m.ns_per_datagram());
    }
    per_packet.sort_by(f64::total_cmp);
    println!(
        "core cpu per forwarded packet: median {:.0} ns (min {:.0}, max {:.0})",
        per_packet[per_packet.len() / 2],
        per_packet[0],
        per_packet[per_packet.len() - 1]
    );
    ExitCode::SUCCESS
}

struct Measured {
    cpu: Duration,
    datagrams: u64,
    frames: u64,
    /// The core's CPU time for every subscriber's leave (and what each leave sends).
    leaves: Duration,
}

impl Measured {
    fn ns_per_datagram(&self) -> f64 {
        self.cpu.as_nanos() as f64 / self.datagrams.max(1) as f64
    }
}

fn measure(args: &Args, seed: u64) -> Option<Measured> {
    // The server's defaults, with room for everyone.
    let mut config = SfuConfig::with_candidates(Vec::new());
    config.max_sessions = config.max_sessions.max(args.subscribers + 1);
    let mut h = Harness::with_config(seed, config);
    // No latency: the virtual network only orders datagrams, the core sees them at once.
    h.latency = Duration::ZERO;
    let publisher = h.join(
        "bench",
        "publisher",
        &[MediaSource::Microphone, MediaSource::Camera],
    );
    h.clients[publisher].video_scale = args.video_scale;
    for i in 0..args.subscribers {
        h.join("bench", &format!("sub-{i}"), &[]);
    }
    h.run(args.warmup);
    let connected = h.clients.iter().filter(|c| c.connected).count();
    if connected != h.clients.len() {
        eprintln!(
            "only {connected} of {} clients connected within the warm-up",
            h.clients.len()
        );
        return None;
    }
    let before = h.sfu.counters().clone();
    h.core_cpu = Some(Duration::ZERO);
    h.run(args.duration);
    let cpu = h.core_cpu.take().unwrap_or_default();
    let after = h.sfu.counters().clone();
    h.core_cpu = Some(Duration::ZERO);
    for i in 0..args.subscribers {
        h.leave(&format!("sub-{i}"));
    }
    let leaves = h.core_cpu.take().unwrap_or_default();
    Some(Measured {
        cpu,
        datagrams: after.packets_out - before.packets_out,
        frames: after.frames_forwarded - before.frames_forwarded,
        leaves,
    })
}
