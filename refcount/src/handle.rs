//! Handles: the raw [`ObjPtr`], the owning type-erased [`ObjRef`] and the typed [`Ref`].
//!
//! This module owns one invariant: an `ObjRef` or `Ref` always holds one counted reference to a
//! live object of its heap, so the object (and its payload) stays valid while the handle lives.
//! Clone adds a reference, drop removes one; the last drop deallocates (see `heap.rs`).

use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;
use std::ptr::NonNull;

use crate::header::{ObjHeader, HEADER_SIZE};
use crate::heap::RcHeap;
use crate::type_info::{Object, TypeInfo};

/// A raw pointer to an object's header. Copying it adds no reference; using it is unsafe.
/// The collector and runtime implementers work with these.
///
/// `repr(transparent)` over a `NonNull`: `Option<ObjPtr>` has `ObjPtr`'s layout, `None` the
/// null pointer (a collector reuses an array of one as an array of the other).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(transparent)]
pub struct ObjPtr(NonNull<ObjHeader>);

impl fmt::Debug for ObjPtr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjPtr({:p})", self.0)
    }
}

impl ObjPtr {
    /// Wraps a header pointer.
    ///
    /// # Safety
    /// `header` must point to the header of an object (live when the pointer is used).
    pub unsafe fn from_header(header: NonNull<ObjHeader>) -> Self {
        ObjPtr(header)
    }

    /// The header pointer.
    #[inline]
    pub fn as_non_null(self) -> NonNull<ObjHeader> {
        self.0
    }

    /// The object's address, for tables keyed by identity (`id(o)`).
    #[inline]
    pub fn addr(self) -> usize {
        self.0.as_ptr() as usize
    }

    /// The header.
    ///
    /// # Safety
    /// The object must be live for `'a`.
    #[inline]
    pub unsafe fn header<'a>(self) -> &'a ObjHeader {
        // SAFETY: contract.
        unsafe { self.0.as_ref() }
    }

    /// The object's type.
    ///
    /// # Safety
    /// The object must be live.
    #[inline]
    pub unsafe fn type_info(self) -> &'static TypeInfo {
        // SAFETY: contract.
        unsafe { self.header() }.type_info()
    }

    /// The first byte of the payload.
    #[inline]
    pub fn payload(self) -> NonNull<u8> {
        // SAFETY: the payload follows the 16-byte header inside the same block.
        unsafe { self.0.cast::<u8>().add(HEADER_SIZE) }
    }

    /// The first byte of the pre-header of a container (the collector's links).
    ///
    /// # Safety
    /// The object must be a live container.
    #[inline]
    pub unsafe fn pre_header(self) -> NonNull<u8> {
        // SAFETY: containers have CONTAINER_PRE_HEADER bytes in front of the header, in the
        // same block (contract).
        unsafe { self.0.cast::<u8>().sub(crate::CONTAINER_PRE_HEADER) }
    }

    /// The object whose pre-header starts at `pre`.
    ///
    /// # Safety
    /// `pre` must be the pre-header of a container.
    #[inline]
    pub unsafe fn from_pre_header(pre: NonNull<u8>) -> Self {
        // SAFETY: the header follows the pre-header in the same block (contract).
        ObjPtr(unsafe { pre.add(crate::CONTAINER_PRE_HEADER) }.cast())
    }

    /// The object whose payload is `payload`.
    ///
    /// # Safety
    /// `payload` must be the payload of an object.
    #[inline]
    pub unsafe fn from_payload<T>(payload: &T) -> Self {
        let p = NonNull::from(payload).cast::<u8>();
        // SAFETY: the header precedes the payload in the same block (contract).
        ObjPtr(unsafe { p.sub(HEADER_SIZE) }.cast())
    }

    /// Adds a reference.
    ///
    /// # Safety
    /// The object must be live.
    #[inline]
    pub unsafe fn incref(self) {
        // SAFETY: contract.
        unsafe { self.header() }.incref()
    }

    /// Removes a reference, deallocating the object when it was the last.
    ///
    /// # Safety
    /// The object must be live and the caller must own the reference it gives up.
    #[inline]
    pub unsafe fn decref(self) {
        // SAFETY: contract.
        if unsafe { self.header() }.decref() {
            // SAFETY: the count reached zero: nobody else owns a reference.
            unsafe { RcHeap::dealloc(self) }
        }
    }

    /// A new counted handle to the object.
    ///
    /// # Safety
    /// The object must be live and belong to a heap that lives for `'h`.
    #[inline]
    pub unsafe fn to_ref<'h>(self) -> ObjRef<'h> {
        // SAFETY: contract.
        unsafe { self.incref() };
        ObjRef {
            ptr: self,
            _heap: PhantomData,
        }
    }
}

/// An owned, counted, type-erased reference to an object of a heap that lives for `'h`.
/// Not `Send` or `Sync`: a heap belongs to one thread.
pub struct ObjRef<'h> {
    ptr: ObjPtr,
    _heap: PhantomData<(&'h RcHeap, *const ())>,
}

