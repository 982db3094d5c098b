//! The size-class table: the one place that says how a small request becomes a block size.
//!
//! ```text
//!   request in bytes    block size   size class   block alignment
//!   ----------------    ----------   ----------   ---------------
//!        1 ..   8            8            0          8
//!        9 ..  16           16            1         16
//!       17 ..  24           24            2          8
//!        ...               ...          ...        ...      8-byte steps up to FINE_LIMIT
//!      249 .. 256          256           31         16
//!      257 .. 272          272           32         16      16-byte steps above
//!        ...               ...          ...        ...
//!      497 .. 512          512           47         16
//! ```
//!
//! Small blocks step by 8 bytes up to [`FINE_LIMIT`] (256), as CPython <= 3.7's obmalloc and
//! mimalloc's small bins do, so that CPython's sizes (mostly multiples of 8: a float is 24
//! bytes, a small tuple 40 + 8n) are not rounded up to 16; above it classes step by
//! [`ALIGNMENT`] (16), where the waste of a step is a smaller share of the block.
//!
//! A request of `size` bytes maps to its class through one 64-entry table indexed by
//! `(size - 1) >> 3`: no branch, no division.
//!
//! **Alignment.** A pool's first block is 16-aligned and its blocks follow at `base + k * size`,
//! so a block of a class whose size is a multiple of 16 is 16-aligned and any other block is
//! 8-aligned ([`SizeClass::alignment`]). A request whose size is a non-zero multiple of 16 maps
//! to the class of exactly that size (every multiple of 16 up to the threshold is a class):
//! so **a request of a multiple of 16 bytes gets a 16-aligned block**, and a
//! caller that needs [`ALIGNMENT`] rounds its size up to a multiple of 16 (the `Allocator`
//! impl does). Every block is at least 8-aligned, which holds a pointer (the free lists' link).
//! A request of 0 bytes is served as a request of 1 byte. Requests above
//! [`SMALL_REQUEST_THRESHOLD`] have no size class: they are direct blocks of the raw heap,
//! always 16-aligned.

use raw_alloc::ALIGNMENT;
use serde::{Deserialize, Serialize};

/// The largest request served from a pool; larger ones are direct blocks (CPython's
/// `SMALL_REQUEST_THRESHOLD`).
pub const SMALL_REQUEST_THRESHOLD: usize = 512;

/// The step of the small classes, and the alignment every pool block has at least.
pub const QUANTUM: usize = 8;

/// The largest class of the 8-byte steps; classes above it step by [`ALIGNMENT`].
pub const FINE_LIMIT: usize = 256;

/// Classes of 8-byte steps: 8, 16, ..., [`FINE_LIMIT`].
const FINE_CLASSES: usize = FINE_LIMIT / QUANTUM;

/// How many size classes there are: [`FINE_LIMIT`] / 8 classes of 8-byte steps, then one per
/// multiple of [`ALIGNMENT`] up to [`SMALL_REQUEST_THRESHOLD`] (48).
pub const NUM_SIZE_CLASSES: usize =
    FINE_CLASSES + (SMALL_REQUEST_THRESHOLD - FINE_LIMIT) / ALIGNMENT;

/// Entries of the lookup tables: one per 8 bytes of request up to the threshold (a power of
/// two, so an index masked with `LOOKUP - 1` is in bounds without a check).
const LOOKUP: usize = SMALL_REQUEST_THRESHOLD / QUANTUM;

const QUANTUM_SHIFT: u32 = QUANTUM.trailing_zeros();

const _: () = assert!(QUANTUM.is_power_of_two() && ALIGNMENT == 2 * QUANTUM);
const _: () = assert!(QUANTUM >= size_of::<usize>(), "a free block holds a link");
const _: () =
    assert!(FINE_LIMIT.is_multiple_of(ALIGNMENT) && FINE_LIMIT <= SMALL_REQUEST_THRESHOLD);
const _: () = assert!(SMALL_REQUEST_THRESHOLD.is_multiple_of(ALIGNMENT));
const _: () = assert!(LOOKUP.is_power_of_two() && NUM_SIZE_CLASSES <= LOOKUP);
const _: () = assert!(NUM_SIZE_CLASSES <= u8::MAX as usize);

/// The block size of class `i` (and 0 for the unused entries past the last class).
const fn class_block_size(i: usize) -> usize {
    if i < FINE_CLASSES {
        (i + 1) * QUANTUM
    } else if i < NUM_SIZE_CLASSES {
        FINE_LIMIT + (i - FINE_CLASSES + 1) * ALIGNMENT
    } else {
        0
    }
}

/// `BLOCK_SIZE[class]`: the bytes of each block of a class.
const BLOCK_SIZE: [u16; LOOKUP] = {
    let mut t = [0u16; LOOKUP];
    let mut i = 0;
    while i < LOOKUP {
        t[i] = class_block_size(i) as u16;
        i += 1;
    }
    t
};

