//! Whatever a client or the network sends can be wrong: garbage datagrams, datagrams for nobody,
//! malformed SDP, offers without a usable codec, stray answers, a client that stops answering.
//! Each is dropped or answered with a `media_error`; other sessions never notice.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use convene_media::{MediaError, SfuConfig};
use convene_proto::{ClientMessage, MediaSource};
use convene_testkit::Harness;
use convene_testkit::rng::Rng;

const AV: &[MediaSource] = &[MediaSource::Microphone, MediaSource::Camera];

fn frames(h: &Harness, me: &str, from: &str) -> u64 {
    h.client(me)
        .received_from(from, MediaSource::Camera)
        .map_or(0, |r| r.frames)
}

#[test]
fn garbage_datagrams_are_dropped_and_media_continues() {
    let mut h = Harness::new(11);
    h.join("room", "alice", AV);
    h.join("room", "bob", AV);
    h.run(Duration::from_secs(2));
    let before = frames(&h, "bob", "alice");
    let dropped_before = h.sfu.counters().packets_dropped;

    let mut rng = Rng::new(99);
    let alice_addr = h.client("alice").addr;
    let stranger: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    for i in 0..3000 {
        let len = rng.below(1400) as usize;
        let mut data = rng.bytes(len);
        // Make some of it look like STUN, DTLS, RTP and RTCP so it gets past the first checks.
        match i % 5 {
            0 if len > 20 => {
                data[0] = 0;
                data[4..8].copy_from_slice(&[0x21, 0x12, 0xa4, 0x42]);
            }
            1 if len > 0 => data[0] = 22,
            2 if len > 1 => {
                data[0] = 0x80;
                data[1] = 96;
            }
            3 if len > 1 => {
                data[0] = 0x80;
                data[1] = 200;
            }
            _ => {}
        }
        // Half from an unknown address, half spoofing alice's.
        let from = if i % 2 == 0 { stranger } else { alice_addr };
        h.inject(from, data);
        if i % 100 == 0 {
            h.run(Duration::from_millis(10));
        }
    }
    h.run(Duration::from_secs(2));
    assert!(h.sfu.counters().packets_dropped > dropped_before + 1000);
    assert!(
        frames(&h, "bob", "alice") > before + 30,
        "media kept flowing"
    );
    assert!(frames(&h, "alice", "bob") > 30);
    assert!(h.closed.is_empty(), "{:?}", h.closed);
    assert_eq!(h.sfu.session_count(), 2);
}

#[test]
fn bad_signaling_gets_media_errors_and_changes_nothing() {
    let mut h = Harness::new(12);
    h.join("room", "alice", AV);
    h.join("room", "bob", AV);
    h.run(Duration::from_secs(2));
    let before = frames(&h, "bob", "alice");

    let offer = |sdp: &str| ClientMessage::SdpOffer {
        sdp: sdp.to_owned(),
        sources: BTreeMap::new(),
    };
    h.signal_from("alice", offer("this is not sdp"));
    h.signal_from("alice", offer(""));
    h.signal_from("alice", offer(&"a=x\r\n".repeat(20_000)));
    h.signal_from(
        "alice",
        ClientMessage::SdpAnswer {
            sdp: "v=0\r\n".into(),
        },
    );
    // A valid-looking answer when no server offer is outstanding.
    h.signal_from(
        "bob",
        ClientMessage::SdpAnswer {
            sdp: "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n".into(),
        },
    );
    let mut sources = BTreeMap::new();
    sources.insert("x".repeat(100), MediaSource::Camera);
    h.signal_from(
        "alice",
        ClientMessage::SdpOffer {
            sdp: "v=0\r\n".into(),
            sources,
        },
    );
    h.signal_from("nobody", offer("v=0\r\n"));
    h.run(Duration::from_secs(2));

    let codes: Vec<&str> = h.errors.iter().map(|(_, e)| e.code()).collect();
    assert!(
        codes.iter().filter(|c| **c == "malformed_sdp").count() >= 3,
        "{codes:?}"
    );
    assert!(codes.contains(&"invalid_sources"), "{codes:?}");
    assert!(codes.contains(&"not_joined"), "{codes:?}");
    assert!(
        h.errors.iter().any(|(who, e)| who == "bob"
            && matches!(
                e,
                MediaError::MalformedSdp(_) | MediaError::UnexpectedAnswer
            )),
        "{:?}",
        h.errors
    );
    // The clients got the errors as media_error messages.
    assert!(
        h.client("alice").media_errors.len() >= 5,
        "{:?}",
        h.client("alice").media_errors
    );
    assert!(
        frames(&h, "bob", "alice") > before + 30,
        "media kept flowing"
    );
    assert!(h.closed.is_empty(), "{:?}", h.closed);
}

