//! The size-class table: the one place that says how a small request becomes a block size.
//!
//! ```text
//!   request in bytes    block size   size class
//!   ----------------    ----------   ----------
//!        1 ..  16           16            0
//!       17 ..  32           32            1
//!       33 ..  48           48            2
//!        ...               ...          ...
//!      497 .. 512          512           31
//! ```
//!
//! Blocks are multiples of [`ALIGNMENT`] (16 bytes), so every block keeps the alignment that the
//! heap promises. A request of 0 bytes is served as a request of 1 byte. Requests above
//! [`SMALL_REQUEST_THRESHOLD`] have no size class: they are direct blocks of the raw heap.

use raw_alloc::ALIGNMENT;
use serde::{Deserialize, Serialize};

/// The largest request served from a pool; larger ones are direct blocks (CPython's
/// `SMALL_REQUEST_THRESHOLD`).
pub const SMALL_REQUEST_THRESHOLD: usize = 512;

/// How many size classes there are: one per multiple of [`ALIGNMENT`] up to
/// [`SMALL_REQUEST_THRESHOLD`].
pub const NUM_SIZE_CLASSES: usize = SMALL_REQUEST_THRESHOLD / ALIGNMENT;

const ALIGNMENT_SHIFT: u32 = ALIGNMENT.trailing_zeros();

const _: () = assert!(ALIGNMENT.is_power_of_two());
const _: () = assert!(SMALL_REQUEST_THRESHOLD.is_multiple_of(ALIGNMENT));
const _: () = assert!(NUM_SIZE_CLASSES.is_power_of_two() && NUM_SIZE_CLASSES <= u8::MAX as usize);

/// One size class: the blocks of one size that pools serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SizeClass(u8);

impl SizeClass {
    /// The class serving a request of `size` bytes, or `None` above [`SMALL_REQUEST_THRESHOLD`].
    /// Zero bytes are served as one.
    #[inline]
    pub const fn of(size: usize) -> Option<SizeClass> {
        let size = if size == 0 { 1 } else { size };
        if size > SMALL_REQUEST_THRESHOLD {
            return None;
        }
        Some(SizeClass::from_request_index(size - 1))
    }

    /// The class of `size - 1` for a size in `1..=SMALL_REQUEST_THRESHOLD`: the hot path's form,
    /// which has already checked the bound while computing `size - 1`. (The mask costs one
    /// instruction and keeps every `SizeClass` a valid table index, whatever the caller passes.)
    #[inline(always)]
    pub(crate) const fn from_request_index(size_minus_one: usize) -> SizeClass {
        debug_assert!(size_minus_one < SMALL_REQUEST_THRESHOLD);
        SizeClass(((size_minus_one >> ALIGNMENT_SHIFT) & (NUM_SIZE_CLASSES - 1)) as u8)
    }

    /// The class with this index, if there is one.
    pub const fn from_index(index: usize) -> Option<SizeClass> {
        if index < NUM_SIZE_CLASSES {
            Some(SizeClass(index as u8))
        } else {
            None
        }
    }

    /// The class's position in the table, `0..NUM_SIZE_CLASSES`.
    #[inline(always)]
    pub const fn index(self) -> usize {
        self.0 as usize
    }

    /// The bytes of each block of this class.
    #[inline(always)]
    pub const fn block_size(self) -> usize {
        (self.0 as usize + 1) << ALIGNMENT_SHIFT
    }

    /// Every class, smallest first.
    pub fn all() -> impl Iterator<Item = SizeClass> {
        (0..NUM_SIZE_CLASSES as u8).map(SizeClass)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_up_to_the_threshold_fall_into_32_classes_of_16_byte_steps() {
        assert_eq!(NUM_SIZE_CLASSES, 32);
        assert_eq!(SizeClass::all().count(), 32);
        let mut seen = std::collections::BTreeSet::new();
        for size in 1..=SMALL_REQUEST_THRESHOLD {
            let class = SizeClass::of(size).unwrap();
            assert!(class.block_size() >= size, "block too small for {size}");
            assert!(
                class.block_size() - size < ALIGNMENT,
                "more than one step of waste"
            );
            assert_eq!(class.block_size() % ALIGNMENT, 0);
            assert_eq!(SizeClass::from_index(class.index()), Some(class));
            seen.insert(class.index());
        }
        assert_eq!(seen.len(), 32);
    }

    #[test]
    fn rounding_matches_the_table_in_the_module_docs() {
        let class = |s| SizeClass::of(s).unwrap();
        assert_eq!((class(1).index(), class(1).block_size()), (0, 16));
        assert_eq!((class(16).index(), class(16).block_size()), (0, 16));
        assert_eq!((class(17).index(), class(17).block_size()), (1, 32));
        assert_eq!((class(33).index(), class(33).block_size()), (2, 48));
        assert_eq!((class(497).index(), class(497).block_size()), (31, 512));
        assert_eq!((class(512).index(), class(512).block_size()), (31, 512));
    }

    #[test]
    fn zero_bytes_are_served_as_one_and_larger_requests_have_no_class() {
        assert_eq!(SizeClass::of(0), SizeClass::of(1));
        assert_eq!(SizeClass::of(513), None);
        assert_eq!(SizeClass::of(usize::MAX), None);
        assert_eq!(SizeClass::from_index(32), None);
    }
}
