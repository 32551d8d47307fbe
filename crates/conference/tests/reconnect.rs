//! Dropped connections, resume within the grace period, timeouts, media failures, and room expiry.

mod common;

use common::*;
use convene_conference::{Access, Output};
use convene_proto::{ClientMessage as C, ErrorCode, LeaveReason, ServerMessage as S};

const GRACE: u64 = 30_000;

#[test]
fn a_dropped_participant_keeps_its_place_and_resumes() {
    let mut r = open_room(&["ada", "bob"]);
    let out = r.disconnected(T0 + 10_000, "bob");
    assert!(out.is_empty(), "others see nothing while bob may come back");
    assert_eq!(r.next_deadline(), Some(T0 + 10_000 + GRACE));
    // Messages to bob are not produced while its socket is gone.
    let out = send(
        &mut r,
        "ada",
        C::Chat {
            text: "hi".into(),
            to: None,
        },
    );
    assert!(to(&out, "bob").is_empty());
    let out = r.resume(T0 + 20_000, "conn2".into(), "rt-bob", "rt-bob-2".into());
    assert_eq!(
        out[0],
        Output::Rebind {
            from: "conn2".into(),
            to: "bob".into()
        }
    );
    let Some(S::Welcome {
        you,
        resume_token,
        chat_history,
        ..
    }) = to(&out, "bob").first().copied()
    else {
        panic!("{out:?}")
    };
    assert_eq!((you.as_str(), resume_token.as_str()), ("bob", "rt-bob-2"));
    assert_eq!(
        chat_history.len(),
        1,
        "the missed room message is in the history"
    );
    assert!(r.tick(T0 + 100_000).is_empty(), "no timeout after resuming");
    assert_eq!(ids(&r), ["ada", "bob"]);
    // The old token is spent.
    let out = r.resume(T0 + 21_000, "conn3".into(), "rt-bob", "x".into());
    assert_eq!(error(&out, "conn3"), Some(ErrorCode::ResumeFailed));
}

#[test]
fn the_place_is_lost_after_the_grace_period() {
    let mut r = open_room(&["ada", "bob"]);
    r.disconnected(T0 + 10_000, "ada");
    assert!(r.tick(T0 + 10_000 + GRACE - 1).is_empty());
    let out = r.tick(T0 + 10_000 + GRACE);
    assert!(to(&out, "bob").contains(&&S::ParticipantLeft {
        participant: "ada".into(),
        reason: LeaveReason::Timeout
    }));
    assert!(out.contains(&Output::MediaLeave { id: "ada".into() }));
    assert_eq!(role_of(&r, "bob"), Some(convene_proto::Role::Moderator));
    let out = r.resume(T0 + 50_000, "c".into(), "rt-ada", "n".into());
    assert_eq!(error(&out, "c"), Some(ErrorCode::ResumeFailed));
    assert_eq!(ids(&r), ["bob"]);
}

#[test]
fn resume_while_the_old_socket_is_open_takes_over() {
    let mut r = open_room(&["ada"]);
    let out = r.resume(T0 + 1_000, "c2".into(), "rt-ada", "rt2".into());
    assert_eq!(
        out[0],
        Output::Rebind {
            from: "c2".into(),
            to: "ada".into()
        }
    );
    assert!(welcomed(&out, "ada"));
    assert_eq!(
        r.resume(T0, "c3".into(), "", "x".into()).len(),
        1,
        "an empty token never matches"
    );
}

#[test]
fn media_failure_with_an_open_socket_reopens_media() {
    let mut r = open_room(&["ada", "bob"]);
    let out = r.media_closed(T0 + 5_000, "bob");
    assert!(matches!(to(&out, "bob")[..], [S::MediaError { code, .. }] if code == "media_closed"));
    assert!(out.contains(&Output::MediaJoin { id: "bob".into() }));
    assert_eq!(ids(&r), ["ada", "bob"]);
}

#[test]
fn media_failure_without_a_socket_removes_the_participant() {
    let mut r = open_room(&["ada", "bob"]);
    r.disconnected(T0 + 5_000, "bob");
    let out = r.media_closed(T0 + 6_000, "bob");
    assert!(to(&out, "ada").contains(&&S::ParticipantLeft {
        participant: "bob".into(),
        reason: LeaveReason::MediaFailed
    }));
    assert_eq!(ids(&r), ["ada"]);
    assert!(r.media_closed(T0 + 7_000, "bob").is_empty());
}

#[test]
fn an_empty_room_expires_after_its_grace_period() {
    let mut r = room(Access::Open);
    assert!(
        !r.is_expired(T0 + GRACE - 1),
        "a new room waits for its first participant"
    );
    join(&mut r, T0, "ada", anon("ada"));
    assert!(!r.is_expired(T0 + 10 * GRACE));
    assert_eq!(r.next_deadline(), None);
    send(&mut r, "ada", C::Leave);
    let left_at = T0 + 60_000;
    assert_eq!(r.next_deadline(), Some(left_at + GRACE));
    assert!(!r.is_expired(left_at + GRACE - 1));
    assert!(r.is_expired(left_at + GRACE));
    // Someone arriving in time keeps the room (and its state) alive.
    join(&mut r, left_at + 1, "bob", anon("bob"));
    assert!(!r.is_expired(left_at + 10 * GRACE));
}

#[test]
fn a_room_with_a_member_waiting_to_resume_is_not_empty() {
    let mut r = open_room(&["ada"]);
    r.disconnected(T0, "ada");
    assert!(!r.is_expired(T0 + GRACE - 1));
    r.tick(T0 + GRACE);
    assert!(r.is_expired(T0 + 2 * GRACE));
}

#[test]
fn operator_kick_and_end() {
    let mut r = open_room(&["ada", "bob"]);
    assert!(r.admin_kick(T0, "zed").is_none());
    let out = r.admin_kick(T0, "bob").unwrap();
    assert_eq!(
        to(&out, "bob"),
        [&S::Kicked {
            by: None,
            reason: None
        }]
    );
    let out = r.end(None);
    assert_eq!(to(&out, "ada"), [&S::MeetingEnded { by: None }]);
    assert!(r.is_ended());
}

#[test]
fn a_connection_with_a_place_cannot_resume_another() {
    let mut r = open_room(&["ada", "bob"]);
    let before = r.snapshot();
    let out = r.resume(T0, "ada".into(), "rt-bob", "x".into());
    assert_eq!(error(&out, "ada"), Some(ErrorCode::AlreadyJoined));
    assert_eq!(out.len(), 1);
    assert_eq!(r.snapshot(), before);
    // The token still works for Bob.
    assert!(welcomed(
        &r.resume(T0, "c".into(), "rt-bob", "y".into()),
        "bob"
    ));
}
