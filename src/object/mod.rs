//! The object model: Python's built-in values as refcount objects, each with the allocation
//! CPython uses for it.
//!
//! | kind | type | allocation | tracked |
//! | --- | --- | --- | --- |
//! | `int` | [`Int`] | size class; -5..=256 preallocated and immortal | no |
//! | `float` | [`Float`] | free list (100) | no |
//! | `str` | [`Str`] | size class, text inline, hash cached; interning | no |
//! | `bytes` | [`Bytes`] | size class, bytes inline | no |
//! | `tuple` | [`Tuple`] | free lists per length (1..=19, 2000 each), items inline | if it holds a container other than an untracked tuple |
//! | `list` | [`List`] | free list (80); items in a separate array | yes |
//! | `dict` | [`Dict`] | free list (80); a compact table in one block of the heap | yes |
//! | `type` | [`Class`] | size class; the shared attribute names | no |
//! | `instance` | [`Instance`] | size class; values in one block (split) or a table | yes |
//! | `weakref` | [`WeakRefObj`] | size class | yes |
//! | `opaque` | [`Opaque`] | size class, sized like the object it stands for | yes |
//! | `NoneType` | [`NoneType`] | one immortal object | no |

mod atoms;
mod dict;
mod instance;
mod list;
mod opaque;
mod table;
mod tuple;
mod values;

pub use atoms::{Bytes, Float, Int, NoneType, Str, MAX_ATOM_LEN};
pub use dict::Dict;
pub use instance::{as_instance, Class, Finalizer, FinalizerKind, Instance, MAX_SHARED_KEYS};
pub(crate) use instance::{FinInstance, LegacyInstance, PlainInstance};
pub use list::{List, MAX_LIST_LEN};
pub use opaque::Opaque;
pub use refcount::WeakRefObj;
pub use tuple::Tuple;

use refcount::ObjRef;
use serde::{Deserialize, Serialize};

use crate::HeapError;

/// The kind of an object: which type of the model it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// `int`
    Int,
    /// `float`
    Float,
    /// `str`
    Str,
    /// `bytes`
    Bytes,
    /// `tuple`
    Tuple,
    /// `list`
    List,
    /// `dict`
    Dict,
    /// a class
    Class,
    /// an instance of a class
    Instance,
    /// `weakref`
    WeakRef,
    /// an opaque stand-in for another type
    Opaque,
    /// `None`
    None,
    /// an object of a type made outside the model (a refcount type of the user's)
    Foreign,
}

impl Kind {
    /// The kind of `obj`.
    pub fn of(obj: &ObjRef<'_>) -> Kind {
        if obj.is::<Int>() {
            Kind::Int
        } else if obj.is::<Str>() {
            Kind::Str
        } else if obj.is::<Tuple>() {
            Kind::Tuple
        } else if obj.is::<List>() {
            Kind::List
        } else if obj.is::<Dict>() {
            Kind::Dict
        } else if obj.is::<Float>() {
            Kind::Float
        } else if obj.is::<Bytes>() {
            Kind::Bytes
        } else if as_instance(obj).is_some() {
            Kind::Instance
        } else if obj.is::<Class>() {
            Kind::Class
        } else if obj.is::<WeakRefObj>() {
            Kind::WeakRef
        } else if obj.is::<Opaque>() {
            Kind::Opaque
        } else if obj.is::<NoneType>() {
            Kind::None
        } else {
            Kind::Foreign
        }
    }

    /// The kind's name, as the stats print it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Int => "int",
            Kind::Float => "float",
            Kind::Str => "str",
            Kind::Bytes => "bytes",
            Kind::Tuple => "tuple",
            Kind::List => "list",
            Kind::Dict => "dict",
            Kind::Class => "type",
            Kind::Instance => "instance",
            Kind::WeakRef => "weakref",
            Kind::Opaque => "opaque",
            Kind::None => "NoneType",
            Kind::Foreign => "foreign",
        }
    }
}

/// `hash(obj)` for dict keys: ints, floats, strs, bytes, None and tuples of hashables by value;
/// instances, classes and opaque stand-ins by identity (`object.__hash__`, as Python does for
/// functions, modules, types and instances of classes without `__eq__`). Lists and dicts are
/// unhashable. Numbers that compare equal hash equal (`hash(1) == hash(1.0)`).
pub fn key_hash(obj: &ObjRef<'_>) -> Result<u64, HeapError> {
    if let Some(i) = obj.downcast_ref::<Int>() {
        return Ok(int_hash(i.0));
    }
    if let Some(s) = obj.downcast_ref::<Str>() {
        return Ok(s.hash());
    }
    if let Some(f) = obj.downcast_ref::<Float>() {
        let v = f.0;
        if v.fract() == 0.0 && v >= i64::MIN as f64 && v < i64::MAX as f64 {
            return Ok(int_hash(v as i64));
        }
        return Ok(atoms::hash_bytes(&v.to_bits().to_le_bytes()));
    }
    if let Some(b) = obj.downcast_ref::<Bytes>() {
        return Ok(b.hash());
    }
    if obj.is::<NoneType>() {
        return Ok(0xFCA8_6420);
    }
    if let Some(t) = obj.downcast_ref::<Tuple>() {
        return tuple_hash(t);
    }
    if obj.is::<Opaque>() || obj.is::<Class>() || as_instance(obj).is_some() {
        // CPython's _Py_HashPointer: the address without its always-zero low bits.
        return Ok(int_hash((obj.as_ptr().addr() >> 4) as i64));
    }
    Err(HeapError::Unhashable {
        type_name: obj.type_info().name,
    })
}

