//! Dicts and instance attributes against a model (a `Vec` of (key, value) in insertion order),
//! with an allocation refused now and then (raw-alloc's fault injection, system backend: every
//! block is a request of its own), collections interleaved (explicit, and automatic ones from
//! low thresholds, triggered by the containers an operation makes), and cycles through the dict.
//! After each operation, failed or not: the contents are the model's, in its order, every
//! lookup agrees, the dict is tracked exactly when CPython's `MAINTAIN_TRACKING` says, and
//! `get_referents` reports every value.

mod support;

use proptest::prelude::*;
use pyheap::object::{as_instance, Class, Dict};
use pyheap::raw_alloc::OomCause;
use pyheap::{Backend, Config, Heap, HeapError, ObjRef, Ref};

#[derive(Clone, Debug, PartialEq)]
enum MKey {
    Num(i64),
    Float(u64),
    Str(String),
    Tuple(Vec<MKey>),
    /// An object equal only to itself (an instance, a NaN), by its index in the pool.
    Ident(usize),
}

#[derive(Clone, Debug)]
enum KeySpec {
    Int(i64),
    IntegralFloat(i64),
    NegZero,
    Frac(i8),
    Str(u8),
    Tuple(i64, u8),
    Instance(usize),
    InstanceTuple(usize),
    Nan(usize),
}

const POOL: usize = 3;

impl KeySpec {
    fn model(&self) -> MKey {
        match self {
            KeySpec::Int(i) | KeySpec::IntegralFloat(i) => MKey::Num(*i),
            KeySpec::NegZero => MKey::Num(0),
            KeySpec::Frac(f) => MKey::Float((f64::from(*f) + 0.5).to_bits()),
            KeySpec::Str(s) => MKey::Str(format!("k{s}")),
            KeySpec::Tuple(i, s) => MKey::Tuple(vec![MKey::Num(*i), MKey::Str(format!("k{s}"))]),
            KeySpec::Instance(i) => MKey::Ident(*i),
            KeySpec::InstanceTuple(i) => MKey::Tuple(vec![MKey::Ident(*i)]),
            KeySpec::Nan(i) => MKey::Ident(POOL + i),
        }
    }

    /// Whether the key may be tracked (CPython's `_PyObject_GC_MAY_BE_TRACKED`).
    fn tracked(&self) -> bool {
        matches!(self, KeySpec::Instance(_) | KeySpec::InstanceTuple(_))
    }

    fn make<'h>(&self, h: &'h Heap, pool: &Pool<'h>) -> Result<ObjRef<'h>, HeapError> {
        Ok(match self {
            KeySpec::Int(i) => h.int(*i)?,
            KeySpec::IntegralFloat(i) => h.float(*i as f64)?,
            KeySpec::NegZero => h.float(-0.0)?,
            KeySpec::Frac(f) => h.float(f64::from(*f) + 0.5)?,
            KeySpec::Str(s) => h.str(&format!("k{s}"))?,
            KeySpec::Tuple(i, s) => h.tuple(&[h.int(*i)?, h.str(&format!("k{s}"))?])?.erase(),
            KeySpec::Instance(i) => pool.instances[*i].clone(),
            KeySpec::InstanceTuple(i) => h.tuple(&[pool.instances[*i].clone()])?.erase(),
            KeySpec::Nan(i) => pool.nans[*i].clone(),
        })
    }
}

#[derive(Clone, Debug)]
enum ValSpec {
    Int(i64),
    Instance(usize),
    /// A new list holding the dict: a cycle.
    ListOfDict,
    /// The dict itself.
    Dict,
    /// A tuple of atoms (untracked).
    AtomTuple(i64),
}

impl ValSpec {
    fn tracked(&self) -> bool {
        !matches!(self, ValSpec::Int(_) | ValSpec::AtomTuple(_))
    }

