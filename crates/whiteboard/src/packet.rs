//! socket.io packet codec for the subset the collab protocol uses.
//!
//! Parses a socket.io packet header (`<type>[<attachments>-][/nsp,][ack]<json>`), splits event
//! arguments into raw JSON slices without interpreting them, and builds the few packets the
//! server sends. Binary attachments are never looked at here.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

/// Most binary attachments one event may carry; Excalidraw sends two (ciphertext, IV).
pub const MAX_ATTACHMENTS: usize = 8;

/// Longest room id accepted. Excalidraw's are 20 characters, Jitsi's an MD5 plus a breakout
/// room UUID; the cap keeps a client from parking megabytes in the room table.
pub const MAX_ROOM_ID: usize = 512;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("empty or unknown socket.io packet type")]
    PacketType,
    #[error("bad attachment count")]
    Attachments,
    #[error("event arguments are not a JSON array starting with the event name")]
    Arguments,
    #[error("event arguments of the wrong type")]
    ArgumentType,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Connect,
    Disconnect,
    Event,
    Ack,
    BinaryEvent,
    BinaryAck,
}

/// A parsed socket.io packet; `data` is the JSON that follows the header.
#[derive(Debug, PartialEq, Eq)]
pub struct Header<'a> {
    pub kind: Kind,
    pub attachments: usize,
    /// Namespace; `/` when absent.
    pub nsp: &'a str,
    pub data: &'a str,
}

pub fn parse_header(text: &str) -> Result<Header<'_>, ParseError> {
    let bytes = text.as_bytes();
    let kind = match bytes.first() {
        Some(b'0') => Kind::Connect,
        Some(b'1') => Kind::Disconnect,
        Some(b'2') => Kind::Event,
        Some(b'3') => Kind::Ack,
        Some(b'5') => Kind::BinaryEvent,
        Some(b'6') => Kind::BinaryAck,
        _ => return Err(ParseError::PacketType),
    };
    let mut at = 1;
    let mut attachments = 0;
    if matches!(kind, Kind::BinaryEvent | Kind::BinaryAck) {
        let dash = text[at..].find('-').ok_or(ParseError::Attachments)?;
        attachments = text[at..at + dash]
            .parse()
            .map_err(|_| ParseError::Attachments)?;
        if attachments > MAX_ATTACHMENTS {
            return Err(ParseError::Attachments);
        }
        at += dash + 1;
    }
    let mut nsp = "/";
    if bytes.get(at) == Some(&b'/') {
        let end = text[at..].find(',').map_or(text.len(), |i| at + i);
        nsp = &text[at..end];
        at = (end + 1).min(text.len());
    }
    // An ack id is a run of digits before the JSON; the relay never acknowledges, so skip it.
    while bytes.get(at).is_some_and(u8::is_ascii_digit) {
        at += 1;
    }
    Ok(Header {
        kind,
        attachments,
        nsp,
        data: &text[at..],
    })
}

/// A client event of the collab protocol.
#[derive(Debug)]
pub enum Event<'a> {
    JoinRoom(Cow<'a, str>),
    Broadcast {
        volatile: bool,
        room: Cow<'a, str>,
        /// The arguments after the room id, as received.
        rest: Vec<&'a RawValue>,
    },
    UserFollow(UserFollow),
    Unknown,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserFollow {
    pub user_to_follow: UserToFollow,
    pub action: FollowAction,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserToFollow {
    pub socket_id: String,
}

#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
pub enum FollowAction {
    Follow,
    Unfollow,
}

/// Splits `["event", args...]` and types the arguments of known events.
pub fn parse_event(data: &str, attachments: usize) -> Result<Event<'_>, ParseError> {
    let args: Vec<&RawValue> = serde_json::from_str(data).map_err(|_| ParseError::Arguments)?;
    let name: Cow<'_, str> = args
        .first()
        .and_then(|raw| serde_json::from_str(raw.get()).ok())
        .ok_or(ParseError::Arguments)?;
    let room_arg = |i: usize| -> Result<Cow<'_, str>, ParseError> {
        args.get(i)
            .and_then(|raw| serde_json::from_str::<Cow<'_, str>>(raw.get()).ok())
            .filter(|room| room.len() <= MAX_ROOM_ID)
            .ok_or(ParseError::ArgumentType)
    };
    Ok(match &*name {
        "join-room" => Event::JoinRoom(room_arg(1)?),
        "server-broadcast" | "server-volatile-broadcast" => {
            let room = room_arg(1)?;
            let rest = args[2..].to_vec();
            check_placeholders(&rest, attachments)?;
            Event::Broadcast {
                volatile: &*name == "server-volatile-broadcast",
                room,
                rest,
            }
        }
        "user-follow" => Event::UserFollow(
            serde_json::from_str(args.get(1).ok_or(ParseError::ArgumentType)?.get())
                .map_err(|_| ParseError::ArgumentType)?,
        ),
        _ => Event::Unknown,
    })
}

/// Receivers' parsers throw on a placeholder that points past the attachments, so a relayed
/// argument must be either a valid placeholder or plain JSON with none inside.
fn check_placeholders(args: &[&RawValue], attachments: usize) -> Result<(), ParseError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Placeholder {
        #[serde(rename = "_placeholder")]
        placeholder: bool,
        num: usize,
    }
    for arg in args {
        if !arg.get().contains("_placeholder") {
            continue;
        }
        match serde_json::from_str::<Placeholder>(arg.get()) {
            Ok(p) if p.placeholder && p.num < attachments => {}
            _ => return Err(ParseError::ArgumentType),
        }
    }
    Ok(())
}