/// The hash a tuple starts from.
const TUPLE_SEED: u64 = 0x27D4_EB2F_1656_67C5;

/// Mixes an element's hash into a tuple's.
fn tuple_mix(acc: u64, h: u64) -> u64 {
    let acc = acc.wrapping_add(h.wrapping_mul(0xC2B2_AE3D_27D4_EB4F));
    acc.rotate_left(31).wrapping_mul(0x9E37_79B1_85EB_CA87)
}

/// CPython's xxHash-based tuple hash, in spirit: each element's hash mixed in order, then the
/// length. Nested tuples are walked with a stack of their own, not by recursion, so that a
/// deeply nested key costs heap, not the thread's stack.
fn tuple_hash(t: &Tuple<'_>) -> Result<u64, HeapError> {
    if !t.items().iter().any(|i| i.is::<Tuple>()) {
        // No nesting (most keys): no stack.
        let mut acc = TUPLE_SEED;
        for item in t.items() {
            acc = tuple_mix(acc, key_hash(item)?);
        }
        return Ok(acc ^ t.len() as u64);
    }
    // Per tuple being hashed: its items, the next one, the hash so far.
    let mut stack = vec![(t.items(), 0, TUPLE_SEED)];
    while let Some(&mut (items, ref mut next, ref mut acc)) = stack.last_mut() {
        let Some(item) = items.get(*next) else {
            let h = *acc ^ items.len() as u64;
            stack.pop();
            match stack.last_mut() {
                Some((_, next, acc)) => {
                    *acc = tuple_mix(*acc, h);
                    *next += 1;
                }
                None => return Ok(h),
            }
            continue;
        };
        if let Some(inner) = item.downcast_ref::<Tuple>() {
            stack.push((inner.items(), 0, TUPLE_SEED));
            continue;
        }
        *acc = tuple_mix(*acc, key_hash(item)?);
        *next += 1;
    }
    unreachable!("the outermost tuple returns its hash")
}

/// `i == f` as Python compares an int with a float: exactly, not through the int rounded to
/// a float (`2**53 + 1 != 2.0**53`). Only an integral float within the range of `i64` can be
/// equal; that range's conversion is exact.
fn int_eq_float(i: i64, f: f64) -> bool {
    f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64 && f as i64 == i
}

fn int_hash(i: i64) -> u64 {
    // Spread the bits so that consecutive ints do not share a bucket group.
    (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// `a == b` for hashable objects: numbers by value (across int and float), strs and bytes by
/// content, tuples element by element, everything else by identity.
pub fn key_eq(a: &ObjRef<'_>, b: &ObjRef<'_>) -> bool {
    // Tuples are compared element by element with a stack of their own (not by recursion, so
    // that deeply nested keys cost heap, not the thread's stack): per pair of tuples, their
    // items and the next index.
    let mut stack = Vec::new();
    let (mut a, mut b) = (a, b);
    loop {
        match shallow_eq(a, b) {
            Shallow::Equal => {}
            Shallow::Unequal => return false,
            Shallow::Tuples(x, y) => {
                if x.len() != y.len() {
                    return false;
                }
                stack.push((x.items(), y.items(), 0));
            }
        }
        loop {
            let Some((xs, ys, next)) = stack.last_mut() else {
                return true;
            };
            if let (Some(x), Some(y)) = (xs.get(*next), ys.get(*next)) {
                (a, b) = (x, y);
                *next += 1;
                break;
            }
            stack.pop();
        }
    }
}

/// `a == b` short of comparing two tuples' elements.
enum Shallow<'a, 'h> {
    Equal,
    Unequal,
    Tuples(&'a Tuple<'h>, &'a Tuple<'h>),
}

fn shallow_eq<'a, 'h>(a: &'a ObjRef<'h>, b: &'a ObjRef<'h>) -> Shallow<'a, 'h> {
    let answer = |eq: bool| if eq { Shallow::Equal } else { Shallow::Unequal };
    if a.ptr_eq(b) {
        return Shallow::Equal;
    }
    match (a.downcast_ref::<Int>(), b.downcast_ref::<Int>()) {
        (Some(x), Some(y)) => return answer(x.0 == y.0),
        (Some(i), None) => {
            if let Some(f) = b.downcast_ref::<Float>() {
                return answer(int_eq_float(i.0, f.0));
            }
        }
        (None, Some(i)) => {
            if let Some(f) = a.downcast_ref::<Float>() {
                return answer(int_eq_float(i.0, f.0));
            }
        }
        (None, None) => {
            if let (Some(x), Some(y)) = (a.downcast_ref::<Float>(), b.downcast_ref::<Float>()) {
                return answer(x.0 == y.0);
            }
        }
    }
    if let (Some(x), Some(y)) = (a.downcast_ref::<Str>(), b.downcast_ref::<Str>()) {
        return answer(x.hash() == y.hash() && x.as_str() == y.as_str());
    }
    if let (Some(x), Some(y)) = (a.downcast_ref::<Bytes>(), b.downcast_ref::<Bytes>()) {
        return answer(x.as_bytes() == y.as_bytes());
    }
    if let (Some(x), Some(y)) = (a.downcast_ref::<Tuple>(), b.downcast_ref::<Tuple>()) {
        return Shallow::Tuples(x, y);
    }
    Shallow::Unequal
}
