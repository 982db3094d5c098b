//! Objects are 8-aligned unless their type needs 16: obj-alloc's small size classes step by 8
//! bytes, and a type aligned to 16 rounds its object size to 16, which obj-alloc serves
//! 16-aligned.

use obj_alloc::ObjConfig;
use refcount::{Object, RcHeap, Trace, TypeInfo};

/// 8 bytes of payload: a 24-byte object (header 16 + 8), from an 8-byte-step class.
struct Small(#[allow(dead_code)] u64);
impl Trace for Small {}
static SMALL: TypeInfo = TypeInfo::new::<Small>("small");
impl Object for Small {
    fn type_info() -> &'static TypeInfo {
        &SMALL
    }
}

/// A payload aligned to 16.
#[repr(align(16))]
struct Wide(u64);
impl Trace for Wide {}
static WIDE: TypeInfo = TypeInfo::new::<Wide>("wide");
impl Object for Wide {
    fn type_info() -> &'static TypeInfo {
        &WIDE
    }
}

#[test]
fn a_type_aligned_to_16_gets_16_aligned_payloads_among_8_aligned_objects() {
    assert_eq!(SMALL.object_size(0), 24);
    assert_eq!(WIDE.object_size(0) % 16, 0);
    let heap = RcHeap::new(ObjConfig::default()).unwrap();
    let mut keep = Vec::new();
    let mut wide = Vec::new();
    for i in 0..200u64 {
        let s = heap.alloc(Small(i)).unwrap();
        assert_eq!(&*s as *const Small as usize % 8, 0);
        keep.push(s);
        let w = heap.alloc(Wide(i)).unwrap();
        assert_eq!(&*w as *const Wide as usize % 16, 0, "object {i}");
        assert_eq!(w.0, i);
        wide.push(w);
    }
    drop(keep);
    drop(wide);
}
