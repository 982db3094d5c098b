//! Panics of user code inside loops that must finish: [`FirstPanic`], and the text of a panic.
//!
//! A payload's drop, a trace, a finalizer or a callback is user code, and may panic. The loops
//! that run it (a deallocation loop here, a collection in tier 3) cannot stop half way without
//! leaving the heap inconsistent, so they catch each panic, finish, and only then resume the
//! first one, as a slice's drop does. Later panics are dropped; a panic payload is user code
//! too when dropped, so one whose drop panics again is leaked rather than allowed to abort.

use std::any::Any;
use std::cell::Cell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

/// A panic's payload, as `catch_unwind` returns it.
pub type PanicPayload = Box<dyn Any + Send>;

/// The first panic caught while a loop that must finish runs, held for its end.
#[derive(Default)]
pub struct FirstPanic(Cell<Option<PanicPayload>>);

impl FirstPanic {
    /// Nothing held.
    pub const fn new() -> FirstPanic {
        FirstPanic(Cell::new(None))
    }

    /// Runs `f`; should it panic, keeps the panic ([`keep`](Self::keep)). Returns whether `f`
    /// returned.
    pub fn catch(&self, f: impl FnOnce()) -> bool {
        match catch_unwind(AssertUnwindSafe(f)) {
            Ok(()) => true,
            Err(panic) => {
                self.keep(panic);
                false
            }
        }
    }

    /// Holds `panic` unless one is held already, in which case `panic` is dropped.
    #[cold]
    #[inline(never)]
    pub fn keep(&self, panic: PanicPayload) {
        match self.0.take() {
            None => self.0.set(Some(panic)),
            Some(first) => {
                self.0.set(Some(first));
                drop_panic(panic);
            }
        }
    }

    /// Whether a panic is held.
    pub fn is_held(&self) -> bool {
        let held = self.0.take();
        let is_held = held.is_some();
        self.0.set(held);
        is_held
    }

    /// Gives the held panic up (to resume it, or to drop it with [`drop_panic`]).
    pub fn take(&self) -> Option<PanicPayload> {
        self.0.take()
    }

    /// Resumes the held panic, if any. When the thread is already unwinding, the panic in
    /// flight is the first (resuming would abort the process): the held one is dropped.
    pub fn resume(&self) {
        if let Some(first) = self.0.take() {
            resume_or_drop(first)
        }
    }
}

/// Resumes `panic`, or drops it when the thread is already unwinding.
#[cold]
#[inline(never)]
pub fn resume_or_drop(panic: PanicPayload) {
    if std::thread::panicking() {
        drop_panic(panic)
    } else {
        resume_unwind(panic)
    }
}

/// Drops the payload of a panic that will not resume. Should its own drop panic, that
/// panic's payload is leaked instead (no abort).
#[cold]
pub fn drop_panic(panic: PanicPayload) {
    if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(panic))) {
        std::mem::forget(again);
    }
}

/// The text of a panic's payload (`panic!("..")` gives a `&str` or a `String`).
pub fn panic_message(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic with a non-string payload".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_panic_is_held_and_later_ones_are_dropped() {
        let first = FirstPanic::new();
        assert!(first.catch(|| {}));
        assert!(!first.is_held());
        assert!(!first.catch(|| panic!("one")));
        assert!(!first.catch(|| panic!("two")));
        assert!(first.is_held());
        let held = first.take().unwrap();
        assert_eq!(panic_message(held.as_ref()), "one");
        assert!(!first.is_held());
    }

    #[test]
    fn resume_unwinds_with_the_held_panic() {
        let first = FirstPanic::new();
        first.keep(Box::new("held"));
        let resumed = catch_unwind(AssertUnwindSafe(|| first.resume())).unwrap_err();
        assert_eq!(panic_message(resumed.as_ref()), "held");
        // Nothing held: nothing to resume.
        first.resume();
    }

    #[test]
    fn a_payload_whose_drop_panics_is_leaked_not_propagated() {
        struct Bomb;
        impl Drop for Bomb {
            fn drop(&mut self) {
                // A payload of zero size: leaking it leaks no memory (sanitizers stay quiet).
                std::panic::panic_any(());
            }
        }
        let first = FirstPanic::new();
        first.keep(Box::new("first"));
        // Would unwind out of `keep` (or abort) if the second payload's drop were not caught.
        first.keep(Box::new(Bomb));
        assert_eq!(panic_message(first.take().unwrap().as_ref()), "first");
    }

    #[test]
    fn a_message_of_a_non_string_payload_says_so() {
        assert_eq!(panic_message(&42_u32), "a panic with a non-string payload");
        assert_eq!(panic_message(&String::from("owned")), "owned");
    }
}
