//! Crossing offers: the server's offer (another participant's tracks) and the client's own offer
//! (adding a screen share) are in flight at once. The server drops its offer, answers the
//! client's, then offers again; the client ignored the crossing offer. Both ends converge.

use std::time::Duration;

use convene_proto::{MediaSource, ServerMessage};
use convene_testkit::Harness;
use convene_testkit::harness::kind_of;

#[test]
fn crossing_offers_converge() {
    let mut h = Harness::new(6);
    h.signal_latency = Duration::from_millis(40);
    h.join(
        "room",
        "alice",
        &[MediaSource::Microphone, MediaSource::Camera],
    );
    h.run(Duration::from_secs(1));

    // Bob joins: once his offer is answered, the server offers his tracks to alice. At that
    // moment alice starts a screen share, so her offer crosses the server's.
    h.join(
        "room",
        "bob",
        &[MediaSource::Microphone, MediaSource::Camera],
    );
    let ok = h.run_until(Duration::from_secs(1), |h| {
        h.sent
            .iter()
            .any(|(who, m)| who == "alice" && matches!(m, ServerMessage::SdpOffer { .. }))
    });
    assert!(ok, "server offered bob's tracks to alice");
    let now = h.now;
    h.client_mut("alice")
        .offer(now, &[(kind_of(MediaSource::Screen), MediaSource::Screen)]);
    h.pump();
    h.run(Duration::from_secs(3));

    let alice = h.client("alice");
    assert!(alice.ignored_offers >= 1, "alice saw the crossing offer");
    assert!(!alice.has_pending_offer());
    assert_eq!(alice.tracks.len(), 2, "{:?}", alice.tracks);
    assert!(
        alice
            .received_from("bob", MediaSource::Camera)
            .is_some_and(|r| r.frames > 20)
    );
    let bob = h.client("bob");
    assert_eq!(bob.tracks.len(), 3, "{:?}", bob.tracks);
    assert!(
        bob.received_from("alice", MediaSource::Screen)
            .is_some_and(|r| r.frames > 20)
    );
    assert!(h.errors.is_empty(), "{:?}", h.errors);
    assert!(h.closed.is_empty(), "{:?}", h.closed);
}
