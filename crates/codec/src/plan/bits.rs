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
