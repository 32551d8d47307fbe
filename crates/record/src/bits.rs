//! A big-endian bit reader for codec headers (VP9 uncompressed header, AV1 sequence header).

/// Reads bits most significant first. Reading past the end yields `None`, never a panic.
pub struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    pub fn bit(&mut self) -> Option<u32> {
        let byte = *self.data.get(self.pos / 8)?;
        let bit = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Some(u32::from(bit))
    }

    pub fn bits(&mut self, n: u32) -> Option<u32> {
        debug_assert!(n <= 32);
        let mut value: u64 = 0;
        for _ in 0..n {
            value = (value << 1) | u64::from(self.bit()?);
        }
        // n <= 32, so the value fits.
        u32::try_from(value).ok()
    }

    pub fn flag(&mut self) -> Option<bool> {
        Some(self.bit()? == 1)
    }

    /// AV1's uvlc(): leading zeros, then that many bits.
    pub fn uvlc(&mut self) -> Option<u32> {
        let mut leading = 0;
        while self.bit()? == 0 {
            leading += 1;
            if leading >= 32 {
                return Some(u32::MAX);
            }
        }
        let value = self.bits(leading)?;
        Some(value.saturating_add((1u32 << leading) - 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_across_bytes_and_stops_at_the_end() {
        let mut r = BitReader::new(&[0b1010_0000, 0xFF]);
        assert_eq!(r.bits(3), Some(0b101));
        assert_eq!(r.bits(9), Some(0b0_0000_1111));
        assert_eq!(r.bits(4), Some(0xF));
        assert_eq!(r.bit(), None);
    }

    #[test]
    fn uvlc() {
        // "1" -> 0; "010" -> 1; "011" -> 2; "00100" -> 3
        let mut r = BitReader::new(&[0b1010_0110, 0b0100_0000]);
        assert_eq!(r.uvlc(), Some(0));
        assert_eq!(r.uvlc(), Some(1));
        assert_eq!(r.uvlc(), Some(2));
        assert_eq!(r.uvlc(), Some(3));
    }
}
