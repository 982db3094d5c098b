//! A fuzz program: a heap setup and a list of operations, serializable (a failing program is
//! written to a file as JSON and replayed from it), with proptest strategies that generate and
//! shrink it.
//!
//! Operations name objects by *picks*: a small number that selects, among the handles the
//! program holds, one of the kind the operation needs (`pick % number of candidates`, counted
//! from the newest). So every program is valid whatever shrinking removes, and an operation
//! without a candidate is skipped.

use proptest::prelude::*;
use serde::{Deserialize, Serialize};

/// Selects one handle among the candidates of an operation.
pub type Pick = u8;

/// How the heap of a program is set up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Setup {
    /// 64 KiB arenas of 4 KiB pools (arenas come and go often) instead of 1 MiB and 16 KiB.
    pub small_arenas: bool,
    /// The debug layer (`PYTHONMALLOC=debug`) around every block.
    pub debug: bool,
    /// Every free list at this capacity, or CPython's capacities.
    pub free_list_capacity: Option<u8>,
    /// The collector's thresholds at the start.
    pub thresholds: (u8, u8, u8),
}

/// What a finalizer or weakref callback does besides logging that it ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Behavior {
    /// Nothing more.
    Log,
    /// Stores its object (a finalizer's instance, a callback's weakref) in a live list: the
    /// finalizer resurrects its object.
    Keep,
    /// Allocates a list and drops it (a container: may start an automatic collection).
    Alloc,
    /// Calls `gc.collect(generation)` (0 at once while a collection runs).
    Collect(u8),
    /// Upgrades every weakref the program holds a handle to, and keeps what it gets.
    Upgrade,
    /// Looks at the collector's objects (`gc.get_objects()`, `gc.get_referrers(this)`) and
    /// drops what it got.
    Inspect,
}

/// A class's finalizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Finalizer {
    /// No `__del__`.
    None,
    /// PEP 442 `tp_finalize`: runs once, also on cycles.
    Safe(Behavior),
    /// Legacy `tp_del`: cycles through the instance are uncollectable (`gc.garbage`).
    Legacy(Behavior),
}

/// One step of a program. Creations push the new object's handle at the end of the handles.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// `int`: 1000 + |v| (never a cached small int).
    Int(i32),
    /// `float`.
    Float(i16),
    /// `str` of about `len * 8` bytes (long ones are direct blocks).
    Str(u8),
    /// `bytes` of about `len * 8` bytes.
    Bytes(u8),
    /// `tuple` of the picked objects (untracked when none may be tracked: atoms, untracked tuples).
    Tuple(Vec<Pick>),
    /// `list` of the picked objects.
    List(Vec<Pick>),
    /// `{}`.
    Dict,
    /// A class with a finalizer (or none).
    Class(Finalizer),
    /// An instance of a picked class.
    Instance(Pick),
    /// `weakref.ref(target, callback)`.
    WeakRef(Pick, Option<Behavior>),
    /// An opaque container of at least `size * 8` bytes holding the picked objects.
    Opaque(Vec<Pick>, u8),
    /// A list of the picked objects that takes their handles over (`[Foo(), Bar()]`: the
    /// list holds the only references).
    ListOf(Vec<Pick>),
    /// `l.append(x)`.
    Append(Pick, Pick),
    /// `l.append(x)`, the handle of `x` given up (`l.append(Foo())`).
    Give(Pick, Pick),
    /// `l[i] = x`.
    SetItem(Pick, u8, Pick),
    /// `l.pop()`.
    Pop(Pick),
    /// `l.clear()`.
    ClearList(Pick),
    /// `d[key] = v` (keys are small ints).
    DictSet(Pick, u8, Pick),
    /// `del d[key]`.
    DictDel(Pick, u8),
    /// `d.clear()`.
    DictClear(Pick),
    /// `setattr(o, name, v)`.
    SetAttr(Pick, u8, Pick),
    /// `delattr(o, name)`.
    DelAttr(Pick, u8),
    /// Sets (or empties) a reference slot of an opaque object.
    SetSlot(Pick, u8, Option<Pick>),
    /// Clones a handle.
    Dup(Pick),
    /// Drops a handle.
    Drop(Pick),
    /// Drops what finalizers and callbacks kept (in address order).
    ReleaseKept,
    /// `gc.collect(generation % 3)`.
    Collect(u8),
    /// `gc.set_threshold(a, b, c)`.
    SetThreshold(u8, u8, u8),
    /// `gc.enable()` / `gc.disable()`.
    Enable(bool),
    /// `gc.freeze()`.
    Freeze,
    /// `gc.unfreeze()`.
    Unfreeze,
    /// `gc.set_debug(DEBUG_SAVEALL)` or `gc.set_debug(0)`.
    SaveAll(bool),
    /// `del gc.garbage[:]`.
    ClearGarbage,
    /// Turns finalizers and weakref callbacks off or on (as a heap being torn down does; then
    /// legacy cycles are ordinary garbage).
    UserCode(bool),
}