    fn make<'h>(
        &self,
        h: &'h Heap,
        pool: &Pool<'h>,
        d: &Ref<'h, Dict<'h>>,
    ) -> Result<ObjRef<'h>, HeapError> {
        Ok(match self {
            ValSpec::Int(i) => h.int(*i)?,
            ValSpec::Instance(i) => pool.instances[*i].clone(),
            ValSpec::ListOfDict => h.list(vec![d.clone().erase()])?.erase(),
            ValSpec::Dict => d.clone().erase(),
            ValSpec::AtomTuple(i) => h.tuple(&[h.int(*i)?])?.erase(),
        })
    }
}

#[derive(Clone, Debug)]
enum Op {
    Set(KeySpec, ValSpec),
    Delete(KeySpec),
    Clear,
    Collect(usize),
    /// Refuse the nth request to the OS of the next operation.
    Fail(u64),
    SetAttr(usize, u8, ValSpec),
    DelAttr(usize, u8),
}

fn key() -> impl Strategy<Value = KeySpec> {
    prop_oneof![
        6 => (-4i64..60).prop_map(KeySpec::Int),
        1 => prop::sample::select(vec![1i64 << 40, -(1 << 40), i64::MAX, i64::MIN]).prop_map(KeySpec::Int),
        3 => (-4i64..60).prop_map(KeySpec::IntegralFloat),
        1 => Just(KeySpec::NegZero),
        1 => (-3i8..3).prop_map(KeySpec::Frac),
        6 => (0u8..60).prop_map(KeySpec::Str),
        2 => (0i64..4, 0u8..4).prop_map(|(i, s)| KeySpec::Tuple(i, s)),
        1 => (0..POOL).prop_map(KeySpec::Instance),
        1 => (0..POOL).prop_map(KeySpec::InstanceTuple),
        1 => (0..POOL).prop_map(KeySpec::Nan),
    ]
}

fn value() -> impl Strategy<Value = ValSpec> {
    prop_oneof![
        6 => (-5i64..200).prop_map(ValSpec::Int),
        1 => (0..POOL).prop_map(ValSpec::Instance),
        1 => Just(ValSpec::ListOfDict),
        1 => Just(ValSpec::Dict),
        1 => (0i64..4).prop_map(ValSpec::AtomTuple),
    ]
}

/// Attribute names: 40 strs (more than `MAX_SHARED_KEYS`) and a few ints (a non-str name
/// makes the instance's attributes a table of their own).
const NAMES: u8 = 44;

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (key(), value()).prop_map(|(k, v)| Op::Set(k, v)),
        4 => key().prop_map(Op::Delete),
        1 => Just(Op::Clear),
        1 => (0usize..3).prop_map(Op::Collect),
        4 => (1u64..4).prop_map(Op::Fail),
        8 => (0usize..2, 0..NAMES, value()).prop_map(|(i, n, v)| Op::SetAttr(i, n, v)),
        3 => (0usize..2, 0..NAMES).prop_map(|(i, n)| Op::DelAttr(i, n)),
    ]
}

struct Pool<'h> {
    instances: Vec<ObjRef<'h>>,
    nans: Vec<ObjRef<'h>>,
    names: Vec<ObjRef<'h>>,
}

/// An ordered map model: (key, value's address).
#[derive(Debug)]
struct Model<K> {
    entries: Vec<(K, usize)>,
}

impl<K> Default for Model<K> {
    fn default() -> Self {
        Model {
            entries: Vec::new(),
        }
    }
}

impl<K: PartialEq> Model<K> {
    fn set(&mut self, k: K, v: usize) {
        match self.entries.iter_mut().find(|(mk, _)| *mk == k) {
            Some(e) => e.1 = v,
            None => self.entries.push((k, v)),
        }
    }
    fn delete(&mut self, k: &K) {
        self.entries.retain(|(mk, _)| mk != k);
    }
}

fn addr(o: &ObjRef<'_>) -> usize {
    o.as_ptr().addr()
}

