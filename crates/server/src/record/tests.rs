//! The recorder against a stalled disk: its writer thread is held (the only test hook) while real
//! encoded frames keep coming through a `FrameSink`, as from the media loop; then the disk is let go
//! and the files are checked with ffprobe/ffmpeg.

#[path = "../../../record/tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use convene_record::manifest::{Actor, EndReason, Kind, Manifest};
use convene_record::{Codec, Config};
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::writer::{QUEUE, Stall};
use super::{FrameSink, MediaFrame, Recordings};

fn recordings(base: &Path, limits: (usize, usize), stall: &Arc<Stall>) -> Recordings {
    recordings_with(base, limits, Some(stall.clone()), |_| {})
}

fn recordings_with(
    base: &Path,
    limits: (usize, usize),
    stall: Option<Arc<Stall>>,
    tweak: impl FnOnce(&mut Config),
) -> Recordings {
    let _ = std::fs::remove_dir_all(base);
    std::fs::create_dir_all(base).unwrap();
    let mut config = Config {
        recordings_dir: base.join("recordings"),
        min_free_space_mb: 0,
        compose: false,
        ..Config::default()
    };
    tweak(&mut config);
    Recordings::with_writers(
        config,
        Registry::default().sub_registry_with_prefix("record"),
        TaskTracker::new(),
        CancellationToken::new(),
        limits,
        stall,
    )
}

/// Free space on the file system holding `dir`, in the MiB `min_free_space_mb` counts.
fn free_mb(dir: &Path) -> u64 {
    super::disk::free_bytes(dir).unwrap() / (1024 * 1024)
}

/// `f` as the media loop hands it over: track `track` of participant `p1`, `shift` later on the
/// media clock than the fixture says.
fn media_frame(
    t0: Instant,
    track: u64,
    codec: Codec,
    f: &common::Frame,
    shift: Duration,
) -> MediaFrame {
    let rate = codec.clock_rate();
    let pts = f.pts + shift;
    MediaFrame {
        participant: "p1".into(),
        track,
        mid: track.to_string(),
        source: if codec.is_video() {
            "camera"
        } else {
            "microphone"
        }
        .into(),
        codec,
        rtp_time: 5_000 + pts.as_nanos() as u64 * u64::from(rate) / 1_000_000_000,
        clock_rate: rate,
        network_time: t0 + pts,
        keyframe: f.keyframe,
        contiguous: true,
        data: Arc::from(f.data.as_slice()),
    }
}

fn feed(sink: &mut FrameSink, t0: Instant, track: u64, codec: Codec, frames: &[common::Frame]) {
    for f in frames {
        assert!(sink.offer(media_frame(t0, track, codec, f, Duration::ZERO)));
    }
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect()
}