/// An audio m-line offering only PCMU, which the server does not forward.
const PCMU_ONLY: &str = "v=0\r
o=- 4215775240449105457 2 IN IP4 127.0.0.1\r
s=-\r
t=0 0\r
a=group:BUNDLE 0\r
a=msid-semantic: WMS\r
m=audio 9 UDP/TLS/RTP/SAVPF 0\r
c=IN IP4 0.0.0.0\r
a=rtcp:9 IN IP4 0.0.0.0\r
a=ice-ufrag:abcd\r
a=ice-pwd:abcdefghijklmnopqrstuvwx\r
a=fingerprint:sha-256 11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00\r
a=setup:actpass\r
a=mid:0\r
a=sendonly\r
a=msid:- track\r
a=rtcp-mux\r
a=rtpmap:0 PCMU/8000\r
a=ssrc:1111 cname:x\r
";

#[test]
fn offer_without_usable_codec_is_reported() {
    let mut h = Harness::new(13);
    h.join("room", "alice", AV);
    h.run(Duration::from_secs(1));
    h.sfu.join(h.now, "room", "mallory").unwrap();
    h.signal_from(
        "mallory",
        ClientMessage::SdpOffer {
            sdp: PCMU_ONLY.into(),
            sources: BTreeMap::new(),
        },
    );
    h.run(Duration::from_millis(100));
    let reported = h.sent.iter().any(|(who, m)| {
        who == "mallory"
            && matches!(m, convene_proto::ServerMessage::MediaError { code, .. } if code == "no_usable_codec")
    });
    assert!(
        reported,
        "{:?}",
        h.sent
            .iter()
            .filter(|(w, _)| w == "mallory")
            .collect::<Vec<_>>()
    );
    // Nothing was published, so alice is offered nothing.
    assert_eq!(h.sfu.track_count(), 2);
    assert!(h.client("alice").tracks.is_empty());
}

#[test]
fn client_that_never_connects_is_removed() {
    let mut config = SfuConfig::with_candidates(Vec::new());
    config.connect_timeout = Duration::from_secs(5);
    let mut h = Harness::with_config(14, config);
    h.join("room", "alice", AV);
    let idx = h.join("room", "ghost", AV);
    // The ghost sent its offer, then never does ICE.
    h.clients[idx].silent = true;
    h.run(Duration::from_secs(6));
    assert_eq!(h.closed.len(), 1, "{:?}", h.closed);
    assert_eq!(h.closed[0].0, "ghost");
    assert_eq!(h.sfu.session_count(), 1);
    assert_eq!(h.sfu.track_count(), 2);
    h.run(Duration::from_secs(1));
    assert!(
        h.client("alice").tracks.is_empty(),
        "{:?}",
        h.client("alice").tracks
    );
    assert!(h.client("alice").connected);
}

#[test]
fn vanished_client_is_removed_on_consent_failure() {
    let mut h = Harness::new(15);
    h.join("room", "alice", AV);
    h.join("room", "bob", AV);
    h.run(Duration::from_secs(2));
    assert_eq!(h.client("alice").tracks.len(), 2);

    // Bob's machine goes away without a word: no STUN consent, no RTCP, nothing.
    h.client_mut("bob").silent = true;
    let gone = h.now;
    let ok = h.run_until(Duration::from_secs(40), |h| !h.closed.is_empty());
    assert!(ok, "bob was never removed");
    let after = h.now - gone;
    assert_eq!(h.closed[0].0, "bob");
    // Browsers check consent every ~5 s; str0m gives up 15 s after the last check.
    assert!(after < Duration::from_secs(25), "removed after {after:?}");
    h.run(Duration::from_secs(1));
    assert!(
        h.client("alice").tracks.is_empty(),
        "{:?}",
        h.client("alice").tracks
    );
    assert_eq!(h.sfu.session_count(), 1);
}
