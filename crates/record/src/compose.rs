//! The composed file's ffmpeg command: every video track in a grid, every audio track mixed, each
//! placed at its start offset on the recording clock. Building the arguments is pure; the server runs them.

use crate::config::{ComposeFormat, Config};
use crate::manifest::{Kind, Manifest};

/// An ffmpeg invocation, ready to run in the recording directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub args: Vec<String>,
    /// Output file name inside the recording directory.
    pub output: String,
    /// Length of the output, for progress reports.
    pub duration_ms: u64,
}

/// Why there is nothing to compose.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("the recording has no media files")]
    NoMedia,
    #[error("compose_resolution is not WIDTHxHEIGHT with even numbers")]
    BadResolution,
}

/// Grid shape for `n` tiles: as square as possible, wider than tall.
pub fn grid(n: usize) -> (usize, usize) {
    let mut cols = 1;
    while cols * cols < n {
        cols += 1;
    }
    let rows = n.div_ceil(cols).max(1);
    (cols, rows)
}

fn seconds(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// The ffmpeg arguments for `manifest` (whose file names are relative to the recording directory).
pub fn plan(manifest: &Manifest, config: &Config) -> Result<Plan, PlanError> {
    let (width, height) = config.resolution().ok_or(PlanError::BadResolution)?;
    let files: Vec<_> = manifest
        .files
        .iter()
        .filter(|f| f.frames != Some(0))
        .collect();
    if files.is_empty() {
        return Err(PlanError::NoMedia);
    }
    let duration_ms = manifest.duration_ms.unwrap_or_else(|| {
        files
            .iter()
            .map(|f| f.start_offset_ms + f.duration_ms.unwrap_or(0))
            .max()
            .unwrap_or(0)
    });
    let fps = config.compose_framerate.max(1);
    let mut args: Vec<String> = ["-hide_banner", "-nostdin", "-y", "-v", "error"]
        .map(String::from)
        .to_vec();
    for f in &files {
        args.push("-i".into());
        args.push(f.file.clone());
    }
    let video: Vec<_> = files
        .iter()
        .enumerate()
        .filter(|(_, f)| f.kind == Kind::Video)
        .collect();
    let audio: Vec<_> = files
        .iter()
        .enumerate()
        .filter(|(_, f)| f.kind == Kind::Audio)
        .collect();
    let mut graph = Vec::new();
    if !video.is_empty() {
        let (cols, rows) = grid(video.len());
        // Tile sizes rounded down to even numbers, as 4:2:0 needs.
        let (tw, th) = ((width as usize / cols) & !1, (height as usize / rows) & !1);
        graph.push(format!(
            "color=c=black:s={width}x{height}:r={fps}:d={}[base0]",
            seconds(duration_ms.max(1))
        ));
        for (n, (input, f)) in video.iter().enumerate() {
            // Each file starts at zero; shifting its timestamps by its start offset puts it on the
            // recording clock, and the overlay shows it only while it has frames.
            graph.push(format!(
                "[{input}:v]setpts=PTS-STARTPTS+{}/TB,scale={tw}:{th}:force_original_aspect_ratio=decrease,\
                 pad={tw}:{th}:(ow-iw)/2:(oh-ih)/2,setsar=1[v{n}]",
                seconds(f.start_offset_ms)
            ));
        }
        for n in 0..video.len() {
            let (x, y) = ((n % cols) * tw, (n / cols) * th);
            let out = if n + 1 == video.len() {
                "[vout]".to_owned()
            } else {
                format!("[base{}]", n + 1)
            };
            graph.push(format!(
                "[base{n}][v{n}]overlay=x={x}:y={y}:eof_action=pass:repeatlast=0{out}"
            ));
        }
    }
    if !audio.is_empty() {
        for (n, (input, f)) in audio.iter().enumerate() {
            graph.push(format!(
                "[{input}:a]aresample=48000:async=1,adelay={}:all=1[a{n}]",
                f.start_offset_ms
            ));
        }
        let inputs: String = (0..audio.len()).map(|n| format!("[a{n}]")).collect();
        graph.push(format!(
            "{inputs}amix=inputs={}:duration=longest:normalize=0[aout]",
            audio.len()
        ));
    }
    args.push("-filter_complex".into());
    args.push(graph.join(";"));
    if !video.is_empty() {
        args.extend(["-map".into(), "[vout]".into()]);
    }
    if !audio.is_empty() {
        args.extend(["-map".into(), "[aout]".into()]);
    }
    let crf = config.compose_crf.to_string();
    match config.compose_format {
        ComposeFormat::Mp4 => {
            if !video.is_empty() {
                args.extend(
                    [
                        "-c:v",
                        "libx264",
                        "-preset",
                        &config.compose_preset,
                        "-crf",
                        &crf,
                        "-pix_fmt",
                        "yuv420p",
                    ]
                    .map(String::from),
                );
            }
            if !audio.is_empty() {
                args.extend(["-c:a", "aac", "-b:a", "128k"].map(String::from));
            }
            args.extend(["-movflags", "+faststart"].map(String::from));
        }
        ComposeFormat::Webm => {
            if !video.is_empty() {
                args.extend(
                    [
                        "-c:v",
                        "libvpx-vp9",
                        "-crf",
                        &crf,
                        "-b:v",
                        "0",
                        "-deadline",
                        "realtime",
                        "-cpu-used",
                        "8",
                        "-row-mt",
                        "1",
                    ]
                    .map(String::from),
                );
            }
            if !audio.is_empty() {
                args.extend(["-c:a", "libopus", "-b:a", "96k"].map(String::from));
            }
        }
    }
    args.extend(["-t".into(), seconds(duration_ms.max(1))]);
    // Progress as key=value lines on stdout, for the log.
    args.extend(["-progress", "pipe:1", "-nostats"].map(String::from));
    let output = format!("composed.{}", config.compose_format.extension());
    args.push(output.clone());
    Ok(Plan {
        args,
        output,
        duration_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Codec;
    use crate::manifest::TrackFile;

    fn file(name: &str, kind: Kind, offset: u64) -> TrackFile {
        TrackFile {
            file: name.into(),
            participant_id: "p".into(),
            source: "camera".into(),
            track: "0".into(),
            kind,
            codec: if kind == Kind::Video {
                Codec::Vp8
            } else {
                Codec::Opus
            },
            start_offset_ms: offset,
            duration_ms: Some(1000),
            frames: Some(25),
            bytes: Some(1),
        }
    }

    #[test]
    fn grids() {
        assert_eq!(grid(1), (1, 1));
        assert_eq!(grid(2), (2, 1));
        assert_eq!(grid(3), (2, 2));
        assert_eq!(grid(5), (3, 2));
        assert_eq!(grid(9), (3, 3));
    }

    #[test]
    fn plan_places_tracks_at_their_offsets() {
        let mut m = Manifest::new("r".into(), "room".into(), "t".into());
        assert_eq!(plan(&m, &Config::default()), Err(PlanError::NoMedia));
        m.files.push(file("a.webm", Kind::Video, 0));
        m.files.push(file("b.webm", Kind::Audio, 250));
        m.files.push(file("c.webm", Kind::Video, 1500));
        m.duration_ms = Some(2500);
        let p = plan(&m, &Config::default()).unwrap();
        let graph = &p.args[p.args.iter().position(|a| a == "-filter_complex").unwrap() + 1];
        assert!(
            graph.contains("[2:v]setpts=PTS-STARTPTS+1.500/TB"),
            "{graph}"
        );
        assert!(graph.contains("adelay=250:all=1"), "{graph}");
        assert!(graph.contains("overlay=x=640:y=0"), "{graph}");
        assert_eq!(p.output, "composed.mp4");
        assert!(p.args.iter().any(|a| a == "libx264"));
        let bad = Config {
            compose_resolution: "big".into(),
            ..Config::default()
        };
        assert_eq!(plan(&m, &bad), Err(PlanError::BadResolution));
    }
}
