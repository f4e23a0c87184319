//! Splitting a row into its two stride phases (even and odd elements), the copy in front of
//! every stride-2 direct problem. The plain loop compiles to one scalar load and store per
//! element; over fixed blocks with AVX2 or AVX-512 enabled the compiler emits shuffles.

use super::{isa, Isa};

/// `even[j] = xs[2j]`, `odd[j] = xs[2j + 1]` for every whole pair of `xs`.
pub(crate) fn deinterleave<T: Copy>(xs: &[T], even: &mut [T], odd: &mut [T]) {
    let pairs = xs.len() / 2;
    let (even, odd) = (&mut even[..pairs], &mut odd[..pairs]);
    match isa() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `isa()` returns Avx512 only when avx512f and avx512vl were detected.
        Isa::Avx512 => unsafe { wide::avx512(xs, even, odd) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `isa()` returns Avx2 only when avx2 was detected.
        Isa::Avx2 => unsafe { wide::avx2(xs, even, odd) },
        _ => body(xs, even, odd),
    }
}

/// `dst[j] = src[j·step]` for steps 2 to 4 (`src` must hold `(dst.len() - 1)·step + 1`
/// elements; other steps are not handled here). The phase gathers of the FFT and direct
/// methods; compiled for the detected instruction set, the fixed blocks become shuffles.
pub(crate) fn pick<T: Copy>(dst: &mut [T], src: &[T], step: usize) {
    assert!((2..=4).contains(&step), "pick: step {step}");
    let Some(n) = dst.len().checked_sub(1) else {
        return;
    };
    let src = &src[..n * step + 1];
    match isa() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `isa()` returns Avx512 only when avx512f and avx512vl were detected.
        Isa::Avx512 => unsafe { wide::pick512(dst, src, step) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `isa()` returns Avx2 only when avx2 was detected.
        Isa::Avx2 => unsafe { wide::pick2(dst, src, step) },
        _ => pick_body(dst, src, step),
    }
}

/// Split `src` by `step` phases in one pass: `dst[p·plen + j] = src[j·step + p]` for every
/// element of `src` (phase `p`'s row holds `(src.len() − p).div_ceil(step)` elements).
///
/// The split in front of a strided row whose step is large (a channels-last row read as one
/// long row, where the step is stride × channels): each block of 8 (or 16) groups of `step`
/// elements is read once, in L1, and written as one vector per phase. With AVX-512 each
/// vector is one gather of 64-bit or 32-bit elements; elsewhere a blocked loop.
pub(crate) fn split_step<T: Copy>(dst: &mut [T], plen: usize, src: &[T], step: usize) {
    assert!(step > 0, "split_step: step 0");
    assert!(
        dst.len() >= step * plen && src.len().div_ceil(step) <= plen,
        "split_step: {} phases of {plen} for {} elements",
        step,
        src.len()
    );
    let groups = src.len() / step;
    #[allow(unused_mut)]
    let mut j0 = 0;
    #[cfg(target_arch = "x86_64")]
    if isa() == Isa::Avx512 && step <= 1 << 20 {
        let size = std::mem::size_of::<T>();
        // SAFETY: AVX-512 F detected; `T` is plain data of the gathered width (only the
        // bytes are moved); the lengths were checked above.
        j0 = unsafe {
            if size == 8 {
                wide::split8(
                    dst.as_mut_ptr().cast(),
                    plen,
                    src.as_ptr().cast(),
                    step,
                    groups,
                )
            } else if size == 4 {
                wide::split4(
                    dst.as_mut_ptr().cast(),
                    plen,
                    src.as_ptr().cast(),
                    step,
                    groups,
                )
            } else {
                0
            }
        };
    }
    // Other widths and instruction sets: blocks of 16 groups, a phase at a time.
    const B: usize = 16;
    while j0 + B <= groups {
        for p in 0..step {
            let d = &mut dst[p * plen + j0..][..B];
            for (j, v) in d.iter_mut().enumerate() {
                *v = src[(j0 + j) * step + p];
            }
        }
        j0 += B;
    }
    split_tail(dst, plen, src, step, j0)
}

/// The elements of [`split_step`] from group `from` on, one at a time.
fn split_tail<T: Copy>(dst: &mut [T], plen: usize, src: &[T], step: usize, from: usize) {
    for (i, &v) in src.iter().enumerate().skip(from * step) {
        dst[(i % step) * plen + i / step] = v;
    }
}

