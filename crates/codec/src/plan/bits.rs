//! Integers in memory: loading and storing up to 16 bytes in either byte
//! order, and bitfields as windows of whole bytes holding the field.

use ebpf_sdk_schema::ByteOrder;

use crate::sugar::mask;

pub(super) fn store(buf: &mut [u8], bits: u128, order: ByteOrder) {
    let n = buf.len();
    match order {
        ByteOrder::Little => buf.copy_from_slice(&bits.to_le_bytes()[..n]),
        ByteOrder::Big => buf.copy_from_slice(&bits.to_be_bytes()[16 - n..]),
    }
}

pub(crate) fn load(buf: &[u8], order: ByteOrder) -> u128 {
    let mut b = [0u8; 16];
    let n = buf.len();
    match order {
        ByteOrder::Little => {
            b[..n].copy_from_slice(buf);
            u128::from_le_bytes(b)
        }
        ByteOrder::Big => {
            b[16 - n..].copy_from_slice(buf);
            u128::from_be_bytes(b)
        }
    }
}

/// The bytes of a bitfield window and the shift of the field within it.
/// Little-endian targets number bits from the least significant bit of the
/// little-endian bytes; big-endian ones from the most significant bit of
/// the first byte, the field's most significant bit first (clang, GCC and
/// the kernel's BTF agree on both).
fn window(bit_off: u32, width: u32, order: ByteOrder) -> (usize, usize, u32) {
    let first = (bit_off / 8) as usize;
    let last = ((bit_off + width - 1) / 8) as usize;
    let k = last - first + 1;
    let shift = match order {
        ByteOrder::Little => bit_off % 8,
        ByteOrder::Big => (k as u32) * 8 - bit_off % 8 - width,
    };
    (first, last + 1, shift)
}

pub(crate) fn load_bits(buf: &[u8], bit_off: u32, width: u32, order: ByteOrder) -> u128 {
    let (a, b, shift) = window(bit_off, width, order);
    (load(&buf[a..b], order) >> shift) & mask(width)
}

pub(super) fn store_bits(buf: &mut [u8], bit_off: u32, width: u32, order: ByteOrder, v: u128) {
    let (a, b, shift) = window(bit_off, width, order);
    let m = mask(width) << shift;
    let w = (load(&buf[a..b], order) & !m) | ((v << shift) & m);
    store(&mut buf[a..b], w, order);
}

#[cfg(test)]
mod tests {
    use super::*;
    use ByteOrder::{Big, Little};

    #[test]
    fn whole_integers_in_both_orders() {
        assert_eq!(load(&[0x01, 0x02, 0x03, 0x04], Little), 0x0403_0201);
        assert_eq!(load(&[0x01, 0x02, 0x03, 0x04], Big), 0x0102_0304);
        assert_eq!(load(&[0x80], Big), 0x80);
        let sixteen: Vec<u8> = (1..=16).collect();
        assert_eq!(
            load(&sixteen, Little),
            0x100f_0e0d_0c0b_0a09_0807_0605_0403_0201
        );
        assert_eq!(
            load(&sixteen, Big),
            0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10
        );

        let mut three = [0u8; 3];
        store(&mut three, 0x0a_0b0c, Little);
        assert_eq!(three, [0x0c, 0x0b, 0x0a]);
        store(&mut three, 0x0a_0b0c, Big);
        assert_eq!(three, [0x0a, 0x0b, 0x0c]);
        // Bits beyond the buffer are dropped, not carried.
        let mut two = [0u8; 2];
        store(&mut two, 0x12_3456, Little);
        assert_eq!(two, [0x56, 0x34]);
        store(&mut two, 0x12_3456, Big);
        assert_eq!(two, [0x34, 0x56]);
    }

    #[test]
    fn windows_count_from_the_low_or_the_high_bit() {
        // (bit offset, width) -> (first byte, end byte, shift of the field in
        // the loaded window), little-endian then big-endian.
        let cases = [
            ((3, 4), (0, 1, 3), (0, 1, 1)),
            ((6, 4), (0, 2, 6), (0, 2, 6)),
            ((13, 11), (1, 3, 5), (1, 3, 0)),
            ((8, 128), (1, 17, 0), (1, 17, 0)),
            ((7, 1), (0, 1, 7), (0, 1, 0)),
        ];
        for ((off, width), little, big) in cases {
            assert_eq!(window(off, width, Little), little, "{width} bits at {off}");
            assert_eq!(window(off, width, Big), big, "{width} bits at {off}");
        }
    }

    #[test]
    fn bitfields_at_odd_offsets() {
        let stored = |init: [u8; 2], off: u32, width: u32, order: ByteOrder, v: u128| {
            let mut b = init;
            store_bits(&mut b, off, width, order, v);
            assert_eq!(load_bits(&b, off, width, order), v & mask(width));
            b
        };
        // 5 bits at bit 3: the high five bits of byte 0 (little-endian), the
        // low five (big-endian, where bit 0 is the first byte's top bit).
        assert_eq!(stored([0; 2], 3, 5, Little, 0b10110), [0xb0, 0x00]);
        assert_eq!(stored([0; 2], 3, 5, Big, 0b10110), [0x16, 0x00]);
        // 7 bits at bit 6 straddle two bytes.
        assert_eq!(stored([0; 2], 6, 7, Little, 0x7f), [0xc0, 0x1f]);
        assert_eq!(stored([0; 2], 6, 7, Big, 0x7f), [0x03, 0xf8]);
        // Storing keeps the neighbours and drops bits beyond the width.
        assert_eq!(stored([0xff; 2], 6, 7, Little, 0x80), [0x3f, 0xe0]);
        assert_eq!(stored([0xff; 2], 6, 7, Big, 0), [0xfc, 0x07]);
        assert_eq!(load_bits(&[0xfc, 0x07], 0, 6, Big), 0x3f);
        assert_eq!(load_bits(&[0xfc, 0x07], 13, 3, Big), 0x7);
    }

    /// Bit `i` of the field, counted from its least significant bit, as
    /// (byte, bit in byte from the low end), without windows.
    fn place(bit_off: u32, width: u32, i: u32, order: ByteOrder) -> (usize, u32) {
        let at = match order {
            Little => bit_off + i,
            Big => bit_off + (width - 1 - i),
        };
        let in_byte = match order {
            Little => at % 8,
            Big => 7 - at % 8,
        };
        ((at / 8) as usize, in_byte)
    }

    #[test]
    fn every_width_from_1_to_128_bits() {
        let pattern: u128 = 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210;
        for order in [Little, Big] {
            for width in 1..=128u32 {
                for bit_off in [0, 1, 3, 7, 8, 13] {
                    if bit_off % 8 + width > 128 {
                        continue;
                    }
                    let v = pattern & mask(width);
                    let mut buf = [0xa5u8; 18];
                    store_bits(&mut buf, bit_off, width, order, v);
                    let mut expected = [0xa5u8; 18];
                    for i in 0..width {
                        let (byte, bit) = place(bit_off, width, i, order);
                        let on = (v >> i) & 1 == 1;
                        expected[byte] = (expected[byte] & !(1 << bit)) | (u8::from(on) << bit);
                    }
                    let what = format!("{order:?} {width} bits at bit {bit_off}");
                    assert_eq!(buf, expected, "{what}");
                    assert_eq!(load_bits(&buf, bit_off, width, order), v, "{what}");
                }
            }
        }
    }
}
