//! The codecs a recording carries as received, and what the writer needs to know from their bitstreams:
//! keyframe picture sizes, the AV1 sequence header (for `av1C`), Opus packet durations.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::bits::BitReader;

/// A codec that can be written to WebM without transcoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    Opus,
    Vp8,
    Vp9,
    Av1,
}

impl Codec {
    /// The Matroska codec id.
    pub fn matroska_id(self) -> &'static str {
        match self {
            Codec::Opus => "A_OPUS",
            Codec::Vp8 => "V_VP8",
            Codec::Vp9 => "V_VP9",
            Codec::Av1 => "V_AV1",
        }
    }

    pub fn is_video(self) -> bool {
        !matches!(self, Codec::Opus)
    }

    /// The RTP clock rate WebRTC uses for this codec.
    pub fn clock_rate(self) -> u32 {
        match self {
            Codec::Opus => 48_000,
            _ => 90_000,
        }
    }
}

/// Width and height of a coded picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dimensions {
    pub width: u32,
    pub height: u32,
}

/// Picture size from a keyframe's header, if `frame` is a keyframe this codec's parser understands.
pub fn keyframe_dimensions(codec: Codec, frame: &[u8]) -> Option<Dimensions> {
    match codec {
        Codec::Opus => None,
        Codec::Vp8 => vp8_dimensions(frame),
        Codec::Vp9 => vp9_dimensions(frame),
        Codec::Av1 => av1_sequence_header(frame).map(|s| s.dimensions),
    }
}

/// Whether `frame` is a keyframe, judged from the bitstream alone (used where no RTP-level flag exists).
pub fn is_keyframe(codec: Codec, frame: &[u8]) -> bool {
    match codec {
        Codec::Opus => true,
        Codec::Vp8 => frame.first().is_some_and(|b| b & 1 == 0),
        Codec::Vp9 => vp9_dimensions(frame).is_some(),
        // A temporal unit that carries a sequence header starts a coded video sequence.
        Codec::Av1 => av1_sequence_header(frame).is_some(),
    }
}

fn vp8_dimensions(frame: &[u8]) -> Option<Dimensions> {
    // RFC 6386 9.1: a 3-byte frame tag whose lowest bit is 0 for keyframes, the start code
    // 9d 01 2a, then 14-bit width and height (the top two bits are scaling).
    if frame.len() < 10 || frame[0] & 1 != 0 || frame[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let width = u32::from(u16::from_le_bytes([frame[6], frame[7]]) & 0x3FFF);
    let height = u32::from(u16::from_le_bytes([frame[8], frame[9]]) & 0x3FFF);
    Some(Dimensions { width, height })
}

fn vp9_dimensions(frame: &[u8]) -> Option<Dimensions> {
    // VP9 bitstream specification 6.2, uncompressed_header(), up to frame_size().
    let mut r = BitReader::new(frame);
    if r.bits(2)? != 2 {
        return None;
    }
    let low = r.bit()?;
    let high = r.bit()?;
    let profile = (high << 1) | low;
    if profile == 3 {
        r.bit()?;
    }
    if r.flag()? {
        return None; // show_existing_frame
    }
    if r.bit()? != 0 {
        return None; // not a keyframe
    }
    r.bits(2)?; // show_frame, error_resilient_mode
    if r.bits(24)? != 0x49_8342 {
        return None;
    }
    if profile >= 2 {
        r.bit()?; // ten_or_twelve_bit
    }
    let color_space = r.bits(3)?;
    if color_space != 7 {
        r.bit()?; // color_range
        if profile == 1 || profile == 3 {
            r.bits(3)?; // subsampling_x, subsampling_y, reserved
        }
    } else if profile == 1 || profile == 3 {
        r.bit()?;
    }
    let width = r.bits(16)? + 1;
    let height = r.bits(16)? + 1;
    Some(Dimensions { width, height })
}

/// One OBU inside an AV1 temporal unit written in the low-overhead format (every OBU has a size).
struct Obu<'a> {
    kind: u8,
    /// The whole OBU, header and size included.
    raw: &'a [u8],
    payload: &'a [u8],
}

/// OBU types (AV1 specification 6.2.2).
const OBU_SEQUENCE_HEADER: u8 = 1;
const OBU_TEMPORAL_DELIMITER: u8 = 2;

fn leb128(data: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, byte) in data.iter().take(8).enumerate() {
        value |= u64::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// Splits a temporal unit into OBUs; stops (returning what it has) at the first malformed one.
fn obus(mut data: &[u8]) -> Vec<Obu<'_>> {
    let mut out = Vec::new();
    while let Some(&header) = data.first() {
        let kind = (header >> 3) & 0x0F;
        let has_extension = header & 0x04 != 0;
        let has_size = header & 0x02 != 0;
        let mut at = 1 + usize::from(has_extension);
        let len = if has_size {
            let Some((len, n)) = data.get(at..).and_then(leb128) else {
                break;
            };
            at += n;
            usize::try_from(len).unwrap_or(usize::MAX)
        } else {
            data.len().saturating_sub(at)
        };
        let Some(end) = at.checked_add(len).filter(|end| *end <= data.len()) else {
            break;
        };
        out.push(Obu {
            kind,
            raw: &data[..end],
            payload: &data[at..end],
        });
        data = &data[end..];
    }
    out
}

