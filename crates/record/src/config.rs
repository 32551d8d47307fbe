//! `[recording]`: where recordings go, their limits, the composed file and the finalize command.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Whether recordings can be started at all (by moderators, the admin API or auto-record).
    pub enabled: bool,
    /// Each recording gets a directory of its own below this one.
    pub recordings_dir: PathBuf,
    /// Record every room from its first participant on.
    pub auto_record: bool,
    /// Rooms recorded from their first participant on, in addition to `auto_record`.
    pub auto_record_rooms: Vec<String>,
    /// A recording is stopped (cleanly) when it reaches this length.
    #[serde(with = "humantime_serde")]
    pub max_duration: Duration,
    /// Refuse to start, or stop cleanly, when the recordings disk has less free space than this (MiB).
    pub min_free_space_mb: u64,
    /// How often free disk space is checked while recording.
    #[serde(with = "humantime_serde")]
    pub disk_check_interval: Duration,
    /// How often written data is handed to the operating system; at most this much is lost on kill -9.
    #[serde(with = "humantime_serde")]
    pub flush_interval: Duration,
    /// How often files are synced to disk; at most this much is lost on power loss.
    #[serde(with = "humantime_serde")]
    pub sync_interval: Duration,
    /// A WebM cluster is closed after this long even without a keyframe.
    #[serde(with = "humantime_serde")]
    pub cluster_duration: Duration,
    /// Run after everything is written, with the recording directory as its only argument.
    pub finalize_command: Option<PathBuf>,
    /// The finalize command is killed after this long.
    #[serde(with = "humantime_serde")]
    pub finalize_timeout: Duration,
    /// Produce one composed file (video grid, mixed audio) after stop.
    pub compose: bool,
    /// The ffmpeg program used for composition.
    pub ffmpeg: PathBuf,
    pub compose_format: ComposeFormat,
    /// Output frame rate (Jibri's `framerate`).
    pub compose_framerate: u32,
    /// Constant rate factor (Jibri's `h264-constant-rate-factor`): lower is better and larger.
    pub compose_crf: u32,
    /// Encoder speed preset (Jibri's `preset`), for MP4/H.264: ultrafast … veryslow.
    pub compose_preset: String,
    /// Output size `WIDTHxHEIGHT`.
    pub compose_resolution: String,
    /// Composition is killed after this long (the per-track files are kept).
    #[serde(with = "humantime_serde")]
    pub compose_timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ComposeFormat {
    /// H.264 + AAC in MP4: plays everywhere.
    Mp4,
    /// VP9 + Opus in WebM.
    Webm,
}

impl ComposeFormat {
    pub fn extension(self) -> &'static str {
        match self {
            ComposeFormat::Mp4 => "mp4",
            ComposeFormat::Webm => "webm",
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            enabled: true,
            recordings_dir: PathBuf::from("recordings"),
            auto_record: false,
            auto_record_rooms: Vec::new(),
            max_duration: Duration::from_secs(6 * 3600),
            min_free_space_mb: 1024,
            disk_check_interval: Duration::from_secs(5),
            flush_interval: Duration::from_secs(1),
            sync_interval: Duration::from_secs(10),
            cluster_duration: Duration::from_secs(5),
            finalize_command: None,
            finalize_timeout: Duration::from_secs(600),
            compose: true,
            ffmpeg: PathBuf::from("ffmpeg"),
            compose_format: ComposeFormat::Mp4,
            compose_framerate: 30,
            compose_crf: 25,
            compose_preset: "veryfast".to_owned(),
            compose_resolution: "1280x720".to_owned(),
            compose_timeout: Duration::from_secs(4 * 3600),
        }
    }
}

impl Config {
    /// `compose_resolution` as numbers, both even (H.264 with 4:2:0 needs even sizes).
    pub fn resolution(&self) -> Option<(u32, u32)> {
        let (w, h) = self.compose_resolution.split_once('x')?;
        let (w, h) = (w.trim().parse::<u32>().ok()?, h.trim().parse::<u32>().ok()?);
        (w >= 16 && h >= 16 && w <= 7680 && h <= 4320 && w % 2 == 0 && h % 2 == 0).then_some((w, h))
    }

    /// Whether a room is recorded as soon as someone is in it.
    pub fn auto_records(&self, room: &str) -> bool {
        self.enabled && (self.auto_record || self.auto_record_rooms.iter().any(|r| r == room))
    }

    /// Problems a config check should report (values that parse but cannot work).
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.resolution().is_none() {
            out.push(format!(
                "compose_resolution {:?}: expected WIDTHxHEIGHT with even numbers, like \"1280x720\"",
                self.compose_resolution
            ));
        }
        if !(1..=120).contains(&self.compose_framerate) {
            out.push("compose_framerate: expected 1 to 120".to_owned());
        }
        if self.compose_crf > 63 {
            out.push("compose_crf: expected 0 to 63".to_owned());
        }
        const PRESETS: [&str; 9] = [
            "ultrafast",
            "superfast",
            "veryfast",
            "faster",
            "fast",
            "medium",
            "slow",
            "slower",
            "veryslow",
        ];
        if !PRESETS.contains(&self.compose_preset.as_str()) {
            out.push(format!(
                "compose_preset {:?}: expected one of {}",
                self.compose_preset,
                PRESETS.join(", ")
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_a_partial_section_keeps_them() {
        assert!(Config::default().problems().is_empty());
        let c: Config = toml::from_str("compose_crf = 30\n").unwrap();
        assert_eq!(c.compose_crf, 30);
        assert_eq!(c.max_duration, Config::default().max_duration);
        assert!(toml::from_str::<Config>("compose_crt = 30\n").is_err());
    }

    #[test]
    fn resolution_and_auto_record() {
        let mut c = Config {
            compose_resolution: "641x480".into(),
            ..Config::default()
        };
        assert_eq!(c.resolution(), None);
        assert_eq!(c.problems().len(), 1);
        c.compose_resolution = "640x480".into();
        assert_eq!(c.resolution(), Some((640, 480)));
        c.auto_record_rooms = vec!["board".into()];
        assert!(c.auto_records("board") && !c.auto_records("other"));
        c.enabled = false;
        assert!(!c.auto_records("board"));
    }
}
