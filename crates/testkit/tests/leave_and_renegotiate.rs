//! Three participants; one leaves, another adds and removes a screen share. Everyone else's
//! SDP and track map follow, and media keeps flowing.

use std::time::Duration;

use convene_proto::MediaSource;
use convene_testkit::Harness;

const AV: &[MediaSource] = &[MediaSource::Microphone, MediaSource::Camera];

fn video_frames(h: &Harness, me: &str, from: &str, source: MediaSource) -> u64 {
    h.client(me)
        .received_from(from, source)
        .map_or(0, |r| r.frames)
}

#[test]
fn three_participants_then_one_leaves() {
    let mut h = Harness::new(3);
    h.join("room", "alice", AV);
    h.join("room", "bob", AV);
    h.join("room", "carol", AV);
    h.run(Duration::from_secs(3));
    for me in ["alice", "bob", "carol"] {
        assert_eq!(
            h.client(me).tracks.len(),
            4,
            "{me}: {:?}",
            h.client(me).tracks
        );
        for other in ["alice", "bob", "carol"] {
            if me != other {
                assert!(
                    video_frames(&h, me, other, MediaSource::Camera) > 20,
                    "{me} from {other}"
                );
            }
        }
    }

    h.leave("carol");
    h.run(Duration::from_secs(1));
    assert_eq!(h.sfu.session_count(), 2);
    assert_eq!(h.sfu.track_count(), 4);
    for me in ["alice", "bob"] {
        let c = h.client(me);
        assert_eq!(c.tracks.len(), 2, "{me}: {:?}", c.tracks);
        assert!(c.tracks.iter().all(|t| t.participant_id != "carol"));
        // The stopped m-lines were negotiated: nothing outstanding.
        assert!(!c.has_pending_offer());
    }
    let before = video_frames(&h, "alice", "bob", MediaSource::Camera);
    h.run(Duration::from_secs(1));
    assert!(video_frames(&h, "alice", "bob", MediaSource::Camera) > before + 10);
}

#[test]
fn screen_share_added_and_removed_mid_meeting() {
    let mut h = Harness::new(4);
    h.join("room", "alice", AV);
    h.join("room", "bob", AV);
    h.run(Duration::from_secs(2));

    let now = h.now;
    h.client_mut("alice").offer(
        now,
        &[(
            convene_testkit::harness::kind_of(MediaSource::Screen),
            MediaSource::Screen,
        )],
    );
    h.pump();
    h.run(Duration::from_secs(2));
    let bob = h.client("bob");
    assert_eq!(bob.tracks.len(), 3, "{:?}", bob.tracks);
    let screen = bob
        .received_from("alice", MediaSource::Screen)
        .expect("screen share arrives");
    assert!(screen.frames > 10 && screen.damaged == 0, "{screen:?}");
    assert_eq!(screen.first_was_keyframe, Some(true));

    let now = h.now;
    h.client_mut("alice").stop_track(now, MediaSource::Screen);
    h.pump();
    h.run(Duration::from_secs(1));
    let bob = h.client("bob");
    assert_eq!(bob.tracks.len(), 2, "{:?}", bob.tracks);
    assert!(bob.tracks.iter().all(|t| t.source != MediaSource::Screen));
    assert_eq!(h.sfu.track_count(), 4);
    assert!(h.errors.is_empty(), "{:?}", h.errors);
}

#[test]
fn mute_needs_no_renegotiation() {
    let mut h = Harness::new(5);
    h.join("room", "alice", AV);
    h.join("room", "bob", AV);
    h.run(Duration::from_secs(2));
    let offers = h.sent.len();

    h.client_mut("alice").muted = true;
    h.run(Duration::from_secs(2));
    let muted_at = video_frames(&h, "bob", "alice", MediaSource::Camera);
    h.run(Duration::from_secs(1));
    assert_eq!(
        video_frames(&h, "bob", "alice", MediaSource::Camera),
        muted_at
    );

    h.client_mut("alice").muted = false;
    h.run(Duration::from_secs(1));
    assert!(video_frames(&h, "bob", "alice", MediaSource::Camera) > muted_at + 10);
    let bob = h.client("bob");
    let video = bob.received_from("alice", MediaSource::Camera).unwrap();
    assert_eq!(video.damaged, 0);
    // No signaling at all for mute and unmute, and the session survived the silence.
    assert_eq!(h.sent.len(), offers);
    assert!(h.closed.is_empty());
}

#[test]
fn network_change_with_ice_restart_keeps_the_session() {
    let mut h = Harness::new(9);
    h.join("room", "alice", AV);
    h.join("room", "bob", AV);
    h.run(Duration::from_secs(2));

    // Bob's laptop moves to another network: new address, ICE restart offer.
    let now = h.now;
    h.client_mut("bob")
        .move_to(now, "127.0.0.1:29999".parse().unwrap());
    h.pump();
    h.run(Duration::from_millis(300));
    let before = video_frames(&h, "alice", "bob", MediaSource::Camera);
    let before_rx = video_frames(&h, "bob", "alice", MediaSource::Camera);
    h.run(Duration::from_secs(2));
    assert!(
        video_frames(&h, "alice", "bob", MediaSource::Camera) > before + 20,
        "bob's video after the move"
    );
    assert!(
        video_frames(&h, "bob", "alice", MediaSource::Camera) > before_rx + 20,
        "alice's video at bob's new address"
    );
    assert!(h.errors.is_empty(), "{:?}", h.errors);
    assert!(h.closed.is_empty(), "{:?}", h.closed);
}
