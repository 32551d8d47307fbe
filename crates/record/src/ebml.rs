//! EBML (the binary format under Matroska and WebM): element ids, sizes and values as bytes.
//!
//! Only what the writer needs: every function appends to a `Vec<u8>`, nothing is read back.

/// An element size that means "unknown": the element lasts until a parent-level element starts.
/// Written as eight bytes so it can be replaced in place by the real size when the file is finished.
pub const UNKNOWN_SIZE: [u8; 8] = [0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];

/// Appends an element id. Ids carry their own length marker, so they are written as they are.
pub fn id(out: &mut Vec<u8>, id: u32) {
    let bytes = id.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count().min(3);
    out.extend_from_slice(&bytes[skip..]);
}

/// Appends a size as the shortest variable-length integer that is not the all-ones "unknown" value.
pub fn size(out: &mut Vec<u8>, value: u64) {
    let mut len = 1;
    // A length-n vint holds 7n bits; the all-ones pattern is reserved, hence the `- 1`.
    while len < 8 && value >= (1u64 << (7 * len)) - 1 {
        len += 1;
    }
    size_fixed(out, value, len);
}

/// Appends a size in exactly `len` bytes (1..=8), so that it can be patched later without moving data.
pub fn size_fixed(out: &mut Vec<u8>, value: u64, len: usize) {
    let marked = value | (1u64 << (7 * len));
    out.extend_from_slice(&marked.to_be_bytes()[8 - len..]);
}

/// The eight-byte size field for `value`, as [`size_fixed`] writes it.
pub fn size8(value: u64) -> [u8; 8] {
    let mut out = Vec::with_capacity(8);
    size_fixed(&mut out, value, 8);
    let mut fixed = [0u8; 8];
    fixed.copy_from_slice(&out);
    fixed
}

/// Appends an unsigned integer element in as few bytes as the value needs.
pub fn uint(out: &mut Vec<u8>, element: u32, value: u64) {
    let bytes = value.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count().min(7);
    id(out, element);
    size(out, (8 - skip) as u64);
    out.extend_from_slice(&bytes[skip..]);
}

/// Appends an unsigned integer element always eight bytes long, so that its total size is known in advance.
pub fn uint8(out: &mut Vec<u8>, element: u32, value: u64) {
    id(out, element);
    size(out, 8);
    out.extend_from_slice(&value.to_be_bytes());
}

/// Appends an eight-byte float element.
pub fn float(out: &mut Vec<u8>, element: u32, value: f64) {
    id(out, element);
    size(out, 8);
    out.extend_from_slice(&value.to_be_bytes());
}

/// Appends a binary (or UTF-8 string) element.
pub fn bytes(out: &mut Vec<u8>, element: u32, value: &[u8]) {
    id(out, element);
    size(out, value.len() as u64);
    out.extend_from_slice(value);
}

/// Appends a master element whose children were already serialized into `body`.
pub fn master(out: &mut Vec<u8>, element: u32, body: &[u8]) {
    bytes(out, element, body);
}

/// Appends a Void element that occupies exactly `total` bytes (id and size included, `total >= 2`),
/// so that something else can be written over it later.
pub fn void(out: &mut Vec<u8>, total: usize) {
    debug_assert!(total >= 2);
    // One id byte; the size field takes one byte up to 126 and eight beyond, which keeps the
    // arithmetic exact for any total.
    let (size_len, body) = if total - 2 <= 126 {
        (1, total - 2)
    } else {
        (8, total - 9)
    };
    id(out, VOID);
    size_fixed(out, body as u64, size_len);
    out.resize(out.len() + body, 0);
}

