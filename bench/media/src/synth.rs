//! Synthetic media shaped like a browser's: Opus-sized audio packets every 20 ms and VP8 frames
//! at a configured bitrate and frame rate, cut into RTP payloads with real VP8 payload
//! descriptors, so the server depacketizes, recognizes keyframes and repacketizes them exactly
//! as it would a browser's.
//!
//! The content is filler: the server never decodes media, and what a benchmark needs from it is
//! packet count, size and timing.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Largest RTP payload: what Chromium uses for video (1200-byte packets minus RTP header and
/// extensions), so the number of packets per frame matches a browser's.
pub const MAX_PAYLOAD: usize = 1100;

/// Opus frame duration.
pub const AUDIO_FRAME: Duration = Duration::from_millis(20);
const AUDIO_TICKS: u32 = 960;

/// How late a source may fall behind before it skips media instead of catching up.
pub const MAX_LAG: Duration = Duration::from_millis(500);

/// A keyframe is this many times the size of a delta frame (browsers send 3–10x).
const KEYFRAME_FACTOR: usize = 4;

const AUDIO_TOC: u8 = 0xfc;
const STAMP_LEN: usize = 8;

/// The instant all send stamps count from (one process sends and receives).
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Microseconds since [`epoch`].
fn stamp(at: Instant) -> u64 {
    at.saturating_duration_since(epoch()).as_micros() as u64
}

/// How long ago an audio payload made by [`AudioSource`] was sent, seen at `now`; `None` for
/// anything else.
pub fn audio_latency(payload: &[u8], now: Instant) -> Option<Duration> {
    if payload.first() != Some(&AUDIO_TOC) {
        return None;
    }
    let sent = u64::from_be_bytes(payload.get(1..1 + STAMP_LEN)?.try_into().ok()?);
    Some(Duration::from_micros(stamp(now).checked_sub(sent)?))
}

/// One video encoding: the whole stream without simulcast, one layer with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    /// RTP stream id, `None` without simulcast.
    pub rid: Option<String>,
    pub kbps: u32,
    pub fps: u32,
    pub width: u16,
    pub height: u16,
}

/// The layers a publisher sends: one, or three like Chromium's simulcast (full, half and
/// quarter resolution at about 1, 0.3 and 0.1 of the top bitrate).
pub fn layers(kbps: u32, fps: u32, simulcast: bool) -> Vec<Layer> {
    if !simulcast {
        return vec![Layer {
            rid: None,
            kbps,
            fps,
            width: 1280,
            height: 720,
        }];
    }
    [("f", 10, 1280, 720), ("h", 3, 640, 360), ("q", 1, 320, 180)]
        .into_iter()
        .map(|(rid, tenths, width, height)| Layer {
            rid: Some(rid.to_owned()),
            kbps: (kbps * tenths / 10).max(30),
            fps,
            width,
            height,
        })
        .collect()
}

/// One RTP payload with its marker bit.
#[derive(Debug, Clone, PartialEq)]
pub struct Packet {
    pub payload: Vec<u8>,
    pub marker: bool,
}

/// Produces the frames of one video layer on schedule.
#[derive(Debug)]
pub struct VideoSource {
    pub layer: Layer,
    interval: Duration,
    next: Option<Instant>,
    frames: u64,
    /// Frames not sent because the caller polled too late for them.
    pub skipped: u64,
    /// The next frame is a keyframe (the first one, and after a keyframe request).
    want_keyframe: bool,
}

impl VideoSource {
    pub fn new(layer: Layer) -> Self {
        let interval = Duration::from_secs(1) / layer.fps.max(1);
        Self {
            layer,
            interval,
            next: None,
            frames: 0,
            skipped: 0,
            want_keyframe: true,
        }
    }

    /// When the next frame is due; `None` before the first call to [`VideoSource::poll`].
    pub fn next_due(&self) -> Option<Instant> {
        self.next
    }

    pub fn request_keyframe(&mut self) {
        self.want_keyframe = true;
    }

    /// The oldest frame due at `now`, if any: its RTP packets and its RTP time (90 kHz from the
    /// first frame); call until `None`. A caller that woke up late (a busy machine) catches up
    /// on the frames it owes, so the configured bitrate is what the server gets; only frames
    /// more than [`MAX_LAG`] late are skipped.
    pub fn poll(&mut self, now: Instant) -> Option<(Vec<Packet>, u32)> {
        let mut due = *self.next.get_or_insert(now);
        if now < due {
            return None;
        }
        while due + MAX_LAG < now {
            due += self.interval;
            self.frames += 1;
            self.skipped += 1;
        }
        self.next = Some(due + self.interval);
        let time = (self.frames * 90_000 / u64::from(self.layer.fps.max(1))) as u32;
        self.frames += 1;
        let key = std::mem::take(&mut self.want_keyframe);
        let frame = vp8_frame(&self.layer, key, self.frames);
        Some((vp8_packets(&frame), time))
    }
}