/// The model key of a stored key object, found by identity or equality among the specs' keys.
fn same_key<'h>(h: &'h Heap, pool: &Pool<'h>, k: &MKey, obj: &ObjRef<'h>) -> bool {
    let spec = match k {
        MKey::Num(i) => KeySpec::Int(*i),
        MKey::Float(bits) => {
            return obj
                .downcast_ref::<pyheap::object::Float>()
                .is_some_and(|f| f.0.to_bits() == *bits)
        }
        MKey::Str(s) => {
            return obj
                .downcast_ref::<pyheap::object::Str>()
                .is_some_and(|x| x.as_str() == s)
        }
        MKey::Tuple(_) => {
            let Some(t) = obj.downcast_ref::<pyheap::object::Tuple>() else {
                return false;
            };
            return match k {
                MKey::Tuple(items) => {
                    items.len() == t.len()
                        && items
                            .iter()
                            .zip(t.items())
                            .all(|(mk, o)| same_key(h, pool, mk, o))
                }
                _ => unreachable!(),
            };
        }
        MKey::Ident(i) if *i < POOL => return obj.ptr_eq(&pool.instances[*i]),
        MKey::Ident(i) => return obj.ptr_eq(&pool.nans[*i - POOL]),
    };
    let Ok(made) = spec.make(h, pool) else {
        return true; // no room to check
    };
    pyheap::object::key_eq(&made, obj)
}

fn check_dict<'h>(
    h: &'h Heap,
    pool: &Pool<'h>,
    d: &Ref<'h, Dict<'h>>,
    model: &Model<MKey>,
    tracked: bool,
) {
    let items = d.items();
    assert_eq!(items.len(), model.entries.len(), "len: {:?}", model.entries);
    assert_eq!(d.len(), model.entries.len());
    assert_eq!(d.is_empty(), model.entries.is_empty());
    for ((k, v), (mk, mv)) in items.iter().zip(&model.entries) {
        assert!(same_key(h, pool, mk, k), "key order: {mk:?}");
        assert_eq!(addr(v), *mv, "value of {mk:?}");
    }
    for (k, _) in &items {
        assert!(d.get(k).unwrap().is_some());
    }
    assert_eq!(h.gc().is_tracked(d.as_obj()), tracked, "MAINTAIN_TRACKING");
    let referents: Vec<usize> = h.gc().get_referents(d.as_obj()).iter().map(addr).collect();
    for (k, v) in &items {
        assert!(
            referents.contains(&addr(v)),
            "get_referents reports every value"
        );
        if k.type_info().container {
            assert!(referents.contains(&addr(k)), "and every container key");
        }
    }
}

fn check_instance<'h>(inst: &ObjRef<'h>, pool: &Pool<'h>, model: &Model<usize>) {
    let i = as_instance(inst).unwrap();
    let attrs = i.attrs();
    let got: Vec<(usize, usize)> = attrs
        .iter()
        .map(|(n, v)| {
            let name = pool
                .names
                .iter()
                .position(|p| pyheap::object::key_eq(p, n))
                .unwrap();
            (name, addr(v))
        })
        .collect();
    assert_eq!(got, model.entries, "attributes in insertion order");
    for (n, v) in &model.entries {
        let got = i.get_attr(&pool.names[*n]).unwrap().map(|o| addr(&o));
        assert_eq!(got, Some(*v));
    }
}