/// Engine.IO message + socket.io EVENT: `42["name",args...]`; `args` is a JSON array text.
pub fn event(name: &str, args: Option<&str>) -> String {
    let name = serde_json::to_string(name).unwrap_or_default();
    match args {
        Some(args) => format!("42[{name},{args}]"),
        None => format!("42[{name}]"),
    }
}

/// `42["name",["id1","id2"]]`.
pub fn event_with_ids<S: AsRef<str>>(name: &str, ids: &[S]) -> String {
    let ids: Vec<&str> = ids.iter().map(AsRef::as_ref).collect();
    event(name, Some(&serde_json::to_string(&ids).unwrap_or_default()))
}

/// The header of a relayed broadcast: `client-broadcast` with the sender's arguments after
/// the room id, unchanged, so placeholder numbers still match the attachments.
pub fn relay_header(rest: &[&RawValue], attachments: usize) -> String {
    let mut out = if attachments > 0 {
        format!("45{attachments}-[\"client-broadcast\"")
    } else {
        "42[\"client-broadcast\"".to_owned()
    };
    for arg in rest {
        out.push(',');
        out.push_str(arg.get());
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers() {
        let h = parse_header("0").unwrap();
        assert_eq!((h.kind, h.nsp, h.data), (Kind::Connect, "/", ""));
        let h = parse_header("0{\"token\":1}").unwrap();
        assert_eq!(
            (h.kind, h.nsp, h.data),
            (Kind::Connect, "/", "{\"token\":1}")
        );
        let h = parse_header("0/admin,").unwrap();
        assert_eq!((h.kind, h.nsp), (Kind::Connect, "/admin"));
        let h = parse_header("0/admin").unwrap();
        assert_eq!((h.kind, h.nsp, h.data), (Kind::Connect, "/admin", ""));
        let h = parse_header("52-[\"e\",{\"_placeholder\":true,\"num\":0}]").unwrap();
        assert_eq!((h.kind, h.attachments), (Kind::BinaryEvent, 2));
        assert!(h.data.starts_with("[\"e\""));
        let h = parse_header("2/x,12[\"e\"]").unwrap();
        assert_eq!((h.kind, h.nsp, h.data), (Kind::Event, "/x", "[\"e\"]"));
        assert_eq!(parse_header(""), Err(ParseError::PacketType));
        assert_eq!(parse_header("4"), Err(ParseError::PacketType));
        assert_eq!(parse_header("5x-[]"), Err(ParseError::Attachments));
        assert_eq!(parse_header("599-[]"), Err(ParseError::Attachments));
        assert_eq!(parse_header("5[]"), Err(ParseError::Attachments));
    }

    #[test]
    fn events() {
        assert!(
            matches!(parse_event("[\"join-room\",\"r1\"]", 0), Ok(Event::JoinRoom(r)) if r == "r1")
        );
        assert_eq!(
            parse_event("[\"join-room\",5]", 0).err(),
            Some(ParseError::ArgumentType)
        );
        assert_eq!(
            parse_event("[\"join-room\"]", 0).err(),
            Some(ParseError::ArgumentType)
        );
        let long = format!("[\"join-room\",\"{}\"]", "r".repeat(MAX_ROOM_ID + 1));
        assert_eq!(parse_event(&long, 0).err(), Some(ParseError::ArgumentType));
        assert_eq!(parse_event("{}", 0).err(), Some(ParseError::Arguments));
        assert_eq!(parse_event("[1]", 0).err(), Some(ParseError::Arguments));
        assert_eq!(parse_event("[", 0).err(), Some(ParseError::Arguments));
        assert!(matches!(parse_event("[\"nope\",1]", 0), Ok(Event::Unknown)));
        let data = "[\"server-volatile-broadcast\",\"r\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]";
        match parse_event(data, 2).unwrap() {
            Event::Broadcast {
                volatile,
                room,
                rest,
            } => {
                assert!(volatile);
                assert_eq!(room, "r");
                assert_eq!(
                    relay_header(&rest, 2),
                    "452-[\"client-broadcast\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]"
                );
            }
            other => panic!("{other:?}"),
        }
        // A placeholder past the attachments would make every receiver's parser throw.
        assert_eq!(parse_event(data, 1).err(), Some(ParseError::ArgumentType));
        let follow = "[\"user-follow\",{\"userToFollow\":{\"socketId\":\"abc\",\"username\":\"u\"},\"action\":\"UNFOLLOW\"}]";
        match parse_event(follow, 0).unwrap() {
            Event::UserFollow(f) => {
                assert_eq!(f.user_to_follow.socket_id, "abc");
                assert_eq!(f.action, FollowAction::Unfollow);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            parse_event("[\"user-follow\",\"x\"]", 0).err(),
            Some(ParseError::ArgumentType)
        );
    }

    #[test]
    fn outgoing() {
        assert_eq!(event("init-room", None), "42[\"init-room\"]");
        assert_eq!(
            event_with_ids("room-user-change", &["a", "b"]),
            "42[\"room-user-change\",[\"a\",\"b\"]]"
        );
        assert_eq!(
            event_with_ids::<&str>("room-user-change", &[]),
            "42[\"room-user-change\",[]]"
        );
        assert_eq!(relay_header(&[], 0), "42[\"client-broadcast\"]");
    }
}
