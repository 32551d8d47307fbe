//! Last-N: a subscriber receives the camera video of only the N most recent speakers; the
//! others' video stops (and the client is told which mids are paused), and video that comes back
//! starts at a keyframe. Audio and screen shares always flow.

use std::time::Duration;

use convene_media::SfuConfig;
use convene_proto::{ClientMessage, MediaSource};
use convene_testkit::Harness;

const SILENT: i8 = -127;
const SPEAKING: i8 = -22;

fn publishers(h: &mut Harness, names: &[&str]) {
    for n in names {
        h.join("room", n, &[MediaSource::Microphone, MediaSource::Camera]);
        h.client_mut(n).audio_level = Some(SILENT);
    }
}

/// A harness whose server sends each subscriber one camera at most (`[media] last_n = 1`).
fn server_last_n_one(seed: u64) -> Harness {
    let mut config = SfuConfig::with_candidates(Vec::new());
    config.last_n = 1;
    Harness::with_config(seed, config)
}

/// Camera frames `viewer` received from `from`.
fn camera_frames(h: &Harness, viewer: &str, from: &str) -> u64 {
    h.client(viewer)
        .received_from(from, MediaSource::Camera)
        .map_or(0, |r| r.frames)
}

fn camera_mid(h: &Harness, viewer: &str, from: &str) -> String {
    h.client(viewer)
        .tracks
        .iter()
        .find(|t| t.participant_id == from && t.source == MediaSource::Camera)
        .map(|t| t.mid.clone())
        .expect("viewer has the camera's mid")
}

/// Frames from each of `from` that `viewer` receives during `d`.
fn frames_during(h: &mut Harness, d: Duration, viewer: &str, from: &[&str]) -> Vec<u64> {
    let before: Vec<u64> = from.iter().map(|f| camera_frames(h, viewer, f)).collect();
    h.run(d);
    from.iter()
        .zip(before)
        .map(|(f, b)| camera_frames(h, viewer, f) - b)
        .collect()
}

fn speak(h: &mut Harness, who: &str, all: &[&str]) {
    for n in all {
        h.client_mut(n).audio_level = Some(if *n == who { SPEAKING } else { SILENT });
    }
    let ok = h.run_until(Duration::from_secs(8), |h| {
        h.client("dave").dominant.as_deref() == Some(who)
    });
    assert!(ok, "{who} never became dominant");
}

#[test]
fn a_client_asking_for_one_video_gets_the_dominant_speaker_and_resumes_at_keyframes() {
    let mut h = Harness::new(21);
    let all = ["alice", "bob", "carol"];
    publishers(&mut h, &all);
    h.join("room", "dave", &[]);
    h.run(Duration::from_secs(2));
    assert_eq!(
        frames_during(&mut h, Duration::from_secs(1), "dave", &all)
            .iter()
            .filter(|n| **n > 0)
            .count(),
        3,
        "without last-N every camera flows"
    );

    h.signal_from("dave", ClientMessage::SetLastN { last_n: 1 });
    speak(&mut h, "bob", &all);
    h.run(Duration::from_millis(500));
    let got = frames_during(&mut h, Duration::from_secs(2), "dave", &all);
    assert_eq!(got[0], 0, "alice's camera still flows: {got:?}");
    assert!(got[1] >= 30, "bob's camera does not flow: {got:?}");
    assert_eq!(got[2], 0, "carol's camera still flows: {got:?}");
    let mut paused = vec![
        camera_mid(&h, "dave", "alice"),
        camera_mid(&h, "dave", "carol"),
    ];
    paused.sort();
    assert_eq!(h.client("dave").paused, paused);
    // Audio is never paused.
    for f in all {
        let audio = h.client("dave").received_from(f, MediaSource::Microphone);
        let last = audio.and_then(|a| a.last_frame_at).expect("audio arrived");
        assert!(
            h.now - last < Duration::from_millis(100),
            "{f}'s audio stopped"
        );
    }
    // The publishers themselves asked for nothing: they still get every other camera.
    let got = frames_during(&mut h, Duration::from_secs(1), "alice", &["bob", "carol"]);
    assert!(got.iter().all(|n| *n > 0), "{got:?}");

    // Gaps before now (the pause itself, pacing at the start) are not what is checked below.
    let restarts_before = |h: &Harness, from: &str| {
        h.client("dave")
            .received_from(from, MediaSource::Camera)
            .map_or(0, |r| r.restarts.len())
    };
    let carol_before = restarts_before(&h, "carol");
    // Carol takes the floor: her video comes back, starting at a keyframe; bob's pauses.
    let kf_before = h.client("carol").keyframe_requests;
    speak(&mut h, "carol", &all);
    h.run(Duration::from_millis(500));
    let got = frames_during(&mut h, Duration::from_secs(2), "dave", &all);
    assert_eq!(got, [0, 0, got[2]], "{got:?}");
    assert!(got[2] >= 30, "{got:?}");
    let carol = h
        .client("dave")
        .received_from("carol", MediaSource::Camera)
        .unwrap();
    assert_eq!(
        carol.restarts[carol_before..],
        [true],
        "video resumed at a delta frame"
    );
    assert_eq!(carol.damaged, 0);
    assert!(
        h.client("carol").keyframe_requests > kf_before,
        "no keyframe asked for"
    );
    let bob_mid = camera_mid(&h, "dave", "bob");
    assert!(h.client("dave").paused.contains(&bob_mid));
    assert!(
        !h.client("dave")
            .paused
            .contains(&camera_mid(&h, "dave", "carol"))
    );

    // Back to no limit: everything flows again, and nothing is listed as paused.
    let before = [restarts_before(&h, "alice"), restarts_before(&h, "bob")];
    h.signal_from("dave", ClientMessage::SetLastN { last_n: 0 });
    h.run(Duration::from_millis(800));
    let got = frames_during(&mut h, Duration::from_secs(1), "dave", &all);
    assert!(got.iter().all(|n| *n > 0), "{got:?}");
    assert!(h.client("dave").paused.is_empty());
    for (f, before) in ["alice", "bob"].into_iter().zip(before) {
        let r = h
            .client("dave")
            .received_from(f, MediaSource::Camera)
            .unwrap();
        assert_eq!(r.restarts[before..], [true], "{f}: {:?}", r.restarts);
        assert_eq!(r.damaged, 0);
    }
}

