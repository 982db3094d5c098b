//! A skipped scan (`skipped_scans.rs`) must change nothing a program can see. Random programs
//! run twice, on a heap that always scans and on one that skips when it may, and after every
//! step the two must agree on everything observable: what each collection returned, the
//! generation of every handle, the counts, the frozen objects, the generations' sizes, the
//! live objects. User code runs inside the collections all along (gc callbacks, a `tracing`
//! subscriber's events and span records, finalizers): it freezes, thaws, tracks, untracks,
//! drops and collects. A second heap on the thread holds references into the first.
//!
//! A second test gives the traces themselves those tracking operations, and checks that the
//! generations stay coherent and that a final scan finds nothing a skip left behind.

mod common;

use std::cell::{Cell, RefCell};

use common::{free_heap, same_heap, static_heap, FinNode, Legacy, Node};
use gengc::{DebugFlags, GcHeap, Phase};
use refcount::{ObjRef, Object, RefVec, Trace, TypeInfo, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Programs per test (each run twice by the differential test), and steps per program.
const SEEDS: u64 = if cfg!(miri) { 2 } else { 500 };
const STEPS: usize = if cfg!(miri) { 40 } else { 200 };

thread_local! {
    /// The heap under test, for user code.
    static HEAP: Cell<Option<&'static GcHeap>> = const { Cell::new(None) };
    /// The program's handles into it.
    static HANDLES: RefCell<Vec<ObjRef<'static>>> = const { RefCell::new(Vec::new()) };
    /// The second heap, and the program's handles into it.
    static SIDE: Cell<Option<&'static GcHeap>> = const { Cell::new(None) };
    static SIDE_HANDLES: RefCell<Vec<ObjRef<'static>>> = const { RefCell::new(Vec::new()) };
    /// Every object the program untracked, kept so that the end can track it again and break
    /// its cycles (an untracked cycle is never collected, and its payloads would leak).
    static UNTRACKED: RefCell<Vec<ObjRef<'static>>> = const { RefCell::new(Vec::new()) };
    /// Weakrefs kept alive by the program, apart from its handles.
    static WEAKREFS: RefCell<Vec<ObjRef<'static>>> = const { RefCell::new(Vec::new()) };
    /// What the program saw, step by step.
    static SEEN: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    /// The program's random numbers (xorshift).
    static RNG: Cell<u64> = const { Cell::new(1) };
    /// Whether the traces of `TraceOps` run their operations.
    static TRACE_OPS_ON: Cell<bool> = const { Cell::new(true) };
    static IN_TRACE: Cell<bool> = const { Cell::new(false) };
}

/// Untracks `o`, and keeps it for the end (see `UNTRACKED`).
fn untrack(h: &GcHeap, o: &ObjRef<'static>) {
    h.untrack(o);
    UNTRACKED.with(|u| {
        if let Ok(mut u) = u.try_borrow_mut() {
            u.push(o.clone())
        }
    });
}

/// A number below `n` (0 for 0).
fn below(n: usize) -> usize {
    RNG.with(|r| {
        let mut x = r.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        r.set(x);
        (x % n.max(1) as u64) as usize
    })
}

fn handles() -> usize {
    HANDLES.with(|v| v.try_borrow().map_or(0, |v| v.len()))
}

fn see(what: String) {
    SEEN.with(|s| s.borrow_mut().push(what));
}

/// The reference list of an object of the test types.
fn kids<'a>(o: &'a ObjRef<'static>) -> Option<&'a RefVec<'static>> {
    if let Some(n) = o.downcast_ref::<Node>() {
        return Some(&n.kids);
    }
    if let Some(n) = o.downcast_ref::<FinNode>() {
        return Some(&n.kids);
    }
    if let Some(n) = o.downcast_ref::<TraceOps>() {
        return Some(&n.kids);
    }
    o.downcast_ref::<Legacy>().map(|n| &n.kids)
}

/// What user code inside a collection does: one random operation on the heap under test.
fn user_code(at: &str) {
    let Some(h) = HEAP.with(Cell::get) else {
        return;
    };
    let (op, i) = (below(8), below(handles()));
    see(format!("  {at}: user op {op} on {i}"));
    let on_handle = |f: &dyn Fn(&ObjRef<'static>)| {
        HANDLES.with(|v| {
            if let Some(o) = v.try_borrow().ok().and_then(|v| v.get(i).cloned()) {
                f(&o)
            }
        })
    };
    match op {
        0 => h.freeze(),
        1 => h.unfreeze(),
        2 => on_handle(&|o| untrack(h, o)),
        3 => on_handle(&|o| h.track(o)),
        4 if handles() > 0 => {
            let gone = HANDLES.with(|v| v.try_borrow_mut().map(|mut v| v.swap_remove(i)));
            drop(gone);
        }
        5 => {
            let _ = h.collect(below(3));
        }
        6 => h.clear_garbage(),
        _ => {}
    }
}

