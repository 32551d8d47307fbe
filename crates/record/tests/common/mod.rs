//! Test fixtures: real encoded frames made with ffmpeg, container parsers for them, and checks of
//! written files with ffprobe/ffmpeg as a user's player would see them.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use convene_record::{Codec, FrameIn, TrackRecorder, WriterOptions, webm};

/// One encoded frame with its presentation time.
#[derive(Clone)]
pub struct Frame {
    pub pts: Duration,
    pub keyframe: bool,
    pub data: Vec<u8>,
}

/// A private temporary name next to `path`: tests running in parallel may make the same fixture, and
/// each writes its own file before an atomic rename.
fn private_tmp(path: &Path) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("tmp");
    path.with_extension(format!("tmp{}-{n}.{ext}", std::process::id()))
}

pub fn scratch(name: &str) -> PathBuf {
    // Integration tests get a target-local scratch dir; examples (the benchmark) use the system one.
    let base = option_env!("CARGO_TARGET_TMPDIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = base.join("record-tests");
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir.join(name)
}

fn run_ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "error", "-y"])
        .args(args)
        .output()
        .expect("ffmpeg is installed (Debian package ffmpeg)");
    assert!(
        out.status.success(),
        "ffmpeg {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Encodes `seconds` of a moving test pattern to `codec` in IVF and returns its frames.
pub fn video_frames(codec: Codec, seconds: u32) -> Vec<Frame> {
    let (name, encoder): (&str, &[&str]) = match codec {
        Codec::Vp8 => (
            "vp8",
            &["-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8"],
        ),
        Codec::Vp9 => (
            "vp9",
            &[
                "-c:v",
                "libvpx-vp9",
                "-deadline",
                "realtime",
                "-cpu-used",
                "8",
            ],
        ),
        Codec::Av1 => (
            "av1",
            &["-c:v", "libaom-av1", "-usage", "realtime", "-cpu-used", "8"],
        ),
        Codec::Opus => unreachable!("not a video codec"),
    };
    let path = scratch(&format!("fixture-{name}-640x480-{seconds}s.ivf"));
    if !path.exists() {
        let tmp = private_tmp(&path);
        let duration = seconds.to_string();
        let mut args = vec![
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x480:rate=25",
            "-t",
            &duration,
            "-g",
            "50",
            "-b:v",
            "500k",
        ];
        args.extend_from_slice(encoder);
        let tmp_s = tmp.to_str().expect("utf-8 path").to_owned();
        args.extend_from_slice(&["-f", "ivf", &tmp_s]);
        run_ffmpeg(&args);
        std::fs::rename(&tmp, &path).expect("rename fixture");
    }
    parse_ivf(&std::fs::read(&path).expect("read ivf"), codec)
}

/// IVF: a 32-byte file header (timebase at 16..24), then per frame a 12-byte header (size, pts).
pub fn parse_ivf(data: &[u8], codec: Codec) -> Vec<Frame> {
    assert_eq!(&data[..4], b"DKIF");
    let header_len = usize::from(u16::from_le_bytes([data[6], data[7]]));
    let rate = u64::from(u32::from_le_bytes(data[16..20].try_into().unwrap()));
    let scale = u64::from(u32::from_le_bytes(data[20..24].try_into().unwrap()));
    let mut at = header_len;
    let mut frames = Vec::new();
    while at + 12 <= data.len() {
        let size = u32::from_le_bytes(data[at..at + 4].try_into().unwrap()) as usize;
        let pts = u64::from_le_bytes(data[at + 4..at + 12].try_into().unwrap());
        let body = data[at + 12..at + 12 + size].to_vec();
        at += 12 + size;
        frames.push(Frame {
            pts: Duration::from_nanos(pts * scale * 1_000_000_000 / rate),
            keyframe: convene_record::codec::is_keyframe(codec, &body),
            data: body,
        });
    }
    frames
}

/// Encodes `seconds` of a tone to Opus (20 ms packets) in Ogg and returns its audio packets.
pub fn opus_frames(seconds: u32) -> Vec<Frame> {
    let path = scratch(&format!("fixture-opus-{seconds}s.ogg"));
    if !path.exists() {
        let tmp = private_tmp(&path);
        let duration = seconds.to_string();
        run_ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-t",
            &duration,
            "-c:a",
            "libopus",
            "-b:a",
            "32k",
            "-frame_duration",
            "20",
            tmp.to_str().expect("utf-8 path"),
        ]);
        std::fs::rename(&tmp, &path).expect("rename fixture");
    }
    let packets = parse_ogg(&std::fs::read(&path).expect("read ogg"));
    assert!(packets[0].starts_with(b"OpusHead"));
    assert!(packets[1].starts_with(b"OpusTags"));
    let mut pts = Duration::ZERO;
    let mut frames = Vec::new();
    for p in &packets[2..] {
        let d = convene_record::codec::opus_packet_duration(p).expect("valid opus packet");
        frames.push(Frame {
            pts,
            keyframe: true,
            data: p.clone(),
        });
        pts += d;
    }
    frames
}

