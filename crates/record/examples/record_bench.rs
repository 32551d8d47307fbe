//! Recording cost benchmark: how much CPU writing one recorded stream takes.
//!
//! Feeds real VP8 (640x480, 25 fps, ~500 kbit/s) and Opus (20 ms packets) frames, made with ffmpeg,
//! through `TrackRecorder` into files, as the server's recorder does, for many simulated 2-participant
//! recordings at once (2 audio + 2 video tracks each), and reports CPU time per stream.
//! Run: `cargo run --release -p convene-record --example record_bench -- [recordings] [seconds]`

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use convene_record::{Codec, FrameIn, TrackRecorder, WriterOptions};

fn main() {
    let mut args = std::env::args().skip(1);
    let recordings: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(50);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(60);
    let video = common::video_frames(Codec::Vp8, 10);
    let audio = common::opus_frames(10);
    let dir = common::scratch("bench");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();

    struct Stream {
        track: TrackRecorder,
        file: std::io::BufWriter<std::fs::File>,
        codec: Codec,
    }
    let mut streams = Vec::new();
    for r in 0..recordings {
        for (p, codec) in [
            (0, Codec::Vp8),
            (0, Codec::Opus),
            (1, Codec::Vp8),
            (1, Codec::Opus),
        ] {
            let path = dir.join(format!("r{r}-p{p}-{codec:?}.webm"));
            streams.push(Stream {
                track: TrackRecorder::new(codec, None, WriterOptions::default()),
                file: std::io::BufWriter::with_capacity(
                    64 * 1024,
                    std::fs::File::create(path).unwrap(),
                ),
                codec,
            });
        }
    }
    let mut buf = Vec::new();
    let mut bytes = 0u64;
    let started = Instant::now();
    let cpu_start = cpu_time();
    // Media time advances in 20 ms steps; every stream gets the frames due in each step, the way
    // frames of many rooms interleave in the server.
    let step = Duration::from_millis(20);
    let loops = seconds * 50;
    let (mut vi, mut ai) = (vec![0usize; streams.len()], vec![0usize; streams.len()]);
    for tick in 0..loops {
        let now = step * tick as u32;
        for (i, s) in streams.iter_mut().enumerate() {
            let (frames, idx) = if s.codec == Codec::Opus {
                (&audio, &mut ai[i])
            } else {
                (&video, &mut vi[i])
            };
            loop {
                let n = *idx;
                let lap = (n / frames.len()) as u32;
                let f = &frames[n % frames.len()];
                let pts = f.pts + Duration::from_secs(10) * lap;
                if pts > now {
                    break;
                }
                buf.clear();
                let rate = s.codec.clock_rate();
                s.track.push(
                    FrameIn {
                        rtp_time: pts.as_nanos() as u64 * u64::from(rate) / 1_000_000_000,
                        clock_rate: rate,
                        arrival: pts,
                        keyframe: f.keyframe,
                        contiguous: true,
                        data: &f.data,
                    },
                    &mut buf,
                );
                s.file.write_all(&buf).unwrap();
                bytes += buf.len() as u64;
                *idx += 1;
            }
        }
        if tick % 50 == 0 {
            for s in &mut streams {
                s.file.flush().unwrap();
            }
        }
    }
    for s in &mut streams {
        s.file.flush().unwrap();
    }
    let cpu = cpu_time() - cpu_start;
    let wall = started.elapsed();
    let media = Duration::from_secs(seconds);
    let n = streams.len() as f64;
    println!(
        "{recordings} recordings x 4 streams, {seconds} s of media: wall {wall:.2?}, cpu {cpu:.2?}, {:.1} MB written",
        bytes as f64 / 1e6
    );
    println!(
        "cpu per stream: {:.4} % of one core; faster than real time by {:.0}x",
        cpu.as_secs_f64() / media.as_secs_f64() / n * 100.0,
        media.as_secs_f64() / wall.as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// User + system CPU time of this process, from /proc/self/stat (clock ticks of 10 ms).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    Duration::from_millis(ticks * 10)
}