/// [`pick`] for each step, blocks of 16 then the tail.
#[inline(always)]
fn pick_body<T: Copy>(dst: &mut [T], src: &[T], step: usize) {
    match step {
        2 => pick_fixed::<T, 2>(dst, src),
        3 => pick_fixed::<T, 3>(dst, src),
        _ => pick_fixed::<T, 4>(dst, src),
    }
}

#[inline(always)]
fn pick_fixed<T: Copy, const S: usize>(dst: &mut [T], src: &[T]) {
    const B: usize = 16;
    // Whole blocks while the block's last chunk lies within `src` (it ends at the last
    // element read, which may be the last of `src`).
    let blocks = (src.len() / (S * B)).min(dst.len() / B);
    for i in 0..blocks {
        let s = &src[S * B * i..S * B * (i + 1)];
        let d = &mut dst[B * i..B * (i + 1)];
        for j in 0..B {
            d[j] = s[S * j];
        }
    }
    for j in blocks * B..dst.len() {
        dst[j] = src[S * j];
    }
}

/// Blocks of 16 pairs, then of 4, then the tail one pair at a time.
#[inline(always)]
fn body<T: Copy>(xs: &[T], even: &mut [T], odd: &mut [T]) {
    let done = blocks::<T, 16>(xs, even, odd, 0);
    let done = blocks::<T, 4>(xs, even, odd, done);
    for j in done..even.len() {
        even[j] = xs[2 * j];
        odd[j] = xs[2 * j + 1];
    }
}

/// Whole blocks of `B` pairs from pair `from`; returns the pairs done.
#[inline(always)]
fn blocks<T: Copy, const B: usize>(xs: &[T], even: &mut [T], odd: &mut [T], from: usize) -> usize {
    let blocks = (even.len() - from) / B;
    let (xs, even, odd) = (&xs[2 * from..], &mut even[from..], &mut odd[from..]);
    for i in 0..blocks {
        let src = &xs[2 * B * i..2 * B * (i + 1)];
        let e: &mut [T] = &mut even[B * i..B * (i + 1)];
        let o: &mut [T] = &mut odd[B * i..B * (i + 1)];
        for j in 0..B {
            e[j] = src[2 * j];
            o[j] = src[2 * j + 1];
        }
    }
    from + blocks * B
}

#[cfg(target_arch = "x86_64")]
mod wide {
    use super::{body, pick_body};
    use std::arch::x86_64::{
        _mm512_i32gather_epi32, _mm512_i64gather_epi64, _mm512_mullo_epi32, _mm512_mullo_epi64,
        _mm512_set1_epi32, _mm512_set1_epi64, _mm512_setr_epi32, _mm512_setr_epi64,
        _mm512_storeu_si512, _mm_prefetch, _MM_HINT_T0,
    };

