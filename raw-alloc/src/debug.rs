//! The debug layer: CPython's `PYTHONMALLOC=debug`, over any backend.
//!
//! Every block handed out through the layer is wrapped in forbidden bytes and carries a serial:
//!
//! ```text
//!  raw                      user (what the caller gets)
//!  |                        |
//!  v                        v
//!  +-----------+------------+----------------------+------------+-----------+
//!  | requested | FORBIDDEN  |  user bytes           | FORBIDDEN  |  serial   |
//!  | (8 bytes) | x8 (0xFD)  |  fresh: CLEANBYTE 0xCD| x8 (0xFD)  | (8 bytes) |
//!  +-----------+------------+----------------------+------------+-----------+
//!  |<-- DEBUG_PREFIX (16) -->|<---- requested ----->|<-- DEBUG_SUFFIX (16) -->|
//! ```
//!
//! On free the layer checks, in CPython's order, that the block is one it handed out and has not
//! freed (a table of live and freed blocks answers that without touching memory), that the size
//! matches, and that both pads are intact; then fills the whole block with DEADBYTE (0xDD).
//! A violation is returned as a [`DebugViolation`] naming the address, the requested size, the
//! serial and what was wrong; the block is then left alone (leaked), never reused.
//!
//! The layer only writes the bytes of blocks it was given; which allocator those come from is the
//! caller's business (obj-alloc wraps its pool blocks and direct blocks alike).

use std::cell::{Cell, RefCell};
use std::fmt;
use std::ptr::NonNull;

use hashbrown::HashMap;
use serde::{Deserialize, Serialize};

use crate::stats::DebugStats;

/// Bytes the layer adds in front of each block: the requested size and 8 forbidden bytes.
pub const DEBUG_PREFIX: usize = 16;
/// Bytes the layer adds after each block: 8 forbidden bytes and the serial.
pub const DEBUG_SUFFIX: usize = 16;
/// The pad value around every block (CPython's `FORBIDDENBYTE`).
pub const FORBIDDENBYTE: u8 = 0xFD;
/// What fresh user bytes are filled with (CPython's `CLEANBYTE`).
pub const CLEANBYTE: u8 = 0xCD;
/// What a freed block is filled with (CPython's `DEADBYTE`).
pub const DEADBYTE: u8 = 0xDD;

const PAD: usize = 8;

// The pads are whole multiples of 16, so the user pointer keeps the raw block's alignment and
// `padded_size(n)` is a multiple of 16 exactly when `n` is: the tier above relies on both (a
// request of a multiple of 16 bytes gets a 16-aligned block, padded or not).
const _: () = assert!(DEBUG_PREFIX.is_multiple_of(crate::ALIGNMENT));
const _: () = assert!(DEBUG_SUFFIX.is_multiple_of(crate::ALIGNMENT));

/// What the debug layer found wrong with a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ViolationKind {
    /// The pad in front of the block was overwritten (a write before its start).
    Underrun,
    /// The pad after the block was overwritten (a write past its end).
    Overrun,
    /// The block was freed before and has not been handed out since.
    DoubleFree,
    /// The pointer was never handed out by this layer.
    ForeignPointer,
    /// The size given on free is not the size requested on allocation.
    SizeMismatch {
        /// The size the free claimed.
        claimed: usize,
    },
}

/// A violation report, in the spirit of CPython's "Debug memory block at address p=...".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DebugViolation {
    /// The user address of the block.
    pub address: usize,
    /// Bytes originally requested (0 when the block is unknown).
    pub requested: usize,
    /// The block's serial number (0 when the block is unknown).
    pub serial: u64,
    /// What was wrong.
    pub kind: ViolationKind,
    /// The pad bytes found, when a pad was damaged.
    pub pad: Option<[u8; PAD]>,
}