#[test]
fn the_server_limit_caps_what_clients_ask_for_and_screen_shares_always_flow() {
    let mut h = server_last_n_one(22);
    publishers(&mut h, &["alice", "bob"]);
    h.join(
        "room",
        "carol",
        &[
            MediaSource::Microphone,
            MediaSource::Camera,
            MediaSource::Screen,
        ],
    );
    h.client_mut("carol").audio_level = Some(SILENT);
    h.join("room", "dave", &[]);
    let all = ["alice", "bob", "carol"];
    // Dave asks for more than the server allows: he gets the server's one.
    h.signal_from("dave", ClientMessage::SetLastN { last_n: 50 });
    speak(&mut h, "alice", &all);
    h.run(Duration::from_millis(500));
    let got = frames_during(&mut h, Duration::from_secs(2), "dave", &all);
    assert!(got[0] > 0 && got[1] == 0 && got[2] == 0, "{got:?}");
    // Carol's screen share flows although her camera is paused.
    let screen = h
        .client("dave")
        .received_from("carol", MediaSource::Screen)
        .and_then(|r| r.last_frame_at)
        .expect("screen share arrived");
    assert!(h.now - screen < Duration::from_millis(200));
    assert_eq!(h.client("dave").paused.len(), 2);

    // Participants who never spoke come in arrival order: with no request, alice (speaker)
    // is what bob sees, and alice sees bob (first to arrive after her).
    let got = frames_during(&mut h, Duration::from_secs(1), "bob", &["alice", "carol"]);
    assert!(got[0] > 0 && got[1] == 0, "{got:?}");
    let got = frames_during(&mut h, Duration::from_secs(1), "alice", &["bob", "carol"]);
    assert!(got[0] > 0 && got[1] == 0, "{got:?}");
}

#[test]
fn set_last_n_without_a_media_session_is_an_error() {
    let mut h = Harness::new(23);
    h.signal_from("nobody", ClientMessage::SetLastN { last_n: 2 });
    h.run(Duration::from_millis(50));
    assert_eq!(h.errors.len(), 1);
    assert_eq!(h.errors[0].1.code(), "not_joined");
}

/// A camera that arrives after last-N is full is paused for those whose N is taken, and counted
/// in their `paused_tracks`; it flows to those with room for it.
#[test]
fn a_late_camera_is_paused_where_last_n_is_full() {
    let mut h = server_last_n_one(23);
    publishers(&mut h, &["alice", "bob"]);
    h.join("room", "dave", &[]);
    let all = ["alice", "bob"];
    speak(&mut h, "alice", &all);
    h.run(Duration::from_millis(500));
    assert_eq!(h.client("dave").paused.len(), 1);

    publishers(&mut h, &["erin"]);
    h.run(Duration::from_secs(2));
    let got = frames_during(
        &mut h,
        Duration::from_secs(2),
        "dave",
        &["alice", "bob", "erin"],
    );
    assert!(got[0] > 0 && got[1] == 0 && got[2] == 0, "{got:?}");
    let erin = camera_mid(&h, "dave", "erin");
    assert!(
        h.client("dave").paused.contains(&erin),
        "{:?} lacks erin's {erin}",
        h.client("dave").paused
    );
    // Erin's own N (one) goes to the speaker.
    let got = frames_during(&mut h, Duration::from_secs(1), "erin", &["alice", "bob"]);
    assert!(got[0] > 0 && got[1] == 0, "{got:?}");
}

#[test]
fn when_the_one_forwarded_speaker_leaves_the_previous_one_is_resumed() {
    let mut h = Harness::new(23);
    let all = ["alice", "bob", "carol"];
    publishers(&mut h, &all);
    h.join("room", "dave", &[]);
    h.run(Duration::from_secs(2));
    h.signal_from("dave", ClientMessage::SetLastN { last_n: 1 });
    speak(&mut h, "bob", &all);
    speak(&mut h, "carol", &all);
    h.run(Duration::from_millis(500));
    let got = frames_during(&mut h, Duration::from_secs(1), "dave", &all);
    assert_eq!(got, [0, 0, got[2]], "{got:?}");

    // Carol leaves: dave's one camera is now bob's, the speaker before her.
    h.client_mut("bob").audio_level = Some(SILENT);
    let bob_before = h
        .client("dave")
        .received_from("bob", MediaSource::Camera)
        .map_or(0, |r| r.restarts.len());
    h.leave("carol");
    h.run(Duration::from_millis(800));
    let got = frames_during(&mut h, Duration::from_secs(1), "dave", &["alice", "bob"]);
    assert_eq!(got[0], 0, "alice's camera flows: {got:?}");
    assert!(got[1] >= 15, "bob's camera does not flow: {got:?}");
    let bob = h
        .client("dave")
        .received_from("bob", MediaSource::Camera)
        .unwrap();
    assert_eq!(
        bob.restarts[bob_before..],
        [true],
        "resumed at a delta frame"
    );
    assert_eq!(h.client("dave").paused, [camera_mid(&h, "dave", "alice")]);
}
