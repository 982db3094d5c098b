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
/// The payload is 8 bytes (a 32-bit hash and a 32-bit length), so the text starts 24 bytes
/// into the block: a str of n bytes takes the size class of 24 + n bytes (CPython's compact
/// ASCII str: 41 + n, before pymalloc's rounding). The hash is 32 bits wide (pyheap's hashes
/// are its own, not CPython's values: a table only needs equal keys to hash equal). A text
/// longer than [`MAX_ATOM_LEN`] bytes is refused
/// ([`HeapError::TooLong`](crate::HeapError::TooLong)).
///
/// ```
/// # let heap = pyheap::Heap::new(pyheap::Config::default()).unwrap();
/// use pyheap::object::Str;
/// let s = heap.str("héllo").unwrap();
/// assert_eq!(s.downcast_ref::<Str>().unwrap().as_str(), "héllo");
/// assert!(heap.intern("name").unwrap().ptr_eq(&heap.intern("name").unwrap()));
/// ```
#[derive(Debug)]
#[repr(C)]
pub struct Str {
    hash: AtomHash,
    len: u32,
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
        self.len as usize
    }
}

impl Str {
    /// The payload of a str of `text`, or `None` when it is longer than [`MAX_ATOM_LEN`].
    pub(crate) fn header_for(text: &str) -> Option<Str> {
        Some(Str {
            hash: AtomHash::new(hash_bytes(text.as_bytes())),
            len: atom_len(text.len())?,
        })
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // SAFETY: a Str's items are copied from a &str when it is made (Heap::str) and never
        // change, so they are valid UTF-8.
        unsafe { std::str::from_utf8_unchecked(items(self)) }
    }

    /// Bytes of UTF-8 text.
    pub fn byte_len(&self) -> usize {
        self.len as usize
    }

    /// The cached hash.
    pub fn hash(&self) -> u64 {
        self.hash.get()
    }
}

/// `bytes`: immutable bytes in the object's own block, laid out like [`Str`] (8-byte payload).
///
/// ```
/// # let heap = pyheap::Heap::new(pyheap::Config::default()).unwrap();
/// use pyheap::object::Bytes;
/// let b = heap.bytes(b"\x00\xff").unwrap();
/// assert_eq!(b.downcast_ref::<Bytes>().unwrap().as_bytes(), b"\x00\xff");
/// ```
#[derive(Debug)]
#[repr(C)]
pub struct Bytes {
    hash: AtomHash,
    len: u32,
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
        self.len as usize
    }
}

impl Bytes {
    /// The payload of a bytes of `data`, or `None` when it is longer than [`MAX_ATOM_LEN`].
    pub(crate) fn header_for(data: &[u8]) -> Option<Bytes> {
        Some(Bytes {
            hash: AtomHash::new(hash_bytes(data)),
            len: atom_len(data.len())?,
        })
    }

    /// The cached hash.
    pub fn hash(&self) -> u64 {
        self.hash.get()
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

/// The longest str or bytes, in bytes: their length is stored in 32 bits.
pub const MAX_ATOM_LEN: usize = u32::MAX as usize;

/// `len` as a stored atom length, if it fits.
fn atom_len(len: usize) -> Option<u32> {
    u32::try_from(len).ok()
}

/// The cached hash of a str or bytes: 32 bits, so that the payload is 8 bytes with the
/// length and the text follows at once.
#[derive(Debug, Clone, Copy)]
#[repr(transparent)]
struct AtomHash(u32);

impl AtomHash {
    /// Folds a 64-bit hash of the bytes to 32 bits.
    fn new(hash: u64) -> Self {
        AtomHash((hash ^ (hash >> 32)) as u32)
    }

    fn get(self) -> u64 {
        u64::from(self.0)
    }
}

const _: () = assert!(std::mem::size_of::<Str>() == 8 && std::mem::size_of::<Bytes>() == 8);

/// The hash of a byte string: the same for a `str` and a `bytes` of the same bytes, as in
/// CPython; fixed-seeded so that runs are reproducible.
pub(crate) fn hash_bytes(data: &[u8]) -> u64 {
    let mut h = foldhash::fast::FixedState::with_seed(0x7079_6865_6170).build_hasher();
    h.write(data);
    h.finish()
}
