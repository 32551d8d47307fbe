//! Roles and moderator powers: who is moderator, hand-over, and every moderator action allowed and refused.

mod common;

use common::*;
use convene_conference::{Access, CloseReason, Output};
use convene_proto::{
    ClientMessage as C, ErrorCode, LeaveReason, Role, ServerMessage as S, TrackKind,
};

#[test]
fn first_participant_of_an_open_room_is_moderator() {
    let r = open_room(&["ada", "bob", "cy"]);
    assert_eq!(role_of(&r, "ada"), Some(Role::Moderator));
    assert_eq!(role_of(&r, "bob"), Some(Role::Participant));
    assert_eq!(role_of(&r, "cy"), Some(Role::Participant));
}

#[test]
fn oldest_remaining_participant_becomes_moderator_when_the_moderator_leaves() {
    let mut r = open_room(&["ada", "bob", "cy"]);
    let out = send(&mut r, "ada", C::Leave);
    assert_eq!(closed(&out, "ada"), Some(CloseReason::Normal));
    assert_eq!(role_of(&r, "bob"), Some(Role::Moderator));
    assert_eq!(role_of(&r, "cy"), Some(Role::Participant));
    // Everyone left hears of the departure, then of the new moderator.
    for id in ["bob", "cy"] {
        let msgs = to(&out, id);
        assert!(
            matches!(msgs[0], S::ParticipantLeft { participant, reason: LeaveReason::Left } if participant == "ada")
        );
        assert!(
            matches!(msgs[1], S::ParticipantUpdated { participant } if participant.id == "bob" && participant.role == Role::Moderator)
        );
    }
    assert!(out.contains(&Output::MediaLeave { id: "ada".into() }));
}

#[test]
fn no_hand_over_while_another_moderator_remains() {
    let mut r = open_room(&["ada", "bob", "cy"]);
    send(
        &mut r,
        "ada",
        C::GrantModerator {
            participant: "cy".into(),
        },
    );
    send(&mut r, "ada", C::Leave);
    assert_eq!(role_of(&r, "bob"), Some(Role::Participant));
    assert_eq!(role_of(&r, "cy"), Some(Role::Moderator));
}

#[test]
fn with_tokens_the_token_says_and_nobody_is_promoted() {
    let mut r = room(Access::Token);
    join(&mut r, T0, "p", token("p", false));
    join(&mut r, T0 + 1, "m", token("m", true));
    join(&mut r, T0 + 2, "q", token("q", false));
    assert_eq!(role_of(&r, "p"), Some(Role::Participant));
    assert_eq!(role_of(&r, "m"), Some(Role::Moderator));
    send(&mut r, "m", C::Leave);
    assert_eq!(role_of(&r, "p"), Some(Role::Participant));
    assert_eq!(role_of(&r, "q"), Some(Role::Participant));
}

#[test]
fn moderator_token_is_moderator_in_an_open_room_too() {
    let mut r = open_room(&["ada"]);
    join(&mut r, T0 + 5, "m", token("m", true));
    assert_eq!(role_of(&r, "m"), Some(Role::Moderator));
}

#[test]
fn grant_moderator() {
    let mut r = open_room(&["ada", "bob"]);
    let out = send(
        &mut r,
        "ada",
        C::GrantModerator {
            participant: "bob".into(),
        },
    );
    assert_eq!(role_of(&r, "bob"), Some(Role::Moderator));
    assert!(
        matches!(to(&out, "ada")[0], S::ParticipantUpdated { participant } if participant.role == Role::Moderator)
    );
    // Granting again is a no-op, not an error.
    let out = send(
        &mut r,
        "ada",
        C::GrantModerator {
            participant: "bob".into(),
        },
    );
    assert!(out.is_empty());
    assert_refused(
        &mut r,
        "ada",
        C::GrantModerator {
            participant: "nobody".into(),
        },
        ErrorCode::NotFound,
    );
}

#[test]
fn mute_one_tells_the_target_and_everyone() {
    let mut r = open_room(&["ada", "bob", "cy"]);
    let out = send(
        &mut r,
        "ada",
        C::Mute {
            participant: "bob".into(),
            kind: TrackKind::Audio,
        },
    );
    assert_eq!(
        to(&out, "bob")[0],
        &S::Muted {
            kind: TrackKind::Audio,
            by: "ada".into()
        }
    );
    assert!(
        matches!(to(&out, "cy")[0], S::ParticipantUpdated { participant } if participant.id == "bob" && participant.audio_muted && !participant.video_muted)
    );
    // Already muted: nothing more to say.
    assert!(
        send(
            &mut r,
            "ada",
            C::Mute {
                participant: "bob".into(),
                kind: TrackKind::Audio
            }
        )
        .is_empty()
    );
    assert_refused(
        &mut r,
        "ada",
        C::Mute {
            participant: "zed".into(),
            kind: TrackKind::Video,
        },
        ErrorCode::NotFound,
    );
}

#[test]
fn mute_everyone_spares_the_moderator() {
    let mut r = open_room(&["ada", "bob", "cy"]);
    let out = send(
        &mut r,
        "ada",
        C::MuteAll {
            kind: TrackKind::Video,
        },
    );
    let snap = r.snapshot();
    for p in &snap.participants {
        assert_eq!(p.video_muted, p.id != "ada", "{}", p.id);
        assert!(!p.audio_muted);
    }
    assert!(
        to(&out, "ada")
            .iter()
            .all(|m| !matches!(m, S::Muted { .. }))
    );
    assert!(matches!(
        to(&out, "cy")[..],
        [
            S::ParticipantUpdated { .. },
            S::Muted {
                kind: TrackKind::Video,
                ..
            },
            S::ParticipantUpdated { .. }
        ]
    ));
}