fn run(ops: Vec<Op>, config: Config) {
    let h = support::heap_exact(Config {
        gc_thresholds: (5, 2, 2),
        ..config
    });
    let h = &*h;
    let class: Ref<'_, Class<'_>> = h.class("C", None).unwrap();
    let pool = Pool {
        instances: (0..POOL).map(|_| h.instance(&class).unwrap()).collect(),
        nans: (0..POOL).map(|_| h.float(f64::NAN).unwrap()).collect(),
        names: (0..NAMES)
            .map(|n| match n {
                0..40 => h.intern(&format!("a{n}")).unwrap(),
                n => h.int(1000 + i64::from(n)).unwrap(),
            })
            .collect(),
    };
    let d = h.dict().unwrap();
    let subjects = [h.instance(&class).unwrap(), h.instance(&class).unwrap()];
    let mut model = Model::default();
    let mut attrs = [Model::default(), Model::default()];
    let mut tracked = false;
    let mut fail = None;
    let raw = h.gc().rc().allocator().raw();
    for (step, op) in ops.into_iter().enumerate() {
        if let Op::Fail(n) = op {
            fail = Some(n);
            continue;
        }
        raw.fail_os_request(fail.take());
        let r: Result<(), HeapError> = (|| match &op {
            Op::Set(k, v) => {
                let (key, value) = (k.make(h, &pool)?, v.make(h, &pool, &d)?);
                let a = addr(&value);
                d.set(key, value)?;
                model.set(k.model(), a);
                tracked |= k.tracked() || v.tracked();
                Ok(())
            }
            Op::Delete(k) => {
                let key = k.make(h, &pool)?;
                let was = d.delete(&key)?;
                assert_eq!(was, model.entries.iter().any(|(mk, _)| *mk == k.model()));
                model.delete(&k.model());
                Ok(())
            }
            Op::Clear => {
                d.clear();
                model.entries.clear();
                Ok(())
            }
            Op::Collect(g) => h.gc().collect(*g).map(drop).map_err(|e| panic!("{e}")),
            Op::SetAttr(i, n, v) => {
                let value = v.make(h, &pool, &d)?;
                let a = addr(&value);
                as_instance(&subjects[*i])
                    .unwrap()
                    .set_attr(pool.names[*n as usize].clone(), value)?;
                attrs[*i].set(*n as usize, a);
                Ok(())
            }
            Op::DelAttr(i, n) => {
                let was = as_instance(&subjects[*i])
                    .unwrap()
                    .del_attr(&pool.names[*n as usize])?;
                assert_eq!(
                    was,
                    attrs[*i].entries.iter().any(|(m, _)| *m == *n as usize)
                );
                attrs[*i].delete(&(*n as usize));
                Ok(())
            }
            Op::Fail(_) => unreachable!(),
        })();
        raw.fail_os_request(None);
        match r {
            Ok(()) => {}
            Err(HeapError::OutOfMemory(oom)) => {
                assert_eq!(oom.cause, OomCause::Injected, "step {step}: {op:?}");
                if std::env::var_os("FM_DEBUG").is_some() {
                    eprintln!("OOM {op:?}");
                }
            }
            Err(e) => panic!("step {step}: {op:?}: {e}"),
        }
        check_dict(h, &pool, &d, &model, tracked);
        for (s, m) in subjects.iter().zip(&attrs) {
            check_instance(s, &pool, m);
        }
        support::check_consistent(h);
    }
    h.gc().collect(2).unwrap();
    check_dict(h, &pool, &d, &model, tracked);
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: if cfg!(miri) { 2 } else { 256 },
        ..ProptestConfig::default()
    })]

    #[test]
    #[cfg_attr(miri, ignore)]
    fn dicts_and_attributes_match_the_model_through_refused_allocations_and_collections(
        ops in prop::collection::vec(op(), 1..300),
    ) {
        run(ops, Config { backend: Backend::System, ..Config::default() });
    }

    /// The same with the debug layer around every block (its pads must keep table and
    /// values blocks 16-aligned) and small arenas, whose maps are the requests refused.
    #[test]
    #[cfg_attr(miri, ignore)]
    fn the_model_holds_with_the_debug_layer_and_small_arenas(
        ops in prop::collection::vec(op(), 1..300),
    ) {
        run(ops, Config {
            backend: Backend::Arena,
            debug: true,
            arena_size: 64 << 10,
            pool_size: 4 << 10,
            ..Config::default()
        });
    }
}
