//! Heap accounting: a global allocator that counts the bytes live and the peak.
//!
//! Install it in a binary to measure how much memory a call needs beyond what was live
//! before it (the comparison study of `strideconv compare` does this):
//!
//! ```
//! // In a binary crate's main.rs:
//! // #[global_allocator]
//! // static ALLOC: strideconv::memory::CountingAllocator = strideconv::memory::CountingAllocator::new();
//! use strideconv::memory;
//! let before = memory::current_bytes();
//! memory::reset_peak();
//! let v = vec![0u8; 1 << 20];
//! let extra = memory::peak_bytes().saturating_sub(before);
//! // Without the allocator installed the counters stay at zero.
//! assert!(extra == 0 || extra >= v.len());
//! ```
//!
//! The counters are process-wide (every thread's allocations count) and only move while a
//! [`CountingAllocator`] is the global allocator. They count bytes requested from the
//! allocator, not pages the kernel has mapped: memory allocated zeroed and never touched
//! counts in full.

// A `GlobalAlloc` implementation is unsafe by definition; this module only forwards each
// call to the system allocator and adds to or subtracts from two counters.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes currently allocated through the counting allocator.
static CURRENT: AtomicUsize = AtomicUsize::new(0);
/// The largest value `CURRENT` has reached since the last [`reset_peak`].
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// A global allocator that forwards to [`System`] and counts live and peak heap bytes.
///
/// Install it with `#[global_allocator]`; read the counts with [`current_bytes`],
/// [`peak_bytes`] and [`reset_peak`].
#[derive(Debug, Default)]
pub struct CountingAllocator {
    _private: (),
}

impl CountingAllocator {
    /// The allocator (it holds no state; the counters are process-wide).
    pub const fn new() -> Self {
        CountingAllocator { _private: () }
    }
}

fn grew(bytes: usize) {
    let now = CURRENT.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

fn shrank(bytes: usize) {
    CURRENT.fetch_sub(bytes, Ordering::Relaxed);
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so the
// `GlobalAlloc` contract holds exactly as it does for `System`; the counters never affect
// the pointers returned.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `alloc`'s contract (non-zero size), passed on as is.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`; forwarding keeps the system's lazily zeroed pages.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was returned by this allocator, i.e. by `System`, with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` and `layout` come from this allocator, i.e. from `System`, and the
        // caller guarantees `new_size` is valid for `layout.align()`.
        let new_ptr = unsafe { System.realloc(ptr, layout, new_size) };
        if !new_ptr.is_null() {
            if new_size >= layout.size() {
                grew(new_size - layout.size());
            } else {
                shrank(layout.size() - new_size);
            }
        }
        new_ptr
    }
}

/// Heap bytes live now (zero unless a [`CountingAllocator`] is the global allocator).
pub fn current_bytes() -> usize {
    CURRENT.load(Ordering::Relaxed)
}

/// The most heap bytes live at once since the last [`reset_peak`] (or program start).
pub fn peak_bytes() -> usize {
    PEAK.load(Ordering::Relaxed)
}

/// Start a new peak measurement from the bytes live now.
pub fn reset_peak() {
    PEAK.store(CURRENT.load(Ordering::Relaxed), Ordering::Relaxed);
}