#[test]
fn kick_removes_and_closes_the_target() {
    let mut r = open_room(&["ada", "bob", "cy"]);
    let out = send(
        &mut r,
        "ada",
        C::Kick {
            participant: "bob".into(),
            reason: Some("spam".into()),
        },
    );
    assert_eq!(
        to(&out, "bob"),
        [&S::Kicked {
            by: Some("ada".into()),
            reason: Some("spam".into())
        }]
    );
    assert_eq!(closed(&out, "bob"), Some(CloseReason::Normal));
    assert!(to(&out, "cy").contains(&&S::ParticipantLeft {
        participant: "bob".into(),
        reason: LeaveReason::Kicked
    }));
    assert!(out.contains(&Output::MediaLeave { id: "bob".into() }));
    assert_eq!(ids(&r), ["ada", "cy"]);
}

#[test]
fn kick_refusals() {
    let mut r = open_room(&["ada", "bob"]);
    assert_refused(
        &mut r,
        "ada",
        C::Kick {
            participant: "ada".into(),
            reason: None,
        },
        ErrorCode::InvalidValue,
    );
    assert_refused(
        &mut r,
        "ada",
        C::Kick {
            participant: "zed".into(),
            reason: None,
        },
        ErrorCode::NotFound,
    );
    assert_refused(
        &mut r,
        "ada",
        C::Kick {
            participant: "bob".into(),
            reason: Some("x".repeat(300)),
        },
        ErrorCode::TooLarge,
    );
}

#[test]
fn end_meeting_closes_everyone_including_knockers() {
    let mut r = open_room(&["ada", "bob"]);
    send(&mut r, "ada", C::SetLobby { enabled: true });
    join(&mut r, T0 + 9_000, "kay", anon("kay"));
    let out = send(&mut r, "ada", C::EndMeeting);
    for id in ["ada", "bob", "kay"] {
        assert_eq!(
            to(&out, id),
            [&S::MeetingEnded {
                by: Some("ada".into())
            }],
            "{id}"
        );
        assert_eq!(closed(&out, id), Some(CloseReason::Normal));
    }
    assert!(out.contains(&Output::MediaLeave { id: "bob".into() }));
    assert!(r.is_ended() && r.is_expired(T0));
    let out = join(&mut r, T0 + 70_000, "late", anon("late"));
    assert_eq!(error(&out, "late"), Some(ErrorCode::Unavailable));
}

#[test]
fn every_moderator_action_is_forbidden_to_participants_and_guests() {
    let actions = || {
        vec![
            C::GrantModerator {
                participant: "bob".into(),
            },
            C::Mute {
                participant: "ada".into(),
                kind: TrackKind::Audio,
            },
            C::MuteAll {
                kind: TrackKind::Audio,
            },
            C::MuteAll {
                kind: TrackKind::Video,
            },
            C::Kick {
                participant: "ada".into(),
                reason: None,
            },
            C::EndMeeting,
            C::SetPassword {
                password: Some("pw".into()),
            },
            C::SetPassword { password: None },
            C::SetLobby { enabled: true },
            C::SetLobby { enabled: false },
            C::Admit {
                participant: "kay".into(),
            },
            C::Deny {
                participant: "kay".into(),
            },
            C::SetMetadata {
                key: "topic".into(),
                value: "x".into(),
            },
            C::SetMetadata {
                key: "topic".into(),
                value: serde_json::Value::Null,
            },
            C::StartRecording,
            C::StopRecording,
        ]
    };
    let mut r = open_room(&["ada", "bob"]);
    send(&mut r, "ada", C::SetLobby { enabled: true });
    join(&mut r, T0 + 9_000, "kay", anon("kay"));
    for msg in actions() {
        assert_refused(&mut r, "bob", msg, ErrorCode::Forbidden);
    }
    // A guest in a secure-domain room has no more rights.
    let mut r = room(Access::GuestsAfterModerator);
    join(&mut r, T0, "host", token("host", true));
    join(&mut r, T0 + 1, "bob", anon("bob"));
    assert_eq!(role_of(&r, "bob"), Some(Role::Guest));
    for msg in actions() {
        assert_refused(&mut r, "bob", msg, ErrorCode::Forbidden);
    }
}

#[test]
fn moderators_ask_the_server_to_record() {
    let mut r = open_room(&["ada", "bob"]);
    assert_eq!(
        send(&mut r, "ada", C::StartRecording),
        [Output::Recording {
            start: true,
            by: "ada".into()
        }]
    );
    assert_eq!(
        send(&mut r, "ada", C::StopRecording),
        [Output::Recording {
            start: false,
            by: "ada".into()
        }]
    );
}

#[test]
fn a_token_without_the_recording_feature_may_not_record() {
    let mut r = room(Access::Token);
    let mut no = token("no", true);
    no.may_record = Some(false);
    let mut yes = token("yes", true);
    yes.may_record = Some(true);
    join(&mut r, T0, "no", no);
    join(&mut r, T0, "yes", yes);
    assert_refused(&mut r, "no", C::StartRecording, ErrorCode::Forbidden);
    assert_eq!(
        send(&mut r, "yes", C::StartRecording),
        [Output::Recording {
            start: true,
            by: "yes".into()
        }]
    );
}
