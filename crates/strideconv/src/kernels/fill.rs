//! Building a large array in parallel without writing it twice.
//!
//! A `Vec` is filled plane by plane on the thread pool, each plane by a [`Filler`] that
//! counts what it writes; the vector takes its length only when every plane has been filled
//! completely, so no element is ever read before it is written (and a short plane panics
//! instead). A zero-filled vector would cost one more pass over the memory, which for the
//! padded copy of a large input is as much as the copy itself.

use std::mem::MaybeUninit;

/// Writes one plane from its start, element by element or in runs.
pub(crate) struct Filler<'a, T> {
    buf: &'a mut [MaybeUninit<T>],
    len: usize,
}

impl<T: Copy> Filler<'_, T> {
    /// Append the items of `it` (at most the room left; the count is checked at the end).
    #[inline]
    pub fn extend(&mut self, it: impl IntoIterator<Item = T>) {
        let mut n = 0;
        for (d, v) in self.buf[self.len..].iter_mut().zip(it) {
            d.write(v);
            n += 1;
        }
        self.len += n;
    }

    /// Append `n` copies of `v`.
    #[inline]
    pub fn repeat(&mut self, v: T, n: usize) {
        for d in &mut self.buf[self.len..self.len + n] {
            d.write(v);
        }
        self.len += n;
    }
}

/// `v` (empty, with room for `planes · plane_len` elements: the caller reserves it, and
/// reports a refusal) filled: `fill(i, filler)` writes plane `i` in full. Planes are filled
/// on up to `threads` threads.
pub(crate) fn planes<T, F>(
    mut v: Vec<T>,
    planes: usize,
    plane_len: usize,
    threads: usize,
    fill: F,
) -> Vec<T>
where
    T: Copy + Send + Sync,
    F: Fn(usize, &mut Filler<'_, T>) + Sync,
{
    let total = planes * plane_len;
    assert!(
        v.is_empty() && v.capacity() >= total,
        "fill: room for {total} elements"
    );
    let one = |(i, buf): (usize, &mut [MaybeUninit<T>])| {
        let mut f = Filler { buf, len: 0 };
        fill(i, &mut f);
        assert_eq!(f.len, plane_len, "plane {i} was not filled completely");
    };
    let room = &mut v.spare_capacity_mut()[..total];
    if plane_len > 0 {
        crate::team::for_chunks_mut(threads, room, plane_len, |i, buf| one((i, buf)));
    }
    // SAFETY: every plane's filler wrote exactly `plane_len` elements from the plane's start
    // (checked above; a short plane panics before this point), so all `total` elements of
    // the spare capacity are initialised.
    unsafe { v.set_len(total) };
    v
}
