//! Recording under load: every room is recorded through the server's admin API while its
//! publishers send, and afterwards each recording's files are held against what was sent.
//!
//! What was sent is known per publisher and kind (audio packets, video frames of the top layer);
//! what was written is in each recording's `manifest.json` (frames per file, set on a clean stop)
//! and, when `ffprobe` is installed, read back from the files themselves. The load's media is
//! filler (see [`crate::synth`]), so the files are demuxed, not decoded: the benchmark checks that
//! every frame reached the file; that recordings of real media decode is the server's own tests'
//! job.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::scrape;
use crate::target::Target;

/// What one publisher sent while its room was recorded: counted right after the start request
/// was answered and right before the stop request was sent.
#[derive(Debug, Clone, Default)]
pub struct Sent {
    pub participant: String,
    pub audio: u64,
    pub video: u64,
}

/// Starts (`start`) or stops recording `room` through the admin API.
pub async fn request(target: &Target, room: &str, start: bool) -> anyhow::Result<()> {
    let token = target
        .admin_token
        .as_deref()
        .context("recording needs a server this tool started (its admin token)")?;
    let authority = target
        .base_url
        .strip_prefix("http://")
        .context("server URL is not http://")?;
    let method = if start { "POST" } else { "DELETE" };
    let path = format!("/api/v1/rooms/{room}/recording");
    let (status, body) = scrape::request(authority, method, &path, Some(token)).await?;
    if !(200..300).contains(&status) {
        bail!("{method} {path} answered {status}: {body}");
    }
    Ok(())
}

/// What the files of every recording hold, against what was sent.
#[derive(Debug, Clone, Default)]
pub struct Check {
    pub recordings: usize,
    pub files: usize,
    pub bytes: u64,
    pub audio_sent: u64,
    pub audio_written: u64,
    pub video_sent: u64,
    pub video_written: u64,
    /// The most frames any one file lacks against what its publisher sent while recorded
    /// (negative: it holds more, i.e. frames sent just before the start or after the stop).
    pub worst_audio_missing: i64,
    pub worst_video_missing: i64,
    /// Files read back with ffprobe, and what it objected to (or a packet count that differs
    /// from the manifest's frame count).
    pub probed: usize,
    pub probe_problems: Vec<String>,
    /// Frames the server's recorder dropped for a full queue, over the recorded time.
    pub frames_dropped: Option<f64>,
    pub problems: Vec<String>,
    /// How long each start and each stop request took to be answered, in ms (a stop is answered
    /// once the recording's files are closed).
    pub start_ms: Vec<f64>,
    pub stop_ms: Vec<f64>,
}

impl Check {
    pub fn missing_audio(&self) -> i64 {
        self.audio_sent as i64 - self.audio_written as i64
    }

    pub fn missing_video(&self) -> i64 {
        self.video_sent as i64 - self.video_written as i64
    }

    pub fn print(&self) {
        println!(
            "recordings: {} with {} files, {:.1} MB; audio packets sent {} written {} (missing {}, worst file {}); \
             video frames sent {} written {} (missing {}, worst file {}); recorder queue drops {}",
            self.recordings,
            self.files,
            self.bytes as f64 / 1_048_576.0,
            self.audio_sent,
            self.audio_written,
            self.missing_audio(),
            self.worst_audio_missing,
            self.video_sent,
            self.video_written,
            self.missing_video(),
            self.worst_video_missing,
            self.frames_dropped
                .map_or_else(|| "n/a".to_owned(), |d| format!("{d:.0}")),
        );
        let spread = |v: &[f64]| {
            let s = crate::report::Spread::of(v.iter().copied());
            format!("median {:.0} ms, max {:.0} ms", s.median, s.max)
        };
        println!(
            "requests answered: start {}, stop {}",
            spread(&self.start_ms),
            spread(&self.stop_ms)
        );
        println!(
            "files read back with ffprobe: {}, problems {}",
            self.probed,
            self.probe_problems.len()
        );
        for p in self.probe_problems.iter().chain(&self.problems).take(10) {
            println!("  problem: {p}");
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "recordings": self.recordings,
            "files": self.files,
            "bytes": self.bytes,
            "audio_sent": self.audio_sent,
            "audio_written": self.audio_written,
            "video_sent": self.video_sent,
            "video_written": self.video_written,
            "worst_audio_missing": self.worst_audio_missing,
            "worst_video_missing": self.worst_video_missing,
            "probed": self.probed,
            "probe_problems": self.probe_problems,
            "frames_dropped": self.frames_dropped,
            "problems": self.problems,
            "start_ms": self.start_ms,
            "stop_ms": self.stop_ms,
        })
    }
}

/// Reads every recording below `dir` and compares its files with `sent`.
pub fn check(dir: &Path, sent: &[Sent]) -> anyhow::Result<Check> {
    let mut out = Check::default();
    let ffprobe = Command::new("ffprobe").arg("-version").output().is_ok();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for rec in dirs {
        out.recordings += 1;
        let text = std::fs::read_to_string(rec.join("manifest.json"))
            .with_context(|| format!("{}: no manifest", rec.display()))?;
        let manifest: Value = serde_json::from_str(&text)?;
        if manifest["end_reason"] != "stopped" {
            out.problems.push(format!(
                "{}: ended {}",
                rec.display(),
                manifest["end_reason"]
            ));
        }
        for file in manifest["files"].as_array().into_iter().flatten() {
            out.files += 1;
            let name = file["file"].as_str().unwrap_or_default();
            let frames = file["frames"].as_u64();
            out.bytes += file["bytes"].as_u64().unwrap_or(0);
            let video = file["kind"] == "video";
            let Some(frames) = frames else {
                out.problems
                    .push(format!("{name}: no frame count (not closed cleanly)"));
                continue;
            };
            let publisher = sent
                .iter()
                .find(|s| Some(s.participant.as_str()) == file["participant_id"].as_str());
            match publisher {
                Some(p) => {
                    let (sent, written, worst) = if video {
                        (
                            p.video,
                            &mut out.video_written,
                            &mut out.worst_video_missing,
                        )
                    } else {
                        (
                            p.audio,
                            &mut out.audio_written,
                            &mut out.worst_audio_missing,
                        )
                    };
                    *written += frames;
                    *worst = (*worst).max(sent as i64 - frames as i64);
                }
                None => out.problems.push(format!("{name}: unknown participant")),
            }
            if ffprobe {
                out.probed += 1;
                if let Some(problem) = probe(&rec.join(name), frames) {
                    out.probe_problems.push(format!("{name}: {problem}"));
                }
            }
        }
    }
    out.audio_sent = sent.iter().map(|s| s.audio).sum();
    out.video_sent = sent.iter().map(|s| s.video).sum();
    Ok(out)
}

/// Demuxes a file with ffprobe: anything on stderr, or a packet count other than `frames`, is a
/// problem.
fn probe(path: &Path, frames: u64) -> Option<String> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_packets",
            "-show_entries",
            "stream=nb_read_packets",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output();
    let out = match out {
        Ok(o) => o,
        Err(e) => return Some(format!("ffprobe did not run: {e}")),
    };
    let errors = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() || !errors.trim().is_empty() {
        return Some(format!("ffprobe: {}", errors.trim()));
    }
    let packets: u64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    (packets != frames).then(|| format!("{packets} packets in the file, manifest says {frames}"))
}
