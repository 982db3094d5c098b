//! A generation: its tracked containers in the order they joined it, each knowing its slot.
//!
//! ```text
//!   slots:  [ a | b | None | c | None | d ]      holes: 2, len: 4
//!             ^                 ^
//!             a's GC header index = 0, c's = 3
//! ```
//!
//! A container that dies leaves a hole where it was: untracking writes one slot and touches no
//! other object (a swap-remove would write the header of the object it moves, anywhere in
//! memory, and shuffle the generation out of the order its objects sit in memory). Holes are
//! closed when the generation is collected (the oldest collected generation's slots become
//! the collection's young array, the younger ones are moved to its end without their holes,
//! and the sweep closes ranks), and in place when they come to outnumber the objects past
//! [`MIN_SLOTS_TO_CLOSE`] slots: a generation takes at most about twice the slots of its
//! objects. The permanent generation, never collected, only closes its holes in place.
//!
//! The invariant this module owns: every `Some(obj)` at position `i` of `slots` is a live
//! tracked container whose GC header `index` is `i`, and `holes` counts the `None`s.

use refcount::ObjPtr;

use crate::header::gc_header;

/// Below this many slots, holes are never closed in place (the next collection does it).
const MIN_SLOTS_TO_CLOSE: usize = 64;

/// One generation's objects (see the module's picture).
#[derive(Default)]
pub(crate) struct Generation {
    slots: Vec<Option<ObjPtr>>,
    holes: usize,
}

impl Generation {
    /// How many objects.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.slots.len() - self.holes
    }

    /// Whether it holds no object.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The objects, in the order they joined.
    pub(crate) fn iter(&self) -> impl Iterator<Item = ObjPtr> + '_ {
        self.slots.iter().flatten().copied()
    }

    /// Adds `obj` at the end and writes its slot into its GC header.
    ///
    /// # Safety
    /// `obj` must be a live container in no generation.
    #[inline]
    pub(crate) unsafe fn push(&mut self, obj: ObjPtr) {
        // SAFETY: a live container (contract).
        unsafe { gc_header(obj) }.index.set(self.slots.len() as u32);
        self.slots.push(Some(obj));
    }

    /// Takes the object at `index` out, leaving a hole (or none, at the end).
    ///
    /// # Safety
    /// `index` must be the slot of an object of this generation (its GC header's index).
    #[inline]
    pub(crate) unsafe fn remove(&mut self, index: usize) {
        debug_assert!(self.slots[index].is_some());
        if index + 1 == self.slots.len() {
            self.slots.pop();
            while let Some(None) = self.slots.last() {
                self.slots.pop();
                self.holes -= 1;
            }
            return;
        }
        self.slots[index] = None;
        self.holes += 1;
        if self.holes * 2 > self.slots.len() && self.slots.len() >= MIN_SLOTS_TO_CLOSE {
            self.close_holes();
        }
    }

    /// Moves the objects down over the holes, in order, and tells each its new slot.
    fn close_holes(&mut self) {
        let mut kept = 0;
        for i in 0..self.slots.len() {
            let Some(obj) = self.slots[i] else { continue };
            if kept != i {
                // SAFETY: objects of a generation are live containers (module invariant).
                unsafe { gc_header(obj) }.index.set(kept as u32);
                self.slots[kept] = Some(obj);
            }
            kept += 1;
        }
        self.slots.truncate(kept);
        self.holes = 0;
    }

    /// Takes the slots out, holes included, leaving the generation empty (with no buffer).
    /// The objects' GC headers still name their old slots.
    pub(crate) fn take_slots(&mut self) -> Vec<Option<ObjPtr>> {
        self.holes = 0;
        std::mem::take(&mut self.slots)
    }

    /// Makes `slots` the generation's, when it is empty: a buffer given back, or a collection's
    /// survivors.
    ///
    /// # Safety
    /// Every slot is `Some`, of a live container whose GC header's index is its position in
    /// `slots` and which is in no other generation.
    pub(crate) unsafe fn set_slots(&mut self, slots: Vec<Option<ObjPtr>>) {
        debug_assert!(self.slots.is_empty() && slots.iter().all(Option::is_some));
        self.slots = slots;
        self.holes = 0;
    }

    /// Moves the objects (not the holes) to the end of `dest`, keeping this generation's
    /// buffer. Their GC headers still name their old slots.
    pub(crate) fn drain_into(&mut self, dest: &mut Vec<Option<ObjPtr>>) {
        dest.extend(self.slots.drain(..).filter(Option::is_some));
        self.holes = 0;
    }

    /// Appends the slots of `more`, leaving it empty.
    ///
    /// # Safety
    /// Every slot of `more` is `Some`, of a live container in no generation whose GC header's
    /// index is already `self.next_slot()` plus its position in `more`.
    pub(crate) unsafe fn append(&mut self, more: &mut Vec<Option<ObjPtr>>) {
        debug_assert!(more.iter().all(Option::is_some));
        self.slots.append(more);
    }

    /// The number of slots the next push takes (its objects and holes so far).
    pub(crate) fn next_slot(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(test)]
