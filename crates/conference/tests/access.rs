//! Access modes: open, token required, and guests after a token-holding moderator ("secure domain").

mod common;

use common::*;
use convene_conference::{Access, CloseReason};
use convene_proto::{ClientMessage as C, ErrorCode, Role};

#[test]
fn token_mode_refuses_and_closes_anonymous_joins() {
    let mut r = room(Access::Token);
    let out = join(&mut r, T0, "anon", anon("anon"));
    assert_eq!(error(&out, "anon"), Some(ErrorCode::TokenRequired));
    assert_eq!(closed(&out, "anon"), Some(CloseReason::Policy));
    assert!(ids(&r).is_empty());
    assert!(welcomed(&join(&mut r, T0, "p", token("p", false)), "p"));
}

#[test]
fn guests_wait_for_a_token_holding_moderator() {
    let mut r = room(Access::GuestsAfterModerator);
    let out = join(&mut r, T0, "g", anon("g"));
    assert_eq!(error(&out, "g"), Some(ErrorCode::HostRequired));
    assert_eq!(closed(&out, "g"), None, "the guest may try again");
    // A token holder who is not a moderator does not open the room to guests.
    join(&mut r, T0, "p", token("p", false));
    assert_eq!(
        error(&join(&mut r, T0, "g", anon("g")), "g"),
        Some(ErrorCode::HostRequired)
    );
    join(&mut r, T0, "host", token("host", true));
    assert!(welcomed(&join(&mut r, T0, "g", anon("g")), "g"));
    assert_eq!(role_of(&r, "g"), Some(Role::Guest));
    assert_eq!(role_of(&r, "p"), Some(Role::Participant));
}

#[test]
fn a_guest_made_moderator_does_not_open_the_room_to_more_guests() {
    let mut r = room(Access::GuestsAfterModerator);
    join(&mut r, T0, "host", token("host", true));
    join(&mut r, T0, "g", anon("g"));
    send(
        &mut r,
        "host",
        C::GrantModerator {
            participant: "g".into(),
        },
    );
    send(&mut r, "host", C::Leave);
    assert_eq!(role_of(&r, "g"), Some(Role::Moderator));
    assert_eq!(
        error(&join(&mut r, T0, "g2", anon("g2")), "g2"),
        Some(ErrorCode::HostRequired)
    );
}

#[test]
fn open_mode_lets_token_holders_and_anonymous_users_in() {
    let mut r = room(Access::Open);
    join(&mut r, T0, "p", token("p", false));
    join(&mut r, T0, "a", anon("a"));
    // The first joiner is moderator even with a non-moderator token: open rooms always have one.
    assert_eq!(role_of(&r, "p"), Some(Role::Moderator));
    assert_eq!(role_of(&r, "a"), Some(Role::Participant));
}
