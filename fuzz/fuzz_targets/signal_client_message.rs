//! Fuzz target: the signaling message parser must never panic, and whatever it accepts must survive a
//! serialize/parse round trip unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(msg) = convene_proto::parse_client_message(text) {
        let again = serde_json::to_string(&msg).expect("a parsed message serializes");
        assert_eq!(convene_proto::parse_client_message(&again).ok(), Some(msg));
    }
});
