//! The dominant speaker follows the audio levels publishers put in their packets (RFC 6464), is
//! announced to everyone with `dominant_speaker`, and changes only for a clear, sustained
//! challenger.

use std::time::Duration;

use convene_media::speaker::HOLD;
use convene_proto::{MediaSource, ServerMessage};
use convene_testkit::Harness;

const SILENT: i8 = -127;
const SPEAKING: i8 = -22;

fn room(h: &mut Harness, names: &[&str]) {
    for n in names {
        h.join("room", n, &[MediaSource::Microphone, MediaSource::Camera]);
        h.client_mut(n).audio_level = Some(SILENT);
    }
}

fn dominant_everywhere(h: &Harness, who: &str) -> bool {
    h.clients.iter().all(|c| c.dominant.as_deref() == Some(who))
}

fn announcements(h: &Harness, to: &str) -> Vec<Option<String>> {
    h.sent
        .iter()
        .filter(|(p, _)| p == to)
        .filter_map(|(_, m)| match m {
            ServerMessage::DominantSpeaker { participant } => Some(participant.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn the_speaking_participant_becomes_dominant_and_a_sustained_challenger_takes_over() {
    let mut h = Harness::new(11);
    room(&mut h, &["alice", "bob", "carol"]);
    h.run(Duration::from_secs(2));
    // The server answers with the audio-level extension, or there would be nothing to read.
    let answered = h.sent.iter().any(|(p, m)| {
        p == "alice"
            && matches!(m, ServerMessage::SdpAnswer { sdp } if sdp.contains("urn:ietf:params:rtp-hdrext:ssrc-audio-level"))
    });
    assert!(answered, "no audio-level extmap in the answer");
    assert!(
        h.sent
            .iter()
            .all(|(_, m)| !matches!(m, ServerMessage::DominantSpeaker { .. })),
        "silence named a speaker"
    );

    h.client_mut("bob").audio_level = Some(SPEAKING);
    let started = h.now;
    assert!(
        h.run_until(Duration::from_secs(4), |h| dominant_everywhere(h, "bob")),
        "bob never became dominant everywhere: {:?}",
        h.clients
            .iter()
            .map(|c| (&c.name, &c.dominant))
            .collect::<Vec<_>>()
    );
    let took = h.now - started;
    assert!(took >= HOLD, "switched after {took:?}, before the hold");

    // Carol speaks up while bob goes quiet: carol takes over, once.
    h.client_mut("bob").audio_level = Some(SILENT);
    h.client_mut("carol").audio_level = Some(SPEAKING);
    assert!(h.run_until(Duration::from_secs(6), |h| dominant_everywhere(h, "carol")));
    // Then nobody speaks for a while: carol keeps the floor.
    h.client_mut("carol").audio_level = Some(SILENT);
    h.run(Duration::from_secs(5));
    assert!(dominant_everywhere(&h, "carol"));
    for n in ["alice", "bob", "carol"] {
        assert_eq!(
            announcements(&h, n),
            [Some("bob".to_owned()), Some("carol".to_owned())],
            "{n}"
        );
    }

    // A late joiner learns who holds the floor as soon as its session opens.
    h.join("room", "dave", &[]);
    assert_eq!(announcements(&h, "dave"), [Some("carol".to_owned())]);
    h.run(Duration::from_millis(100));
    assert_eq!(h.client("dave").dominant.as_deref(), Some("carol"));
    assert_eq!(h.sfu.dominant_speaker("room"), Some("carol"));
}

#[test]
fn a_short_interjection_does_not_take_the_floor() {
    let mut h = Harness::new(12);
    room(&mut h, &["alice", "bob"]);
    h.client_mut("alice").audio_level = Some(SPEAKING);
    assert!(h.run_until(Duration::from_secs(4), |h| dominant_everywhere(h, "alice")));
    h.run(Duration::from_secs(3));
    // Bob says "yes" over her for 600 ms.
    h.client_mut("bob").audio_level = Some(SPEAKING);
    h.run(Duration::from_millis(600));
    h.client_mut("bob").audio_level = Some(SILENT);
    h.run(Duration::from_secs(4));
    assert!(dominant_everywhere(&h, "alice"));
    assert_eq!(announcements(&h, "bob"), [Some("alice".to_owned())]);
}

#[test]
fn when_the_dominant_speaker_leaves_the_previous_one_is_announced() {
    let mut h = Harness::new(13);
    room(&mut h, &["alice", "bob", "carol"]);
    h.client_mut("alice").audio_level = Some(SPEAKING);
    assert!(h.run_until(Duration::from_secs(4), |h| dominant_everywhere(h, "alice")));
    h.client_mut("alice").audio_level = Some(SILENT);
    h.client_mut("bob").audio_level = Some(SPEAKING);
    assert!(h.run_until(Duration::from_secs(6), |h| dominant_everywhere(h, "bob")));
    h.leave("bob");
    h.run(Duration::from_millis(100));
    assert!(dominant_everywhere(&h, "alice"));
    assert_eq!(
        announcements(&h, "carol").last(),
        Some(&Some("alice".to_owned()))
    );
}