    /// [`super::split_step`] for 8-byte elements, whole blocks of 8 groups; returns the
    /// groups done.
    ///
    /// # Safety
    /// AVX-512 F; `src` holds `groups·step` elements, `dst` `step` rows of `plen ≥ groups`.
    #[target_feature(enable = "avx512f,avx512vl,avx2")]
    pub(super) unsafe fn split8(
        dst: *mut i64,
        plen: usize,
        src: *const i64,
        step: usize,
        groups: usize,
    ) -> usize {
        let idx = _mm512_mullo_epi64(
            _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7),
            _mm512_set1_epi64(step as i64),
        );
        let mut j0 = 0;
        while j0 + 8 <= groups {
            // The block after the next from memory (a gather does not start the hardware
            // prefetcher): its `step` lines of 8 elements.
            for l in 0..step {
                let at = src.wrapping_add((j0 + 16) * step + l * 8);
                // SAFETY: a prefetch never faults.
                _mm_prefetch::<_MM_HINT_T0>(at.cast());
            }
            for p in 0..step {
                // SAFETY: lanes read src[(j0 + l)·step + p] < groups·step; the store writes
                // dst[p·plen + j0 .. + 8] ≤ p·plen + groups ≤ (p + 1)·plen.
                unsafe {
                    let v = _mm512_i64gather_epi64::<8>(idx, src.add(j0 * step + p));
                    _mm512_storeu_si512(dst.add(p * plen + j0).cast(), v);
                }
            }
            j0 += 8;
        }
        j0
    }

    /// [`super::split_step`] for 4-byte elements, whole blocks of 16 groups.
    ///
    /// # Safety
    /// As for [`split8`]; `step·16` fits an `i32`.
    #[target_feature(enable = "avx512f,avx512vl,avx2")]
    pub(super) unsafe fn split4(
        dst: *mut i32,
        plen: usize,
        src: *const i32,
        step: usize,
        groups: usize,
    ) -> usize {
        let idx = _mm512_mullo_epi32(
            _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
            _mm512_set1_epi32(step as i32),
        );
        let mut j0 = 0;
        while j0 + 16 <= groups {
            // As in `split8`: the block after the next, `step` lines of 16 elements.
            for l in 0..step {
                let at = src.wrapping_add((j0 + 32) * step + l * 16);
                // SAFETY: a prefetch never faults.
                _mm_prefetch::<_MM_HINT_T0>(at.cast());
            }
            for p in 0..step {
                // SAFETY: as in `split8`, for blocks of 16.
                unsafe {
                    let v = _mm512_i32gather_epi32::<4>(idx, src.add(j0 * step + p));
                    _mm512_storeu_si512(dst.add(p * plen + j0).cast(), v);
                }
            }
            j0 += 16;
        }
        j0
    }

    /// # Safety
    /// The CPU must support AVX-512 F and VL.
    #[target_feature(enable = "avx512f,avx512vl,avx2")]
    pub(super) unsafe fn avx512<T: Copy>(xs: &[T], even: &mut [T], odd: &mut [T]) {
        body(xs, even, odd)
    }

    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn avx2<T: Copy>(xs: &[T], even: &mut [T], odd: &mut [T]) {
        body(xs, even, odd)
    }

    /// # Safety
    /// The CPU must support AVX-512 F and VL.
    #[target_feature(enable = "avx512f,avx512vl,avx2")]
    pub(super) unsafe fn pick512<T: Copy>(dst: &mut [T], src: &[T], step: usize) {
        pick_body(dst, src, step)
    }

    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn pick2<T: Copy>(dst: &mut [T], src: &[T], step: usize) {
        pick_body(dst, src, step)
    }
}

#[cfg(test)]
mod tests {
    use super::{pick, pick_body, split_step};

    /// Every element lands in its phase's row, for steps 1 to 19, lengths around the
    /// gathered blocks (8 and 16 groups) and their tails, phase rows longer than needed,
    /// and elements of 8, 4, 16 and 1 bytes (the last two split without gathers).
    #[test]
    fn split_step_puts_every_element_in_its_phase() {
        fn check<T: Copy + PartialEq + std::fmt::Debug>(make: impl Fn(usize) -> T) {
            for step in 1..20 {
                for len in [
                    0,
                    1,
                    step,
                    7 * step + 3,
                    8 * step,
                    16 * step + 1,
                    41 * step + 5,
                ] {
                    let src: Vec<T> = (0..len).map(&make).collect();
                    let plen = len.div_ceil(step) + 2;
                    let fill = make(99_999);
                    let mut dst = vec![fill; step * plen];
                    split_step(&mut dst, plen, &src, step);
                    for (i, &v) in src.iter().enumerate() {
                        let at = (i % step) * plen + i / step;
                        assert_eq!(dst[at], v, "step {step}, {len} elements, element {i}");
                    }
                    // Nothing past each phase's elements is written.
                    for p in 0..step {
                        let n = len.saturating_sub(p).div_ceil(step);
                        assert!(dst[p * plen + n..(p + 1) * plen].iter().all(|&v| v == fill));
                    }
                }
            }
        }
        check(|i| i as f64 * 0.5 - 3.0);
        check(|i| i as f32 * 0.25 + 1.0);
        check(|i| i as i128 * 7 - 11);
        check(|i| (i % 251) as u8);
    }

    /// Every step, lengths around the block size, a source exactly as long as needed (so a
    /// read past it would panic): the plain body and the one for this CPU's instruction set.
    #[test]
    fn picks_every_step_th_element() {
        for step in 2..=4 {
            for len in 0..70usize {
                let need = if len == 0 { 0 } else { (len - 1) * step + 1 };
                let src: Vec<f64> = (0..need).map(|i| i as f64 * 1.5 - 7.0).collect();
                let want: Vec<f64> = (0..len).map(|j| src[j * step]).collect();
                let mut plain = vec![0.0; len];
                if len > 0 {
                    pick_body(&mut plain, &src, step);
                }
                assert_eq!(plain, want, "plain, step {step}, {len} elements");
                let mut fast = vec![0.0; len];
                pick(&mut fast, &src, step);
                assert_eq!(fast, want, "dispatched, step {step}, {len} elements");
            }
        }
    }
}
