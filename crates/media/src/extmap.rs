//! RTP header-extension ids from a browser's SDP, so that server offers keep them.
//!
//! Chromium refuses a later offer that moves an extension to another id ("RTP extension ID
//! reassignment not supported"). str0m numbers extensions its own way, so each session's
//! extension map is built from the ids of the client's first offer.

use str0m::rtp::{Extension, ExtensionMap};

/// Extensions str0m understands, matched to offered URIs by `Extension::as_uri`.
fn known() -> [Extension; 14] {
    [
        Extension::AbsoluteSendTime,
        Extension::AbsoluteCaptureTime,
        Extension::AudioLevel,
        Extension::TransmissionTimeOffset,
        Extension::VideoOrientation,
        Extension::TransportSequenceNumber,
        Extension::PlayoutDelay,
        Extension::VideoContentType,
        Extension::VideoTiming,
        Extension::RtpStreamId,
        Extension::RepairedRtpStreamId,
        Extension::RtpMid,
        Extension::FrameMarking,
        Extension::ColorSpace,
    ]
}

/// Largest one-byte-header extension id (RFC 8285); str0m's map holds 1..=14.
const MAX_ID: u8 = 14;

/// `(id, uri)` of every `a=extmap:` line, in order. Lines that do not parse are skipped.
pub fn parse_lines(sdp: &str) -> Vec<(u8, &str)> {
    let mut out = Vec::new();
    for line in sdp.lines() {
        let Some(rest) = line.trim_end_matches('\r').strip_prefix("a=extmap:") else {
            continue;
        };
        let mut parts = rest.split_ascii_whitespace();
        let (Some(id_dir), Some(uri)) = (parts.next(), parts.next()) else {
            continue;
        };
        // "1/sendonly" carries a direction after the id.
        let id = id_dir.split('/').next().unwrap_or(id_dir);
        let Ok(id) = id.parse::<u8>() else {
            continue;
        };
        out.push((id, uri));
    }
    out
}

/// The extension map for a session whose first client offer is `sdp`: every extension str0m
/// knows, at the id the client chose. The first id wins when an id or a URI repeats.
/// If the client offered none that str0m knows, str0m's standard map is used.
pub fn from_offer(sdp: &str) -> ExtensionMap {
    let known = known();
    let mut map = ExtensionMap::empty();
    let mut used_ids = [false; MAX_ID as usize + 1];
    let mut used_ext = [false; 14];
    let mut any = false;
    for (id, uri) in parse_lines(sdp) {
        if id == 0 || id > MAX_ID || used_ids[id as usize] {
            continue;
        }
        let Some(index) = known.iter().position(|e| e.as_uri() == uri) else {
            continue;
        };
        if used_ext[index] {
            continue;
        }
        used_ids[id as usize] = true;
        used_ext[index] = true;
        map.set(id, known[index].clone());
        any = true;
    }
    if any { map } else { ExtensionMap::standard() }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The extension lines of a Chromium offer with one audio and one video m-line.
    const CHROMIUM: &str = "v=0\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n\
a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n\
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n\
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96\r\n\
a=extmap:14 urn:ietf:params:rtp-hdrext:toffset\r\n\
a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n\
a=extmap:13 urn:3gpp:video-orientation\r\n\
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n\
a=extmap:5 http://www.webrtc.org/experiments/rtp-hdrext/playout-delay\r\n\
a=extmap:6 http://www.webrtc.org/experiments/rtp-hdrext/video-content-type\r\n\
a=extmap:7 http://www.webrtc.org/experiments/rtp-hdrext/video-timing\r\n\
a=extmap:8 http://www.webrtc.org/experiments/rtp-hdrext/color-space\r\n\
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\r\n\
a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id\r\n\
a=extmap:9 https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension\r\n";

    #[test]
    fn keeps_the_browser_ids() {
        let map = from_offer(CHROMIUM);
        assert_eq!(map.id_of(Extension::AudioLevel), Some(1));
        assert_eq!(map.id_of(Extension::TransportSequenceNumber), Some(3));
        assert_eq!(map.id_of(Extension::RtpMid), Some(4));
        assert_eq!(map.id_of(Extension::TransmissionTimeOffset), Some(14));
        assert_eq!(map.id_of(Extension::RtpStreamId), Some(10));
        // An extension str0m does not know keeps its id free rather than being renumbered.
        assert!(map.lookup(9).is_none());
    }

    #[test]
    fn differs_from_str0m_default_where_the_browser_does() {
        let sdp = "a=extmap:5 urn:ietf:params:rtp-hdrext:sdes:mid\r\na=extmap:1 urn:3gpp:video-orientation\r\n";
        let map = from_offer(sdp);
        assert_eq!(map.id_of(Extension::RtpMid), Some(5));
        assert_eq!(map.id_of(Extension::VideoOrientation), Some(1));
        assert_eq!(map.id_of(Extension::AudioLevel), None);
    }

    #[test]
    fn first_wins_on_repeats_and_bad_lines_are_skipped() {
        let sdp = "a=extmap:3 urn:ietf:params:rtp-hdrext:sdes:mid\n\
a=extmap:3 urn:3gpp:video-orientation\n\
a=extmap:6 urn:ietf:params:rtp-hdrext:sdes:mid\n\
a=extmap:x urn:3gpp:video-orientation\n\
a=extmap:0 urn:3gpp:video-orientation\n\
a=extmap:15 urn:3gpp:video-orientation\n\
a=extmap:7/sendonly urn:ietf:params:rtp-hdrext:toffset\n\
a=extmap:8\n";
        let map = from_offer(sdp);
        assert_eq!(map.id_of(Extension::RtpMid), Some(3));
        assert_eq!(map.id_of(Extension::VideoOrientation), None);
        assert_eq!(map.id_of(Extension::TransmissionTimeOffset), Some(7));
    }

    #[test]
    fn no_known_extension_falls_back_to_standard() {
        assert_eq!(from_offer("v=0\r\n"), ExtensionMap::standard());
    }
}