mod tests {
    //! The generation's slot bookkeeping on real containers of a heap with no collector hook
    //! (so that nothing else tracks them).

    use refcount::{ObjRef, Object, RcHeap, RefCell1, Trace, TypeInfo, Visit};

    use super::*;

    #[derive(Default)]
    struct Cell1<'h>(RefCell1<'h>);
    impl Trace for Cell1<'_> {
        fn trace(&self, v: &mut Visit<'_>) {
            self.0.trace(v)
        }
    }
    static CELL1: TypeInfo = TypeInfo::new::<Cell1<'static>>("cell1");
    impl Object for Cell1<'_> {
        const CONTAINER: bool = true;
        fn type_info() -> &'static TypeInfo {
            &CELL1
        }
    }

    fn objects(heap: &RcHeap, n: usize) -> Vec<ObjRef<'_>> {
        (0..n)
            .map(|_| heap.alloc(Cell1::default()).unwrap().erase())
            .collect()
    }

    /// Every object's header names its slot, and the holes are counted.
    fn check(gen: &Generation) {
        let mut holes = 0;
        for (i, slot) in gen.slots.iter().enumerate() {
            match slot {
                // SAFETY: the test's objects are live containers.
                Some(obj) => assert_eq!(unsafe { gc_header(*obj) }.index.get() as usize, i),
                None => holes += 1,
            }
        }
        assert_eq!(holes, gen.holes);
        assert_ne!(gen.slots.last(), Some(&None), "no hole at the end");
    }

    fn fill(gen: &mut Generation, objs: &[ObjRef<'_>]) {
        for obj in objs {
            // SAFETY: the test's objects are live containers, each pushed once.
            unsafe { gen.push(obj.as_ptr()) };
        }
    }

    fn index_of(obj: &ObjRef<'_>) -> usize {
        // SAFETY: a live container.
        unsafe { gc_header(obj.as_ptr()) }.index.get() as usize
    }

    #[test]
    fn a_removed_object_leaves_a_hole_and_moves_nobody() {
        let heap = RcHeap::new(Default::default()).unwrap();
        let objs = objects(&heap, 5);
        let mut gen = Generation::default();
        fill(&mut gen, &objs);
        // SAFETY: object 1's slot.
        unsafe { gen.remove(index_of(&objs[1])) };
        assert_eq!(gen.len(), 4);
        assert_eq!(index_of(&objs[4]), 4, "the last object stays where it was");
        check(&gen);
        let order: Vec<_> = gen.iter().collect();
        assert_eq!(
            order,
            [0, 2, 3, 4].map(|i| objs[i].as_ptr()),
            "the order they joined in"
        );
    }

    #[test]
    fn removing_the_last_object_takes_the_holes_before_it_too() {
        let heap = RcHeap::new(Default::default()).unwrap();
        let objs = objects(&heap, 4);
        let mut gen = Generation::default();
        fill(&mut gen, &objs);
        for i in [1, 2, 3] {
            // SAFETY: each object's own slot, removed once.
            unsafe { gen.remove(index_of(&objs[i])) };
        }
        assert_eq!((gen.len(), gen.next_slot()), (1, 1));
        check(&gen);
    }

    #[test]
    fn holes_are_closed_when_they_outnumber_the_objects() {
        let heap = RcHeap::new(Default::default()).unwrap();
        let n = 200;
        let objs = objects(&heap, n);
        let mut gen = Generation::default();
        fill(&mut gen, &objs);
        // Remove every object but the last and every third: the slots never exceed about
        // twice the objects.
        for (i, obj) in objs.iter().enumerate().take(n - 1) {
            if i % 3 != 0 {
                // SAFETY: its own slot, removed once.
                unsafe { gen.remove(index_of(obj)) };
                assert!(gen.next_slot() <= 2 * gen.len() + 1);
                check(&gen);
            }
        }
        let left: Vec<_> = gen.iter().collect();
        let expected: Vec<_> = objs
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 3 == 0 || *i == n - 1)
            .map(|(_, o)| o.as_ptr())
            .collect();
        assert_eq!(left, expected, "closing the holes keeps the order");
    }
}