// Element ids (Matroska specification, RFC 9559).
pub const EBML: u32 = 0x1A45_DFA3;
pub const EBML_VERSION: u32 = 0x4286;
pub const EBML_READ_VERSION: u32 = 0x42F7;
pub const EBML_MAX_ID_LENGTH: u32 = 0x42F2;
pub const EBML_MAX_SIZE_LENGTH: u32 = 0x42F3;
pub const DOC_TYPE: u32 = 0x4282;
pub const DOC_TYPE_VERSION: u32 = 0x4287;
pub const DOC_TYPE_READ_VERSION: u32 = 0x4285;
pub const VOID: u32 = 0xEC;
pub const SEGMENT: u32 = 0x1853_8067;
pub const SEEK_HEAD: u32 = 0x114D_9B74;
pub const SEEK: u32 = 0x4DBB;
pub const SEEK_ID: u32 = 0x53AB;
pub const SEEK_POSITION: u32 = 0x53AC;
pub const INFO: u32 = 0x1549_A966;
pub const TIMESTAMP_SCALE: u32 = 0x2A_D7B1;
pub const DURATION: u32 = 0x4489;
pub const MUXING_APP: u32 = 0x4D80;
pub const WRITING_APP: u32 = 0x5741;
pub const TRACKS: u32 = 0x1654_AE6B;
pub const TRACK_ENTRY: u32 = 0xAE;
pub const TRACK_NUMBER: u32 = 0xD7;
pub const TRACK_UID: u32 = 0x73C5;
pub const TRACK_TYPE: u32 = 0x83;
pub const FLAG_LACING: u32 = 0x9C;
pub const NAME: u32 = 0x536E;
pub const CODEC_ID: u32 = 0x86;
pub const CODEC_PRIVATE: u32 = 0x63A2;
pub const CODEC_DELAY: u32 = 0x56AA;
pub const SEEK_PRE_ROLL: u32 = 0x56BB;
pub const VIDEO: u32 = 0xE0;
pub const PIXEL_WIDTH: u32 = 0xB0;
pub const PIXEL_HEIGHT: u32 = 0xBA;
pub const AUDIO: u32 = 0xE1;
pub const SAMPLING_FREQUENCY: u32 = 0xB5;
pub const CHANNELS: u32 = 0x9F;
pub const CLUSTER: u32 = 0x1F43_B675;
pub const TIMESTAMP: u32 = 0xE7;
pub const SIMPLE_BLOCK: u32 = 0xA3;
pub const CUES: u32 = 0x1C53_BB6B;
pub const CUE_POINT: u32 = 0xBB;
pub const CUE_TIME: u32 = 0xB3;
pub const CUE_TRACK_POSITIONS: u32 = 0xB7;
pub const CUE_TRACK: u32 = 0xF7;
pub const CUE_CLUSTER_POSITION: u32 = 0xF1;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_use_the_shortest_form_and_avoid_the_reserved_value() {
        let enc = |v| {
            let mut o = Vec::new();
            size(&mut o, v);
            o
        };
        assert_eq!(enc(0), [0x80]);
        assert_eq!(enc(126), [0xFE]);
        // 127 in one byte would be 0xFF, which means "unknown".
        assert_eq!(enc(127), [0x40, 0x7F]);
        assert_eq!(enc(16_382), [0x7F, 0xFE]);
        assert_eq!(enc(16_383), [0x20, 0x3F, 0xFF]);
    }

    #[test]
    fn ids_keep_their_marker_bytes() {
        let mut o = Vec::new();
        id(&mut o, CLUSTER);
        id(&mut o, SIMPLE_BLOCK);
        id(&mut o, DURATION);
        assert_eq!(o, [0x1F, 0x43, 0xB6, 0x75, 0xA3, 0x44, 0x89]);
    }

    #[test]
    fn fixed_sizes_are_patchable() {
        assert_eq!(size8(5), [0x01, 0, 0, 0, 0, 0, 0, 5]);
        let mut o = Vec::new();
        size_fixed(&mut o, 300, 2);
        assert_eq!(o, [0x41, 0x2C]);
    }

    #[test]
    fn void_fills_exactly() {
        for total in [2, 3, 11, 128, 129, 130, 500] {
            let mut o = Vec::new();
            void(&mut o, total);
            assert_eq!(o.len(), total, "total {total}");
            assert_eq!(o[0], 0xEC);
        }
    }

    #[test]
    fn uints_are_minimal() {
        let mut o = Vec::new();
        uint(&mut o, TRACK_NUMBER, 1);
        assert_eq!(o, [0xD7, 0x81, 0x01]);
        let mut o = Vec::new();
        uint(&mut o, TIMESTAMP, 0);
        assert_eq!(o, [0xE7, 0x81, 0x00]);
        let mut o = Vec::new();
        uint(&mut o, TIMESTAMP_SCALE, 1_000_000);
        assert_eq!(o, [0x2A, 0xD7, 0xB1, 0x83, 0x0F, 0x42, 0x40]);
    }
}
