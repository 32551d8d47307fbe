//! Joining and the participant's own state: welcome contents, names, media state, hand, reactions, capacity.

mod common;

use common::*;
use convene_conference::{Access, CloseReason, Config, Output};
use convene_proto::{
    ClientMessage as C, ErrorCode, PROTOCOL_VERSION, Reaction, ServerMessage as S,
};

#[test]
fn welcome_carries_the_whole_room_and_others_hear_of_the_newcomer() {
    let mut r = open_room(&["ada"]);
    let out = join(&mut r, T0 + 5_000, "bob", token("bob", false));
    let Some(S::Welcome {
        protocol_version,
        you,
        resume_token,
        room,
        participants,
        knockers,
        ..
    }) = to(&out, "bob").last().copied()
    else {
        panic!("{out:?}")
    };
    assert_eq!(
        (*protocol_version, you.as_str(), resume_token.as_str()),
        (PROTOCOL_VERSION, "bob", "rt-bob")
    );
    assert_eq!(room.name, "standup");
    assert_eq!(participants.len(), 2);
    assert_eq!(
        participants[1].avatar.as_deref(),
        Some("https://example.org/bob.png")
    );
    assert_eq!(participants[1].joined_at, T0 + 5_000);
    assert!(knockers.is_empty());
    assert!(
        matches!(to(&out, "ada")[..], [S::ParticipantJoined { participant }] if participant.id == "bob")
    );
    assert!(out.contains(&Output::MediaJoin { id: "bob".into() }));
}

#[test]
fn display_names_are_validated_and_trimmed() {
    let mut r = room(Access::Open);
    for bad in ["", "   ", "a\u{0}b", &"n".repeat(65)] {
        let out = join(&mut r, T0, "x", anon(bad));
        assert_eq!(error(&out, "x"), Some(ErrorCode::InvalidValue), "{bad:?}");
        assert_eq!(closed(&out, "x"), None);
    }
    join(&mut r, T0, "x", anon("  Ada  "));
    assert_eq!(r.snapshot().participants[0].name, "Ada");
    assert_refused(
        &mut r,
        "x",
        C::SetDisplayName { name: "\t".into() },
        ErrorCode::InvalidValue,
    );
    let out = send(
        &mut r,
        "x",
        C::SetDisplayName {
            name: "Ada L".into(),
        },
    );
    assert!(
        matches!(to(&out, "x")[..], [S::ParticipantUpdated { participant }] if participant.name == "Ada L")
    );
}

#[test]
fn joining_twice_is_refused() {
    let mut r = open_room(&["ada"]);
    let out = join(&mut r, T0, "ada", anon("ada"));
    assert_eq!(error(&out, "ada"), Some(ErrorCode::AlreadyJoined));
    assert_refused(
        &mut r,
        "ada",
        C::Join {
            protocol_version: 1,
            display_name: None,
            password: None,
        },
        ErrorCode::AlreadyJoined,
    );
    assert_refused(
        &mut r,
        "ada",
        C::Resume {
            protocol_version: 1,
            token: "rt-ada".into(),
        },
        ErrorCode::AlreadyJoined,
    );
}

#[test]
fn media_state_updates_are_partial_and_quiet_when_unchanged() {
    let mut r = open_room(&["ada", "bob"]);
    let out = send(
        &mut r,
        "bob",
        C::SetMediaState {
            audio_muted: Some(true),
            video_muted: None,
            screen_sharing: Some(true),
        },
    );
    assert!(
        matches!(to(&out, "ada")[..], [S::ParticipantUpdated { participant }] if participant.audio_muted && !participant.video_muted && participant.screen_sharing)
    );
    let out = send(
        &mut r,
        "bob",
        C::SetMediaState {
            audio_muted: Some(true),
            video_muted: None,
            screen_sharing: None,
        },
    );
    assert!(out.is_empty());
}

#[test]
fn raise_and_lower_hand() {
    let mut r = open_room(&["ada", "bob"]);
    let out = r.client(T0 + 42, "bob", C::RaiseHand { raised: true });
    assert!(
        matches!(to(&out, "ada")[..], [S::ParticipantUpdated { participant }] if participant.hand_raised_at == Some(T0 + 42))
    );
    // Raising again keeps the original time (the queue order).
    assert!(
        r.client(T0 + 99, "bob", C::RaiseHand { raised: true })
            .is_empty()
    );
    let out = send(&mut r, "bob", C::RaiseHand { raised: false });
    assert!(
        matches!(to(&out, "ada")[..], [S::ParticipantUpdated { participant }] if participant.hand_raised_at.is_none())
    );
}

#[test]
fn reactions_go_to_everyone() {
    let mut r = open_room(&["ada", "bob"]);
    let out = send(
        &mut r,
        "bob",
        C::Reaction {
            reaction: Reaction::Clap,
        },
    );
    for id in ["ada", "bob"] {
        assert_eq!(
            to(&out, id),
            [&S::Reaction {
                participant: "bob".into(),
                reaction: Reaction::Clap
            }]
        );
    }
}

#[test]
fn sdp_from_members_goes_to_media_and_from_outsiders_is_refused() {
    let mut r = open_room(&["ada"]);
    let offer = C::SdpOffer {
        sdp: "v=0".into(),
        sources: Default::default(),
    };
    assert_eq!(
        send(&mut r, "ada", offer.clone()),
        [Output::MediaSignal {
            id: "ada".into(),
            msg: offer.clone()
        }]
    );
    assert_refused(&mut r, "zed", offer, ErrorCode::NotJoined);
}

#[test]
fn last_n_requests_are_checked_then_go_to_media() {
    let mut r = open_room(&["ada"]);
    for last_n in [0, 1, convene_proto::MAX_LAST_N] {
        let msg = C::SetLastN { last_n };
        assert_eq!(
            send(&mut r, "ada", msg.clone()),
            [Output::MediaSignal {
                id: "ada".into(),
                msg
            }]
        );
    }
    for last_n in [convene_proto::MAX_LAST_N + 1, u32::MAX] {
        assert_refused(
            &mut r,
            "ada",
            C::SetLastN { last_n },
            ErrorCode::InvalidValue,
        );
    }
    assert_refused(
        &mut r,
        "zed",
        C::SetLastN { last_n: 1 },
        ErrorCode::NotJoined,
    );
}

#[test]
fn a_full_room_refuses_and_closes() {
    let mut r = room_with(
        Config {
            max_participants: 1,
            ..Default::default()
        },
        Access::Open,
    );
    join(&mut r, T0, "ada", anon("ada"));
    let out = join(&mut r, T0, "bob", anon("bob"));
    assert_eq!(error(&out, "bob"), Some(ErrorCode::RoomFull));
    assert_eq!(closed(&out, "bob"), Some(CloseReason::Policy));
    assert_eq!(ids(&r), ["ada"]);
}

#[test]
fn leave_from_a_connection_that_never_joined_just_closes() {
    let mut r = open_room(&["ada"]);
    let out = send(&mut r, "zed", C::Leave);
    assert_eq!(
        out,
        [Output::Close {
            to: "zed".into(),
            reason: CloseReason::Normal
        }]
    );
}
