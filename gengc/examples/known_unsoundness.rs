//! The two known soundness holes of tiers 2 and 3, as safe programs that Miri rejects.
//! See ARCHITECTURE.md, "Known unsoundness", for why they exist and the design that closes
//! them; when it lands, each case becomes a `compile_fail` doctest.
//!
//! `cargo +nightly miri run -p gengc --example known_unsoundness -- downcast|cycle`
//! reports undefined behaviour (a dangling `&str`) for either case. Natively the program
//! "works": it reads freed memory.

use std::cell::Cell;

use gengc::GcHeap;
use refcount::{ObjRef, Object, RefCell1, Trace, TypeInfo, Visit};

/// A payload that borrows a string: a lifetime that is not the heap's.
struct Named<'a> {
    name: Cell<&'a str>,
}
impl Trace for Named<'_> {}
static NAMED: TypeInfo = TypeInfo::new::<Named<'static>>("named");
impl Object for Named<'_> {
    fn type_info() -> &'static TypeInfo {
        &NAMED
    }
}

/// A container that borrows a string and holds one reference, so it can close a cycle; its
/// finalizer reads the string.
struct Loop<'h, 'a> {
    name: &'a str,
    next: RefCell1<'h>,
}
impl Trace for Loop<'_, '_> {
    fn trace(&self, v: &mut Visit<'_>) {
        self.next.trace(v)
    }
    fn clear(&self) {
        self.next.set(None)
    }
}
static LOOP: TypeInfo = TypeInfo::new::<Loop<'static, 'static>>("loop");
impl Object for Loop<'_, '_> {
    const CONTAINER: bool = true;
    const HAS_FINALIZER: bool = true;
    fn type_info() -> &'static TypeInfo {
        &LOOP
    }
    fn finalize(this: &ObjRef<'_>) {
        if let Some(this) = this.downcast_ref::<Loop<'_, '_>>() {
            println!("finalizing {}", this.name);
        }
    }
}

/// Hole 1: a type is identified modulo its lifetimes, so a handle shortened by covariance
/// downcasts to `Named<'short>`, stores a short borrow, and a later downcast to
/// `Named<'static>` reads it after its end. One heap, no collector involved.
fn downcast() {
    let heap = GcHeap::new(Default::default()).unwrap();
    let keep = heap
        .alloc(Named {
            name: Cell::new("static"),
        })
        .unwrap()
        .erase();
    {
        let local = String::from("a local string");
        let view = keep.clone().downcast::<Named<'_>>().ok().unwrap();
        view.name.set(&local);
    }
    let name: &'static str = keep.downcast_ref::<Named<'static>>().unwrap().name.get();
    println!("{name}");
}

/// Hole 2: `alloc` bounds a payload by the borrow of the heap that makes it, not by the heap;
/// a cycle outlives that borrow, and the collection that frees it runs the finalizer on a
/// borrow that has ended.
fn cycle() {
    let heap = GcHeap::new(Default::default()).unwrap();
    {
        let local = String::from("a local string");
        let a = heap
            .alloc(Loop {
                name: &local,
                next: RefCell1::new(None),
            })
            .unwrap();
        a.next.set(Some(a.clone().erase()));
    }
    heap.collect(2).unwrap();
}

fn main() {
    match std::env::args().nth(1).as_deref() {
        Some("downcast") => downcast(),
        Some("cycle") => cycle(),
        _ => eprintln!("usage: known_unsoundness downcast|cycle"),
    }
}
