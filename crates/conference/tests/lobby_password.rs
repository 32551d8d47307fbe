//! Lobby (knock, admit, deny, leave) and password (required, wrong, right, bypasses) rules.

mod common;

use common::*;
use convene_conference::{Access, CloseReason, Output};
use convene_proto::{ClientMessage as C, ErrorCode, KnockOutcome, Role, ServerMessage as S};

fn locked_room() -> convene_conference::Room {
    let mut r = open_room(&["ada", "bob"]);
    let out = send(
        &mut r,
        "ada",
        C::SetPassword {
            password: Some("s3cret".into()),
        },
    );
    assert!(matches!(to(&out, "bob")[0], S::RoomUpdated { room } if room.locked));
    r
}

#[test]
fn locked_room_asks_for_the_password() {
    let mut r = locked_room();
    let before = r.snapshot();
    let out = join(&mut r, T0 + 10_000, "eve", anon("eve"));
    assert_eq!(error(&out, "eve"), Some(ErrorCode::PasswordRequired));
    assert_eq!(
        closed(&out, "eve"),
        None,
        "the client may retry with a password"
    );
    let out = join_pw(&mut r, T0 + 10_000, "eve", "guess");
    assert_eq!(error(&out, "eve"), Some(ErrorCode::WrongPassword));
    assert_eq!(r.snapshot(), before);
    let out = join_pw(&mut r, T0 + 10_000, "eve", "s3cret");
    assert!(welcomed(&out, "eve"));
    assert_eq!(role_of(&r, "eve"), Some(Role::Participant));
}

#[test]
fn unlocking_lets_people_in_without_a_password() {
    let mut r = locked_room();
    send(&mut r, "ada", C::SetPassword { password: None });
    assert!(!r.snapshot().room.locked);
    assert!(welcomed(
        &join(&mut r, T0 + 10_000, "eve", anon("eve")),
        "eve"
    ));
}

#[test]
fn password_rules() {
    let mut r = open_room(&["ada"]);
    assert_refused(
        &mut r,
        "ada",
        C::SetPassword {
            password: Some(String::new()),
        },
        ErrorCode::InvalidValue,
    );
    assert_refused(
        &mut r,
        "ada",
        C::SetPassword {
            password: Some("x".repeat(129)),
        },
        ErrorCode::InvalidValue,
    );
}

#[test]
fn moderator_token_skips_password_and_lobby() {
    let mut r = locked_room();
    send(&mut r, "ada", C::SetLobby { enabled: true });
    assert!(welcomed(
        &join(&mut r, T0 + 10_000, "boss", token("boss", true)),
        "boss"
    ));
}

fn lobby_room() -> convene_conference::Room {
    let mut r = open_room(&["ada", "bob"]);
    let out = send(&mut r, "ada", C::SetLobby { enabled: true });
    assert!(matches!(to(&out, "bob")[0], S::RoomUpdated { room } if room.lobby_enabled));
    r
}

#[test]
fn knocking_tells_the_knocker_and_only_moderators() {
    let mut r = lobby_room();
    let out = join(&mut r, T0 + 10_000, "kay", anon("kay"));
    assert_eq!(to(&out, "kay"), [&S::LobbyWaiting]);
    assert!(
        matches!(to(&out, "ada")[..], [S::Knock { knocker }] if knocker.id == "kay" && knocker.name == "kay")
    );
    assert!(to(&out, "bob").is_empty());
    assert_eq!(r.snapshot().knockers.len(), 1);
    assert_eq!(ids(&r), ["ada", "bob"]);
}

#[test]
fn knockers_can_do_nothing_but_wait_or_leave() {
    let mut r = lobby_room();
    join(&mut r, T0 + 10_000, "kay", anon("kay"));
    assert_refused(
        &mut r,
        "kay",
        C::Chat {
            text: "let me in".into(),
            to: None,
        },
        ErrorCode::NotJoined,
    );
    assert_refused(
        &mut r,
        "kay",
        C::SdpAnswer { sdp: "v=0".into() },
        ErrorCode::NotJoined,
    );
    let out = join(&mut r, T0 + 10_000, "kay", anon("kay"));
    assert_eq!(error(&out, "kay"), Some(ErrorCode::AlreadyJoined));
    let out = send(&mut r, "kay", C::Leave);
    assert_eq!(closed(&out, "kay"), Some(CloseReason::Normal));
    assert_eq!(
        to(&out, "ada"),
        [&S::KnockResolved {
            participant: "kay".into(),
            outcome: KnockOutcome::Left,
            by: None
        }]
    );
    assert!(r.snapshot().knockers.is_empty());
}

#[test]
fn admit_welcomes_the_knocker() {
    let mut r = lobby_room();
    join(&mut r, T0 + 10_000, "kay", anon("kay"));
    let out = send(
        &mut r,
        "ada",
        C::Admit {
            participant: "kay".into(),
        },
    );
    assert!(welcomed(&out, "kay"));
    assert!(to(&out, "ada").contains(&&S::KnockResolved {
        participant: "kay".into(),
        outcome: KnockOutcome::Admitted,
        by: Some("ada".into())
    }));
    assert!(
        to(&out, "bob")
            .iter()
            .any(|m| matches!(m, S::ParticipantJoined { participant } if participant.id == "kay"))
    );
    assert!(out.contains(&Output::MediaJoin { id: "kay".into() }));
    assert_eq!(role_of(&r, "kay"), Some(Role::Participant));
    assert_refused(
        &mut r,
        "ada",
        C::Admit {
            participant: "kay".into(),
        },
        ErrorCode::NotFound,
    );
}