/// A whole program.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Program {
    /// The heap's setup.
    pub setup: Setup,
    /// The operations, in order.
    pub ops: Vec<Op>,
}

/// Attribute names (all interned by `support::heap_with`).
pub const ATTRS: [&str; 4] = ["a", "b", "c", "d"];
/// Dict keys (small ints: immortal).
pub const KEYS: u8 = 6;

fn behavior() -> impl Strategy<Value = Behavior> {
    prop_oneof![
        4 => Just(Behavior::Log),
        3 => Just(Behavior::Keep),
        2 => Just(Behavior::Alloc),
        2 => (0u8..3).prop_map(Behavior::Collect),
        1 => Just(Behavior::Upgrade),
        1 => Just(Behavior::Inspect),
    ]
}

fn finalizer() -> impl Strategy<Value = Finalizer> {
    prop_oneof![
        2 => Just(Finalizer::None),
        4 => behavior().prop_map(Finalizer::Safe),
        1 => behavior().prop_map(Finalizer::Legacy),
    ]
}

fn picks(max: usize) -> impl Strategy<Value = Vec<Pick>> {
    prop::collection::vec(any::<Pick>(), 0..=max)
}

/// One operation, weighted so that programs build graphs with cycles, then tear them down.
pub fn op() -> impl Strategy<Value = Op> {
    let p = any::<Pick>;
    prop_oneof![
        // creations
        2 => any::<i32>().prop_map(Op::Int),
        1 => any::<i16>().prop_map(Op::Float),
        1 => (0u8..80).prop_map(Op::Str),
        1 => (0u8..80).prop_map(Op::Bytes),
        2 => picks(3).prop_map(Op::Tuple),
        5 => picks(3).prop_map(Op::List),
        3 => Just(Op::Dict),
        2 => finalizer().prop_map(Op::Class),
        6 => p().prop_map(Op::Instance),
        3 => (p(), prop::option::weighted(0.7, behavior())).prop_map(|(t, b)| Op::WeakRef(t, b)),
        2 => (picks(3), 0u8..160).prop_map(|(r, s)| Op::Opaque(r, s)),
        // mutations
        3 => picks(3).prop_map(Op::ListOf),
        6 => (p(), p()).prop_map(|(a, b)| Op::Append(a, b)),
        4 => (p(), p()).prop_map(|(a, b)| Op::Give(a, b)),
        2 => (p(), any::<u8>(), p()).prop_map(|(a, i, b)| Op::SetItem(a, i, b)),
        2 => p().prop_map(Op::Pop),
        1 => p().prop_map(Op::ClearList),
        4 => (p(), 0..KEYS, p()).prop_map(|(d, k, v)| Op::DictSet(d, k, v)),
        1 => (p(), 0..KEYS).prop_map(|(d, k)| Op::DictDel(d, k)),
        1 => p().prop_map(Op::DictClear),
        8 => (p(), 0..ATTRS.len() as u8, p()).prop_map(|(o, n, v)| Op::SetAttr(o, n, v)),
        1 => (p(), 0..ATTRS.len() as u8).prop_map(|(o, n)| Op::DelAttr(o, n)),
        2 => (p(), any::<u8>(), prop::option::of(p())).prop_map(|(o, s, v)| Op::SetSlot(o, s, v)),
        // handles
        3 => p().prop_map(Op::Dup),
        12 => p().prop_map(Op::Drop),
        1 => Just(Op::ReleaseKept),
        // the collector
        4 => (0u8..3).prop_map(Op::Collect),
        1 => (0u8..12, 0u8..4, 0u8..4).prop_map(|(a, b, c)| Op::SetThreshold(a, b, c)),
        1 => any::<bool>().prop_map(Op::Enable),
        1 => Just(Op::Freeze),
        1 => Just(Op::Unfreeze),
        1 => any::<bool>().prop_map(Op::SaveAll),
        1 => Just(Op::ClearGarbage),
        1 => prop::bool::weighted(0.7).prop_map(Op::UserCode),
    ]
}

fn setup() -> impl Strategy<Value = Setup> {
    (
        any::<bool>(),
        prop::bool::weighted(0.25),
        prop::option::of(0u8..4),
        prop_oneof![
            Just((0, 0, 0)),
            (1u8..8, 0u8..3, 0u8..3),
            Just((200, 10, 10)),
        ],
    )
        .prop_map(
            |(small_arenas, debug, free_list_capacity, thresholds)| Setup {
                small_arenas,
                debug,
                free_list_capacity,
                thresholds,
            },
        )
}

/// Programs of up to `max_ops` operations.
pub fn program(max_ops: usize) -> impl Strategy<Value = Program> {
    (setup(), prop::collection::vec(op(), 1..=max_ops))
        .prop_map(|(setup, ops)| Program { setup, ops })
}
