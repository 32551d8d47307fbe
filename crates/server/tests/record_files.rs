//! The recorder end to end without a browser: real encoded frames delivered through a `FrameSink` as the
//! media loop delivers them; per-track files, manifest, composed file and finalize command checked with
//! ffprobe/ffmpeg as a user would see them.

#[path = "../../record/tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use convene::record::{FrameSink, Input, MediaFrame, Recordings};
use convene_record::manifest::{Actor, CompositionStatus, EndReason, Kind, Manifest};
use convene_record::{Codec, Config};
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

fn feed(
    sink: &mut FrameSink,
    t0: Instant,
    participant: &str,
    track: u64,
    source: &str,
    codec: Codec,
    frames: &[common::Frame],
) {
    for f in frames {
        let rate = codec.clock_rate();
        let delivered = sink.offer(MediaFrame {
            participant: participant.into(),
            track,
            mid: track.to_string(),
            source: source.into(),
            codec,
            rtp_time: 5_000 + f.pts.as_nanos() as u64 * u64::from(rate) / 1_000_000_000,
            clock_rate: rate,
            network_time: t0 + f.pts,
            keyframe: f.keyframe,
            contiguous: true,
            data: Arc::from(f.data.as_slice()),
        });
        assert!(delivered);
    }
}

/// A recorder with its own metrics registry and task tracker.
fn recorder(config: Config) -> (Recordings, Registry, TaskTracker) {
    let mut registry = Registry::with_prefix("convene");
    let tasks = TaskTracker::new();
    let recordings = Recordings::new(
        config,
        registry.sub_registry_with_prefix("record"),
        tasks.clone(),
        CancellationToken::new(),
    );
    (recordings, registry, tasks)
}

