//! Large arrays on transparent huge pages.
//!
//! A fresh allocation of many megabytes (an output, a padded copy) comes straight from the
//! operating system, and its first touch costs one page fault per 4 KiB page. Where faults are
//! expensive (virtual machines) that dominated large, cheap problems: 4096² float32 with a
//! 3×3 kernel spent most of its time faulting in the 64 MiB output. On Linux, advising the
//! kernel to back such a range with 2 MiB pages (when transparent huge pages are set to
//! `madvise` or `always`) cuts the faults 512-fold. The advice changes no data and is
//! ignored where unsupported.

/// Arrays smaller than this are left alone (most come from the allocator's own pool).
const MIN_BYTES: usize = 4 << 20;

/// Advise huge pages for a vector's whole capacity if it is large; call before first use.
pub(crate) fn advise_huge_capacity<T>(v: &Vec<T>) {
    advise_range(v.as_ptr() as usize, v.capacity() * std::mem::size_of::<T>());
}

#[cfg(target_os = "linux")]
fn advise_range(start: usize, bytes: usize) {
    if bytes < MIN_BYTES {
        return;
    }
    const PAGE: usize = 4096;
    let first = start.next_multiple_of(PAGE);
    let end = (start + bytes) / PAGE * PAGE;
    if end <= first {
        return;
    }
    // SAFETY: [first, end) lies inside one live allocation of the caller (rounded inward to
    // whole pages), and MADV_HUGEPAGE only changes how the kernel backs those pages, never
    // their contents or the mapping's validity. A failure (no THP support) is ignored.
    unsafe {
        libc::madvise(first as *mut libc::c_void, end - first, libc::MADV_HUGEPAGE);
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_range(_start: usize, _bytes: usize) {
    let _ = MIN_BYTES;
}

/// Let glibc's allocator keep freed blocks of up to 32 MiB for reuse, once per process.
///
/// glibc serves a block larger than its mmap threshold (128 KiB at start) with fresh pages
/// from the operating system and returns them when the block is freed, so a method's work
/// buffers of a few MiB fault in every page again on every call. The threshold rises to the
/// size of the largest such block freed (up to 32 MiB), after which blocks up to that size are
/// reused from the heap: a long-running process that once freed a large array (any numpy
/// session) is in that state, a fresh one is not. Measured: an FFT plan, 512² with a 65²
/// kernel and stride 2, took 3.3 ms with ~1,250 page faults per call in a fresh process and
/// 1.5 ms with none after one 30 MiB block had been freed. Freeing one untouched block of
/// just under 32 MiB here raises the threshold the same way: it costs an mmap and a munmap,
/// touches no page, and afterwards the process keeps up to 64 MiB of freed heap (glibc's
/// trim threshold follows at twice the mmap threshold) rather than returning it at once.
/// Other allocators are not affected.
pub(crate) fn keep_freed_memory() {
    static DONE: std::sync::Once = std::sync::Once::new();
    DONE.call_once(|| {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        {
            // Just under glibc's largest dynamic threshold (4 MiB · size_of(long)).
            let block: Vec<u8> = Vec::with_capacity((32 << 20) - (64 << 10));
            drop(std::hint::black_box(block));
        }
    });
}

/// A plan's output of `n` elements, for a method to overwrite: not zeroed first.
///
/// Every method writes each output element once, without reading it (`drive` hands each
/// group its own part), so zeroing the output was a pass over it for nothing: on memory the
/// allocator reuses (every output below 32 MiB once a block that size was freed, and the
/// Python extension's kept blocks above it) it wrote the whole output before the method
/// wrote it again. Rust loop, 2 threads, float64, best of 300 calls: 1×1 64→256 @56 (a
/// 6.4 MB output) 445 → 419 µs; 256→64 480 → 471 µs.
///
/// Only for the plain numeric compute types (`f32`, `f64`, their complex pairs, `i128`),
/// whose every bit pattern is a value; any other [`crate::Scalar`] is zeroed. (Outputs used
/// to be zeroed in parallel above 256 KiB, so that no thread waited on one zeroing several
/// MiB; nothing is zeroed now, and fresh pages are first touched by the method's own writes,
/// on every thread.)
/// Builds with debug assertions (every test build) fill the output with a poison value
/// instead (NaN, or a large integer), so a method that skipped an element or added into it
/// gives a wrong result in every test that reaches it.
pub(crate) fn output<T: crate::Scalar>(n: usize) -> Vec<T> {
    try_output(n).unwrap_or_else(|| {
        let layout = std::alloc::Layout::array::<T>(n).unwrap_or(std::alloc::Layout::new::<T>());
        std::alloc::handle_alloc_error(layout)
    })
}

/// [`output`], or `None` when the system refuses the memory (the output of a problem with
/// huge padding): the caller reports it instead of the process aborting.
pub(crate) fn try_output<T: crate::Scalar>(n: usize) -> Option<Vec<T>> {
    use num_complex::{Complex32, Complex64};
    use std::any::TypeId;
    let ty = TypeId::of::<T>();
    let plain = [
        TypeId::of::<f32>(),
        TypeId::of::<f64>(),
        TypeId::of::<Complex32>(),
        TypeId::of::<Complex64>(),
        TypeId::of::<i128>(),
    ]
    .contains(&ty);
    let mut v: Vec<T> = Vec::new();
    v.try_reserve_exact(n).ok()?;
    advise_huge_capacity(&v);
    if !plain {
        v.resize(n, T::zero());
        return Some(v);
    }
    if cfg!(debug_assertions) {
        v.resize(n, poison());
        return Some(v);
    }
    // SAFETY: the capacity holds `n` elements; `T` is one of the plain types above, for which
    // every bit pattern is a valid value, and the plan's method writes every element before
    // anything reads it (the poison fill above checks that in every test build).
    unsafe { v.set_len(n) };
    Some(v)
}

/// Outputs at least this large start on a cache line ([`try_output_aligned`]).
const ALIGN_BYTES: usize = 256 << 10;

/// [`try_output`] for a plan's output of `n` elements, as a vector and the offset of the
/// output's first element in it: a large output starts `phase` bytes past a 64-byte boundary
/// (the vector holds up to one cache line more; `phase` is rounded down to whole elements
/// and taken modulo 64). With phase 0, the default, kernels can write whole cache lines of it
/// with non-temporal stores, which need that alignment (see `matmul`); a 1×1 layer's output
/// takes its input's phase instead, so that the columns its product cuts at the input's
/// first line start a line of the output too. Small outputs are returned as they are, at
/// offset 0.
pub(crate) fn try_output_aligned<T: crate::Scalar>(
    n: usize,
    phase: usize,
) -> Option<(Vec<T>, usize)> {
    let size = std::mem::size_of::<T>();
    if size == 0 || size > 64 || n.saturating_mul(size) < ALIGN_BYTES {
        return try_output(n).map(|v| (v, 0));
    }
    let line = 64 / size;
    let v = try_output::<T>(n.checked_add(line)?)?;
    // Elements from the vector's start to the first address `phase` bytes past a 64-byte
    // boundary (allocations are aligned to `T`, so the distance is a whole number of
    // elements when `phase` is).
    let phase = phase % 64 / size * size;
    let bytes = (phase + 64 - v.as_ptr() as usize % 64) % 64;
    Some((v, bytes / size))
}

/// What [`output`] fills outputs with in builds with debug assertions: NaN for floating
/// types (which no comparison with a finite reference accepts), a large odd value for
/// integers.
fn poison<T: crate::Scalar>() -> T {
    match T::KIND {
        crate::scalar::Kind::Integer => T::from_f64(-1.234_567_890_123e30),
        _ => T::from_f64(f64::NAN),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_outputs_start_on_a_cache_line() {
        // Small outputs as allocated; large ones from the first 64-byte boundary, with room
        // for every element after it. Several sizes, so more than one allocation is seen.
        for n in [10, 1000, ALIGN_BYTES / 8 - 1] {
            let (v, off) = try_output_aligned::<f64>(n, 0).unwrap();
            assert_eq!((off, v.len()), (0, n));
        }
        for n in [ALIGN_BYTES / 8, ALIGN_BYTES / 8 + 3, 1 << 20] {
            let (v, off) = try_output_aligned::<f64>(n, 0).unwrap();
            assert_eq!(v[off..].as_ptr() as usize % 64, 0, "{n}");
            assert!(off < 8 && v.len() >= off + n, "{n}: {off} {}", v.len());
            // The same bytes of f32, and five elements more.
            let (w, off) = try_output_aligned::<f32>(2 * n + 5, 0).unwrap();
            assert_eq!(w[off..].as_ptr() as usize % 64, 0, "{n}");
            assert!(off < 16 && w.len() >= off + 2 * n + 5);
        }
    }

    #[test]
    fn large_outputs_take_the_phase_asked() {
        // Every phase, in whole elements or not (rounded down), and past a line (modulo 64).
        for phase in [0, 8, 16, 20, 48, 56, 63, 64, 80] {
            let n = ALIGN_BYTES / 8 + phase;
            let (v, off) = try_output_aligned::<f64>(n, phase).unwrap();
            let want = phase % 64 / 8 * 8;
            assert_eq!(v[off..].as_ptr() as usize % 64, want, "{phase}");
            assert!(off < 8 && v.len() >= off + n, "{phase}: {off} {}", v.len());
            let (w, off) = try_output_aligned::<f32>(2 * n, phase).unwrap();
            assert_eq!(
                w[off..].as_ptr() as usize % 64,
                phase % 64 / 4 * 4,
                "{phase}"
            );
            assert!(off < 16 && w.len() >= off + 2 * n);
        }
    }
}
