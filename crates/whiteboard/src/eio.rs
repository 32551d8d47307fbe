//! Engine.IO v3 and v4 wire codec: single packets (WebSocket frames) and polling payloads.
//!
//! Sans-IO: strings and bytes in, packets out, and back. The differences between the two
//! protocol versions live here and nowhere else:
//! - binary WebSocket frames carry a leading 0x04 byte in v3, nothing in v4;
//! - polling payloads are `<len>:<packet>` text (len in UTF-16 units) or a binary format in v3,
//!   and packets separated by 0x1E with base64 `b...` binary packets in v4.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::{BufMut, Bytes, BytesMut};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::metrics::Protocol;

/// One Engine.IO packet received from a client.
#[derive(Debug, PartialEq)]
pub enum Packet {
    Close,
    Ping,
    Pong,
    /// `2probe`: a WebSocket asking to take over a polling session.
    PingProbe,
    Message(Utf8Bytes),
    Binary(Bytes),
    Upgrade,
    Noop,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("unknown Engine.IO packet type")]
    PacketType,
    #[error("bad polling payload framing")]
    Payload,
    #[error("bad base64 in a binary packet")]
    Base64,
}

/// Decodes one text packet (a WebSocket text frame, or one element of a polling payload).
/// `text` is the whole packet including its type digit.
pub fn decode_text(text: Utf8Bytes, protocol: Protocol) -> Result<Packet, DecodeError> {
    let s = text.as_str();
    match s.as_bytes().first() {
        Some(b'1') => Ok(Packet::Close),
        Some(b'2') if &s[1..] == "probe" => Ok(Packet::PingProbe),
        Some(b'2') => Ok(Packet::Ping),
        Some(b'3') => Ok(Packet::Pong),
        Some(b'4') => Ok(Packet::Message(slice_utf8(&text, 1))),
        Some(b'5') => Ok(Packet::Upgrade),
        Some(b'6') => Ok(Packet::Noop),
        Some(b'b') => {
            // v4 writes `b<base64>`, v3 `b4<base64>` (the 4 is the message type).
            let skip = if protocol == Protocol::V3 { 2 } else { 1 };
            if protocol == Protocol::V3 && s.as_bytes().get(1) != Some(&b'4') {
                return Err(DecodeError::PacketType);
            }
            BASE64
                .decode(s.get(skip..).unwrap_or(""))
                .map(|v| Packet::Binary(v.into()))
                .map_err(|_| DecodeError::Base64)
        }
        _ => Err(DecodeError::PacketType),
    }
}

/// The tail of a UTF-8 buffer from an ASCII position, without copying.
fn slice_utf8(text: &Utf8Bytes, from: usize) -> Utf8Bytes {
    let bytes = Bytes::copy_from_slice(&text.as_bytes()[from..]);
    // The cut is right after an ASCII byte, so the rest is still valid UTF-8.
    Utf8Bytes::try_from(bytes).unwrap_or_else(|_| Utf8Bytes::from_static(""))
}

/// Decodes a binary WebSocket frame: v3 frames start with the message type byte 0x04.
pub fn decode_ws_binary(data: Bytes, protocol: Protocol) -> Result<Packet, DecodeError> {
    match protocol {
        Protocol::V4 => Ok(Packet::Binary(data)),
        Protocol::V3 if data.first() == Some(&4) => Ok(Packet::Binary(data.slice(1..))),
        Protocol::V3 => Err(DecodeError::PacketType),
    }
}

/// Decodes a polling POST body.
pub fn decode_payload(
    body: Bytes,
    binary: bool,
    protocol: Protocol,
) -> Result<Vec<Packet>, DecodeError> {
    match protocol {
        Protocol::V4 => {
            let text = Utf8Bytes::try_from(body).map_err(|_| DecodeError::Payload)?;
            text.split('\u{1e}')
                .map(|part| decode_text(Utf8Bytes::from(part), protocol))
                .collect()
        }
        Protocol::V3 if binary => decode_v3_binary(body),
        Protocol::V3 => {
            let text = Utf8Bytes::try_from(body).map_err(|_| DecodeError::Payload)?;
            decode_v3_text(text.as_str())
        }
    }
}

