//! Synthetic media frames that carry who sent them and their number, with a filler derived from
//! both, so a receiver can tell an intact frame from a damaged or misrouted one.
//!
//! Video frames start with a real VP8 frame tag (and, for keyframes, the VP8 start code and
//! a size), so str0m's VP8 depacketizer and keyframe detection treat them like a browser's.

/// Audio frame length: 20 ms of Opus at 48 kHz.
pub const AUDIO_TICKS: u64 = 960;
/// Video frame spacing: 20 fps at 90 kHz.
pub const VIDEO_TICKS: u64 = 4500;

const AUDIO_LEN: usize = 80;
const DELTA_LEN: usize = 900;
/// Bigger than one packet, so keyframes exercise packetization and reassembly.
const KEY_LEN: usize = 3200;

/// What a verified frame said about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameInfo {
    pub sender: u32,
    pub counter: u32,
    pub keyframe: bool,
}

/// A stable 32-bit tag for a sender name.
pub fn tag(name: &str) -> u32 {
    name.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ b as u32).wrapping_mul(0x0100_0193)
    })
}

fn filler(sender: u32, counter: u32, i: usize) -> u8 {
    (sender
        .wrapping_mul(31)
        .wrapping_add(counter.wrapping_mul(17))
        .wrapping_add(i as u32 * 7)
        >> 3) as u8
}

fn body(out: &mut Vec<u8>, sender: u32, counter: u32, len: usize) {
    out.extend_from_slice(&sender.to_be_bytes());
    out.extend_from_slice(&counter.to_be_bytes());
    let start = out.len();
    for i in start..len {
        out.push(filler(sender, counter, i));
    }
}

fn check_body(data: &[u8], at: usize) -> Option<(u32, u32)> {
    let sender = u32::from_be_bytes(data.get(at..at + 4)?.try_into().ok()?);
    let counter = u32::from_be_bytes(data.get(at + 4..at + 8)?.try_into().ok()?);
    let ok = data[at + 8..]
        .iter()
        .enumerate()
        .all(|(i, b)| *b == filler(sender, counter, at + 8 + i));
    ok.then_some((sender, counter))
}

pub fn audio(sender: u32, counter: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(AUDIO_LEN);
    out.push(0xA0);
    body(&mut out, sender, counter, AUDIO_LEN);
    out
}

pub fn video(sender: u32, counter: u32, keyframe: bool) -> Vec<u8> {
    let len = if keyframe { KEY_LEN } else { DELTA_LEN };
    let mut out = Vec::with_capacity(len);
    if keyframe {
        // Frame tag (key frame, version 0, shown), start code, 640x480.
        out.extend_from_slice(&[0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01]);
    } else {
        out.extend_from_slice(&[0x11, 0x02, 0x00]);
    }
    body(&mut out, sender, counter, len);
    out
}

/// Checks an audio frame; `None` if damaged.
pub fn check_audio(data: &[u8]) -> Option<FrameInfo> {
    if data.first() != Some(&0xA0) || data.len() != AUDIO_LEN {
        return None;
    }
    let (sender, counter) = check_body(data, 1)?;
    Some(FrameInfo {
        sender,
        counter,
        keyframe: false,
    })
}

/// Checks a video frame; `None` if damaged.
pub fn check_video(data: &[u8]) -> Option<FrameInfo> {
    let keyframe = data.first()? & 0x01 == 0;
    let (at, len) = if keyframe {
        (10, KEY_LEN)
    } else {
        (3, DELTA_LEN)
    };
    if data.len() != len {
        return None;
    }
    let (sender, counter) = check_body(data, at)?;
    Some(FrameInfo {
        sender,
        counter,
        keyframe,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_damage_is_seen() {
        let t = tag("alice");
        assert_eq!(
            check_audio(&audio(t, 7)),
            Some(FrameInfo {
                sender: t,
                counter: 7,
                keyframe: false
            })
        );
        assert_eq!(
            check_video(&video(t, 9, true)).map(|f| f.keyframe),
            Some(true)
        );
        assert_eq!(
            check_video(&video(t, 10, false)).map(|f| f.keyframe),
            Some(false)
        );
        let mut bad = video(t, 9, true);
        bad[2000] ^= 1;
        assert_eq!(check_video(&bad), None);
        assert_eq!(check_video(&video(t, 9, true)[..3000]), None);
    }
}
