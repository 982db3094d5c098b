//! Container types for the collector's tests: a list-like node, a node with a finalizer given
//! as a closure, a node with a legacy finalizer, and an atom; and heaps whose every block comes
//! from the system allocator, so that Miri sees each free.
#![allow(dead_code)]

use std::cell::RefCell;
use std::rc::Rc;

use gengc::GcHeap;
use refcount::{ObjRef, Object, RefVec, Trace, TypeInfo, Visit};

/// A heap whose every block comes from the system allocator, so that Miri sees each free (the
/// arena backend keeps freed blocks in mapped pools).
pub fn system_heap() -> GcHeap {
    GcHeap::new(obj_alloc::ObjConfig {
        raw: raw_alloc::RawConfig {
            backend: raw_alloc::Backend::System,
            ..Default::default()
        },
        ..Default::default()
    })
    .unwrap()
}

/// A [`system_heap`] that lives for `'static` (for user code that reaches it through a
/// thread-local), and the box to give back to [`free_heap`] once no handle is left.
pub fn static_heap() -> (&'static GcHeap, *mut GcHeap) {
    let owner = Box::into_raw(Box::new(system_heap()));
    // SAFETY: the box is only freed by free_heap, after the last use of this reference.
    (unsafe { &*owner }, owner)
}

/// Frees a heap from [`static_heap`].
///
/// # Safety
/// No handle of the heap is left, and its `'static` reference is not used again.
pub unsafe fn free_heap(owner: *mut GcHeap) {
    // SAFETY: the box static_heap made, freed once (contract).
    drop(unsafe { Box::from_raw(owner) });
}

/// A container holding references (a list, a dict's values, an instance's attributes).
#[derive(Default)]
pub struct Node<'h> {
    pub kids: RefVec<'h>,
}
impl Trace for Node<'_> {
    fn trace(&self, v: &mut Visit<'_>) {
        self.kids.trace(v)
    }
    fn clear(&self) {
        self.kids.clear()
    }
}
// SAFETY: the trace reports each reference the payload holds, once, and dropping it only
// drops references.
static NODE: TypeInfo = unsafe { TypeInfo::new::<Node<'static>>("node").assume_exact_trace() };
impl Object for Node<'_> {
    const CONTAINER: bool = true;
    fn type_info() -> &'static TypeInfo {
        &NODE
    }
}

/// The finalizer of a [`FinNode`]: gets the object; may panic, store it, allocate...
pub type FinFn = Box<dyn Fn(&ObjRef<'_>)>;

/// A container with a PEP 442 finalizer.
pub struct FinNode<'h> {
    pub kids: RefVec<'h>,
    pub fin: FinFn,
}
impl Trace for FinNode<'_> {
    fn trace(&self, v: &mut Visit<'_>) {
        self.kids.trace(v)
    }
    fn clear(&self) {
        self.kids.clear()
    }
}
static FIN_NODE: TypeInfo = TypeInfo::new::<FinNode<'static>>("fin_node");
impl Object for FinNode<'_> {
    const CONTAINER: bool = true;
    const HAS_FINALIZER: bool = true;
    fn type_info() -> &'static TypeInfo {
        &FIN_NODE
    }
    fn finalize(this: &ObjRef<'_>) {
        let me = this.downcast_ref::<FinNode<'_>>().unwrap();
        (me.fin)(this)
    }
}

/// A container with a legacy finalizer (`tp_del`): cycles through it are uncollectable.
#[derive(Default)]
pub struct Legacy<'h> {
    pub kids: RefVec<'h>,
}
impl Trace for Legacy<'_> {
    fn trace(&self, v: &mut Visit<'_>) {
        self.kids.trace(v)
    }
    fn clear(&self) {
        self.kids.clear()
    }
}
static LEGACY: TypeInfo = TypeInfo::new::<Legacy<'static>>("legacy");
impl Object for Legacy<'_> {
    const CONTAINER: bool = true;
    const LEGACY_FINALIZER: bool = true;
    fn type_info() -> &'static TypeInfo {
        &LEGACY
    }
}

/// An atom.
pub struct Atom(pub i64);
impl Trace for Atom {}
static ATOM: TypeInfo = TypeInfo::new::<Atom>("atom");
impl Object for Atom {
    fn type_info() -> &'static TypeInfo {
        &ATOM
    }
}

/// A shared log.
pub type Log = Rc<RefCell<Vec<String>>>;

/// Names a handle's heap lifetime as another's (finalizers get an unnamed lifetime).
pub fn same_heap<'a, 'b>(r: ObjRef<'a>) -> ObjRef<'b> {
    // SAFETY: only the lifetime's name changes; the tests keep every handle inside one heap's
    // scope.
    unsafe { std::mem::transmute::<ObjRef<'a>, ObjRef<'b>>(r) }
}

/// Runs `f` on a thread with an 8 MiB stack.
pub fn on_8mib_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(8 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}