/// `<len>:<packet><len>:<packet>...`, where len counts UTF-16 code units as JavaScript does.
fn decode_v3_text(mut s: &str) -> Result<Vec<Packet>, DecodeError> {
    let mut out = Vec::new();
    while !s.is_empty() {
        let colon = s.find(':').ok_or(DecodeError::Payload)?;
        let len: usize = s[..colon].parse().map_err(|_| DecodeError::Payload)?;
        s = &s[colon + 1..];
        let mut units = 0;
        let mut end = 0;
        for c in s.chars() {
            if units == len {
                break;
            }
            units += c.len_utf16();
            end += c.len_utf8();
        }
        if units != len || len == 0 {
            return Err(DecodeError::Payload);
        }
        out.push(decode_text(Utf8Bytes::from(&s[..end]), Protocol::V3)?);
        s = &s[end..];
    }
    Ok(out)
}

/// v3 binary payload: `<0|1><length as one byte per decimal digit>0xFF<data>` repeated;
/// 0 = UTF-8 text packet, 1 = binary packet whose data starts with the type byte 0x04.
fn decode_v3_binary(body: Bytes) -> Result<Vec<Packet>, DecodeError> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < body.len() {
        let is_text = match body[at] {
            0 => true,
            1 => false,
            _ => return Err(DecodeError::Payload),
        };
        at += 1;
        let mut len: usize = 0;
        loop {
            let digit = *body.get(at).ok_or(DecodeError::Payload)?;
            at += 1;
            if digit == 0xFF {
                break;
            }
            if digit > 9 {
                return Err(DecodeError::Payload);
            }
            len = len
                .checked_mul(10)
                .and_then(|l| l.checked_add(digit.into()))
                .ok_or(DecodeError::Payload)?;
        }
        let end = at
            .checked_add(len)
            .filter(|&e| e <= body.len())
            .ok_or(DecodeError::Payload)?;
        let data = body.slice(at..end);
        at = end;
        out.push(if is_text {
            decode_text(
                Utf8Bytes::try_from(data).map_err(|_| DecodeError::Payload)?,
                Protocol::V3,
            )?
        } else {
            decode_ws_binary(data, Protocol::V3)?
        });
    }
    Ok(out)
}

/// One packet to send, as the transports see it.
#[derive(Debug, Clone)]
pub enum Frame {
    /// A whole text packet, type digit included (`42[...]`, `2`, `6`...).
    Text(Utf8Bytes),
    /// Binary message data (without any v3 type byte).
    Binary(Bytes),
}

