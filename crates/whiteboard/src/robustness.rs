//! Randomized no-panic tests for the wire parsers: whatever a client sends, decoding returns
//! a value or an error, never a panic.

use bytes::Bytes;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::eio;
use crate::metrics::Protocol;
use crate::packet;

/// xorshift64*: a deterministic generator, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Inputs built from protocol fragments, so they get past the first checks often.
fn input(rng: &mut Rng) -> Vec<u8> {
    const PIECES: &[&str] = &[
        "0",
        "1",
        "2",
        "3",
        "4",
        "5",
        "6",
        "b",
        "b4",
        "probe",
        "-",
        "/",
        ",",
        ":",
        "[",
        "]",
        "{",
        "}",
        "\"",
        "\u{1e}",
        "42",
        "451-",
        "452-",
        "\"join-room\"",
        "\"server-broadcast\"",
        "\"user-follow\"",
        "{\"_placeholder\":true,\"num\":0}",
        "{\"_placeholder\":true,\"num\":9}",
        "\"r\"",
        "é",
        "😀",
        "99",
        "18446744073709551616",
        "AQID",
        "null",
        "{\"userToFollow\":{\"socketId\":\"x\"},\"action\":\"FOLLOW\"}",
    ];
    let mut out = Vec::new();
    for _ in 0..rng.below(12) {
        match rng.below(4) {
            0 => out.push(rng.next() as u8),
            _ => out.extend_from_slice(PIECES[rng.below(PIECES.len())].as_bytes()),
        }
    }
    out
}

#[test]
fn decoders_never_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..100_000 {
        let raw = input(&mut rng);
        let bytes = Bytes::from(raw.clone());
        for protocol in [Protocol::V3, Protocol::V4] {
            let _ = eio::decode_ws_binary(bytes.clone(), protocol);
            let _ = eio::decode_payload(bytes.clone(), true, protocol);
            let _ = eio::decode_payload(bytes.clone(), false, protocol);
        }
        if let Ok(text) = std::str::from_utf8(&raw) {
            let _ = eio::decode_text(Utf8Bytes::from(text), Protocol::V3);
            let _ = eio::decode_text(Utf8Bytes::from(text), Protocol::V4);
            if let Ok(header) = packet::parse_header(text) {
                let _ = packet::parse_event(header.data, header.attachments);
            }
            for attachments in [0, 2] {
                let _ = packet::parse_event(text, attachments);
            }
        }
    }
}