impl fmt::Display for DebugViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.address;
        write!(f, "Debug memory block at address p={p:#x}: ")?;
        match self.kind {
            ViolationKind::ForeignPointer => {
                return write!(f, "not allocated by this heap (free of a foreign pointer)")
            }
            ViolationKind::DoubleFree => write!(f, "already freed (double free)")?,
            ViolationKind::SizeMismatch { claimed } => write!(
                f,
                "freed as {claimed} bytes, but {} were requested",
                self.requested
            )?,
            ViolationKind::Underrun => write!(
                f,
                "the {PAD} pad bytes at p-{PAD} are not all FORBIDDENBYTE ({FORBIDDENBYTE:#x}) \
                 (a write before the block)"
            )?,
            ViolationKind::Overrun => write!(
                f,
                "the {PAD} pad bytes at tail=p+{} are not all FORBIDDENBYTE ({FORBIDDENBYTE:#x}) \
                 (a write past the end)",
                self.requested
            )?,
        }
        if let Some(pad) = self.pad {
            write!(f, "; pad bytes found:")?;
            for b in pad {
                write!(f, " {b:02x}")?;
            }
        }
        write!(
            f,
            "; {} bytes originally requested; the block was made by call number {}",
            self.requested, self.serial
        )
    }
}

impl std::error::Error for DebugViolation {}

#[derive(Clone, Copy)]
struct LiveBlock {
    /// The user pointer itself, kept so a check can read the block with its provenance.
    user: NonNull<u8>,
    requested: usize,
    serial: u64,
}

/// The debug layer's state: the serial counter and the tables of live and freed blocks.
#[derive(Default)]
pub struct DebugLayer {
    next_serial: Cell<u64>,
    live: RefCell<HashMap<usize, LiveBlock>>,
    freed: RefCell<HashMap<usize, LiveBlock>>,
    violations: Cell<u64>,
}

/// The padded size of a request of `requested` bytes.
pub const fn padded_size(requested: usize) -> usize {
    DEBUG_PREFIX + requested + DEBUG_SUFFIX
}

impl DebugLayer {
    /// A layer with no blocks yet; the first block gets serial 1.
    pub fn new() -> Self {
        DebugLayer {
            next_serial: Cell::new(1),
            ..Default::default()
        }
    }

    /// Writes the pads, size, serial and fresh fill into a raw block and returns the user pointer.
    ///
    /// # Safety
    /// `raw` must point to [`padded_size`]`(requested)` writable bytes, not in use elsewhere.
    /// (The layer's own writes are unaligned; the user pointer is `raw + 16`, so it has `raw`'s
    /// alignment: a caller that needs the user bytes 16-aligned gives a 16-aligned `raw`.)
    pub unsafe fn on_alloc(&self, raw: NonNull<u8>, requested: usize) -> NonNull<u8> {
        let serial = self.next_serial.get();
        self.next_serial.set(serial + 1);
        let p = raw.as_ptr();
        // SAFETY: all writes are inside the padded_size(requested) bytes the caller gave us;
        // the u64 writes are unaligned-safe.
        let user = unsafe {
            p.cast::<u64>().write_unaligned(requested as u64);
            p.add(PAD).write_bytes(FORBIDDENBYTE, PAD);
            let user = p.add(DEBUG_PREFIX);
            user.write_bytes(CLEANBYTE, requested);
            let tail = user.add(requested);
            tail.write_bytes(FORBIDDENBYTE, PAD);
            tail.add(PAD).cast::<u64>().write_unaligned(serial);
            user
        };
        // SAFETY: user = raw + 16, and raw is non-null and not near the top of memory.
        let user = unsafe { NonNull::new_unchecked(user) };
        let addr = user.as_ptr() as usize;
        self.freed.borrow_mut().remove(&addr);
        let block = LiveBlock {
            user,
            requested,
            serial,
        };
        self.live.borrow_mut().insert(addr, block);
        user
    }