/// Encodes packets into one polling response body; returns the body and its content type.
pub fn encode_payload(frames: &[Frame], protocol: Protocol, b64: bool) -> (Bytes, &'static str) {
    const TEXT: &str = "text/plain; charset=UTF-8";
    match protocol {
        Protocol::V4 => {
            let mut out = String::new();
            for (i, frame) in frames.iter().enumerate() {
                if i > 0 {
                    out.push('\u{1e}');
                }
                match frame {
                    Frame::Text(t) => out.push_str(t),
                    Frame::Binary(b) => {
                        out.push('b');
                        BASE64.encode_string(b, &mut out);
                    }
                }
            }
            (out.into(), TEXT)
        }
        Protocol::V3 if b64 || frames.iter().all(|f| matches!(f, Frame::Text(_))) => {
            let mut out = String::new();
            for frame in frames {
                match frame {
                    Frame::Text(t) => {
                        let units: usize = t.chars().map(char::len_utf16).sum();
                        out.push_str(&units.to_string());
                        out.push(':');
                        out.push_str(t);
                    }
                    Frame::Binary(b) => {
                        let encoded = BASE64.encode(b);
                        out.push_str(&(encoded.len() + 2).to_string());
                        out.push_str(":b4");
                        out.push_str(&encoded);
                    }
                }
            }
            (out.into(), TEXT)
        }
        Protocol::V3 => {
            let mut out = BytesMut::new();
            for frame in frames {
                let (kind, data, prefix): (u8, &[u8], &[u8]) = match frame {
                    Frame::Text(t) => (0, t.as_bytes(), &[]),
                    Frame::Binary(b) => (1, b, &[4]),
                };
                out.put_u8(kind);
                for digit in (data.len() + prefix.len()).to_string().bytes() {
                    out.put_u8(digit - b'0');
                }
                out.put_u8(0xFF);
                out.put_slice(prefix);
                out.put_slice(data);
            }
            (out.freeze(), "application/octet-stream")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Frame {
        Frame::Text(Utf8Bytes::from(s))
    }

    #[test]
    fn text_packets() {
        let d = |s: &str| decode_text(Utf8Bytes::from(s), Protocol::V4);
        assert_eq!(d("2"), Ok(Packet::Ping));
        assert_eq!(d("2probe"), Ok(Packet::PingProbe));
        assert_eq!(d("3"), Ok(Packet::Pong));
        assert_eq!(
            d("42[\"x\"]"),
            Ok(Packet::Message(Utf8Bytes::from("2[\"x\"]")))
        );
        assert_eq!(d("5"), Ok(Packet::Upgrade));
        assert_eq!(d("bAQI="), Ok(Packet::Binary(Bytes::from_static(&[1, 2]))));
        assert_eq!(d(""), Err(DecodeError::PacketType));
        assert_eq!(d("9"), Err(DecodeError::PacketType));
        assert_eq!(d("b!!"), Err(DecodeError::Base64));
    }

    #[test]
    fn v3_binary_frames_carry_a_type_byte() {
        assert_eq!(
            decode_ws_binary(Bytes::from_static(&[4, 9]), Protocol::V3),
            Ok(Packet::Binary(Bytes::from_static(&[9])))
        );
        assert!(decode_ws_binary(Bytes::from_static(&[9]), Protocol::V3).is_err());
        assert!(decode_ws_binary(Bytes::new(), Protocol::V3).is_err());
        assert_eq!(
            decode_ws_binary(Bytes::from_static(&[9]), Protocol::V4),
            Ok(Packet::Binary(Bytes::from_static(&[9])))
        );
    }

    #[test]
    fn v4_payload_round_trip() {
        let frames = [
            text("42[\"a\"]"),
            Frame::Binary(Bytes::from_static(&[0, 255])),
            text("2"),
        ];
        let (body, ct) = encode_payload(&frames, Protocol::V4, false);
        assert_eq!(ct, "text/plain; charset=UTF-8");
        assert_eq!(&body[..], "42[\"a\"]\u{1e}bAP8=\u{1e}2".as_bytes());
        let back = decode_payload(body, false, Protocol::V4).unwrap();
        assert_eq!(
            back,
            vec![
                Packet::Message(Utf8Bytes::from("2[\"a\"]")),
                Packet::Binary(Bytes::from_static(&[0, 255])),
                Packet::Ping
            ]
        );
    }

    #[test]
    fn v3_text_payload_counts_utf16_units() {
        // "é" is one UTF-16 unit but two UTF-8 bytes; "😀" is two units and four bytes.
        let frames = [text("42[\"é😀\"]"), text("3")];
        let (body, _) = encode_payload(&frames, Protocol::V3, false);
        assert_eq!(std::str::from_utf8(&body).unwrap(), "9:42[\"é😀\"]1:3");
        let back = decode_payload(body, false, Protocol::V3).unwrap();
        assert_eq!(
            back,
            vec![Packet::Message(Utf8Bytes::from("2[\"é😀\"]")), Packet::Pong]
        );
        assert!(decode_payload(Bytes::from_static(b"5:42"), false, Protocol::V3).is_err());
        assert!(decode_payload(Bytes::from_static(b"x:42"), false, Protocol::V3).is_err());
        assert!(decode_payload(Bytes::from_static(b"0:"), false, Protocol::V3).is_err());
    }

    #[test]
    fn v3_binary_payload_round_trip() {
        let frames = [
            text("451-[\"e\"]"),
            Frame::Binary(Bytes::from_static(&[1, 2, 3])),
        ];
        let (body, ct) = encode_payload(&frames, Protocol::V3, false);
        assert_eq!(ct, "application/octet-stream");
        let mut expected = vec![0, 9, 0xFF];
        expected.extend_from_slice(b"451-[\"e\"]");
        expected.extend_from_slice(&[1, 4, 0xFF, 4, 1, 2, 3]);
        assert_eq!(&body[..], &expected[..]);
        let back = decode_payload(body, true, Protocol::V3).unwrap();
        assert_eq!(
            back,
            vec![
                Packet::Message(Utf8Bytes::from("51-[\"e\"]")),
                Packet::Binary(Bytes::from_static(&[1, 2, 3]))
            ]
        );
        // With b64 the same packets travel as text.
        let (body, _) = encode_payload(&frames, Protocol::V3, true);
        assert_eq!(std::str::from_utf8(&body).unwrap(), "9:451-[\"e\"]6:b4AQID");
        assert!(
            decode_payload(
                Bytes::from_static(&[
                    0, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 0xFF
                ]),
                true,
                Protocol::V3
            )
            .is_err()
        );
        assert!(decode_payload(Bytes::from_static(&[2, 1, 0xFF, 0]), true, Protocol::V3).is_err());
        assert!(decode_payload(Bytes::from_static(&[1, 5, 0xFF, 4]), true, Protocol::V3).is_err());
    }
}