/// A subscriber that runs user code at each of the collector's events and span records.
struct UserCodeAtEvents;

impl Subscriber for UserCodeAtEvents {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {
        user_code("record")
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        if event.metadata().target() == "gengc" {
            user_code("event")
        }
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// Everything a program can see of the heap.
fn observe(h: &GcHeap, at: &str) {
    let gens: Vec<_> = HANDLES.with(|v| v.borrow().iter().map(|o| h.generation_of(o)).collect());
    let s = h.stats();
    see(format!(
        "{at}: generations {gens:?}, count {:?}, frozen {}, sizes {:?}, live {}",
        h.get_count(),
        h.get_freeze_count(),
        s.generations.map(|g| g.objects),
        h.rc().stats().live
    ));
}

/// A heap under test and a second one, with the callback, thresholds and debug flags of the
/// program; `f` runs the program, then every handle goes and the heaps are freed.
fn with_heaps(seed: u64, always_scan: bool, f: impl FnOnce(&'static GcHeap)) {
    RNG.with(|r| r.set(seed | 1));
    let (h, owner) = static_heap();
    let (side, side_owner) = static_heap();
    h.set_always_scan(always_scan);
    if below(2) == 0 {
        h.set_threshold(5, 2, 2);
    }
    h.set_debug(DebugFlags::STATS);
    h.add_callback(Box::new(|phase, _| {
        user_code(if phase == Phase::Start {
            "start"
        } else {
            "stop"
        })
    }));
    HEAP.with(|c| c.set(Some(h)));
    SIDE.with(|c| c.set(Some(side)));
    f(h);
    HEAP.with(|c| c.set(None));
    SIDE.with(|c| c.set(None));
    // Every cycle the program left uncollectable is broken by hand, as a Python program must:
    // the untracked ones, those of legacy finalizers, and those across the two heaps.
    h.unfreeze();
    h.set_debug(DebugFlags::empty());
    for o in UNTRACKED.with(|u| u.take()) {
        h.track(&o);
        if let Some(k) = kids(&o) {
            k.clear();
        }
    }
    drop(HANDLES.with(|v| v.take()));
    drop(SIDE_HANDLES.with(|v| v.take()));
    drop(WEAKREFS.with(|v| v.take()));
    h.collect(2).unwrap();
    for o in h.garbage().iter().chain(&side.get_objects(None).unwrap()) {
        if let Some(k) = kids(o) {
            k.clear();
        }
    }
    h.clear_garbage();
    side.collect(2).unwrap();
    h.collect(2).unwrap();
    assert_eq!(
        (h.rc().stats().live, side.rc().stats().live),
        (0, 0),
        "seed {seed}: the program's objects are all freed"
    );
    // SAFETY: every handle of both heaps is gone (the thread-locals are empty), and neither
    // heap is used again.
    unsafe {
        free_heap(owner);
        free_heap(side_owner);
    }
}

/// One step of the differential program.
fn step(h: &'static GcHeap) {
    let n = handles();
    let (i, j) = (below(n), below(n));
    let op = below(23);
    see(format!("op {op}"));
    let push = |o: ObjRef<'static>| HANDLES.with(|v| v.borrow_mut().push(o));
    let handle = |i: usize| HANDLES.with(|v| v.borrow().get(i).cloned());
    match op {
        0 | 1 => push(h.alloc(Node::default()).unwrap().erase()),
        2 | 3 => {
            if let (Some(a), Some(b)) = (handle(i), handle(j)) {
                if let Some(k) = kids(&a) {
                    k.push(b);
                }
            }
        }
        4 if n > 0 => drop(HANDLES.with(|v| v.borrow_mut().swap_remove(i))),
        5 | 6 => {
            let g = below(3);
            see(format!("collect({g}) = {}", h.collect(g).unwrap()));
        }
        7 => h.freeze(),
        8 => h.unfreeze(),
        9 => {
            if let Some(o) = handle(i) {
                untrack(h, &o);
            }
        }
        10 => {
            if let Some(o) = handle(i) {
                h.track(&o);
            }
        }
        11 => drop(handle(i).and_then(|o| kids(&o).and_then(RefVec::pop))),
        12 => {
            // A garbage pair, perhaps holding a handle's object.
            let a = h.alloc(Node::default()).unwrap();
            let b = h.alloc(Node::default()).unwrap();
            a.kids.push(b.clone().erase());
            b.kids.push(a.erase());
            if let Some(o) = handle(i).filter(|_| below(2) == 0) {
                b.kids.push(o);
            }
        }
        13 => {
            // A finalizer that runs user code, and may resurrect its object into itself.
            let resurrect = below(3) == 0;
            let f = h
                .alloc(FinNode {
                    kids: RefVec::new(),
                    fin: Box::new(move |this| {
                        user_code("finalizer");
                        let me = this.downcast_ref::<FinNode<'_>>().unwrap();
                        if resurrect && me.kids.len() < 3 {
                            me.kids.push(same_heap(this.clone()));
                        }
                    }),
                })
                .unwrap()
                .erase();
            if below(2) == 0 {
                let g = h.alloc(Node::default()).unwrap();
                g.kids.push(f.clone());
                kids(&f).unwrap().push(g.erase());
            }
            if below(2) == 0 {
                push(f);
            }
        }
        14 => h.set_debug(if h.get_debug().contains(DebugFlags::SAVEALL) {
            DebugFlags::STATS
        } else {
            DebugFlags::STATS | DebugFlags::SAVEALL
        }),
        15 => h.clear_garbage(),
        16 => {
            // An uncollectable pair.
            let a = h.alloc(Legacy::default()).unwrap();
            let b = h.alloc(Node::default()).unwrap();
            a.kids.push(b.clone().erase());
            b.kids.push(a.erase());
        }
        17 => {
            // An object of the second heap holding one of this heap's, perhaps in a cycle.
            let Some(o) = handle(i) else { return };
            let side = SIDE.with(Cell::get).unwrap();
            let s = side.alloc(Node::default()).unwrap();
            s.kids.push(o.clone());
            if below(2) == 0 {
                if let Some(k) = kids(&o) {
                    k.push(s.clone().erase());
                }
            }
            if below(2) == 0 {
                SIDE_HANDLES.with(|v| v.borrow_mut().push(s.erase()));
            }
        }
        18 => {
            let side = SIDE.with(Cell::get).unwrap();
            see(format!(
                "side collect = {}",
                side.collect(below(3)).unwrap()
            ));
        }
        19 => {
            let k = SIDE_HANDLES.with(|v| v.borrow().len());
            if k > 0 {
                drop(SIDE_HANDLES.with(|v| v.borrow_mut().swap_remove(below(k))));
            }
        }
        20 => see(format!("objects {}", h.get_objects(None).unwrap().len())),
        21 => {
            // A weakref whose callback runs user code while its referent, dying, has a count
            // of 0 and is still tracked.
            if let Some(o) = handle(i) {
                let callback = Box::new(|_| user_code("weakref callback"));
                let w = h.rc().weakref(&o, Some(callback)).unwrap().erase();
                if below(2) == 0 {
                    push(w);
                } else {
                    WEAKREFS.with(|v| v.borrow_mut().push(w));
                }
            }
        }
        _ => {}
    }
    observe(h, "after");
}

/// Runs the differential program of `seed`: what it saw, and how many scans were skipped.
fn run(seed: u64, always_scan: bool) -> (Vec<String>, u64) {
    SEEN.with(|s| s.borrow_mut().clear());
    let mut skipped = 0;
    with_heaps(seed, always_scan, |h| {
        for _ in 0..STEPS {
            step(h);
        }
        drop(HANDLES.with(|v| v.take()));
        drop(SIDE_HANDLES.with(|v| v.take()));
        h.set_debug(DebugFlags::STATS);
        h.clear_garbage();
        let _ = SIDE.with(Cell::get).unwrap().collect(2);
        see(format!("final collect = {}", h.collect(2).unwrap()));
        observe(h, "end");
        skipped = h.stats().scans_skipped;
    });
    (SEEN.with(|s| s.take()), skipped)
}

#[test]
fn a_program_sees_the_same_heap_whether_full_collections_scan_or_skip() {
    let _subscriber = tracing::subscriber::set_default(UserCodeAtEvents);
    let mut skipped = 0;
    for seed in 1..=SEEDS {
        let (scanning, _) = run(seed * 7919, true);
        let (skipping, skips) = run(seed * 7919, false);
        skipped += skips;
        let first = scanning.iter().zip(&skipping).position(|(a, b)| a != b);
        if let Some(i) = first {
            panic!(
                "seed {seed}, line {i}:\n  scanning: {}\n  skipping: {}",
                scanning[i], skipping[i]
            );
        }
        assert_eq!(scanning.len(), skipping.len(), "seed {seed}");
    }
    assert!(skipped > 0, "the programs gave the heap something to skip");
}

/// A container whose trace, now and then, freezes, thaws, tracks or untracks (user code in
/// the middle of a sweep or a rescue).
#[derive(Default)]
struct TraceOps<'h> {
    kids: RefVec<'h>,
}

impl Trace for TraceOps<'_> {
    fn trace(&self, v: &mut Visit<'_>) {
        if TRACE_OPS_ON.with(Cell::get) && !IN_TRACE.with(|t| t.replace(true)) {
            if below(4) == 0 {
                if let Some(h) = HEAP.with(Cell::get) {
                    let i = below(handles());
                    let handle = HANDLES.with(|v| v.try_borrow().ok()?.get(i).cloned());
                    match (below(4), handle) {
                        (0, _) => h.freeze(),
                        (1, _) => h.unfreeze(),
                        (2, Some(o)) => untrack(h, &o),
                        (3, Some(o)) => h.track(&o),
                        _ => {}
                    }
                }
            }
            IN_TRACE.with(|t| t.set(false));
        }
        self.kids.trace(v)
    }
    fn clear(&self) {
        self.kids.clear()
    }
}

// No promise of an exact trace: it runs user code, so no count is pinned while it runs.
static TRACE_OPS: TypeInfo = TypeInfo::new::<TraceOps<'static>>("trace_ops");

impl Object for TraceOps<'_> {
    const CONTAINER: bool = true;
    fn type_info() -> &'static TypeInfo {
        &TRACE_OPS
    }
}

