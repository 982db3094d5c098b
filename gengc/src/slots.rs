//! [`SlotSet`]: a set of slots of the young array, one bit each: which young objects the scan of
//! a running collection found unreachable. A bit per object instead of a list of pointers: the
//! garbage stays where it is in the young array, and a million objects cost 125 KiB of scratch.

/// A set of indices below a bound, as bits.
#[derive(Default)]
pub(crate) struct SlotSet {
    words: Vec<u64>,
    len: usize,
}

impl SlotSet {
    /// Empties the set and makes room for indices below `bound` (keeps its capacity).
    pub(crate) fn reset(&mut self, bound: usize) {
        self.words.clear();
        self.words.resize(bound.div_ceil(64), 0);
        self.len = 0;
    }

    /// Empties the set.
    pub(crate) fn clear(&mut self) {
        self.words.clear();
        self.len = 0;
    }

    /// How many indices are in the set.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Adds `i` (below the bound of the last `reset`), which must not be in the set.
    #[inline]
    pub(crate) fn insert(&mut self, i: usize) {
        let (w, bit) = (i / 64, 1u64 << (i % 64));
        debug_assert_eq!(self.words[w] & bit, 0);
        self.words[w] |= bit;
        self.len += 1;
    }

    /// Removes `i`, which must be in the set.
    #[inline]
    pub(crate) fn remove(&mut self, i: usize) {
        let (w, bit) = (i / 64, 1u64 << (i % 64));
        debug_assert_ne!(self.words[w] & bit, 0);
        self.words[w] &= !bit;
        self.len -= 1;
    }

    /// The bits of indices `64 * w .. 64 * w + 64` (0 past the bound).
    #[inline]
    pub(crate) fn word(&self, w: usize) -> u64 {
        self.words.get(w).copied().unwrap_or(0)
    }

    /// The indices in the set, in increasing order.
    pub(crate) fn iter(&self) -> Iter<'_> {
        Iter {
            words: &self.words,
            next_word: 0,
            bits: 0,
            base: 0,
        }
    }
}

/// The indices of a [`SlotSet`], in increasing order.
pub(crate) struct Iter<'a> {
    words: &'a [u64],
    next_word: usize,
    /// The bits of the current word not yet yielded.
    bits: u64,
    /// The index of the current word's bit 0.
    base: usize,
}

impl Iterator for Iter<'_> {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        while self.bits == 0 {
            self.bits = *self.words.get(self.next_word)?;
            self.base = self.next_word * 64;
            self.next_word += 1;
        }
        let bit = self.bits.trailing_zeros() as usize;
        self.bits &= self.bits - 1;
        Some(self.base + bit)
    }
}

#[cfg(test)]
mod tests {
    use super::SlotSet;

    #[test]
    fn holds_what_was_inserted_in_order() {
        let mut s = SlotSet::default();
        s.reset(200);
        for i in [0, 5, 63, 64, 130, 199] {
            s.insert(i);
        }
        s.remove(64);
        assert_eq!(s.iter().collect::<Vec<_>>(), [0, 5, 63, 130, 199]);
        assert_eq!(s.len(), 5);
        assert_eq!((s.word(2), s.word(1), s.word(99)), (1 << 2, 0, 0));
        s.clear();
        assert_eq!(s.iter().count(), 0);
    }
}
