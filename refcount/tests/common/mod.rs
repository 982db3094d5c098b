//! Test object types shared by the refcount tests.
#![allow(dead_code)]

use std::cell::RefCell;
use std::rc::Rc;

use refcount::{ObjRef, Object, RefCell1, RefVec, Trace, TypeInfo, Visit};

/// An atom holding a number.
pub struct Num(pub i64);
impl Trace for Num {}
static NUM: TypeInfo = TypeInfo::new::<Num>("num");
impl Object for Num {
    fn type_info() -> &'static TypeInfo {
        &NUM
    }
}

/// A list of references.
#[derive(Default)]
pub struct List<'h>(pub RefVec<'h>);
impl Trace for List<'_> {
    fn trace(&self, v: &mut Visit<'_>) {
        self.0.trace(v)
    }
    fn clear(&self) {
        self.0.clear()
    }
}
static LIST: TypeInfo = TypeInfo::new::<List<'static>>("list");
impl Object for List<'_> {
    const CONTAINER: bool = true;
    fn type_info() -> &'static TypeInfo {
        &LIST
    }
}

/// A log of events the tests read back.
pub type Log = Rc<RefCell<Vec<String>>>;

/// A place outside the heap where a finalizer can store a reference (resurrection).
pub type Keep<'h> = Rc<RefCell<Vec<ObjRef<'h>>>>;

/// An object with a finalizer that logs, and optionally stores itself in `keep`
/// (resurrection), drops `child`, or panics.
pub struct Fin<'h> {
    pub name: &'static str,
    pub log: Log,
    pub keep: Option<Keep<'h>>,
    pub panic: bool,
    pub drop_child_in_finalizer: bool,
    pub child: RefCell1<'h>,
}

impl<'h> Fin<'h> {
    pub fn new(name: &'static str, log: &Log) -> Self {
        Fin {
            name,
            log: log.clone(),
            keep: None,
            panic: false,
            drop_child_in_finalizer: false,
            child: RefCell1::default(),
        }
    }
}

impl Trace for Fin<'_> {
    fn trace(&self, v: &mut Visit<'_>) {
        self.child.trace(v)
    }
    fn clear(&self) {
        self.child.set(None)
    }
}
static FIN: TypeInfo = TypeInfo::new::<Fin<'static>>("fin");
impl Object for Fin<'_> {
    const CONTAINER: bool = true;
    const HAS_FINALIZER: bool = true;
    fn type_info() -> &'static TypeInfo {
        &FIN
    }
    fn finalize(this: &ObjRef<'_>) {
        let me = this.downcast_ref::<Fin<'_>>().unwrap();
        me.log.borrow_mut().push(format!("finalize {}", me.name));
        if me.panic {
            panic!("finalizer of {} failed", me.name);
        }
        if me.drop_child_in_finalizer {
            me.child.set(None);
        }
        if let Some(keep) = &me.keep {
            keep.borrow_mut().push(same_heap(this.clone()));
        }
    }
}

/// Names a handle's heap lifetime as another's. The finalizer's handle and `keep` belong to
/// the same heap in these tests; the trait's signature cannot say so.
fn same_heap<'a, 'b>(r: ObjRef<'a>) -> ObjRef<'b> {
    // SAFETY: only a lifetime changes, and both lifetimes are the same heap's in the tests.
    unsafe { std::mem::transmute::<ObjRef<'a>, ObjRef<'b>>(r) }
}

/// A big payload: its blocks go direct (over 512 bytes).
pub struct Big<'h> {
    pub bytes: [u8; 1000],
    pub child: RefCell1<'h>,
}
impl Trace for Big<'_> {
    fn trace(&self, v: &mut Visit<'_>) {
        self.child.trace(v)
    }
    fn clear(&self) {
        self.child.set(None)
    }
}
static BIG: TypeInfo = TypeInfo::new::<Big<'static>>("big");
impl Object for Big<'_> {
    const CONTAINER: bool = true;
    fn type_info() -> &'static TypeInfo {
        &BIG
    }
}

/// Runs `f` on a thread with an 8 MiB stack, the size of a main thread's.
pub fn on_8mib_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(8 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

/// A tuple: its references follow the payload in the same block.
pub struct Tuple<'h> {
    pub len: usize,
    pub _heap: std::marker::PhantomData<ObjRef<'h>>,
}
impl<'h> Tuple<'h> {
    pub fn new(len: usize) -> Self {
        Tuple {
            len,
            _heap: std::marker::PhantomData,
        }
    }
}
impl Trace for Tuple<'_> {
    fn trace(&self, v: &mut Visit<'_>) {
        for r in refcount::items(self) {
            v.visit(r);
        }
    }
}
static TUPLE: TypeInfo = TypeInfo::new_var::<Tuple<'static>>("tuple");
impl Object for Tuple<'_> {
    const CONTAINER: bool = true;
    const POLICY: obj_alloc::Policy = obj_alloc::Policy::TUPLE;
    fn type_info() -> &'static TypeInfo {
        &TUPLE
    }
}
impl<'h> refcount::VarObject for Tuple<'h> {
    type Item = ObjRef<'h>;
    fn len(&self) -> usize {
        self.len
    }
}