#[test]
fn deny_turns_the_knocker_away() {
    let mut r = lobby_room();
    join(&mut r, T0 + 10_000, "kay", anon("kay"));
    let out = send(
        &mut r,
        "ada",
        C::Deny {
            participant: "kay".into(),
        },
    );
    assert_eq!(to(&out, "kay"), [&S::LobbyDenied]);
    assert_eq!(closed(&out, "kay"), Some(CloseReason::Normal));
    assert!(r.snapshot().knockers.is_empty());
    assert_eq!(ids(&r), ["ada", "bob"]);
    assert_refused(
        &mut r,
        "ada",
        C::Deny {
            participant: "kay".into(),
        },
        ErrorCode::NotFound,
    );
}

#[test]
fn lobby_off_admits_everyone_waiting() {
    let mut r = lobby_room();
    join(&mut r, T0 + 10_000, "kay", anon("kay"));
    join(&mut r, T0 + 11_000, "lu", anon("lu"));
    let out = send(&mut r, "ada", C::SetLobby { enabled: false });
    assert!(welcomed(&out, "kay") && welcomed(&out, "lu"));
    assert_eq!(ids(&r), ["ada", "bob", "kay", "lu"]);
}

#[test]
fn correct_password_skips_the_lobby_and_admit_skips_the_password() {
    let mut r = locked_room();
    send(&mut r, "ada", C::SetLobby { enabled: true });
    assert!(welcomed(
        &join_pw(&mut r, T0 + 10_000, "pw", "s3cret"),
        "pw"
    ));
    let out = join_pw(&mut r, T0 + 10_000, "bad", "nope");
    assert_eq!(error(&out, "bad"), Some(ErrorCode::WrongPassword));
    let out = join(&mut r, T0 + 10_000, "kay", anon("kay"));
    assert_eq!(to(&out, "kay"), [&S::LobbyWaiting]);
    assert!(welcomed(
        &send(
            &mut r,
            "ada",
            C::Admit {
                participant: "kay".into()
            }
        ),
        "kay"
    ));
}

#[test]
fn moderators_get_the_lobby_in_welcome_and_new_moderators_are_briefed() {
    let mut r = lobby_room();
    join(&mut r, T0 + 10_000, "kay", anon("kay"));
    let out = send(
        &mut r,
        "ada",
        C::GrantModerator {
            participant: "bob".into(),
        },
    );
    assert!(
        to(&out, "bob")
            .iter()
            .any(|m| matches!(m, S::Knock { knocker } if knocker.id == "kay"))
    );
    let out = join(&mut r, T0 + 20_000, "boss", token("boss", true));
    assert!(
        matches!(to(&out, "boss").last(), Some(S::Welcome { knockers, .. }) if knockers.len() == 1)
    );
    let out = join_pw(&mut r, T0 + 20_000, "x", "irrelevant");
    assert_eq!(
        to(&out, "x"),
        [&S::LobbyWaiting],
        "an unlocked room ignores a password"
    );
}

#[test]
fn lobby_is_told_to_a_participant_promoted_by_hand_over() {
    let mut r = lobby_room();
    join(&mut r, T0 + 10_000, "kay", anon("kay"));
    let out = send(&mut r, "ada", C::Leave);
    assert!(
        to(&out, "bob")
            .iter()
            .any(|m| matches!(m, S::Knock { knocker } if knocker.id == "kay"))
    );
}

#[test]
fn knocker_whose_socket_drops_leaves_the_lobby() {
    let mut r = lobby_room();
    join(&mut r, T0 + 10_000, "kay", anon("kay"));
    let out = r.disconnected(T0 + 11_000, "kay");
    assert_eq!(
        to(&out, "ada"),
        [&S::KnockResolved {
            participant: "kay".into(),
            outcome: KnockOutcome::Left,
            by: None
        }]
    );
    assert!(r.snapshot().knockers.is_empty());
}

#[test]
fn admitting_into_a_full_room_is_refused() {
    let config = convene_conference::Config {
        max_participants: 2,
        ..Default::default()
    };
    let mut r = room_with(config, Access::Open);
    join(&mut r, T0, "ada", anon("ada"));
    send(&mut r, "ada", C::SetLobby { enabled: true });
    join(&mut r, T0, "kay", anon("kay"));
    join(&mut r, T0, "lu", anon("lu"));
    assert!(welcomed(
        &send(
            &mut r,
            "ada",
            C::Admit {
                participant: "kay".into()
            }
        ),
        "kay"
    ));
    assert_refused(
        &mut r,
        "ada",
        C::Admit {
            participant: "lu".into(),
        },
        ErrorCode::RoomFull,
    );
}