/// Removes temporal delimiter OBUs, which Matroska's AV1 mapping forbids inside blocks.
/// Returns `None` when there were none, so the common case copies nothing.
pub fn av1_strip_temporal_delimiters(frame: &[u8]) -> Option<Vec<u8>> {
    let units = obus(frame);
    if !units.iter().any(|o| o.kind == OBU_TEMPORAL_DELIMITER) {
        return None;
    }
    let mut out = Vec::with_capacity(frame.len());
    for obu in units.iter().filter(|o| o.kind != OBU_TEMPORAL_DELIMITER) {
        out.extend_from_slice(obu.raw);
    }
    Some(out)
}

/// What the writer needs from an AV1 sequence header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Av1SequenceHeader {
    pub dimensions: Dimensions,
    /// The `av1C` record (AV1 ISOBMFF binding 2.3) followed by the sequence header OBU: Matroska's
    /// CodecPrivate for V_AV1.
    pub codec_private: Vec<u8>,
}

/// Finds and parses the sequence header OBU in a temporal unit.
pub fn av1_sequence_header(frame: &[u8]) -> Option<Av1SequenceHeader> {
    let obu = obus(frame)
        .into_iter()
        .find(|o| o.kind == OBU_SEQUENCE_HEADER)?;
    let mut r = BitReader::new(obu.payload);
    // AV1 specification 5.5.1, sequence_header_obu().
    let profile = r.bits(3)?;
    r.bit()?; // still_picture
    let reduced = r.flag()?;
    let (level, tier);
    if reduced {
        level = r.bits(5)?;
        tier = 0;
    } else {
        let mut decoder_model_info = false;
        let mut buffer_delay_length = 0;
        if r.flag()? {
            // timing_info()
            r.bits(32)?;
            r.bits(32)?;
            if r.flag()? {
                r.uvlc()?;
            }
            decoder_model_info = r.flag()?;
            if decoder_model_info {
                buffer_delay_length = r.bits(5)? + 1;
                r.bits(32)?;
                r.bits(10)?; // buffer_removal_time_length, frame_presentation_time_length
            }
        }
        let initial_display_delay = r.flag()?;
        let points = r.bits(5)? + 1;
        let (mut first_level, mut first_tier) = (0, 0);
        for i in 0..points {
            r.bits(12)?; // operating_point_idc
            let l = r.bits(5)?;
            let t = if l > 7 { r.bit()? } else { 0 };
            if decoder_model_info && r.flag()? {
                r.bits(buffer_delay_length)?;
                r.bits(buffer_delay_length)?;
                r.bit()?;
            }
            if initial_display_delay && r.flag()? {
                r.bits(4)?;
            }
            if i == 0 {
                (first_level, first_tier) = (l, t);
            }
        }
        level = first_level;
        tier = first_tier;
    }
    let width_bits = r.bits(4)? + 1;
    let height_bits = r.bits(4)? + 1;
    let width = r.bits(width_bits)? + 1;
    let height = r.bits(height_bits)? + 1;
    if !reduced && r.flag()? {
        r.bits(7)?; // frame id lengths
    }
    r.bits(3)?; // use_128x128_superblock, enable_filter_intra, enable_intra_edge_filter
    if !reduced {
        r.bits(4)?; // interintra, masked compound, warped motion, dual filter
        let order_hint = r.flag()?;
        if order_hint {
            r.bits(2)?;
        }
        let force_screen_content = if r.flag()? { 2 } else { r.bit()? };
        if force_screen_content > 0 && !r.flag()? {
            r.bit()?;
        }
        if order_hint {
            r.bits(3)?;
        }
    }
    r.bits(3)?; // superres, cdef, restoration
    // color_config()
    let high_bitdepth = r.bit()?;
    let twelve_bit = if profile == 2 && high_bitdepth == 1 {
        r.bit()?
    } else {
        0
    };
    let mono = if profile == 1 { 0 } else { r.bit()? };
    let (mut primaries, mut transfer, mut matrix) = (2, 2, 2);
    if r.flag()? {
        primaries = r.bits(8)?;
        transfer = r.bits(8)?;
        matrix = r.bits(8)?;
    }
    let (mut sub_x, mut sub_y, mut sample_position) = (1, 1, 0);
    if mono == 1 {
        r.bit()?;
    } else if primaries == 1 && transfer == 13 && matrix == 0 {
        (sub_x, sub_y) = (0, 0);
    } else {
        r.bit()?; // color_range
        match profile {
            0 => {}
            1 => (sub_x, sub_y) = (0, 0),
            _ if twelve_bit == 1 => {
                sub_x = r.bit()?;
                sub_y = if sub_x == 1 { r.bit()? } else { 0 };
            }
            _ => (sub_x, sub_y) = (1, 0),
        }
        if sub_x == 1 && sub_y == 1 {
            sample_position = r.bits(2)?;
        }
    }
    let mut codec_private = vec![
        0x81,
        ((profile << 5) | level) as u8,
        ((tier << 7)
            | (high_bitdepth << 6)
            | (twelve_bit << 5)
            | (mono << 4)
            | (sub_x << 3)
            | (sub_y << 2)
            | sample_position) as u8,
        0,
    ];
    codec_private.extend_from_slice(obu.raw);
    Some(Av1SequenceHeader {
        dimensions: Dimensions { width, height },
        codec_private,
    })
}

