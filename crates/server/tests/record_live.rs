//! Recording a live room: str0m test clients join through the signaling WebSocket and publish real
//! Opus and VP8 over the server's UDP port; a moderator starts and stops the recording over
//! signaling; the per-track files are checked with ffprobe/ffmpeg as a user would see them.

#[path = "../../record/tests/common/mod.rs"]
mod common;
mod signal_support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use convene_proto::{ClientMessage, ErrorCode, MediaSource, ServerMessage};
use convene_record::Codec;
use convene_record::manifest::{Kind, Manifest};
use convene_testkit::Fixture;
use convene_testkit::ws::WsPeer;
use signal_support::Server;

const AV: &[MediaSource] = &[MediaSource::Microphone, MediaSource::Camera];

fn fixture() -> Arc<Fixture> {
    Arc::new(Fixture {
        audio: common::opus_frames(4).into_iter().map(|f| f.data).collect(),
        video: common::video_frames(Codec::Vp8, 4)
            .into_iter()
            .map(|f| (f.data, f.keyframe))
            .collect(),
    })
}

async fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn messages(p: &WsPeer) -> Vec<ServerMessage> {
    p.messages.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// The `active` flag of every `recording` metadata `p` was told, oldest first.
fn recording_states(p: &WsPeer) -> Vec<bool> {
    messages(p)
        .iter()
        .filter_map(|m| match m {
            ServerMessage::Metadata { metadata } => Some(
                metadata
                    .get("recording")
                    .and_then(|v| v.get("active"))
                    .and_then(|v| v.as_bool())
                    .unwrap_or(false),
            ),
            _ => None,
        })
        .collect()
}

/// The `active` flag of the latest `recording` metadata `p` was told.
fn recording_state(p: &WsPeer) -> Option<bool> {
    recording_states(p).last().copied()
}

fn manifest_of(dir: &Path) -> Manifest {
    Manifest::from_json(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap()
}

fn recording_dirs(base: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(base)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moderator_records_a_live_room_over_signaling() {
    let base = common::scratch("record-live");
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();
    let recordings = base.join("recordings");
    let fixture = fixture();
    let server = Server::start(&format!(
        "[recording]\nrecordings_dir = {:?}\nmin_free_space_mb = 0\ncompose = false\n",
        recordings.to_str().unwrap()
    ))
    .await;

    let alice = WsPeer::join(server.addr, "live", "Alice", AV)
        .await
        .unwrap();
    alice.peer.client().fixture = Some(fixture.clone());
    let bob = WsPeer::join(server.addr, "live", "Bob", AV).await.unwrap();
    bob.peer.client().fixture = Some(fixture.clone());
    wait_for("media to flow", Duration::from_secs(15), || {
        let a = alice.peer.client();
        let b = bob.peer.client();
        a.connected && b.connected && a.sent.len() == 2 && b.sent.len() == 2
    })
    .await;

    // Bob is not a moderator: refused, and nothing is recorded.
    bob.send(ClientMessage::StartRecording);
    wait_for("bob's refusal", Duration::from_secs(5), || {
        messages(&bob).iter().any(|m| {
            matches!(m, ServerMessage::Error { code: ErrorCode::Forbidden, request: Some(r), .. } if r == "start_recording")
        })
    })
    .await;
    assert!(recording_dirs(&recordings).is_empty());

    alice.send(ClientMessage::StartRecording);
    wait_for(
        "everyone to see the recording",
        Duration::from_secs(5),
        || recording_state(&alice) == Some(true) && recording_state(&bob) == Some(true),
    )
    .await;
    let started = Instant::now();
    alice.send(ClientMessage::Chat {
        text: "hello recording".into(),
        to: None,
    });
    tokio::time::sleep(Duration::from_secs(6)).await;
    alice.send(ClientMessage::StopRecording);
    wait_for("everyone to see the stop", Duration::from_secs(10), || {
        recording_state(&alice) == Some(false) && recording_state(&bob) == Some(false)
    })
    .await;
    let length = started.elapsed();

    let dirs = recording_dirs(&recordings);
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    let dir = &dirs[0];
    let manifest = manifest_of(dir);
    assert_eq!(manifest.room, "live");
    for by in [&manifest.started_by, &manifest.stopped_by] {
        assert!(
            matches!(by, Some(convene_record::manifest::Actor::Participant { name, .. }) if name == "Alice"),
            "{by:?}"
        );
    }
    let names: Vec<&str> = manifest
        .participants
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert!(
        names.contains(&"Alice") && names.contains(&"Bob"),
        "{names:?}"
    );
    assert!(
        manifest.chat.iter().any(|c| c.text == "hello recording"),
        "{:?}",
        manifest.chat
    );
    assert_eq!(manifest.files.len(), 4, "{:?}", manifest.files);
    for file in &manifest.files {
        let path = dir.join(&file.file);
        let probe = common::probe(&path);
        let errors = common::decode_errors(&path);
        assert!(errors.is_empty(), "{}: {errors}", file.file);
        // The track's own length: from its first written frame to the stop.
        let expected = length.saturating_sub(Duration::from_millis(file.start_offset_ms));
        let (codec, per_second) = match file.kind {
            Kind::Audio => ("opus", 50.0),
            Kind::Video => ("vp8", 20.0),
        };
        assert_eq!(probe.codec, codec, "{}", file.file);
        let diff = probe.last_pts.as_secs_f64() - expected.as_secs_f64();
        assert!(
            diff.abs() < 0.5,
            "{}: last frame at {:?}, expected about {expected:?}",
            file.file,
            probe.last_pts
        );
        let frames = probe.frames as f64;
        let want = expected.as_secs_f64() * per_second;
        assert!(
            (frames - want).abs() <= per_second * 0.5,
            "{}: {frames} frames, about {want} sent",
            file.file
        );
        // Every track starts within a second of the start (video at the requested keyframe).
        assert!(file.start_offset_ms < 1000, "{file:?}");
        // Every frame the recorder took is in the file, whatever the timing.
        common::assert_holds_what_manifest_counts(&path, &probe, file);
        // And every track lasts to the end of the recording.
        let track_end = file.start_offset_ms + file.duration_ms.unwrap_or(0);
        let total = manifest.duration_ms.unwrap_or(0);
        assert!(
            track_end.abs_diff(total) <= 500,
            "{}: ends at {track_end} ms of a {total} ms recording",
            file.file
        );
    }
    alice.close();
    bob.close();
    server.stop().await;
}

/// ffmpeg's only complaint about a cut-off file may be that it ended early.
fn only_premature_end(errors: &str) -> bool {
    errors
        .lines()
        .all(|l| l.contains("File ended prematurely") || l.trim().is_empty())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_of_a_killed_server_decode_up_to_the_kill() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};

    let base = common::scratch("record-kill");
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();
    let recordings = base.join("recordings");
    let config = base.join("convene.toml");
    std::fs::write(
        &config,
        format!(
            "[media]\nbind = \"127.0.0.1\"\n[recording]\nrecordings_dir = {:?}\nmin_free_space_mb = 0\ncompose = false\n",
            recordings.to_str().unwrap()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_convene"))
        .env_remove("RUST_LOG")
        .env_remove("CONVENE_CONFIG")
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .args(["--listen", "127.0.0.1:0", "--media-port", "0"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let addr: std::net::SocketAddr = tokio::task::spawn_blocking(move || {
        let addr = loop {
            let line = lines
                .next()
                .expect("server exited before listening")
                .unwrap();
            if let Some(addr) = line.split("http listening on ").nth(1) {
                break addr.trim().parse().unwrap();
            }
        };
        std::thread::spawn(move || lines.map_while(Result::ok).count());
        addr
    })
    .await
    .unwrap();

    let fixture = fixture();
    let alice = WsPeer::join(addr, "crash", "Alice", AV).await.unwrap();
    alice.peer.client().fixture = Some(fixture.clone());
    let bob = WsPeer::join(addr, "crash", "Bob", AV).await.unwrap();
    bob.peer.client().fixture = Some(fixture.clone());
    wait_for("media to flow", Duration::from_secs(15), || {
        let a = alice.peer.client();
        let b = bob.peer.client();
        a.connected && b.connected && a.sent.len() == 2 && b.sent.len() == 2
    })
    .await;
    alice.send(ClientMessage::StartRecording);
    wait_for("the recording to start", Duration::from_secs(5), || {
        recording_state(&alice) == Some(true)
    })
    .await;
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(6)).await;
    child.kill().unwrap(); // SIGKILL: nothing gets to close or finalize the files.
    let killed_at = started.elapsed();
    child.wait().unwrap();
    alice.close();
    bob.close();

    let dirs = recording_dirs(&recordings);
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    let dir = &dirs[0];
    let offsets: std::collections::HashMap<String, u64> =
        std::fs::read_to_string(dir.join("manifest.json"))
            .ok()
            .and_then(|t| Manifest::from_json(&t).ok())
            .map(|m| {
                m.files
                    .into_iter()
                    .map(|f| (f.file, f.start_offset_ms))
                    .collect()
            })
            .unwrap_or_default();
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "webm"))
        .collect();
    assert_eq!(files.len(), 4, "{files:?}");
    for path in &files {
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let errors = common::decode_errors(path);
        assert!(only_premature_end(&errors), "{name}: {errors}");
        let probe = common::probe(path);
        // Tracks start within a second of the start when the manifest was not written yet.
        let offset = Duration::from_millis(offsets.get(&name).copied().unwrap_or(1000));
        let expected = killed_at.saturating_sub(offset);
        assert!(
            probe.last_pts + Duration::from_secs(2) >= expected,
            "{name}: decodes to {:?}, killed {expected:?} into the track",
            probe.last_pts
        );
        assert!(probe.frames > 0, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_recording_ends_at_max_duration_and_everyone_is_told() {
    let base = common::scratch("record-auto");
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();
    let recordings = base.join("recordings");
    let server = Server::start(&format!(
        "[recording]\nrecordings_dir = {:?}\nmin_free_space_mb = 0\ncompose = false\nauto_record_rooms = [\"auto\"]\nmax_duration = \"3s\"\n",
        recordings.to_str().unwrap()
    ))
    .await;
    let other = WsPeer::join(server.addr, "other", "Carol", AV)
        .await
        .unwrap();
    let alice = WsPeer::join(server.addr, "auto", "Alice", AV)
        .await
        .unwrap();
    alice.peer.client().fixture = Some(fixture());
    // Generous: the start itself is immediate, but a test machine running the rest of the suite
    // in parallel has stalled this process for several seconds.
    // A stall longer than max_duration can hide the start behind the end: any start counts.
    wait_for("the automatic start", Duration::from_secs(20), || {
        recording_states(&alice).contains(&true)
    })
    .await;
    wait_for("the end at max_duration", Duration::from_secs(10), || {
        recording_state(&alice) == Some(false)
    })
    .await;
    let dirs = recording_dirs(&recordings);
    assert_eq!(
        dirs.len(),
        1,
        "only the configured room is recorded: {dirs:?}"
    );
    let manifest = manifest_of(&dirs[0]);
    assert_eq!(manifest.room, "auto");
    assert_eq!(
        manifest.end_reason,
        Some(convene_record::manifest::EndReason::MaxDuration)
    );
    assert_eq!(
        manifest.started_by,
        Some(convene_record::manifest::Actor::AutoRecord)
    );
    // A limit ended it, not a person.
    assert_eq!(manifest.stopped_by, None);
    assert_eq!(recording_state(&other), None);
    alice.close();
    other.close();
    server.stop().await;
}
