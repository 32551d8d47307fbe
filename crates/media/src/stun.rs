//! Minimal STUN reading for demultiplexing: is a datagram STUN, and which local ICE ufrag does
//! its USERNAME name. The full STUN handling (integrity, responses) stays in str0m.

/// STUN magic cookie (RFC 5389).
const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
const HEADER_LEN: usize = 20;
const ATTR_USERNAME: u16 = 0x0006;

/// Whether `datagram` looks like a STUN message (RFC 7983 demultiplexing plus the cookie).
pub fn is_stun(datagram: &[u8]) -> bool {
    datagram.len() >= HEADER_LEN && datagram[0] < 2 && datagram[4..8] == MAGIC_COOKIE
}

/// The local ufrag of a STUN request: the part of USERNAME before the colon
/// (`<receiver ufrag>:<sender ufrag>`). `None` for anything malformed or without USERNAME.
pub fn local_ufrag(datagram: &[u8]) -> Option<&str> {
    if !is_stun(datagram) {
        return None;
    }
    let declared = u16::from_be_bytes([datagram[2], datagram[3]]) as usize;
    let end = HEADER_LEN.checked_add(declared)?;
    let body = datagram.get(HEADER_LEN..end)?;
    let mut rest = body;
    while rest.len() >= 4 {
        let typ = u16::from_be_bytes([rest[0], rest[1]]);
        let len = u16::from_be_bytes([rest[2], rest[3]]) as usize;
        let value = rest.get(4..4 + len)?;
        if typ == ATTR_USERNAME {
            let username = std::str::from_utf8(value).ok()?;
            let (local, _) = username.split_once(':')?;
            return (!local.is_empty()).then_some(local);
        }
        // Attribute values are padded to a multiple of four bytes.
        let padded = 4 + len.div_ceil(4) * 4;
        rest = rest.get(padded..)?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(attrs: &[(u16, &[u8])]) -> Vec<u8> {
        let mut body = Vec::new();
        for (typ, value) in attrs {
            body.extend_from_slice(&typ.to_be_bytes());
            body.extend_from_slice(&(value.len() as u16).to_be_bytes());
            body.extend_from_slice(value);
            while body.len() % 4 != 0 {
                body.push(0);
            }
        }
        let mut msg = vec![0x00, 0x01];
        msg.extend_from_slice(&(body.len() as u16).to_be_bytes());
        msg.extend_from_slice(&MAGIC_COOKIE);
        msg.extend_from_slice(&[7; 12]);
        msg.extend_from_slice(&body);
        msg
    }

    #[test]
    fn finds_local_ufrag_after_other_attributes() {
        let msg = request(&[(0x8022, b"abc"), (ATTR_USERNAME, b"srvufrag:cli")]);
        assert_eq!(local_ufrag(&msg), Some("srvufrag"));
    }

    #[test]
    fn rejects_missing_or_malformed_username() {
        assert_eq!(local_ufrag(&request(&[(0x8022, b"x")])), None);
        assert_eq!(local_ufrag(&request(&[(ATTR_USERNAME, b"nocolon")])), None);
        assert_eq!(local_ufrag(&request(&[(ATTR_USERNAME, b":cli")])), None);
        assert_eq!(
            local_ufrag(&request(&[(ATTR_USERNAME, &[0xff, b':', b'a'])])),
            None
        );
        assert_eq!(local_ufrag(b"not stun at all, long enough to look"), None);
    }

    #[test]
    fn truncated_messages_never_panic() {
        let msg = request(&[(ATTR_USERNAME, b"srvufrag:cli")]);
        for cut in 0..msg.len() {
            let _ = local_ufrag(&msg[..cut]);
        }
        // A declared length longer than the datagram.
        let mut long = msg.clone();
        long[2] = 0xff;
        assert_eq!(local_ufrag(&long), None);
        // An attribute length pointing past the end.
        let mut bad = msg;
        bad[HEADER_LEN + 2] = 0xff;
        assert_eq!(local_ufrag(&bad), None);
    }

    #[test]
    fn rtp_and_dtls_are_not_stun() {
        let mut rtp = vec![0x80, 0x60];
        rtp.extend_from_slice(&[0; 30]);
        assert!(!is_stun(&rtp));
        let mut dtls = vec![22, 0xfe, 0xfd];
        dtls.extend_from_slice(&[0; 30]);
        assert!(!is_stun(&dtls));
    }
}