    /// Checks a block being freed. On success fills it with DEADBYTE and returns the raw pointer
    /// to give back to the allocator underneath; on a violation the block is left as it is and
    /// must not be given back.
    ///
    /// # Safety
    /// If `user` was handed out by [`on_alloc`](Self::on_alloc) of this layer and not freed since,
    /// its padded block must still be mapped. (Unknown pointers are never dereferenced.)
    pub unsafe fn on_free(
        &self,
        user: NonNull<u8>,
        requested: usize,
    ) -> Result<NonNull<u8>, DebugViolation> {
        let addr = user.as_ptr() as usize;
        let Some(block) = self.live.borrow().get(&addr).copied() else {
            let kind = match self.freed.borrow().get(&addr) {
                Some(_) => ViolationKind::DoubleFree,
                None => ViolationKind::ForeignPointer,
            };
            let known = self.freed.borrow().get(&addr).copied();
            return Err(self.violation(DebugViolation {
                address: addr,
                requested: known.map_or(0, |b| b.requested),
                serial: known.map_or(0, |b| b.serial),
                kind,
                pad: None,
            }));
        };
        if block.requested != requested {
            return Err(self.violation(DebugViolation {
                address: addr,
                requested: block.requested,
                serial: block.serial,
                kind: ViolationKind::SizeMismatch { claimed: requested },
                pad: None,
            }));
        }
        // SAFETY: the block is live, so its padded bytes are mapped (caller's contract).
        unsafe { self.check_pads(user, block)? };
        self.live.borrow_mut().remove(&addr);
        self.freed.borrow_mut().insert(addr, block);
        // SAFETY: as above; raw = user - 16 is the start of the padded block.
        unsafe {
            let raw = user.as_ptr().sub(DEBUG_PREFIX);
            raw.write_bytes(DEADBYTE, padded_size(requested));
            Ok(NonNull::new_unchecked(raw))
        }
    }

    /// Checks the pads of every live block, returning the violations found (CPython checks on
    /// free only; this lets a test or a CLI run check the whole heap at a point in time).
    ///
    /// # Safety
    /// Every live block handed out by this layer must still be mapped.
    pub unsafe fn check_all(&self) -> Vec<DebugViolation> {
        let live: Vec<LiveBlock> = self.live.borrow().values().copied().collect();
        let mut found = Vec::new();
        for block in live {
            // SAFETY: the block is live in this layer and mapped (contract).
            if let Err(v) = unsafe { self.check_pads(block.user, block) } {
                found.push(v);
            }
        }
        found.sort_by_key(|v| v.serial);
        found
    }

    /// # Safety
    /// `user` must be a live block of this layer, still mapped.
    unsafe fn check_pads(&self, user: NonNull<u8>, block: LiveBlock) -> Result<(), DebugViolation> {
        let p = user.as_ptr();
        // SAFETY: both pads lie inside the live padded block.
        let (lead, tail) = unsafe {
            (
                p.sub(PAD).cast::<[u8; PAD]>().read(),
                p.add(block.requested).cast::<[u8; PAD]>().read(),
            )
        };
        let report = |kind, pad| DebugViolation {
            address: p as usize,
            requested: block.requested,
            serial: block.serial,
            kind,
            pad: Some(pad),
        };
        if lead != [FORBIDDENBYTE; PAD] {
            return Err(self.violation(report(ViolationKind::Underrun, lead)));
        }
        if tail != [FORBIDDENBYTE; PAD] {
            return Err(self.violation(report(ViolationKind::Overrun, tail)));
        }
        Ok(())
    }

    fn violation(&self, v: DebugViolation) -> DebugViolation {
        self.violations.set(self.violations.get() + 1);
        tracing::error!(target: "raw_alloc::debug", "{v}");
        v
    }

    /// The serial number the block at `user` got, if it is live.
    pub fn serial_of(&self, user: NonNull<u8>) -> Option<u64> {
        self.live
            .borrow()
            .get(&(user.as_ptr() as usize))
            .map(|b| b.serial)
    }

    /// The layer's counters.
    pub fn stats(&self) -> DebugStats {
        DebugStats {
            next_serial: self.next_serial.get(),
            live_blocks: self.live.borrow().len() as u64,
            violations: self.violations.get(),
        }
    }
}