/// Ogg pages ("OggS", 27-byte header, segment table); a packet ends at a segment shorter than 255.
pub fn parse_ogg(data: &[u8]) -> Vec<Vec<u8>> {
    let mut packets = Vec::new();
    let mut current = Vec::new();
    let mut at = 0;
    while at + 27 <= data.len() {
        assert_eq!(&data[at..at + 4], b"OggS");
        let segments = usize::from(data[at + 26]);
        let table = &data[at + 27..at + 27 + segments];
        let mut body = at + 27 + segments;
        for &len in table {
            current.extend_from_slice(&data[body..body + usize::from(len)]);
            body += usize::from(len);
            if len < 255 {
                packets.push(std::mem::take(&mut current));
            }
        }
        at = body;
    }
    packets
}

/// The result of recording frames through [`TrackRecorder`] as the server does.
pub struct Recorded {
    /// The bytes as streamed during recording (no index, unknown sizes).
    pub streamed: Vec<u8>,
    /// The bytes after a clean stop (index appended, patches applied).
    pub finished: Vec<u8>,
    /// For each written frame: the stream length once it was written, and its timestamp.
    pub frame_ends: Vec<(usize, Duration)>,
    pub duration: Duration,
}

pub fn record(codec: Codec, frames: &[Frame]) -> Recorded {
    let mut track = TrackRecorder::new(codec, Some("test".into()), WriterOptions::default());
    let mut out = Vec::new();
    let mut frame_ends = Vec::new();
    let mut held = None;
    // A fixed offset in the RTP clock, as a real sender's random start would have.
    let base = 123_456_789u64;
    for f in frames {
        let rate = codec.clock_rate();
        let outcome = track.push(
            FrameIn {
                rtp_time: base + (f.pts.as_nanos() as u64 * u64::from(rate) / 1_000_000_000),
                clock_rate: rate,
                arrival: Duration::from_millis(40) + f.pts,
                keyframe: f.keyframe,
                contiguous: true,
                data: &f.data,
            },
            &mut out,
        );
        assert!(outcome.written, "frame at {:?} not written", f.pts);
        if codec.is_video() {
            // Video goes out one frame late (see `TrackRecorder`): what is in `out` now ends
            // with the previous frame.
            if let Some(previous) = held.replace(f.pts) {
                frame_ends.push((out.len(), previous));
            }
        } else {
            frame_ends.push((out.len(), f.pts));
        }
    }
    assert_eq!(track.start_offset(), Some(Duration::from_millis(40)));
    let streamed = out.clone();
    let done = track.finish(&mut out).expect("frames were written");
    webm::apply_patches(&mut out, &done.patches);
    Recorded {
        streamed,
        finished: out,
        frame_ends,
        duration: done.duration,
    }
}

/// What ffprobe reports about a file's first stream.
#[derive(Debug)]
pub struct Probe {
    pub codec: String,
    pub width: Option<u32>,
    pub frames: u64,
    pub last_pts: Duration,
    pub format_duration: Option<f64>,
}

pub fn probe(path: &Path) -> Probe {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-show_entries",
            "stream=codec_name,width,nb_read_frames:format=duration",
            "-of",
            "default=nw=1",
        ])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .map(str::to_owned)
    };
    let pts = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "0",
            "-show_entries",
            "packet=pts_time",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    let last = String::from_utf8_lossy(&pts.stdout)
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse::<f64>().ok())
        .fold(0.0f64, f64::max);
    Probe {
        codec: field("codec_name").unwrap_or_default(),
        width: field("width").and_then(|w| w.parse().ok()),
        frames: field("nb_read_frames")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
        last_pts: Duration::from_secs_f64(last),
        format_duration: field("duration").and_then(|d| d.parse().ok()),
    }
}

/// Decodes the whole file; returns ffmpeg's stderr (empty means every frame decoded cleanly).
/// Frames keep the file's own times (`-enc_time_base -1`): by default ffmpeg 5.1 rounds video to
/// 1/frame rate on the way to the null muxer and reports two distinct frames in one slot as
/// non-monotonic, which says nothing about the file. Frames that truly share a time still fail.
pub fn decode_errors(path: &Path) -> String {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "error", "-xerror", "-i"])
        .arg(path)
        .args(["-enc_time_base", "-1", "-f", "null", "-"])
        .output()
        .expect("ffmpeg runs");
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// `path`, probed as `probe`, holds exactly what its manifest entry counts: every frame the
/// recorder took, to the file's last byte (a tail lost between the recorder and the disk shows).
pub fn assert_holds_what_manifest_counts(
    path: &Path,
    probe: &Probe,
    file: &convene_record::manifest::TrackFile,
) {
    assert_eq!(Some(probe.frames), file.frames, "{}: {probe:?}", file.file);
    assert_eq!(
        Some(std::fs::metadata(path).unwrap().len()),
        file.bytes,
        "{}",
        file.file
    );
}