/// Every object listed in a generation says it is there, and the sizes add up.
fn check_generations(h: &GcHeap) {
    let mut listed = 0;
    for g in 0..3 {
        for o in h.get_objects(Some(g)).unwrap() {
            assert_eq!(
                h.generation_of(&o),
                Some(g),
                "get_objects({g}) and generation_of"
            );
            listed += 1;
        }
    }
    let sizes: u64 = h.stats().generations.iter().map(|g| g.objects).sum();
    assert_eq!(listed, sizes);
}

#[test]
fn traces_that_freeze_thaw_track_and_untrack_leave_nothing_for_a_scan() {
    let _subscriber = tracing::subscriber::set_default(UserCodeAtEvents);
    for seed in 1..=SEEDS {
        with_heaps(seed * 104_729, false, |h| {
            for _ in 0..STEPS {
                let n = handles();
                let (i, j) = (below(n), below(n));
                let handle = |i: usize| HANDLES.with(|v| v.borrow().get(i).cloned());
                match below(10) {
                    0 | 1 => {
                        let o = h.alloc(TraceOps::default()).unwrap().erase();
                        HANDLES.with(|v| v.borrow_mut().push(o));
                    }
                    2 | 3 => {
                        if let (Some(a), Some(b)) = (handle(i), handle(j)) {
                            kids(&a).unwrap().push(b);
                        }
                    }
                    4 if n > 0 => drop(HANDLES.with(|v| v.borrow_mut().swap_remove(i))),
                    5 | 6 => {
                        let _ = h.collect(below(3)).unwrap();
                    }
                    7 => {
                        let a = h.alloc(TraceOps::default()).unwrap();
                        let b = h.alloc(TraceOps::default()).unwrap();
                        a.kids.push(b.clone().erase());
                        b.kids.push(a.erase());
                    }
                    8 if below(2) == 0 => h.freeze(),
                    8 => h.unfreeze(),
                    9 => {
                        if let Some(o) = handle(i) {
                            if below(2) == 0 {
                                untrack(h, &o)
                            } else {
                                h.track(&o)
                            }
                        }
                    }
                    _ => {}
                }
                if below(8) == 0 {
                    check_generations(h);
                }
            }
            check_generations(h);
            drop(HANDLES.with(|v| v.take()));
            h.unfreeze();
            // A collection whose traces still run their operations may track objects it did
            // not scan; then the user code stops, and two more collections settle the heap.
            let _ = h.collect(2);
            TRACE_OPS_ON.with(|c| c.set(false));
            HEAP.with(|c| c.set(None));
            let _ = h.collect(2);
            let _ = h.collect(2);
            h.set_always_scan(true);
            assert_eq!(
                h.collect(2).unwrap(),
                0,
                "seed {seed}: a scan found what a skip left"
            );
            TRACE_OPS_ON.with(|c| c.set(true));
        });
    }
}
