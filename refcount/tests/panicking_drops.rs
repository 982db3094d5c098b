//! User code that panics while the heap frees: a payload's `Drop`, a `Trace::trace` run to
//! prefetch, a `Trace::clear`. As with std's slice drop, the freeing goes on (the object whose
//! drop panicked is freed too), the heap stays consistent, and the first panic resumes at the
//! end of the deallocation loop; later ones are dropped, never an abort.

mod common;

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

use common::{List, Num};
use obj_alloc::ObjConfig;
use raw_alloc::{Backend, RawConfig};
use refcount::{ObjPtr, ObjRef, Object, RcHeap, Ref, RefCell1, RefVec, Trace, TypeInfo, Visit};

/// The system backend: every block is its own allocation, so Miri sees each free (a block
/// freed twice, or read after its free, is an error there).
fn heap() -> std::pin::Pin<Box<RcHeap>> {
    RcHeap::new(ObjConfig {
        raw: RawConfig {
            backend: Backend::System,
            ..Default::default()
        },
        ..Default::default()
    })
    .unwrap()
}

/// Blocks the allocator holds for objects, whatever the refcount tier's counters say.
fn blocks(h: &RcHeap) -> u64 {
    h.allocator().stats().kinds.iter().map(|k| k.live).sum()
}

/// The message of a caught panic.
fn message(panic: Box<dyn std::any::Any + Send>) -> String {
    match panic.downcast::<String>() {
        Ok(s) => *s,
        Err(p) => p.downcast::<&str>().map(|s| s.to_string()).unwrap(),
    }
}

/// For the tests whose panics are raised while another unwinds: std's default hook prints a full
/// backtrace of such a nested panic whatever `RUST_BACKTRACE` says, and under Miri each one
/// takes some 15 s to walk and print. There a hook that prints the message and its location
/// takes its place (for the whole test binary: the first of these tests to run installs it);
/// what the tests check, the panic that surfaces and the heap after it, is the same.
fn no_backtraces_of_nested_panics_under_miri() {
    if cfg!(miri) {
        static HOOK: std::sync::Once = std::sync::Once::new();
        HOOK.call_once(|| std::panic::set_hook(Box::new(|info| eprintln!("{info}"))));
    }
}

/// Runs `f`, which must panic, and returns the panic's message.
fn panic_of<R>(f: impl FnOnce() -> R) -> String {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(_) => panic!("expected a panic"),
        Err(p) => message(p),
    }
}

/// A container that counts its drops and panics where it is told to: in its drop, its trace or
/// its clear (each panic names it).
struct Bomb<'h> {
    name: &'static str,
    drops: Rc<Cell<u32>>,
    on_drop: bool,
    on_trace: bool,
    on_clear: bool,
    children: RefVec<'h>,
}

impl<'h> Bomb<'h> {
    fn new(name: &'static str, drops: &Rc<Cell<u32>>) -> Self {
        Bomb {
            name,
            drops: drops.clone(),
            on_drop: false,
            on_trace: false,
            on_clear: false,
            children: RefVec::new(),
        }
    }
    fn panicking(mut self) -> Self {
        self.on_drop = true;
        self
    }
    fn holding(self, child: ObjRef<'h>) -> Self {
        self.children.push(child);
        self
    }
}

impl Drop for Bomb<'_> {
    fn drop(&mut self) {
        self.drops.set(self.drops.get() + 1);
        if self.on_drop {
            panic!("drop of {}", self.name);
        }
    }
}

impl Trace for Bomb<'_> {
    fn trace(&self, v: &mut Visit<'_>) {
        if self.on_trace {
            panic!("trace of {}", self.name);
        }
        self.children.trace(v)
    }
    fn clear(&self) {
        // Half done: the last child goes, then the panic.
        drop(self.children.pop());
        if self.on_clear {
            panic!("clear of {}", self.name);
        }
        self.children.clear()
    }
}