/// How much audio an Opus packet holds (RFC 6716 3.1), from its TOC byte and frame count.
pub fn opus_packet_duration(packet: &[u8]) -> Option<Duration> {
    let toc = *packet.first()?;
    let config = toc >> 3;
    // Frame sizes in units of 2.5 ms.
    let per_frame: u32 = match config {
        0..=11 => [4, 8, 16, 24][usize::from(config % 4)],
        12..=15 => [4, 8][usize::from(config % 2)],
        _ => [1, 2, 4, 8][usize::from(config % 4)],
    };
    let frames: u32 = match toc & 3 {
        0 => 1,
        1 | 2 => 2,
        _ => u32::from(*packet.get(1)? & 0x3F),
    };
    Some(Duration::from_micros(u64::from(per_frame * frames) * 2500))
}

/// Channel count announced by an Opus packet's TOC (the stereo flag).
pub fn opus_channels(packet: &[u8]) -> u8 {
    match packet.first() {
        Some(toc) if toc & 0x04 != 0 => 2,
        _ => 1,
    }
}

/// The `OpusHead` identification header (RFC 7845 5.1), Matroska's CodecPrivate for A_OPUS.
/// RTP carries no pre-skip, so it is zero: nothing at the start is dropped.
pub fn opus_head(channels: u8) -> Vec<u8> {
    let mut head = b"OpusHead".to_vec();
    head.push(1);
    head.push(channels);
    head.extend_from_slice(&0u16.to_le_bytes());
    head.extend_from_slice(&48_000u32.to_le_bytes());
    head.extend_from_slice(&0i16.to_le_bytes());
    head.push(0); // mapping family 0: mono or stereo
    head
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp8_keyframe_size() {
        let frame = [
            0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01, 0, 0,
        ];
        assert_eq!(
            vp8_dimensions(&frame),
            Some(Dimensions {
                width: 640,
                height: 480
            })
        );
        assert!(is_keyframe(Codec::Vp8, &frame));
        let mut inter = frame;
        inter[0] |= 1;
        assert_eq!(vp8_dimensions(&inter), None);
        assert_eq!(vp8_dimensions(&frame[..5]), None);
    }

    #[test]
    fn opus_durations() {
        // config 27 (CELT 20 ms), one frame
        assert_eq!(
            opus_packet_duration(&[27 << 3]),
            Some(Duration::from_millis(20))
        );
        // config 1 (SILK 20 ms), two frames
        assert_eq!(
            opus_packet_duration(&[(1 << 3) | 1]),
            Some(Duration::from_millis(40))
        );
        // code 3, three 10 ms frames
        assert_eq!(
            opus_packet_duration(&[(26 << 3) | 3, 3]),
            Some(Duration::from_millis(30))
        );
        assert_eq!(opus_packet_duration(&[]), None);
    }

    #[test]
    fn opus_head_is_19_bytes() {
        let head = opus_head(2);
        assert_eq!(head.len(), 19);
        assert_eq!(&head[..8], b"OpusHead");
        assert_eq!(head[9], 2);
    }

    #[test]
    fn av1_delimiters_are_removed_and_garbage_is_harmless() {
        // temporal delimiter (size 0), then a padding OBU (type 15) of 2 bytes.
        let tu = [0x12, 0x00, 0x7A, 0x02, 0xAA, 0xBB];
        assert_eq!(
            av1_strip_temporal_delimiters(&tu),
            Some(vec![0x7A, 0x02, 0xAA, 0xBB])
        );
        assert_eq!(av1_strip_temporal_delimiters(&tu[2..]), None);
        assert_eq!(av1_sequence_header(&[0x0A, 0x7F]), None);
        assert_eq!(av1_sequence_header(&[0x0A, 0x05, 0x00]), None);
    }
}
