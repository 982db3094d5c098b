//! Dicts and instance attributes against a model: a std `HashMap` for the contents and a `Vec`
//! for the insertion order. Random programs of insertions, replacements, deletions, lookups and
//! clears, over keys that collide by Python's equality (`1 == 1.0`), strs, tuples, and enough
//! keys to grow the table through its index widths; instances of one class whose attribute
//! orders agree (split) or not (combined).

mod support;

use std::collections::HashMap;

use proptest::prelude::*;
use pyheap::object::{as_instance, Dict};
use pyheap::{Heap, ObjRef};

/// A key of the model: ints and integral floats are one key, as in Python.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum MKey {
    Num(i64),
    Str(String),
    Tuple(Vec<MKey>),
}

#[derive(Clone, Debug)]
enum KeySpec {
    Int(i64),
    Float(i64),
    Str(u16),
    Tuple(i64, u16),
}

impl KeySpec {
    fn model(&self) -> MKey {
        match self {
            KeySpec::Int(i) | KeySpec::Float(i) => MKey::Num(*i),
            KeySpec::Str(s) => MKey::Str(format!("k{s}")),
            KeySpec::Tuple(i, s) => MKey::Tuple(vec![MKey::Num(*i), MKey::Str(format!("k{s}"))]),
        }
    }

    fn make<'h>(&self, h: &'h Heap) -> ObjRef<'h> {
        match self {
            KeySpec::Int(i) => h.int(*i).unwrap(),
            KeySpec::Float(i) => h.float(*i as f64).unwrap(),
            KeySpec::Str(s) => h.str(&format!("k{s}")).unwrap(),
            KeySpec::Tuple(i, s) => h
                .tuple(&[h.int(*i).unwrap(), h.str(&format!("k{s}")).unwrap()])
                .unwrap()
                .erase(),
        }
    }
}

#[derive(Clone, Debug)]
enum Op {
    Set(KeySpec, i64),
    Delete(KeySpec),
    Get(KeySpec),
    Clear,
}

fn key() -> impl Strategy<Value = KeySpec> {
    prop_oneof![
        4 => (0i64..400).prop_map(KeySpec::Int),
        1 => (0i64..40).prop_map(KeySpec::Float),
        2 => (0u16..300).prop_map(KeySpec::Str),
        1 => ((0i64..5), (0u16..5)).prop_map(|(i, s)| KeySpec::Tuple(i, s)),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (key(), 1000i64..2000).prop_map(|(k, v)| Op::Set(k, v)),
        3 => key().prop_map(Op::Delete),
        3 => key().prop_map(Op::Get),
        1 => Just(Op::Clear),
    ]
}

/// The model: contents, and the keys in insertion order.
#[derive(Default)]
struct Model {
    map: HashMap<MKey, i64>,
    order: Vec<MKey>,
}

impl Model {
    fn set(&mut self, k: MKey, v: i64) {
        if self.map.insert(k.clone(), v).is_none() {
            self.order.push(k);
        }
    }

    fn delete(&mut self, k: &MKey) -> bool {
        let found = self.map.remove(k).is_some();
        self.order.retain(|o| o != k);
        found
    }
}

fn int_value(o: &ObjRef<'_>) -> i64 {
    o.downcast_ref::<pyheap::object::Int>().unwrap().0
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn a_dict_behaves_like_an_insertion_ordered_map(ops in prop::collection::vec(op(), 1..600)) {
        let h = support::heap();
        let d = h.dict().unwrap();
        let mut m = Model::default();
        for op in &ops {
            match op {
                Op::Set(k, v) => {
                    d.set(k.make(&h), h.int(*v).unwrap()).unwrap();
                    m.set(k.model(), *v);
                }
                Op::Delete(k) => {
                    prop_assert_eq!(d.delete(&k.make(&h)).unwrap(), m.delete(&k.model()));
                }
                Op::Get(k) => {
                    let got = d.get(&k.make(&h)).unwrap().map(|v| int_value(&v));
                    prop_assert_eq!(got, m.map.get(&k.model()).copied());
                }
                Op::Clear => {
                    d.clear();
                    m = Model::default();
                }
            }
            prop_assert_eq!(d.len(), m.map.len());
        }
        let items: Vec<i64> = d.items().iter().map(|(_, v)| int_value(v)).collect();
        let expected: Vec<i64> = m.order.iter().map(|k| m.map[k]).collect();
        prop_assert_eq!(items, expected);
        drop(d);
        support::finish(h);
    }

    #[test]
    fn instance_attributes_keep_their_insertion_order_in_both_layouts(
        ops in prop::collection::vec((0usize..3, 0u8..40, prop::bool::weighted(0.8)), 1..300)
    ) {
        let h = support::heap();
        let class = h.class("C", None).unwrap();
        let objs: Vec<ObjRef<'_>> = (0..3).map(|_| h.instance(&class).unwrap()).collect();
        let mut models: Vec<Vec<(String, i64)>> = vec![Vec::new(); 3];
        for (n, &(i, name, set)) in ops.iter().enumerate() {
            let name = format!("a{name}");
            let m = &mut models[i];
            if set {
                h.setattr(&objs[i], &name, h.int(n as i64 + 1000).unwrap()).unwrap();
                match m.iter_mut().find(|(k, _)| *k == name) {
                    Some(slot) => slot.1 = n as i64 + 1000,
                    None => m.push((name, n as i64 + 1000)),
                }
            } else {
                let inst = as_instance(&objs[i]).unwrap();
                let gone = inst.del_attr(&h.intern(&name).unwrap()).unwrap();
                let before = m.len();
                m.retain(|(k, _)| *k != name);
                prop_assert_eq!(gone, m.len() < before);
            }
        }
        for (o, m) in objs.iter().zip(&models) {
            let attrs: Vec<(String, i64)> = as_instance(o)
                .unwrap()
                .attrs()
                .iter()
                .map(|(k, v)| {
                    let k = k.downcast_ref::<pyheap::object::Str>().unwrap().as_str().to_owned();
                    (k, int_value(v))
                })
                .collect();
            prop_assert_eq!(&attrs, m);
            for (k, v) in m {
                prop_assert_eq!(h.getattr(o, k).unwrap().map(|v| int_value(&v)), Some(*v));
            }
        }
        prop_assert!(class.shared_keys() <= pyheap::object::MAX_SHARED_KEYS);
        drop((objs, class));
        // (No `support::finish`: the names were interned, and interned strs are immortal.)
        support::check_consistent(&h);
    }
}

#[test]
fn a_dict_empties_its_block_and_grows_through_the_index_widths() {
    let h = support::heap();
    let d = h.dict().unwrap();
    let empty = h.size_of(d.as_obj());
    assert_eq!(empty, 48, "the dict object alone");
    for i in 0..100_000 {
        d.set(h.int(i).unwrap(), h.none()).unwrap();
    }
    assert_eq!(d.len(), 100_000);
    assert!(d.get(&h.float(99_999.0).unwrap()).unwrap().is_some());
    for i in 0..100_000 {
        assert!(d.delete(&h.int(i).unwrap()).unwrap());
    }
    assert!(d.is_empty());
    assert_eq!(
        h.size_of(d.as_obj()),
        empty,
        "the last deletion frees the table"
    );
    let _: &Dict<'_> = &d;
    drop(d);
    support::finish(h);
}
