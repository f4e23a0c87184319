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

/// Advise huge pages for the memory behind `data` if it is large; call before first use.
pub(crate) fn advise_huge<T>(data: &[T]) {
    advise_range(data.as_ptr() as usize, std::mem::size_of_val(data));
}

/// The same for a vector's whole capacity (before it is filled).
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
