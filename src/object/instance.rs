//! Classes and their instances. A class is an atom holding a name and an optional finalizer
//! (a Rust closure: Python's `__del__`); an instance holds its class and an attribute table.
//!
//! Attributes live inline in the instance (CPython 3.11's "managed dict" before anything reads
//! `__dict__`): two instances pointing at each other are a cycle of 2 objects, not 4.

use std::rc::Rc;

use refcount::{ObjRef, Object, Trace, TypeInfo, Visit};

use super::table::Table;
use crate::{Heap, HeapError};

/// A class's finalizer: `__del__(self)`. It gets the heap and the instance (a strong
/// reference: storing a clone somewhere live resurrects the object). An `Err` or a panic is
/// reported to the unraisable hook, and the object dies all the same.
pub type Finalizer<'h> = Rc<dyn Fn(&'h Heap, &ObjRef<'h>) -> Result<(), String> + 'h>;

/// What a finalizer is (CPython's `tp_finalize` or the legacy `tp_del`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FinalizerKind {
    /// PEP 442: runs once, also for objects in cycles, which are then freed.
    Safe,
    /// Legacy: cycles through such objects are uncollectable and go to `gc.garbage`.
    Legacy,
}

/// A user-defined class (`class Name: ...`). Made by [`Heap::class`](crate::Heap::class).
///
/// ```
/// use std::rc::Rc;
/// use pyheap::object::FinalizerKind;
/// # let heap = pyheap::Heap::new(pyheap::Config::default()).unwrap();
/// let c = heap
///     .class("Node", Some((Rc::new(|_heap, _this| Ok(())), FinalizerKind::Safe)))
///     .unwrap();
/// let a = heap.instance(&c).unwrap();
/// heap.setattr(&a, "me", a.clone()).unwrap(); // a cycle through an attribute
/// drop(a);
/// assert_eq!(heap.gc().collect(2).unwrap(), 1);
/// ```
pub struct Class<'h> {
    name: String,
    finalizer: Option<(Finalizer<'h>, FinalizerKind)>,
}

impl<'h> Class<'h> {
    pub(crate) fn new(name: &str, finalizer: Option<(Finalizer<'h>, FinalizerKind)>) -> Self {
        Class {
            name: name.to_owned(),
            finalizer,
        }
    }

    /// `cls.__name__`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The kind of finalizer, if the class has one.
    pub fn finalizer_kind(&self) -> Option<FinalizerKind> {
        self.finalizer.as_ref().map(|(_, k)| *k)
    }
}

impl Trace for Class<'_> {}
static CLASS: TypeInfo = TypeInfo::new::<Class<'static>>("type");
impl Object for Class<'_> {
    fn type_info() -> &'static TypeInfo {
        &CLASS
    }
}

/// An instance of a [`Class`]: its attributes, keyed by interned strings.
pub struct Instance<'h> {
    class: ObjRef<'h>,
    attrs: Table<'h>,
}

impl<'h> Instance<'h> {
    pub(crate) fn new(class: ObjRef<'h>) -> Self {
        Instance {
            class,
            attrs: Table::default(),
        }
    }

    /// The instance's class.
    pub fn class(&self) -> &Class<'h> {
        self.class
            .downcast_ref::<Class<'h>>()
            .expect("an instance's class is a Class")
    }

    /// The class object.
    pub fn class_obj(&self) -> ObjRef<'h> {
        self.class.clone()
    }

    /// `getattr(o, name)`, by an interned-or-not name object.
    pub fn get_attr(&self, name: &ObjRef<'h>) -> Result<Option<ObjRef<'h>>, HeapError> {
        self.attrs.get(name)
    }

    /// `setattr(o, name, value)`.
    pub fn set_attr(&self, name: ObjRef<'h>, value: ObjRef<'h>) -> Result<(), HeapError> {
        crate::check_same_heap(self, &name)?;
        crate::check_same_heap(self, &value)?;
        drop(self.attrs.set(name, value)?);
        Ok(())
    }

    /// `delattr(o, name)`; whether it was there.
    pub fn del_attr(&self, name: &ObjRef<'h>) -> Result<bool, HeapError> {
        Ok(self.attrs.remove(name)?.is_some())
    }

    /// Every (name, value).
    pub fn attrs(&self) -> Vec<(ObjRef<'h>, ObjRef<'h>)> {
        self.attrs.items()
    }

    pub(crate) fn buffer_bytes(&self) -> usize {
        self.attrs.buffer_bytes()
    }

    fn trace(&self, v: &mut Visit<'_>) {
        v.visit(&self.class);
        self.attrs.trace(v);
    }
}

/// The three run-time types of instances, by their class's finalizer. They share the payload
/// layout (`repr(transparent)` over [`Instance`]).
macro_rules! instance_type {
    ($name:ident, $static:ident, $type_name:literal, $has:expr, $legacy:expr) => {
        #[repr(transparent)]
        pub(crate) struct $name<'h>(pub(crate) Instance<'h>);
        impl Trace for $name<'_> {
            fn trace(&self, v: &mut Visit<'_>) {
                self.0.trace(v)
            }
            fn clear(&self) {
                self.0.attrs.clear()
            }
        }
        static $static: TypeInfo = TypeInfo::new::<$name<'static>>($type_name);
        impl Object for $name<'_> {
            const CONTAINER: bool = true;
            const HAS_FINALIZER: bool = $has;
            const LEGACY_FINALIZER: bool = $legacy;
            fn type_info() -> &'static TypeInfo {
                &$static
            }
            fn finalize(this: &ObjRef<'_>) {
                run_finalizer(this)
            }
        }
    };
}

// Three names, so that the allocator's per-kind table tells them apart.
instance_type!(PlainInstance, PLAIN_INSTANCE, "instance", false, false);
instance_type!(FinInstance, FIN_INSTANCE, "instance+finalizer", true, false);
instance_type!(
    LegacyInstance,
    LEGACY_INSTANCE,
    "instance+legacy-finalizer",
    false,
    true
);

/// The instance payload of `obj`, if it is an instance.
pub fn as_instance<'a, 'h>(obj: &'a ObjRef<'h>) -> Option<&'a Instance<'h>> {
    obj.downcast_ref::<PlainInstance<'h>>()
        .map(|i| &i.0)
        .or_else(|| obj.downcast_ref::<FinInstance<'h>>().map(|i| &i.0))
        .or_else(|| obj.downcast_ref::<LegacyInstance<'h>>().map(|i| &i.0))
}

/// Calls the class's finalizer of a dying (or collected) instance.
fn run_finalizer(this: &ObjRef<'_>) {
    let Some(inst) = as_instance(this) else {
        return;
    };
    let Some((finalizer, _)) = &inst.class().finalizer else {
        return;
    };
    let finalizer = finalizer.clone();
    let Some(heap) = Heap::try_of(this) else {
        return;
    };
    if let Err(message) = finalizer(heap, this) {
        heap.gc().rc().report_unraisable(refcount::Unraisable {
            context: "finalizer",
            type_name: "instance",
            message,
        });
    }
}
