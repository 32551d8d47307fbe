//! Test harness for the conference core: builds rooms and identities, and reads outputs.
#![allow(dead_code)]

use convene_conference::{Access, CloseReason, Config, Identity, Output, Room};
use convene_proto::{ClientMessage, ErrorCode, ServerMessage};

pub const T0: u64 = 1_763_892_000_000;

pub fn room(access: Access) -> Room {
    Room::new("standup".into(), Config::default(), access, T0)
}

pub fn room_with(config: Config, access: Access) -> Room {
    Room::new("standup".into(), config, access, T0)
}

pub fn anon(name: &str) -> Identity {
    Identity {
        name: name.into(),
        avatar: None,
        email: None,
        authenticated: false,
        token_moderator: false,
        may_record: None,
    }
}

pub fn token(name: &str, moderator: bool) -> Identity {
    Identity {
        name: name.into(),
        avatar: Some(format!("https://example.org/{name}.png")),
        email: Some(format!("{name}@example.org")),
        authenticated: true,
        token_moderator: moderator,
        may_record: None,
    }
}

/// Joins `id` with no password at `now`; the resume token is `rt-<id>`.
pub fn join(room: &mut Room, now: u64, id: &str, identity: Identity) -> Vec<Output> {
    room.join(now, id.into(), identity, None, format!("rt-{id}"))
}

pub fn join_pw(room: &mut Room, now: u64, id: &str, password: &str) -> Vec<Output> {
    room.join(
        now,
        id.into(),
        anon(id),
        Some(password.into()),
        format!("rt-{id}"),
    )
}

/// Opens an open room with `ids` joined in order (the first is moderator).
pub fn open_room(ids: &[&str]) -> Room {
    let mut r = room(Access::Open);
    for (i, id) in ids.iter().enumerate() {
        let out = join(&mut r, T0 + i as u64 * 1000, id, anon(id));
        assert!(welcomed(&out, id), "{id} not admitted: {out:?}");
    }
    r
}

pub fn send(room: &mut Room, from: &str, msg: ClientMessage) -> Vec<Output> {
    room.client(T0 + 60_000, from, msg)
}

/// Messages sent to `to`, in order.
pub fn to<'a>(out: &'a [Output], to: &str) -> Vec<&'a ServerMessage> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send { to: t, msg } if t == to => Some(msg),
            _ => None,
        })
        .collect()
}

pub fn types(out: &[Output], id: &str) -> Vec<&'static str> {
    to(out, id).iter().map(|m| m.type_name()).collect()
}

pub fn welcomed(out: &[Output], id: &str) -> bool {
    to(out, id)
        .iter()
        .any(|m| matches!(m, ServerMessage::Welcome { you, .. } if you == id))
}

/// The single error code sent to `id`, if any.
pub fn error(out: &[Output], id: &str) -> Option<ErrorCode> {
    let codes: Vec<ErrorCode> = to(out, id)
        .iter()
        .filter_map(|m| match m {
            ServerMessage::Error { code, message, .. } => {
                assert!(!message.is_empty());
                Some(*code)
            }
            _ => None,
        })
        .collect();
    assert!(codes.len() <= 1, "several errors: {codes:?}");
    codes.first().copied()
}

pub fn closed(out: &[Output], id: &str) -> Option<CloseReason> {
    out.iter().find_map(|o| match o {
        Output::Close { to, reason } if to == id => Some(*reason),
        _ => None,
    })
}

pub fn role_of(room: &Room, id: &str) -> Option<convene_proto::Role> {
    room.snapshot()
        .participants
        .iter()
        .find(|p| p.id == id)
        .map(|p| p.role)
}

pub fn ids(room: &Room) -> Vec<String> {
    room.snapshot()
        .participants
        .iter()
        .map(|p| p.id.clone())
        .collect()
}

/// Sends `msg` from `from` and asserts it is refused with `code`, changes nothing, and closes nothing.
pub fn assert_refused(room: &mut Room, from: &str, msg: ClientMessage, code: ErrorCode) {
    let before = room.snapshot();
    let out = send(room, from, msg.clone());
    assert_eq!(error(&out, from), Some(code), "{msg:?} -> {out:?}");
    assert_eq!(out.len(), 1, "a refusal produces only the error: {out:?}");
    assert_eq!(room.snapshot(), before, "{msg:?} changed the room");
}
