//! Atoms: objects that hold no references (ints, floats, strs, bytes, None). The collector
//! never tracks them.

use std::hash::{BuildHasher, Hasher};

use obj_alloc::Policy;
use refcount::{items, Object, Trace, TypeInfo, VarObject};

/// `int`: a 64-bit integer. -5..=256 are preallocated, immortal and shared.
///
/// ```
/// # let heap = pyheap::Heap::new(pyheap::Config::default()).unwrap();
/// use pyheap::object::Int;
/// let big = heap.int(1 << 40).unwrap();
/// assert_eq!(big.downcast_ref::<Int>().unwrap().0, 1 << 40);
/// assert!(heap.int(7).unwrap().ptr_eq(&heap.int(7).unwrap())); // the small-int cache
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Int(pub i64);
impl Trace for Int {}
static INT: TypeInfo = TypeInfo::new::<Int>("int");
impl Object for Int {
    fn type_info() -> &'static TypeInfo {
        &INT
    }
}

/// `float`: blocks come from a bounded free list (CPython keeps 100).
///
/// ```
/// # let heap = pyheap::Heap::new(pyheap::Config::default()).unwrap();
/// use pyheap::object::Float;
/// let x = heap.float(2.5).unwrap();
/// assert_eq!(x.downcast_ref::<Float>().unwrap().0, 2.5);
/// let block = x.as_ptr();
/// drop(x); // the block goes to the float free list...
/// assert_eq!(heap.float(1.0).unwrap().as_ptr(), block); // ...and the next float reuses it
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Float(pub f64);
impl Trace for Float {}
static FLOAT: TypeInfo = TypeInfo::new::<Float>("float");
impl Object for Float {
    const POLICY: Policy = Policy::FLOAT;
    fn type_info() -> &'static TypeInfo {
        &FLOAT
    }
}

/// `str`: UTF-8 bytes stored in the object's own block, with the hash computed once.
///
/// ```
/// # let heap = pyheap::Heap::new(pyheap::Config::default()).unwrap();
/// use pyheap::object::Str;
/// let s = heap.str("héllo").unwrap();
/// assert_eq!(s.downcast_ref::<Str>().unwrap().as_str(), "héllo");
/// assert!(heap.intern("name").unwrap().ptr_eq(&heap.intern("name").unwrap()));
/// ```
#[derive(Debug)]
pub struct Str {
    pub(crate) hash: u64,
    len: usize,
}
impl Trace for Str {}
static STR: TypeInfo = TypeInfo::new_var::<Str>("str");
impl Object for Str {
    fn type_info() -> &'static TypeInfo {
        &STR
    }
}
impl VarObject for Str {
    type Item = u8;
    fn len(&self) -> usize {
        self.len
    }
}

impl Str {
    pub(crate) fn header_for(text: &str) -> Str {
        Str {
            hash: hash_bytes(text.as_bytes()),
            len: text.len(),
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // SAFETY: a Str's items are copied from a &str when it is made (Heap::str) and never
        // change, so they are valid UTF-8.
        unsafe { std::str::from_utf8_unchecked(items(self)) }
    }

    /// Bytes of UTF-8 text.
    pub fn byte_len(&self) -> usize {
        self.len
    }

    /// The cached hash.
    pub fn hash(&self) -> u64 {
        self.hash
    }
}

/// `bytes`: immutable bytes in the object's own block.
///
/// ```
/// # let heap = pyheap::Heap::new(pyheap::Config::default()).unwrap();
/// use pyheap::object::Bytes;
/// let b = heap.bytes(b"\x00\xff").unwrap();
/// assert_eq!(b.downcast_ref::<Bytes>().unwrap().as_bytes(), b"\x00\xff");
/// ```
#[derive(Debug)]
pub struct Bytes {
    pub(crate) hash: u64,
    len: usize,
}
impl Trace for Bytes {}
static BYTES: TypeInfo = TypeInfo::new_var::<Bytes>("bytes");
impl Object for Bytes {
    fn type_info() -> &'static TypeInfo {
        &BYTES
    }
}
impl VarObject for Bytes {
    type Item = u8;
    fn len(&self) -> usize {
        self.len
    }
}

impl Bytes {
    pub(crate) fn header_for(data: &[u8]) -> Bytes {
        Bytes {
            hash: hash_bytes(data),
            len: data.len(),
        }
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        items(self)
    }
}

/// `None`: one immortal object per heap.
///
/// ```
/// # let heap = pyheap::Heap::new(pyheap::Config::default()).unwrap();
/// assert!(heap.none().ptr_eq(&heap.none()));
/// assert!(heap.none().header().is_immortal());
/// ```
#[derive(Debug)]
pub struct NoneType;
impl Trace for NoneType {}
static NONE: TypeInfo = TypeInfo::new::<NoneType>("NoneType");
impl Object for NoneType {
    fn type_info() -> &'static TypeInfo {
        &NONE
    }
}

/// The hash of a byte string: the same for a `str` and a `bytes` of the same bytes, as in
/// CPython; fixed-seeded so that runs are reproducible.
pub(crate) fn hash_bytes(data: &[u8]) -> u64 {
    let mut h = foldhash::fast::FixedState::with_seed(0x7079_6865_6170).build_hasher();
    h.write(data);
    h.finish()
}