/// Delta frame size for a layer's bitrate and frame rate.
pub fn delta_frame_len(layer: &Layer) -> usize {
    (layer.kbps as usize * 1000 / 8 / layer.fps.max(1) as usize).max(16)
}

/// A VP8 frame: a real frame tag (and for keyframes the start code and size, which str0m reads
/// to recognize them), then filler.
pub fn vp8_frame(layer: &Layer, keyframe: bool, counter: u64) -> Vec<u8> {
    let len = delta_frame_len(layer) * if keyframe { KEYFRAME_FACTOR } else { 1 };
    let mut out = Vec::with_capacity(len);
    if keyframe {
        let [w0, w1] = layer.width.to_le_bytes();
        let [h0, h1] = layer.height.to_le_bytes();
        // Frame tag: key frame, version 0, shown; then the start code and 14-bit sizes.
        out.extend_from_slice(&[0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, w0, w1, h0, h1]);
    } else {
        out.extend_from_slice(&[0x11, 0x02, 0x00]);
    }
    let seed = counter as u8;
    out.extend((out.len()..len).map(|i| seed.wrapping_add(i as u8)));
    out
}

/// Cuts a VP8 frame into RTP payloads of nearly equal size (as libwebrtc does), each with the
/// one-byte VP8 payload descriptor: start-of-partition on the first, marker on the last.
pub fn vp8_packets(frame: &[u8]) -> Vec<Packet> {
    let room = MAX_PAYLOAD - 1;
    let count = frame.len().div_ceil(room).max(1);
    let size = frame.len().div_ceil(count);
    let chunks: Vec<&[u8]> = frame.chunks(size.max(1)).collect();
    let last = chunks.len() - 1;
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, chunk)| {
            let mut payload = Vec::with_capacity(chunk.len() + 1);
            payload.push(if i == 0 { 0x10 } else { 0x00 });
            payload.extend_from_slice(chunk);
            Packet {
                payload,
                marker: i == last,
            }
        })
        .collect()
}

/// Produces Opus-sized audio packets every 20 ms.
#[derive(Debug)]
pub struct AudioSource {
    len: usize,
    next: Option<Instant>,
    frames: u64,
}

impl AudioSource {
    pub fn new(kbps: u32) -> Self {
        Self {
            len: (kbps as usize * 1000 / 8 / 50).max(1 + STAMP_LEN),
            next: None,
            frames: 0,
        }
    }

    pub fn next_due(&self) -> Option<Instant> {
        self.next
    }