// SAFETY: the trace reports each child once, and only reports; the drop makes no reference.
static BOMB: TypeInfo = unsafe { TypeInfo::new::<Bomb<'static>>("bomb").assume_exact_trace() };

impl Object for Bomb<'_> {
    const CONTAINER: bool = true;
    fn type_info() -> &'static TypeInfo {
        &BOMB
    }
}

/// An ordinary object, dropped and freed at once: the heap is not stuck deferring deaths.
fn assert_frees_at_once(h: &RcHeap) {
    let (live, freed) = (h.stats().live, h.stats().freed);
    let list = h.alloc(List::default()).unwrap();
    list.0.push(h.alloc(Num(1)).unwrap().erase());
    assert_eq!(h.stats().live, live + 2);
    drop(list);
    let s = h.stats();
    assert_eq!((s.live, s.freed, s.pending), (live, freed + 2, 0));
}

#[test]
fn a_panicking_drop_of_the_last_handle_unwinds_and_the_heap_still_frees() {
    let h = heap();
    let drops = Rc::new(Cell::new(0));
    let child = h.alloc(Num(7)).unwrap().erase();
    let bomb = h
        .alloc(Bomb::new("a", &drops).panicking().holding(child))
        .unwrap();
    assert_eq!(h.stats().live, 2);

    assert_eq!(panic_of(|| drop(bomb)), "drop of a");
    assert_eq!(drops.get(), 1);
    // The bomb is freed, and the child its drop glue released while unwinding.
    let s = h.stats();
    assert_eq!((s.live, s.freed, s.pending), (0, 2, 0));
    assert_eq!(blocks(&h), 0);
    assert_frees_at_once(&h);
}

#[test]
fn a_chain_with_a_panicking_middle_frees_every_other_object_then_panics_once() {
    let h = heap();
    let drops = Rc::new(Cell::new(0));
    // 0 <- 1 <- ... <- 99: dropping 99 frees the chain in one cascade; 50 panics.
    let mut head: Option<ObjRef<'_>> = None;
    for i in 0..100 {
        let mut b = Bomb::new(if i == 50 { "middle" } else { "link" }, &drops);
        b.on_drop = i == 50;
        if let Some(prev) = head.take() {
            b = b.holding(prev);
        }
        head = Some(h.alloc(b).unwrap().erase());
    }
    // And a tree: a list of three such subtrees, the middle one's root panicking.
    let tree = h.alloc(List::default()).unwrap();
    for i in 0..3 {
        let mut b = Bomb::new(if i == 1 { "subtree" } else { "leafy" }, &drops);
        b.on_drop = i == 1;
        for _ in 0..3 {
            b = b.holding(h.alloc(Num(i)).unwrap().erase());
        }
        tree.0.push(h.alloc(b).unwrap().erase());
    }
    assert_eq!(h.stats().live, 100 + 1 + 3 * 4);

    assert_eq!(panic_of(|| drop(head)), "drop of middle");
    assert_eq!(drops.get(), 100);
    assert_eq!(h.stats().live, 1 + 3 * 4);

    assert_eq!(panic_of(|| drop(tree)), "drop of subtree");
    assert_eq!(drops.get(), 103);
    let s = h.stats();
    assert_eq!((s.live, s.pending), (0, 0));
    assert_eq!(blocks(&h), 0);
    assert_frees_at_once(&h);
}

#[test]
fn two_panicking_drops_in_one_cascade_surface_the_first_and_free_everything() {
    let h = heap();
    let drops = Rc::new(Cell::new(0));
    let list = h.alloc(List::default()).unwrap();
    let second = h.alloc(Bomb::new("second", &drops).panicking()).unwrap();
    let first = h
        .alloc(
            Bomb::new("first", &drops)
                .panicking()
                .holding(second.erase()),
        )
        .unwrap();
    list.0.push(first.erase());
    list.0.push(h.alloc(Num(1)).unwrap().erase());
    list.0.push(
        h.alloc(Bomb::new("third", &drops).panicking())
            .unwrap()
            .erase(),
    );

    assert_eq!(panic_of(|| drop(list)), "drop of first");
    assert_eq!(drops.get(), 3);
    let s = h.stats();
    assert_eq!((s.live, s.freed, s.pending), (0, 5, 0));
    assert_eq!(blocks(&h), 0);
    assert_frees_at_once(&h);
}

