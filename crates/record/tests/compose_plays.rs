//! The composer's ffmpeg command, run on real recorded files: the output decodes, is as long as the
//! recording, and shows late joiners at their offsets.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{decode_errors, record};
use convene_record::codec::Codec;
use convene_record::compose;
use convene_record::config::{ComposeFormat, Config};
use convene_record::manifest::{Kind, Manifest, TrackFile};

fn compose_in(dir: &std::path::Path, format: ComposeFormat) {
    std::fs::create_dir_all(dir).unwrap();
    let mut manifest = Manifest::new("r1".into(), "room".into(), "2025-01-01T00:00:00Z".into());
    let inputs = [
        ("a-camera.webm", Kind::Video, Codec::Vp8, 0u64),
        ("a-mic.webm", Kind::Audio, Codec::Opus, 0),
        ("b-camera.webm", Kind::Video, Codec::Vp9, 2000),
        ("b-mic.webm", Kind::Audio, Codec::Opus, 2000),
    ];
    for (name, kind, codec, offset) in inputs {
        let frames = match codec {
            Codec::Opus => common::opus_frames(6),
            c => common::video_frames(c, 6),
        };
        let recorded = record(codec, &frames);
        std::fs::write(dir.join(name), &recorded.finished).unwrap();
        manifest.files.push(TrackFile {
            file: name.into(),
            participant_id: name[..1].into(),
            source: "camera".into(),
            track: "0".into(),
            kind,
            codec,
            start_offset_ms: offset,
            duration_ms: Some(recorded.duration.as_millis() as u64),
            frames: Some(frames.len() as u64),
            bytes: Some(recorded.finished.len() as u64),
        });
    }
    manifest.duration_ms = Some(8000);
    let config = Config {
        compose_format: format,
        compose_resolution: "640x240".into(),
        compose_framerate: 15,
        compose_preset: "ultrafast".into(),
        ..Config::default()
    };
    let plan = compose::plan(&manifest, &config).unwrap();
    let out = Command::new("ffmpeg")
        .args(&plan.args)
        .current_dir(dir)
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("progress=end"));
    let output = dir.join(&plan.output);
    let errors = decode_errors(&output);
    assert!(errors.is_empty(), "composed file: {errors}");
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,width,height,duration",
            "-of",
            "csv=p=0",
        ])
        .arg(&output)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&probe.stdout).to_string();
    let (video_codec, audio_codec) = match format {
        ComposeFormat::Mp4 => ("h264", "aac"),
        ComposeFormat::Webm => ("vp9", "opus"),
    };
    assert!(text.contains(&format!("{video_codec},640,240")), "{text}");
    assert!(text.contains(audio_codec), "{text}");
    let p = common::probe(&output);
    assert!(
        p.last_pts.abs_diff(Duration::from_secs(8)) <= Duration::from_millis(500),
        "{p:?}"
    );
}

#[test]
fn composes_mp4() {
    compose_in(&common::scratch("compose-mp4"), ComposeFormat::Mp4);
}

#[test]
fn composes_webm() {
    compose_in(&common::scratch("compose-webm"), ComposeFormat::Webm);
}
