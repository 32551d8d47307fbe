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
/// The multiples of the usual length a video frame may have.
pub const SCALES: [usize; 4] = [1, 2, 4, 8];

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
    video_scaled(sender, counter, keyframe, 1)
}

/// A camera frame (640 x 480) `scale` (one of [`SCALES`]) times the usual length.
pub fn video_scaled(sender: u32, counter: u32, keyframe: bool, scale: usize) -> Vec<u8> {
    video_sized(sender, counter, keyframe, (640, 480), scale)
}

/// A video frame whose keyframe header says `width` x `height`, `scale` (one of [`SCALES`]) times
/// the usual length: simulcast layers differ in both.
pub fn video_sized(
    sender: u32,
    counter: u32,
    keyframe: bool,
    (width, height): (u16, u16),
    scale: usize,
) -> Vec<u8> {
    let len = if keyframe { KEY_LEN } else { DELTA_LEN } * scale;
    let mut out = Vec::with_capacity(len);
    if keyframe {
        // Frame tag (key frame, version 0, shown), start code, size.
        out.extend_from_slice(&[0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a]);
        out.extend_from_slice(&(width & 0x3fff).to_le_bytes());
        out.extend_from_slice(&(height & 0x3fff).to_le_bytes());
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

/// The size a keyframe's header gives.
pub fn keyframe_size(data: &[u8]) -> Option<(u16, u16)> {
    let h = data.get(..10)?;
    (h[0] & 0x01 == 0 && h[3..6] == [0x9d, 0x01, 0x2a]).then(|| {
        (
            u16::from_le_bytes([h[6], h[7]]) & 0x3fff,
            u16::from_le_bytes([h[8], h[9]]) & 0x3fff,
        )
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
    // Simulcast layers and benchmark cameras send 1, 2, 4 or 8 times the usual length; other
    // lengths are truncated frames.
    if !SCALES.iter().any(|k| data.len() == len * k) {
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
        let big = video_sized(t, 11, true, (1280, 720), 4);
        assert_eq!(keyframe_size(&big), Some((1280, 720)));
        assert_eq!(check_video(&big).map(|f| f.counter), Some(11));
        assert_eq!(check_video(&big[..KEY_LEN * 3]), None);
        assert_eq!(keyframe_size(&video(t, 12, false)), None);
    }
}