/// A drop that panics while its thread already unwinds would abort; the loop drops it.
#[test]
fn a_panicking_drop_during_an_unwind_is_dropped_not_an_abort() {
    no_backtraces_of_nested_panics_under_miri();
    let h = heap();
    let drops = Rc::new(Cell::new(0));
    // A plain Vec, outside the heap: each handle's drop runs a deallocation loop of its own,
    // the second while the first one's panic unwinds through the Vec's drop.
    let handles: Vec<ObjRef<'_>> = ["one", "two"]
        .map(|n| h.alloc(Bomb::new(n, &drops).panicking()).unwrap().erase())
        .into();
    assert_eq!(panic_of(|| drop(handles)), "drop of one");
    assert_eq!(drops.get(), 2);
    assert_eq!((h.stats().live, blocks(&h)), (0, 0));
    assert_frees_at_once(&h);
}

/// Pins each object's count at IMMORTAL, as a collector does to its garbage, and lets go of
/// the handles (a pinned count no longer changes).
fn pin<'h>(objs: Vec<ObjRef<'h>>) -> Vec<ObjPtr> {
    objs.into_iter()
        .map(|o| {
            o.heap().make_immortal(&o);
            o.as_ptr()
        })
        .collect()
}

/// A ring of `n` bombs (each holds the next and a number of its own, outside the ring), whose
/// members in `panicking` panic in their drop, and in `tracing` in their trace.
fn ring<'h>(
    h: &'h RcHeap,
    n: usize,
    drops: &Rc<Cell<u32>>,
    panicking: &[usize],
    tracing: &[usize],
) -> Vec<ObjPtr> {
    let members: Vec<Ref<'h, Bomb<'h>>> = (0..n)
        .map(|i| {
            let mut b = Bomb::new(
                if panicking.contains(&i) {
                    "member"
                } else {
                    "ok"
                },
                drops,
            );
            b.on_drop = panicking.contains(&i);
            b.on_trace = tracing.contains(&i);
            h.alloc(b.holding(h.alloc(Num(i as i64)).unwrap().erase()))
                .unwrap()
        })
        .collect();
    for (i, m) in members.iter().enumerate() {
        m.children.push(members[(i + 1) % n].clone().erase());
    }
    pin(members.into_iter().map(Ref::erase).collect())
}

#[test]
fn free_garbage_frees_every_member_when_one_panics_in_its_drop_then_panics() {
    for prefetch in [false, true] {
        let h = heap();
        let drops = Rc::new(Cell::new(0));
        let members = ring(&h, 12, &drops, &[3], &[]);
        assert_eq!(h.stats().live, 24);

        let message = panic_of(|| {
            // SAFETY: the ring's members are live objects of this heap, pinned, referenced
            // only by each other; no finalizer, no weakref, an exact trace, no hook installed.
            unsafe { h.free_garbage(|| members.iter().copied(), prefetch, |_| false) }
        });
        assert_eq!(message, "drop of member");
        assert_eq!(drops.get(), 12);
        // Every member, and every number they held outside the ring.
        let s = h.stats();
        assert_eq!((s.live, s.freed, s.pending), (0, 24, 0));
        assert_eq!(blocks(&h), 0);
        assert_frees_at_once(&h);
    }
}

#[test]
fn free_garbage_with_several_panicking_members_surfaces_the_first() {
    let h = heap();
    let drops = Rc::new(Cell::new(0));
    let members = ring(&h, 5, &drops, &[0, 2, 4], &[]);
    let message = panic_of(|| {
        // SAFETY: as above.
        unsafe { h.free_garbage(|| members.iter().copied(), false, |_| false) }
    });
    assert_eq!(message, "drop of member");
    assert_eq!(drops.get(), 5);
    assert_eq!((h.stats().live, blocks(&h)), (0, 0));
    assert_frees_at_once(&h);
}