fn manifest_of(dir: &Path) -> Manifest {
    Manifest::from_json(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap()
}

/// Every frame the manifest counts is in the file, and the file is exactly as long as the writer
/// made it: a lost tail or a lost chunk shows here.
fn check_complete(dir: &Path, manifest: &Manifest) {
    for file in &manifest.files {
        let path = dir.join(&file.file);
        let errors = common::decode_errors(&path);
        assert!(errors.is_empty(), "{}: {errors}", file.file);
        common::assert_holds_what_manifest_counts(&path, &common::probe(&path), file);
    }
}

/// A recording of `room` on a disk that is held from the start, with the full writer queue.
async fn on_held_disk(
    scratch: &str,
    room: &str,
) -> (Arc<Stall>, Recordings, super::RecordingInfo, FrameSink) {
    let stall = Arc::new(Stall::default());
    stall.hold();
    let recordings = recordings(
        &common::scratch(scratch),
        (QUEUE, super::writer::QUEUE_BYTES),
        &stall,
    );
    let (info, sink) = recordings.start(room, Actor::AdminApi).await.unwrap();
    (stall, recordings, info, sink)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_disk_holds_up_neither_the_frames_nor_the_files() {
    let (stall, recordings, info, mut sink) = on_held_disk("unit-stalled-disk", "stalled").await;
    let metrics = recordings.inner.metrics.clone();
    let audio = common::opus_frames(6);
    let video = common::video_frames(Codec::Vp8, 6);
    let t0 = Instant::now();
    feed(&mut sink, t0, 1, Codec::Opus, &audio);
    feed(&mut sink, t0, 2, Codec::Vp8, &video);
    let fed = (audio.len() + video.len()) as u64;

    // The recording takes every frame while not one byte reaches the disk.
    wait_for("every frame to be taken", || {
        metrics.frames_written.get() == fed
    })
    .await;
    assert_eq!(metrics.frames_dropped.get(), 0);
    assert_eq!(metrics.bytes_written.get(), 0);
    assert!(entries(&info.dir).is_empty(), "{:?}", entries(&info.dir));

    // A stop waits for the disk: it cannot report closed files while the writer is held.
    let stopping = tokio::spawn({
        let recordings = recordings.clone();
        async move { recordings.stop("stalled", EndReason::Stopped, None).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !stopping.is_finished(),
        "the stop did not wait for the disk"
    );
    stall.release();
    let closed = stopping.await.unwrap().unwrap();
    assert_eq!(closed.reason, EndReason::Stopped);

    let manifest = manifest_of(&info.dir);
    assert_eq!(manifest.end_reason, Some(EndReason::Stopped));
    assert_eq!(manifest.files.len(), 2, "{:?}", manifest.files);
    for file in &manifest.files {
        let sent = match file.kind {
            Kind::Audio => audio.len(),
            Kind::Video => video.len(),
        };
        assert_eq!(file.frames, Some(sent as u64), "{file:?}");
    }
    check_complete(&info.dir, &manifest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_beyond_the_writer_queue_are_dropped_counted_and_the_file_stays_whole() {
    let stall = Arc::new(Stall::default());
    stall.hold();
    let video = common::video_frames(Codec::Vp8, 6);
    // Room for the first keyframe and some more, not for all of it.
    let largest = video.iter().map(|f| f.data.len()).max().unwrap();
    let bytes = 3 * (largest + 64);
    assert!(video.iter().map(|f| f.data.len()).sum::<usize>() > 2 * bytes);
    let recordings = recordings(&common::scratch("unit-full-queue"), (QUEUE, bytes), &stall);
    let metrics = recordings.inner.metrics.clone();
    let (info, mut sink) = recordings.start("full", Actor::AdminApi).await.unwrap();
    let t0 = Instant::now();
    feed(&mut sink, t0, 1, Codec::Vp8, &video);
    let fed = video.len() as u64;

    wait_for("every frame to be taken or dropped", || {
        metrics.frames_written.get() + metrics.frames_dropped.get() == fed
    })
    .await;
    let written = metrics.frames_written.get();
    assert!(written > 0 && written < fed, "{written} of {fed} written");
    assert_eq!(metrics.bytes_written.get(), 0);

    // Once the disk catches up, frames fit again. The first follows the drops, so the recorder
    // waits for a keyframe and asks for one (these are all delta frames).
    stall.release();
    let shifted = |frames: &[common::Frame], by: u64| -> Vec<common::Frame> {
        frames
            .iter()
            .cloned()
            .map(|mut f| {
                f.pts += Duration::from_secs(by);
                f
            })
            .collect()
    };
    let deltas: Vec<common::Frame> = shifted(&video, 6)
        .into_iter()
        .filter(|f| !f.keyframe)
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut fed = fed;
    'asking: loop {
        for f in &deltas {
            assert!(Instant::now() < deadline, "no keyframe request");
            feed(&mut sink, t0, 1, Codec::Vp8, std::slice::from_ref(f));
            fed += 1;
            wait_for("the frame to be taken", || {
                metrics.frames_written.get() + metrics.frames_dropped.get() == fed
            })
            .await;
            if sink.keyframe_requests().contains(&1) {
                break 'asking;
            }
        }
    }
    assert_eq!(metrics.frames_written.get(), written);
    // The keyframe comes, and the track goes on.
    // One at a time, so the writer keeps up with the small queue.
    for f in &shifted(&video[50..], 12) {
        feed(&mut sink, t0, 1, Codec::Vp8, std::slice::from_ref(f));
        fed += 1;
        wait_for("the frame to be taken", || {
            metrics.frames_written.get() + metrics.frames_dropped.get() == fed
        })
        .await;
    }
    let before = written;
    let written = metrics.frames_written.get();
    assert!(written > before, "nothing after the keyframe was written");

    recordings
        .stop("full", EndReason::Stopped, None)
        .await
        .unwrap();
    let manifest = manifest_of(&info.dir);
    assert_eq!(manifest.files.len(), 1, "{:?}", manifest.files);
    assert_eq!(manifest.files[0].frames, Some(written));
    check_complete(&info.dir, &manifest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_is_refused_without_the_minimum_free_space() {
    let base = common::scratch("unit-refused-space");
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();
    // More than this file system will have: the check is against the real disk.
    let min = free_mb(&base) + 1024 * 1024;
    let recordings = recordings_with(&base, (QUEUE, super::writer::QUEUE_BYTES), None, |c| {
        c.min_free_space_mb = min;
    });
    let refused = recordings.start("space", Actor::AdminApi).await;
    match refused {
        Err(super::RecordError::DiskSpace { min_mb, .. }) => assert_eq!(min_mb, min),
        other => panic!(
            "not refused for space: {:?}",
            other.map(|(info, _)| info.dir)
        ),
    }
    assert!(!recordings.recording("space"));
    let made = std::fs::read_dir(base.join("recordings"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(made, 0, "a refused recording left a directory");
}

/// The limit is set a few MiB under what is free when the recording starts, so the recording's
/// own files cross it: it must end by itself as `disk_space`, with every file whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_stops_cleanly_when_free_space_runs_low() {
    const MARGIN_MB: u64 = 6;
    let base = common::scratch("unit-low-space");
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();
    let min = free_mb(&base).saturating_sub(MARGIN_MB);
    let recordings = recordings_with(&base, (QUEUE, super::writer::QUEUE_BYTES), None, |c| {
        c.min_free_space_mb = min;
        c.disk_check_interval = Duration::from_millis(50);
        // Written bytes reach the file system (and its free count) within this.
        c.flush_interval = Duration::from_millis(50);
    });
    let (info, mut sink) = recordings.start("low", Actor::AdminApi).await.unwrap();
    let ended = recordings.ended("low").unwrap();
    tokio::pin!(ended);

    // Rounds of six seconds of real Opus and VP8, one after the other on the media clock, until the
    // recording gives up. Other programs freeing space on a shared disk only make it take longer.
    let audio = common::opus_frames(6);
    let video = common::video_frames(Codec::Vp8, 6);
    // Rounds follow each other with a gap, never sharing an instant.
    let last = audio.iter().chain(&video).map(|f| f.pts).max().unwrap();
    let period = Duration::from_secs(last.as_secs() + 1);
    let t0 = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut round = 0u64;
    let (mut over, mut closed) = (false, false);
    while !over {
        assert!(
            Instant::now() < deadline,
            "still recording after {round} rounds; {} MiB free, limit {min} MiB",
            free_mb(&base)
        );
        let shift = period * round as u32;
        for (track, codec, frames) in [(1, Codec::Opus, &audio), (2, Codec::Vp8, &video)] {
            for f in frames {
                over |= !sink.offer(media_frame(t0, track, codec, f, shift));
            }
        }
        round += 1;
        // Let the writer and the disk check catch up; stop feeding once it is over.
        closed = tokio::time::timeout(Duration::from_millis(100), &mut ended)
            .await
            .is_ok();
        over |= closed;
    }
    // It ends by itself: nobody called stop.
    if !closed {
        tokio::time::timeout(Duration::from_secs(60), &mut ended)
            .await
            .expect("the files were not closed");
    }
    let manifest = manifest_of(&info.dir);
    assert_eq!(manifest.end_reason, Some(EndReason::DiskSpace));
    assert_eq!(manifest.stopped_by, None);
    assert_eq!(manifest.files.len(), 2, "{:?}", manifest.files);
    // What was written is kept and plays: every frame the manifest counts is in its file.
    check_complete(&info.dir, &manifest);
    assert!(manifest.files.iter().all(|f| f.frames.unwrap_or(0) > 0));
    let _ = std::fs::remove_dir_all(&base);
}

/// A stop on a hung disk: whoever asked (a room's signaling) gets its answer after the limit, the
/// recording takes nothing more, and the files are completed once the disk comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_on_a_hung_disk_answers_within_its_limit_and_finishes_later() {
    let (stall, recordings, info, mut sink) = on_held_disk("unit-hung-stop", "hung").await;
    let metrics = recordings.inner.metrics.clone();
    let ended = recordings.ended("hung").unwrap();
    let audio = common::opus_frames(3);
    let t0 = Instant::now();
    feed(&mut sink, t0, 1, Codec::Opus, &audio);
    wait_for("every frame to be taken", || {
        metrics.frames_written.get() == audio.len() as u64
    })
    .await;

    let asked = Instant::now();
    let answer = recordings
        .stop_within("hung", EndReason::Stopped, None, Duration::from_millis(300))
        .await
        .unwrap();
    assert!(
        answer.is_none(),
        "the files cannot be closed on a held disk"
    );
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "the answer waited {:?}",
        asked.elapsed()
    );
    // Nothing offered after the stop is recorded.
    for f in &audio {
        let _ = sink.offer(media_frame(t0, 1, Codec::Opus, f, Duration::from_secs(3)));
    }

    stall.release();
    tokio::time::timeout(Duration::from_secs(30), ended)
        .await
        .expect("the files were not closed after the disk came back");
    let manifest = manifest_of(&info.dir);
    assert_eq!(manifest.end_reason, Some(EndReason::Stopped));
    assert_eq!(manifest.files.len(), 1, "{:?}", manifest.files);
    assert_eq!(manifest.files[0].frames, Some(audio.len() as u64));
    check_complete(&info.dir, &manifest);
}