impl<'h> ObjRef<'h> {
    /// Takes over a reference the caller owns.
    ///
    /// # Safety
    /// `ptr` must be a live object of a heap that lives for `'h`, and the caller gives its
    /// counted reference to the handle.
    #[inline]
    pub unsafe fn from_owned(ptr: ObjPtr) -> Self {
        ObjRef {
            ptr,
            _heap: PhantomData,
        }
    }

    /// Gives up the handle without dropping its reference.
    #[inline]
    pub fn into_owned(self) -> ObjPtr {
        std::mem::ManuallyDrop::new(self).ptr
    }

    /// The raw pointer (no reference added).
    #[inline]
    pub fn as_ptr(&self) -> ObjPtr {
        self.ptr
    }

    /// The header.
    #[inline]
    pub fn header(&self) -> &ObjHeader {
        // SAFETY: the handle keeps the object alive.
        unsafe { self.ptr.header() }
    }

    /// The object's type.
    #[inline]
    pub fn type_info(&self) -> &'static TypeInfo {
        self.header().type_info()
    }

    /// The reference count (`sys.getrefcount` minus the call's own).
    #[inline]
    pub fn refcnt(&self) -> u32 {
        self.header().refcnt()
    }

    /// Whether the object is of type `T`.
    #[inline]
    pub fn is<T: Object>(&self) -> bool {
        std::ptr::eq(self.type_info(), T::type_info())
    }

    /// The typed handle, if the object is a `T`.
    pub fn downcast<T: Object + 'h>(self) -> Result<Ref<'h, T>, ObjRef<'h>> {
        if self.is::<T>() {
            Ok(Ref {
                raw: self,
                _type: PhantomData,
            })
        } else {
            Err(self)
        }
    }

    /// A borrowed typed view, if the object is a `T`.
    pub fn downcast_ref<T: Object + 'h>(&self) -> Option<&T> {
        // SAFETY: the type matches and the handle keeps the payload alive.
        self.is::<T>()
            .then(|| unsafe { self.ptr.payload().cast::<T>().as_ref() })
    }

    /// Whether two handles name the same object (`a is b`).
    #[inline]
    pub fn ptr_eq(&self, other: &ObjRef<'_>) -> bool {
        self.ptr == other.ptr
    }

    /// The heap the object lives in.
    pub fn heap(&self) -> &'h RcHeap {
        // SAFETY: the object is live, and its heap lives for 'h.
        unsafe { &*RcHeap::of(self.ptr) }
    }
}

impl Clone for ObjRef<'_> {
    #[inline]
    fn clone(&self) -> Self {
        self.header().incref();
        ObjRef {
            ptr: self.ptr,
            _heap: PhantomData,
        }
    }
}

impl Drop for ObjRef<'_> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: the handle owns one reference to a live object.
        unsafe { self.ptr.decref() }
    }
}

impl fmt::Debug for ObjRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "<{} object at {:p}, refcnt {}>",
            self.type_info().name,
            self.ptr.0,
            self.refcnt()
        )
    }
}

/// An owned, counted reference to an object of type `T`: `Rc<T>` for the private heap.
/// `Deref`s to the payload.
pub struct Ref<'h, T: Object> {
    raw: ObjRef<'h>,
    _type: PhantomData<*const T>,
}

impl<'h, T: Object + 'h> Ref<'h, T> {
    /// Takes over a reference the caller owns.
    ///
    /// # Safety
    /// As [`ObjRef::from_owned`], and the object must be a `T`.
    #[inline]
    pub unsafe fn from_owned(ptr: ObjPtr) -> Self {
        Ref {
            // SAFETY: contract.
            raw: unsafe { ObjRef::from_owned(ptr) },
            _type: PhantomData,
        }
    }

    /// The type-erased handle (no count change).
    #[inline]
    pub fn erase(self) -> ObjRef<'h> {
        self.raw
    }

    /// The type-erased handle, borrowed.
    #[inline]
    pub fn as_obj(&self) -> &ObjRef<'h> {
        &self.raw
    }

    /// The raw pointer (no reference added).
    #[inline]
    pub fn as_ptr(&self) -> ObjPtr {
        self.raw.ptr
    }

    /// The reference count.
    #[inline]
    pub fn refcnt(&self) -> u32 {
        self.raw.refcnt()
    }

    /// Whether two handles name the same object.
    #[inline]
    pub fn ptr_eq(&self, other: &Ref<'_, T>) -> bool {
        self.raw.ptr == other.raw.ptr
    }
}

impl<T: Object> Clone for Ref<'_, T> {
    #[inline]
    fn clone(&self) -> Self {
        Ref {
            raw: self.raw.clone(),
            _type: PhantomData,
        }
    }
}

impl<T: Object> Deref for Ref<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the handle keeps the object alive and the object is a T.
        unsafe { self.raw.ptr.payload().cast::<T>().as_ref() }
    }
}

impl<'h, T: Object> From<Ref<'h, T>> for ObjRef<'h> {
    fn from(r: Ref<'h, T>) -> Self {
        r.raw
    }
}

impl<T: Object + fmt::Debug> fmt::Debug for Ref<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