#[test]
fn free_garbage_frees_every_member_when_a_trace_panics_while_prefetching() {
    let h = heap();
    let drops = Rc::new(Cell::new(0));
    // The members 8 turns ahead are traced to prefetch their children: 10 is.
    let members = ring(&h, 12, &drops, &[], &[10]);
    let message = panic_of(|| {
        // SAFETY: as above.
        unsafe { h.free_garbage(|| members.iter().copied(), true, |_| false) }
    });
    assert_eq!(message, "trace of ok");
    assert_eq!(drops.get(), 12);
    assert_eq!((h.stats().live, blocks(&h)), (0, 0));
    assert_frees_at_once(&h);
}

/// The collector calls free_garbage inside a defer_frees of its own: the call returns, all
/// its members freed, and the panic waits for the end of the outer loop.
#[test]
fn free_garbage_inside_defer_frees_returns_and_the_panic_resumes_at_its_end() {
    let h = heap();
    let drops = Rc::new(Cell::new(0));
    let members = ring(&h, 6, &drops, &[1], &[]);
    let mut returned = None;
    let message = panic_of(|| {
        h.defer_frees(|| {
            // SAFETY: as above.
            let freed = unsafe { h.free_garbage(|| members.iter().copied(), false, |_| false) };
            // The numbers the members held wait for the outer loop.
            returned = Some((freed, h.stats().live, h.deaths_waiting()));
        })
    });
    assert_eq!(message, "drop of member");
    assert_eq!(returned, Some((6, 6, 6)));
    assert_eq!((h.stats().live, h.stats().pending, blocks(&h)), (0, 0, 0));
    assert_frees_at_once(&h);
}

#[test]
fn a_callers_panic_after_a_held_one_resumes_the_held_one() {
    let h = heap();
    let drops = Rc::new(Cell::new(0));
    let members = ring(&h, 4, &drops, &[2], &[]);
    let message = panic_of(|| {
        h.defer_frees(|| {
            // SAFETY: as above.
            unsafe { h.free_garbage(|| members.iter().copied(), false, |_| false) };
            panic!("the caller's own");
        })
    });
    assert_eq!(message, "drop of member");
    // The members are freed; the numbers they held died in the caller's interrupted closure
    // and wait for the next loop.
    assert_eq!((h.stats().live, h.deaths_waiting()), (4, 4));
    drop(h.alloc(Num(9)).unwrap());
    assert_eq!((h.stats().live, h.deaths_waiting(), blocks(&h)), (0, 0, 0));
    assert_frees_at_once(&h);
}

#[test]
fn a_panic_of_the_callers_closure_leaves_its_deaths_for_the_next_loop() {
    let h = heap();
    let drops = Rc::new(Cell::new(0));
    let bomb = h.alloc(Bomb::new("deferred", &drops).panicking()).unwrap();
    let num = h.alloc(Num(1)).unwrap();
    let message = panic_of(|| {
        h.defer_frees(|| {
            drop((bomb, num));
            panic!("the caller's own");
        })
    });
    assert_eq!(message, "the caller's own");
    // Not freed under the caller's interrupted state; not lost either.
    assert_eq!((h.stats().live, h.deaths_waiting(), drops.get()), (2, 2, 0));
    // The next loop frees them, and surfaces the bomb's panic.
    assert_eq!(
        panic_of(|| drop(h.alloc(Num(2)).unwrap())),
        "drop of deferred"
    );
    assert_eq!((h.stats().live, h.deaths_waiting(), drops.get()), (0, 0, 1));
    assert_eq!(blocks(&h), 0);
    assert_frees_at_once(&h);
}