    /// The oldest packet due at `now`, with its RTP time (48 kHz); call until `None`. Catches
    /// up like [`VideoSource::poll`].
    pub fn poll(&mut self, now: Instant) -> Option<(Packet, u32)> {
        let mut due = *self.next.get_or_insert(now);
        if now < due {
            return None;
        }
        while due + MAX_LAG < now {
            due += AUDIO_FRAME;
            self.frames += 1;
        }
        self.next = Some(due + AUDIO_FRAME);
        let time = (self.frames as u32).wrapping_mul(AUDIO_TICKS);
        self.frames += 1;
        // TOC byte of a 20 ms CELT full-band frame, the send time, then filler. The server
        // forwards audio payloads unchanged, so receivers read the time back.
        let mut payload = vec![self.frames as u8; self.len];
        payload[0] = AUDIO_TOC;
        payload[1..1 + STAMP_LEN].copy_from_slice(&stamp(now).to_be_bytes());
        Some((
            Packet {
                payload,
                marker: false,
            },
            time,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_cut_into_equal_packets_with_descriptors() {
        let frame = vec![7u8; 2500];
        let packets = vp8_packets(&frame);
        assert_eq!(packets.len(), 3);
        assert_eq!(packets[0].payload[0], 0x10);
        assert!(packets[1..].iter().all(|p| p.payload[0] == 0));
        assert_eq!(
            packets.iter().map(|p| p.marker).collect::<Vec<_>>(),
            [false, false, true]
        );
        let total: usize = packets.iter().map(|p| p.payload.len() - 1).sum();
        assert_eq!(total, 2500);
        assert!(packets.iter().all(|p| p.payload.len() <= MAX_PAYLOAD));
        // A tiny frame is still one packet with its marker.
        let one = vp8_packets(&[1, 2, 3]);
        assert_eq!(one.len(), 1);
        assert!(one[0].marker);
    }

    #[test]
    fn video_rate_matches_the_configured_bitrate() {
        let layer = layers(1500, 30, false).remove(0);
        let mut source = VideoSource::new(layer);
        let t0 = Instant::now();
        let mut bytes = 0;
        let mut frames = 0;
        let mut keyframes = 0;
        for ms in 0..10_000u64 {
            if let Some((packets, _)) = source.poll(t0 + Duration::from_millis(ms)) {
                frames += 1;
                // Payload minus the descriptor byte is frame data.
                bytes += packets.iter().map(|p| p.payload.len() - 1).sum::<usize>();
                if packets[0].payload[1] & 1 == 0 {
                    keyframes += 1;
                }
            }
        }
        assert_eq!(frames, 300);
        assert_eq!(keyframes, 1);
        let kbps = bytes * 8 / 10 / 1000;
        // One keyframe in ten seconds adds a little.
        assert!((1500..1530).contains(&kbps), "{kbps} kbps");
    }

    #[test]
    fn keyframe_request_makes_the_next_frame_a_keyframe_with_its_size() {
        let layer = layers(600, 20, false).remove(0);
        let mut source = VideoSource::new(layer.clone());
        let t0 = Instant::now();
        let (first, _) = source.poll(t0).unwrap();
        assert_eq!(first[0].payload[1..4], [0x10, 0x02, 0x00]);
        assert_eq!(first[0].payload[4..7], [0x9d, 0x01, 0x2a]);
        assert_eq!(
            u16::from_le_bytes([first[0].payload[7], first[0].payload[8]]),
            1280
        );
        let (delta, t1) = source.poll(t0 + Duration::from_millis(50)).unwrap();
        assert_eq!(delta[0].payload[1] & 1, 1);
        assert_eq!(t1, 4500);
        source.request_keyframe();
        let (key, _) = source.poll(t0 + Duration::from_millis(100)).unwrap();
        assert_eq!(key[0].payload[1] & 1, 0);
        let len = |p: &[Packet]| p.iter().map(|p| p.payload.len() - 1).sum::<usize>();
        assert_eq!(len(&key), delta_frame_len(&layer) * KEYFRAME_FACTOR);
    }

    #[test]
    fn late_polls_catch_up_and_only_very_late_frames_are_skipped() {
        let mut source = VideoSource::new(layers(500, 10, false).remove(0));
        let t0 = Instant::now();
        assert_eq!(source.poll(t0).unwrap().1, 0);
        // 350 ms late: the frames of 100, 200 and 300 ms all go out, in order.
        let late = t0 + Duration::from_millis(350);
        let times: Vec<u32> = std::iter::from_fn(|| source.poll(late).map(|f| f.1)).collect();
        assert_eq!(times, [9_000, 18_000, 27_000]);
        assert_eq!(source.next_due(), Some(t0 + Duration::from_millis(400)));
        assert_eq!(source.skipped, 0);
        // Two seconds late: what is older than half a second is dropped.
        let very_late = t0 + Duration::from_millis(2350);
        let times: Vec<u32> = std::iter::from_fn(|| source.poll(very_late).map(|f| f.1)).collect();
        assert_eq!(times.len(), 5, "{times:?}");
        assert_eq!(times[0], 9_000 * 19);
        assert_eq!(source.skipped, 15);
    }

    #[test]
    fn audio_is_one_packet_per_20_ms_of_the_configured_size() {
        let mut source = AudioSource::new(32);
        let t0 = Instant::now();
        let (p, t) = source.poll(t0).unwrap();
        assert_eq!((p.payload.len(), t), (80, 0));
        assert!(source.poll(t0 + Duration::from_millis(19)).is_none());
        let (p, t) = source.poll(t0 + Duration::from_millis(20)).unwrap();
        assert_eq!(t, 960);
        let later = t0 + Duration::from_millis(57);
        assert_eq!(
            audio_latency(&p.payload, later),
            Some(Duration::from_millis(37))
        );
        assert_eq!(audio_latency(&[0x11, 2, 3], later), None);
        assert_eq!(audio_latency(&[AUDIO_TOC, 1], later), None);
    }

    #[test]
    fn simulcast_layers_scale_down() {
        let l = layers(1500, 30, true);
        assert_eq!(
            l.iter().map(|l| l.rid.as_deref()).collect::<Vec<_>>(),
            [Some("f"), Some("h"), Some("q")]
        );
        assert_eq!(
            l.iter().map(|l| l.kbps).collect::<Vec<_>>(),
            [1500, 450, 150]
        );
        assert_eq!(layers(1500, 30, false).len(), 1);
    }
}
