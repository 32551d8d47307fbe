//! Round-trips the shared fixture file (the TypeScript client reads the same file) and hammers the parser
//! with seeded random and mutated frames.

use std::collections::BTreeSet;

use serde_json::Value;

use super::*;

fn fixture() -> Value {
    let text = include_str!("../fixtures/messages.json");
    serde_json::from_str(text).expect("fixture file is valid JSON")
}

fn list<'a>(fixture: &'a Value, key: &str) -> &'a Vec<Value> {
    fixture[key].as_array().expect("fixture lists are arrays")
}

#[test]
fn fixture_protocol_version_matches() {
    assert_eq!(fixture()["protocol_version"], Value::from(PROTOCOL_VERSION));
}

#[test]
fn every_client_fixture_round_trips_unchanged() {
    let fixture = fixture();
    for example in list(&fixture, "client") {
        let text = example.to_string();
        let msg = parse_client_message(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(&serde_json::to_value(&msg).unwrap(), example, "{text}");
        assert_eq!(Some(&Value::from(msg.type_name())), example.get("type"));
    }
}

#[test]
fn every_server_fixture_round_trips_unchanged() {
    let fixture = fixture();
    for example in list(&fixture, "server") {
        let msg: ServerMessage =
            serde_json::from_value(example.clone()).unwrap_or_else(|e| panic!("{example}: {e}"));
        assert_eq!(&serde_json::to_value(&msg).unwrap(), example);
        assert_eq!(Some(&Value::from(msg.type_name())), example.get("type"));
    }
}

#[test]
fn a_welcome_without_ice_servers_still_parses_as_none() {
    let fixture = fixture();
    let mut welcome = list(&fixture, "server")
        .iter()
        .find(|m| m["type"] == "welcome")
        .expect("the fixture has a welcome")
        .clone();
    assert!(!welcome["ice_servers"].as_array().unwrap().is_empty());
    welcome.as_object_mut().unwrap().remove("ice_servers");
    match serde_json::from_value::<ServerMessage>(welcome) {
        Ok(ServerMessage::Welcome { ice_servers, .. }) => assert!(ice_servers.is_empty()),
        other => panic!("not a welcome: {other:?}"),
    }
}

fn types_in(examples: &[Value]) -> BTreeSet<String> {
    examples
        .iter()
        .map(|e| e["type"].as_str().expect("type is a string").to_owned())
        .collect()
}

#[test]
fn fixtures_cover_every_message_type() {
    let fixture = fixture();
    let client: BTreeSet<String> = ClientMessage::TYPES.iter().map(|t| t.to_string()).collect();
    let server: BTreeSet<String> = ServerMessage::TYPES.iter().map(|t| t.to_string()).collect();
    assert_eq!(types_in(list(&fixture, "client")), client);
    assert_eq!(types_in(list(&fixture, "server")), server);
}

#[test]
fn fixture_error_codes_are_exactly_the_enum() {
    let fixture = fixture();
    for code in list(&fixture, "error_codes") {
        let parsed: ErrorCode = serde_json::from_value(code.clone()).expect("known code");
        assert_eq!(&serde_json::to_value(parsed).unwrap(), code);
    }
    // The match makes this test fail to compile when a variant is added without updating the count.
    let count = |c: ErrorCode| match c {
        ErrorCode::BadJson
        | ErrorCode::UnknownType
        | ErrorCode::BadMessage
        | ErrorCode::TooLarge
        | ErrorCode::RateLimited
        | ErrorCode::UnsupportedVersion
        | ErrorCode::NotJoined
        | ErrorCode::AlreadyJoined
        | ErrorCode::InvalidRoomName
        | ErrorCode::InvalidValue
        | ErrorCode::Forbidden
        | ErrorCode::NotFound
        | ErrorCode::PasswordRequired
        | ErrorCode::WrongPassword
        | ErrorCode::TokenRequired
        | ErrorCode::TokenInvalid
        | ErrorCode::HostRequired
        | ErrorCode::RoomFull
        | ErrorCode::ResumeFailed
        | ErrorCode::ReadOnlyKey
        | ErrorCode::Unavailable
        | ErrorCode::Internal => 22,
    };
    assert_eq!(
        list(&fixture, "error_codes").len(),
        count(ErrorCode::Internal)
    );
}

#[test]
fn invalid_frames_get_the_documented_code() {
    let fixture = fixture();
    for case in list(&fixture, "invalid_client") {
        let frame = case["frame"].as_str().unwrap();
        let want: ErrorCode = serde_json::from_value(case["code"].clone()).unwrap();
        let got = parse_client_message(frame).expect_err(frame);
        assert_eq!(got.code, want, "{frame}: {}", got.message);
        assert!(!got.message.is_empty());
    }
}

#[test]
fn bad_message_names_the_request_type() {
    let err = parse_client_message(r#"{"type":"kick","participant":5}"#).unwrap_err();
    assert_eq!(err.code, ErrorCode::BadMessage);
    assert_eq!(err.request.as_deref(), Some("kick"));
}

#[test]
fn unknown_type_echo_is_bounded() {
    let long = "x".repeat(10_000);
    let err = parse_client_message(&format!(r#"{{"type":"{long}"}}"#)).unwrap_err();
    assert_eq!(err.code, ErrorCode::UnknownType);
    assert!(err.message.len() < 200);
}

#[test]
fn deeply_nested_json_is_an_error_not_a_crash() {
    let deep = format!(
        r#"{{"type":"set_metadata","key":"k","value":{}{}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    assert_eq!(
        parse_client_message(&deep).unwrap_err().code,
        ErrorCode::BadJson
    );
}

/// A small deterministic generator so failures reproduce from the printed seed.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Randomized stand-in for the fuzz target (which needs nightly): mutated fixture frames and random
/// bytes must never panic, and whatever parses must re-serialize and parse back to the same message.
#[test]
fn parser_survives_random_and_mutated_frames() {
    let fixture = fixture();
    let seeds: Vec<Vec<u8>> = list(&fixture, "client")
        .iter()
        .map(|v| v.to_string().into_bytes())
        .collect();
    let alphabet = b"{}[]\":,0123456789.-eEtruefalsnl \\u\x00\xff";
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut parsed = 0;
    for _ in 0..50_000 {
        let mut bytes = if rng.below(4) == 0 {
            (0..rng.below(64))
                .map(|_| alphabet[rng.below(alphabet.len())])
                .collect()
        } else {
            seeds[rng.below(seeds.len())].clone()
        };
        for _ in 0..=rng.below(4) {
            if bytes.is_empty() {
                break;
            }
            let at = rng.below(bytes.len());
            match rng.below(3) {
                0 => bytes[at] = alphabet[rng.below(alphabet.len())],
                1 => {
                    bytes.remove(at);
                }
                _ => bytes.insert(at, alphabet[rng.below(alphabet.len())]),
            }
        }
        let Ok(text) = std::str::from_utf8(&bytes) else {
            continue;
        };
        match parse_client_message(text) {
            Ok(msg) => {
                parsed += 1;
                let again = serde_json::to_string(&msg).unwrap();
                assert_eq!(parse_client_message(&again).as_ref(), Ok(&msg), "{text}");
            }
            Err(e) => assert!(!e.message.is_empty()),
        }
    }
    // The mutations must leave a fair share of frames valid, or this test checks only the error path.
    assert!(parsed > 1_000, "only {parsed} frames parsed");
}