#[test]
fn a_panicking_drop_inside_defer_frees_resumes_after_every_death_is_freed() {
    let h = heap();
    let drops = Rc::new(Cell::new(0));
    let bomb = h.alloc(Bomb::new("deferred", &drops).panicking()).unwrap();
    let nums: Vec<_> = (0..3).map(|i| h.alloc(Num(i)).unwrap()).collect();
    let message = panic_of(|| {
        h.defer_frees(|| {
            drop(bomb);
            drop(nums);
            7
        })
    });
    assert_eq!(message, "drop of deferred");
    assert_eq!((h.stats().live, h.deaths_waiting(), blocks(&h)), (0, 0, 0));
    assert_frees_at_once(&h);
}

#[test]
fn a_panicking_clear_leaves_the_object_valid_and_the_heap_freeing() {
    let h = heap();
    let drops = Rc::new(Cell::new(0));
    let mut b = Bomb::new("clearer", &drops);
    b.on_clear = true;
    for i in 0..3 {
        b = b.holding(h.alloc(Num(i)).unwrap().erase());
    }
    let obj = h.alloc(b).unwrap();
    assert_eq!(h.stats().live, 4);

    assert_eq!(panic_of(|| h.clear_refs(obj.as_obj())), "clear of clearer");
    // The child it let go of before the panic is freed; the others are still held.
    assert_eq!((h.stats().live, obj.children.len()), (3, 2));
    assert_frees_at_once(&h);
    drop(obj);
    assert_eq!((h.stats().live, h.deaths_waiting(), blocks(&h)), (0, 0, 0));
    assert_eq!(drops.get(), 1);
}

#[test]
fn a_clear_that_releases_panicking_objects_surfaces_one_panic() {
    no_backtraces_of_nested_panics_under_miri();
    let h = heap();
    let drops = Rc::new(Cell::new(0));
    let list = h.alloc(List::default()).unwrap();
    for name in ["one", "two", "three"] {
        list.0.push(
            h.alloc(Bomb::new(name, &drops).panicking())
                .unwrap()
                .erase(),
        );
    }
    // Outside any loop: the list's items die one by one as the cleared Vec drops them, the
    // later ones while the first one's panic unwinds.
    assert_eq!(panic_of(|| h.clear_refs(list.as_obj())), "drop of one");
    assert_eq!((drops.get(), list.0.len()), (3, 0));
    assert_eq!(h.stats().live, 1);
    drop(list);
    assert_eq!((h.stats().live, blocks(&h)), (0, 0));
    assert_frees_at_once(&h);
}

/// A dropped panic whose own payload panics in its drop is leaked, not an abort.
#[test]
#[cfg_attr(miri, ignore = "the leaked payload is a leak Miri reports")]
fn a_panic_payload_that_panics_in_its_drop_is_leaked() {
    struct Payload;
    impl Drop for Payload {
        fn drop(&mut self) {
            panic!("payload's drop");
        }
    }
    struct Nasty;
    impl Trace for Nasty {}
    impl Drop for Nasty {
        fn drop(&mut self) {
            std::panic::panic_any(Payload);
        }
    }
    static NASTY: TypeInfo = TypeInfo::new::<Nasty>("nasty");
    impl Object for Nasty {
        fn type_info() -> &'static TypeInfo {
            &NASTY
        }
    }

    let h = heap();
    let drops = Rc::new(Cell::new(0));
    let list = h.alloc(List::default()).unwrap();
    list.0.push(
        h.alloc(Bomb::new("first", &drops).panicking())
            .unwrap()
            .erase(),
    );
    list.0.push(h.alloc(Nasty).unwrap().erase());
    assert_eq!(panic_of(|| drop(list)), "drop of first");
    assert_eq!((h.stats().live, blocks(&h)), (0, 0));
    assert_frees_at_once(&h);
}

thread_local! {
    static TRACE_ARMED: Cell<bool> = const { Cell::new(false) };
}