fn finalize_script(dir: &Path) -> std::path::PathBuf {
    let script = dir.join("finalize.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\necho \"$1\" >> \"$(dirname \"$0\")/finalize.log\"\necho finalized \"$1\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_participants_are_recorded_composed_and_finalized() {
    let base = common::scratch("server-record");
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();
    let config = Config {
        recordings_dir: base.join("recordings"),
        min_free_space_mb: 0,
        finalize_command: Some(finalize_script(&base)),
        compose_resolution: "640x240".into(),
        compose_framerate: 15,
        compose_preset: "ultrafast".into(),
        ..Config::default()
    };
    let (recordings, registry, tasks) = recorder(config);
    let (info, mut sink) = recordings.start("standup", Actor::AdminApi).await.unwrap();
    assert!(
        recordings
            .start("standup", Actor::AutoRecord)
            .await
            .is_err(),
        "one recording per room"
    );
    assert_eq!(recordings.status("standup"), Some(info.clone()));
    recordings.note(
        "standup",
        Input::Participant {
            id: "p1".into(),
            name: "Ada".into(),
            present: true,
        },
    );
    recordings.note(
        "standup",
        Input::Participant {
            id: "p2".into(),
            name: "Grace".into(),
            present: true,
        },
    );
    recordings.note(
        "standup",
        Input::Chat {
            from_id: "p1".into(),
            from_name: "Ada".into(),
            text: "hello".into(),
        },
    );

    let t0 = Instant::now();
    let video = common::video_frames(Codec::Vp8, 6);
    let audio = common::opus_frames(6);
    // The video recorder asks for a keyframe when the first frame it sees is not one.
    let mut late_video = video[3..].to_vec();
    late_video.extend(video.iter().skip(50).cloned().map(|mut f| {
        f.pts += Duration::from_secs(6);
        f
    }));
    feed(&mut sink, t0, "p1", 1, "camera", Codec::Vp8, &video);
    feed(&mut sink, t0, "p1", 2, "microphone", Codec::Opus, &audio);
    // p2 joins 2 s later.
    let t2 = t0 + Duration::from_secs(2);
    feed(
        &mut sink,
        t2,
        "p2",
        3,
        "camera",
        Codec::Vp8,
        &late_video[..1],
    );
    feed(&mut sink, t2, "p2", 4, "microphone", Codec::Opus, &audio);
    // Give the writer a moment to see the non-keyframe and ask for a keyframe.
    wait_for("a keyframe request", || {
        !sink.keyframe_requests().is_empty()
    })
    .await;
    feed(&mut sink, t2, "p2", 3, "camera", Codec::Vp8, &video);

    let closed = recordings
        .stop("standup", EndReason::Stopped, Some(Actor::AdminApi))
        .await
        .unwrap();
    assert_eq!(closed.reason, EndReason::Stopped);
    assert_eq!(recordings.status("standup"), None);
    assert!(
        !sink.offer(MediaFrame {
            participant: "p1".into(),
            track: 1,
            mid: "1".into(),
            source: "camera".into(),
            codec: Codec::Vp8,
            rtp_time: 0,
            clock_rate: 90_000,
            network_time: Instant::now(),
            keyframe: true,
            contiguous: true,
            data: Arc::from(&[0u8][..]),
        }),
        "a stopped recording refuses frames"
    );

    let dir = info.dir.clone();
    let log = base.join("finalize.log");
    wait_for("the finalize command", || log.exists()).await;
    tasks.close();
    tasks.wait().await;
    assert_eq!(
        std::fs::read_to_string(&log).unwrap().trim(),
        dir.display().to_string(),
        "finalize ran once, with the recording directory"
    );

    let manifest =
        Manifest::from_json(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest.room, "standup");
    assert_eq!(manifest.end_reason, Some(EndReason::Stopped));
    assert_eq!(manifest.started_by, Some(Actor::AdminApi));
    assert_eq!(manifest.stopped_by, Some(Actor::AdminApi));
    assert_eq!(manifest.participants.len(), 2);
    assert_eq!(manifest.participant_name("p2"), Some("Grace"));
    assert_eq!(manifest.chat.len(), 1);
    assert_eq!(manifest.files.len(), 4, "{:#?}", manifest.files);
    let composition = manifest
        .composition
        .clone()
        .expect("composition result recorded");
    assert_eq!(
        composition.status,
        CompositionStatus::Done,
        "{composition:?}"
    );

    for file in &manifest.files {
        let path = dir.join(&file.file);
        let errors = common::decode_errors(&path);
        assert!(errors.is_empty(), "{}: {errors}", file.file);
        let p = common::probe(&path);
        let (codec, frames) = match file.kind {
            Kind::Video => ("vp8", video.len()),
            Kind::Audio => ("opus", audio.len()),
        };
        assert_eq!(p.codec, codec, "{}", file.file);
        assert_eq!(p.frames, frames as u64, "{}: {p:?}", file.file);
        assert_eq!(file.frames, Some(frames as u64));
        let sent_last = if file.kind == Kind::Video {
            video.last()
        } else {
            audio.last()
        }
        .unwrap()
        .pts;
        assert!(
            p.last_pts.abs_diff(sent_last) <= Duration::from_millis(500),
            "{}: {p:?}",
            file.file
        );
        let expected_offset = if file.participant_id == "p2" { 2000 } else { 0 };
        assert!(
            file.start_offset_ms.abs_diff(expected_offset) <= 300,
            "{} starts at {} ms",
            file.file,
            file.start_offset_ms
        );
    }

    let composed = dir.join(composition.file.unwrap());
    let errors = common::decode_errors(&composed);
    assert!(errors.is_empty(), "composed: {errors}");
    let p = common::probe(&composed);
    assert_eq!(p.codec, "h264");
    assert!(
        p.last_pts >= Duration::from_secs(7),
        "p2's 6 s start at 2 s: {p:?}"
    );

    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    for name in [
        "convene_record_active 0",
        "convene_record_written_bytes_total",
        "convene_record_compositions_total{result=\"done\"} 1",
        "convene_record_composition_duration_seconds_count 1",
    ] {
        assert!(text.contains(name), "metrics lack {name}:\n{text}");
    }
}

/// A full disk (a track file that is `/dev/full`, which fails every write with ENOSPC) ends the
/// recording as `disk_space`, keeps the manifest, and the service goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_ends_the_recording_and_keeps_the_manifest() {
    let base = common::scratch("server-record-full");
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();
    let config = Config {
        recordings_dir: base.join("recordings"),
        min_free_space_mb: 0,
        compose: false,
        flush_interval: Duration::from_millis(100),
        ..Config::default()
    };
    let (recordings, _registry, tasks) = recorder(config);
    let (info, mut sink) = recordings.start("full", Actor::AdminApi).await.unwrap();
    std::os::unix::fs::symlink("/dev/full", info.dir.join("p1-microphone-1.webm")).unwrap();
    let ended = recordings.ended("full").expect("recording");
    // The recording may end while frames still come: the sink then refuses them.
    let t0 = Instant::now();
    for f in common::opus_frames(6) {
        let offered = sink.offer(MediaFrame {
            participant: "p1".into(),
            track: 1,
            mid: "1".into(),
            source: "microphone".into(),
            codec: Codec::Opus,
            rtp_time: f.pts.as_nanos() as u64 * 48_000 / 1_000_000_000,
            clock_rate: 48_000,
            network_time: t0 + f.pts,
            keyframe: true,
            contiguous: true,
            data: Arc::from(f.data.as_slice()),
        });
        if !offered {
            break;
        }
    }
    tokio::time::timeout(Duration::from_secs(60), ended)
        .await
        .expect("the recording ends by itself");
    assert_eq!(recordings.status("full"), None);
    let manifest =
        Manifest::from_json(&std::fs::read_to_string(info.dir.join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest.end_reason, Some(EndReason::DiskSpace));
    assert_eq!(manifest.files.len(), 1, "{:?}", manifest.files);
    // The room can be recorded again.
    let (again, _sink) = recordings.start("full", Actor::AdminApi).await.unwrap();
    assert_ne!(again.dir, info.dir);
    recordings
        .stop("full", EndReason::Stopped, None)
        .await
        .unwrap();
    tasks.close();
    tasks.wait().await;
}
