//! Global allocators: one that counts the bytes live and the peak ([`CountingAllocator`]),
//! one that keeps large freed blocks for reuse ([`KeepingAllocator`]).
//!
//! Install the counting allocator in a binary to measure how much memory a call needs beyond what was live
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

// A `GlobalAlloc` implementation is unsafe by definition; this module's two forward each
// call to the system allocator, one adding to or subtracting from two counters, the other
// holding a few freed blocks back for reuse.
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

/// Smallest block [`KeepingAllocator`] keeps when freed: glibc's allocator already reuses
/// freed blocks below its largest mmap threshold (32 MiB, see `kernels::keep_freed_memory`).
pub const KEEP_MIN_BYTES: usize = 32 << 20;
/// Largest block [`KeepingAllocator`] keeps when freed.
pub const KEEP_MAX_BYTES: usize = 1 << 30;
/// Freed blocks kept at once.
const KEPT_SLOTS: usize = 2;

/// A freed block held for reuse: its address and layout.
#[derive(Clone, Copy)]
struct Kept {
    ptr: usize,
    size: usize,
    align: usize,
}

/// The blocks [`KeepingAllocator`] holds. `std::sync::Mutex` never allocates, so it can be
/// locked inside an allocator.
static KEPT: std::sync::Mutex<[Option<Kept>; KEPT_SLOTS]> =
    std::sync::Mutex::new([None; KEPT_SLOTS]);

/// A global allocator that forwards to [`System`] but keeps up to two freed blocks of
/// 32 MiB–1 GiB and hands one back for the next request of exactly its size and alignment.
///
/// glibc returns blocks above 32 MiB to the operating system when they are freed, so a
/// large output allocated again on the next call comes as fresh pages, and faulting them in
/// (the kernel zeroes every page on first touch) cost more than the convolution itself on
/// large cheap problems: a float64 1×1 layer 64→256 on 8×56×56 (a 51 MiB output) took 10.3–
/// 11.1 ms per call on fresh pages and 6.5–6.7 ms when freed memory was reused (2 threads).
/// The Python extension installs this allocator: an output handed to numpy is freed through
/// it when the array is dropped, and the next call of the same shape reuses its pages.
///
/// Memory bound: a request of a kept size takes that block; a request of another size above
/// 32 MiB first returns every kept block to the system, so kept blocks never add to a
/// call's peak beyond what the last large blocks freed were, and at most two of them
/// (each at most 1 GiB) stay with the process between calls.
#[derive(Debug, Default)]
pub struct KeepingAllocator {
    _private: (),
}

impl KeepingAllocator {
    /// The allocator (its kept blocks are process-wide).
    pub const fn new() -> Self {
        KeepingAllocator { _private: () }
    }
}

fn kept_size(layout: &Layout) -> bool {
    (KEEP_MIN_BYTES..=KEEP_MAX_BYTES).contains(&layout.size())
}

/// A kept block of exactly `layout`, or null; when there is none, every kept block is
/// returned to the system first.
fn take_kept(layout: &Layout) -> *mut u8 {
    let mut freed = [None; KEPT_SLOTS];
    {
        let mut kept = KEPT.lock().unwrap_or_else(|e| e.into_inner());
        for slot in kept.iter_mut() {
            if let Some(b) = *slot {
                if b.size == layout.size() && b.align == layout.align() {
                    *slot = None;
                    return b.ptr as *mut u8;
                }
            }
        }
        std::mem::swap(&mut freed, &mut *kept);
    }
    for b in freed.into_iter().flatten() {
        // SAFETY: a kept block was allocated by `System` with exactly this layout (it was
        // handed to `dealloc` with it) and left the slots above, so it is freed once.
        unsafe {
            System.dealloc(
                b.ptr as *mut u8,
                Layout::from_size_align_unchecked(b.size, b.align),
            )
        };
    }
    std::ptr::null_mut()
}

// SAFETY: every block handed out was allocated by `System` for a layout of exactly the
// requested size and alignment (a kept block is only handed out for an equal layout and is
// removed from the slots first, so it has one owner), and every block freed goes back to
// `System` with the layout it was allocated with, now or when it leaves the slots.
unsafe impl GlobalAlloc for KeepingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if kept_size(&layout) {
            let ptr = take_kept(&layout);
            if !ptr.is_null() {
                return ptr;
            }
        }
        // SAFETY: the caller upholds `alloc`'s contract (non-zero size), passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if kept_size(&layout) {
            let ptr = take_kept(&layout);
            if !ptr.is_null() {
                // SAFETY: the block holds `layout.size()` writable bytes and is now ours.
                unsafe { std::ptr::write_bytes(ptr, 0, layout.size()) };
                return ptr;
            }
        }
        // SAFETY: as for `alloc`; forwarding keeps the system's lazily zeroed pages.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if kept_size(&layout) {
            let mut kept = KEPT.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(slot) = kept.iter_mut().find(|s| s.is_none()) {
                *slot = Some(Kept {
                    ptr: ptr as usize,
                    size: layout.size(),
                    align: layout.align(),
                });
                return;
            }
        }
        // SAFETY: `ptr` was returned by this allocator, i.e. by `System`, with `layout`.
        unsafe { System.dealloc(ptr, layout) };
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` and `layout` come from this allocator, i.e. from `System`, and the
        // caller guarantees `new_size` is valid for `layout.align()`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Bytes of freed blocks [`KeepingAllocator`] holds for reuse now.
pub fn kept_bytes() -> usize {
    let kept = KEPT.lock().unwrap_or_else(|e| e.into_inner());
    kept.iter().flatten().map(|b| b.size).sum()
}