/// A slot whose trace panics once armed (release-only: a slot owns no memory of its own).
struct PanickyTraceList<'h>(RefCell1<'h>);
impl Trace for PanickyTraceList<'_> {
    fn trace(&self, v: &mut Visit<'_>) {
        if TRACE_ARMED.with(|a| a.replace(false)) {
            panic!("trace");
        }
        self.0.trace(v)
    }
    fn clear(&self) {
        self.0.set(None)
    }
}
// SAFETY: reports each held reference once, makes and drops none; the drop only releases.
static PANICKY_TRACE_LIST: TypeInfo = unsafe {
    TypeInfo::new::<PanickyTraceList<'static>>("panicky_trace_list")
        .assume_exact_trace()
        .drop_only_releases_refs()
};
impl Object for PanickyTraceList<'_> {
    const CONTAINER: bool = true;
    fn type_info() -> &'static TypeInfo {
        &PANICKY_TRACE_LIST
    }
}

#[test]
fn a_trace_that_panics_in_the_prefetch_of_a_death_does_not_stop_it() {
    let h = heap();
    let child = h.alloc(Num(7)).unwrap().erase();
    let r = h
        .alloc(PanickyTraceList(RefCell1::new(Some(child))))
        .unwrap();
    TRACE_ARMED.with(|a| a.set(true));
    let dropped = catch_unwind(AssertUnwindSafe(|| drop(r)));
    assert!(
        dropped.is_err(),
        "the trace's panic resumes at the end of the loop"
    );
    assert_eq!(h.stats().live, 0, "the list and its child are freed");
}

/// A panic payload whose own drop panics (with a payload of zero size, so nothing leaks).
struct PayloadThatPanicsWhenDropped;
impl Drop for PayloadThatPanicsWhenDropped {
    fn drop(&mut self) {
        std::panic::panic_any(());
    }
}

/// An atom whose finalizer panics with a [`PayloadThatPanicsWhenDropped`].
struct FinalizerWithBadPayload;
impl Trace for FinalizerWithBadPayload {}
static FINALIZER_WITH_BAD_PAYLOAD: TypeInfo =
    TypeInfo::new::<FinalizerWithBadPayload>("finalizer_with_bad_payload");
impl Object for FinalizerWithBadPayload {
    const HAS_FINALIZER: bool = true;
    fn type_info() -> &'static TypeInfo {
        &FINALIZER_WITH_BAD_PAYLOAD
    }
    fn finalize(_this: &ObjRef<'_>) {
        std::panic::panic_any(PayloadThatPanicsWhenDropped);
    }
}

/// Regression: reporting a finalizer's panic as unraisable dropped its payload unguarded, so a
/// payload whose drop panics unwound out of the report, through the object's death.
#[test]
fn a_finalizer_panic_whose_payload_panics_when_dropped_is_reported_and_the_object_freed() {
    let h = heap();
    let r = h.alloc(FinalizerWithBadPayload).unwrap();
    let dropped = catch_unwind(AssertUnwindSafe(|| drop(r)));
    assert!(dropped.is_ok(), "nothing unwinds out of the death");
    assert_eq!(h.stats().live, 0, "the object is freed");
    assert_eq!(
        h.stats().unraisable,
        1,
        "the finalizer's failure is reported"
    );
}

/// A `tracing` subscriber that panics at every event: a log sink that fails.
struct FailingSink;
impl tracing::Subscriber for FailingSink {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {
        panic!("the log sink failed");
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[test]
fn a_log_sink_that_panics_on_an_unraisable_report_never_unwinds_into_the_deallocation() {
    let h = heap();
    let log = common::Log::default();
    let mut fin = common::Fin::new("failing", &log);
    fin.panic = true;
    let list = h.alloc(List::default()).unwrap();
    list.0.push(h.alloc(fin).unwrap().erase());
    list.0.push(h.alloc(Num(1)).unwrap().erase());
    let dropped = tracing::subscriber::with_default(FailingSink, || {
        catch_unwind(AssertUnwindSafe(|| drop(list)))
    });
    assert!(
        dropped.is_ok(),
        "the sink's panic is dropped, as the finalizer's is reported"
    );
    assert_eq!((h.stats().unraisable, h.stats().live), (1, 0));
    assert_eq!(blocks(&h), 0);
}