/// `CLASS_OF[(size - 1) >> 3]`: the smallest class whose blocks hold `size` bytes.
const CLASS_OF: [u8; LOOKUP] = {
    let mut t = [0u8; LOOKUP];
    let mut i = 0;
    while i < LOOKUP {
        let size = (i + 1) * QUANTUM; // the largest request of this entry
        t[i] = if size <= FINE_LIMIT {
            i
        } else {
            FINE_CLASSES + (size - FINE_LIMIT - 1) / ALIGNMENT
        } as u8;
        i += 1;
    }
    t
};

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
    /// instruction and keeps the lookup in bounds without a check, whatever the caller passes.)
    #[inline(always)]
    pub(crate) const fn from_request_index(size_minus_one: usize) -> SizeClass {
        debug_assert!(size_minus_one < SMALL_REQUEST_THRESHOLD);
        SizeClass(CLASS_OF[(size_minus_one >> QUANTUM_SHIFT) & (LOOKUP - 1)])
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
        BLOCK_SIZE[self.0 as usize & (LOOKUP - 1)] as usize
    }

    /// The alignment of every block of this class: [`ALIGNMENT`] (16) when the block size is a
    /// multiple of it, else [`QUANTUM`] (8). (Pools start their first block 16-aligned.)
    #[inline]
    pub const fn alignment(self) -> usize {
        if self.block_size().is_multiple_of(ALIGNMENT) {
            ALIGNMENT
        } else {
            QUANTUM
        }
    }

    /// Every class, smallest first.
    pub fn all() -> impl Iterator<Item = SizeClass> {
        (0..NUM_SIZE_CLASSES as u8).map(SizeClass)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference: the smallest class whose blocks hold `size` bytes, by search.
    fn smallest_fit(size: usize) -> SizeClass {
        SizeClass::all()
            .find(|c| c.block_size() >= size.max(1))
            .unwrap()
    }

    #[test]
    fn every_request_maps_to_the_smallest_class_that_fits() {
        assert_eq!(NUM_SIZE_CLASSES, 48);
        assert_eq!(SizeClass::all().count(), 48);
        let mut seen = std::collections::BTreeSet::new();
        for size in 0..=SMALL_REQUEST_THRESHOLD {
            let class = SizeClass::of(size).unwrap();
            assert_eq!(class, smallest_fit(size), "size {size}");
            assert!(
                class.block_size() >= size.max(1),
                "block too small for {size}"
            );
            let step = if size <= FINE_LIMIT {
                QUANTUM
            } else {
                ALIGNMENT
            };
            assert!(
                class.block_size() - size.max(1) < step,
                "more than one step of waste"
            );
            assert_eq!(SizeClass::from_index(class.index()), Some(class));
            seen.insert(class.index());
        }
        assert_eq!(seen.len(), NUM_SIZE_CLASSES);
    }

    #[test]
    fn block_sizes_grow_by_8_then_by_16() {
        let sizes: Vec<usize> = SizeClass::all().map(SizeClass::block_size).collect();
        assert_eq!(sizes[0], 8);
        assert_eq!(*sizes.last().unwrap(), SMALL_REQUEST_THRESHOLD);
        for w in sizes.windows(2) {
            let step = if w[1] <= FINE_LIMIT {
                QUANTUM
            } else {
                ALIGNMENT
            };
            assert_eq!(w[1] - w[0], step, "{w:?}");
        }
    }

    #[test]
    fn requests_of_multiples_of_16_get_16_aligned_classes() {
        for size in (ALIGNMENT..=SMALL_REQUEST_THRESHOLD).step_by(ALIGNMENT) {
            let class = SizeClass::of(size).unwrap();
            assert_eq!(
                class.block_size(),
                size,
                "a multiple of 16 is its own class"
            );
            assert_eq!(class.alignment(), ALIGNMENT);
        }
        for class in SizeClass::all() {
            assert!(class.alignment() >= QUANTUM);
            assert_eq!(class.block_size() % class.alignment(), 0);
        }
    }

    #[test]
    fn rounding_matches_the_table_in_the_module_docs() {
        let class = |s| SizeClass::of(s).unwrap();
        assert_eq!((class(1).index(), class(1).block_size()), (0, 8));
        assert_eq!((class(8).index(), class(8).block_size()), (0, 8));
        assert_eq!((class(9).index(), class(9).block_size()), (1, 16));
        assert_eq!((class(17).index(), class(17).block_size()), (2, 24));
        assert_eq!((class(249).index(), class(249).block_size()), (31, 256));
        assert_eq!((class(256).index(), class(256).block_size()), (31, 256));
        assert_eq!((class(257).index(), class(257).block_size()), (32, 272));
        assert_eq!((class(272).index(), class(272).block_size()), (32, 272));
        assert_eq!((class(497).index(), class(497).block_size()), (47, 512));
        assert_eq!((class(512).index(), class(512).block_size()), (47, 512));
        assert_eq!(class(24).alignment(), 8);
        assert_eq!(class(32).alignment(), 16);
    }

    #[test]
    fn zero_bytes_are_served_as_one_and_larger_requests_have_no_class() {
        assert_eq!(SizeClass::of(0), SizeClass::of(1));
        assert_eq!(SizeClass::of(513), None);
        assert_eq!(SizeClass::of(usize::MAX), None);
        assert_eq!(SizeClass::from_index(NUM_SIZE_CLASSES), None);
    }
}
