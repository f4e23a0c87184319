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

/// Split `src` by `step` phases in one pass, keeping the phases `phases` (all of them:
/// `0..step`): `dst[(p − phases.start)·plen + j] = src[j·step + p]` for `p` in `phases` (phase
/// `p`'s row holds `(src.len() − p).div_ceil(step)` elements). Only the cache lines holding
/// them are read (one phase of a channels-last row whose points are far apart, all its
/// channels at once).
///
/// The split in front of a strided row whose step is large (a channels-last row read as one
/// long row, where the step is stride × channels): each block of 8 (or 16) groups of `step`
/// elements is read once, in L1, and written as one vector per phase. With AVX-512 the
/// vectors come from an in-register transpose where the phases wanted are most of each group
/// and at least half a register ([`TRANSPOSED`]), else from one gather each of 64-bit or
/// 32-bit elements; elsewhere from a blocked loop.
pub(crate) fn split_phases<T: Copy>(
    dst: &mut [T],
    plen: usize,
    src: &[T],
    step: usize,
    phases: std::ops::Range<usize>,
) {
    assert!(step > 0, "split_phases: step 0");
    assert!(
        phases.start <= phases.end
            && phases.end <= step
            && dst.len() >= phases.len() * plen
            && src.len().div_ceil(step) <= plen,
        "split_phases: phases {phases:?} of {step}, {plen} long, for {} elements",
        src.len()
    );
    if phases.is_empty() {
        return;
    }
    let groups = src.len() / step;
    #[allow(unused_mut)]
    let mut j0 = 0;
    #[cfg(target_arch = "x86_64")]
    if isa() == Isa::Avx512 && step <= 1 << 20 {
        let size = std::mem::size_of::<T>();
        let (first, count) = (phases.start, phases.len());
        // SAFETY: AVX-512 F detected; `T` is plain data of the gathered width (only the
        // bytes are moved); the lengths were checked above.
        j0 = unsafe {
            // Transposes where the phases are most of each group (their loads then read lines
            // the gathers read anyway); a few phases of long groups stay with the gathers.
            let dense = 2 * count >= step;
            let (d, s) = (dst.as_mut_ptr(), src.as_ptr());
            if size == 8 && dense && count >= TRANSPOSED[0] {
                wide::transposed::<f64>(d.cast(), plen, s.cast(), step, groups, first, count)
            } else if size == 8 {
                wide::split8(d.cast(), plen, s.cast(), step, groups, first, count)
            } else if size == 4 && dense && count >= TRANSPOSED[1] {
                wide::transposed::<f32>(d.cast(), plen, s.cast(), step, groups, first, count)
            } else if size == 4 {
                wide::split4(d.cast(), plen, s.cast(), step, groups, first, count)
            } else {
                0
            }
        };
    }
    // Other widths and instruction sets: blocks of 16 groups, a phase at a time.
    const B: usize = 16;
    while j0 + B <= groups {
        for (k, p) in phases.clone().enumerate() {
            let d = &mut dst[k * plen + j0..][..B];
            for (j, v) in d.iter_mut().enumerate() {
                *v = src[(j0 + j) * step + p];
            }
        }
        j0 += B;
    }
    // The tail, one element at a time.
    for j in j0.. {
        let row = &src[(j * step).min(src.len())..];
        if row.is_empty() {
            break;
        }
        for (k, p) in phases.clone().enumerate() {
            if let Some(&v) = row.get(p) {
                dst[k * plen + j] = v;
            }
        }
    }
}

/// Phases split at once from which [`split_phases`] transposes blocks in registers instead of
/// gathering (8-byte, 4-byte elements): a block of a register's worth of groups is loaded a
/// group at a time (up to a register of consecutive phases each) and transposed, so each
/// phase's elements come out as one register. A gather moves about one element every three
/// cycles here; loads and an in-register transpose (24 or 64 shuffles for 64 or 256
/// elements) move several per cycle, where enough of each load's lanes are phases wanted.
/// Rust loop, 2 threads, n×n×5 stride 2 (the flat-row split, step 10): float64 256² ⋆ 3²
/// 107 → 83 µs, 512² ⋆ 3² 420 → 322 µs, ⋆ 9² 1064 → 917 µs, float32 512² ⋆ 3² 317 → 167
/// µs; the FFT's fills of n×n×5 512² ⋆ 65² 2.88 → 2.56 ms. Where the input comes from memory
/// the gain is small (1024² ⋆ 3², one thread, 6.46 → 5.60 ms); a few phases of long groups
/// (n×n×10 stride 5: 10 of 50) were 7–13% slower than gathered, and stay gathered.
const TRANSPOSED: [usize; 2] = [4, 8];

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
    use super::super::lanes::{self, Lanes};
    use super::{body, pick_body};
    use std::arch::x86_64::{
        _mm512_i32gather_epi32, _mm512_i64gather_epi64, _mm512_mullo_epi32, _mm512_mullo_epi64,
        _mm512_set1_epi32, _mm512_set1_epi64, _mm512_setr_epi32, _mm512_setr_epi64,
        _mm512_storeu_si512, _mm_prefetch, _MM_HINT_T0,
    };

    /// [`super::split_phases`] for 8-byte elements, phases `first .. first + count`, whole
    /// blocks of 8 groups; returns the groups done.
    ///
    /// # Safety
    /// AVX-512 F; `src` holds `groups·step` elements, `dst` `count` rows of `plen ≥ groups`;
    /// `first + count ≤ step`, `count ≥ 1`.
    #[target_feature(enable = "avx512f,avx512vl,avx2")]
    pub(super) unsafe fn split8(
        dst: *mut i64,
        plen: usize,
        src: *const i64,
        step: usize,
        groups: usize,
        first: usize,
        count: usize,
    ) -> usize {
        let idx = _mm512_mullo_epi64(
            _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7),
            _mm512_set1_epi64(step as i64),
        );
        let mut j0 = 0;
        while j0 + 8 <= groups {
            prefetch_block(src, step, j0 + 16, 8, first, count);
            for k in 0..count {
                // SAFETY: lanes read src[(j0 + l)·step + first + k] < groups·step; the store
                // writes dst[k·plen + j0 .. + 8] ≤ k·plen + groups ≤ (k + 1)·plen.
                unsafe {
                    let v = _mm512_i64gather_epi64::<8>(idx, src.add(j0 * step + first + k));
                    _mm512_storeu_si512(dst.add(k * plen + j0).cast(), v);
                }
            }
            j0 += 8;
        }
        j0
    }

    /// Prefetch the lines holding phases `first .. first + count` of the `block` groups
    /// from group `j`: a block ahead from memory, as a gather does not start the hardware
    /// prefetcher. All phases: the block's `step` lines of `block` elements; a few: each
    /// group's run of them.
    #[inline(always)]
    unsafe fn prefetch_block<E>(
        src: *const E,
        step: usize,
        j: usize,
        block: usize,
        first: usize,
        count: usize,
    ) {
        let line = 64 / std::mem::size_of::<E>();
        if count * 2 >= step {
            for l in 0..step * block / line {
                // SAFETY: a prefetch never faults.
                _mm_prefetch::<_MM_HINT_T0>(src.wrapping_add(j * step + l * line).cast());
            }
        } else {
            for g in j..j + block {
                let run = src.wrapping_add(g * step + first);
                // SAFETY: a prefetch never faults.
                _mm_prefetch::<_MM_HINT_T0>(run.cast());
                _mm_prefetch::<_MM_HINT_T0>(run.wrapping_add(count - 1).cast());
            }
        }
    }

    /// [`super::split_phases`] for elements of `T`'s width (moved as `T`, bits unchanged),
    /// by in-register transposes: per block of `N` groups and run of up to `N` phases, each
    /// group's run is one masked load, the `N` registers are transposed, and each phase's
    /// register is one store. Whole blocks of `N` groups; returns the groups done.
    ///
    /// # Safety
    /// AVX-512 F and VL; `src` holds `groups·step` elements, `dst` `count` rows of `plen ≥
    /// groups`; `first + count ≤ step`.
    #[target_feature(enable = "avx512f,avx512vl,avx2")]
    pub(super) unsafe fn transposed<T: Lanes>(
        dst: *mut T,
        plen: usize,
        src: *const T,
        step: usize,
        groups: usize,
        first: usize,
        count: usize,
    ) -> usize {
        let n = T::N;
        let mut regs = [T::zero(); 16];
        let mut j0 = 0;
        while j0 + n <= groups {
            // Eight blocks ahead: two (as the gathers do) was 5–7% slower.
            prefetch_block(src, step, j0 + 8 * n, n, first, count);
            let mut k0 = 0;
            while k0 < count {
                let c = (count - k0).min(n);
                let mask = lanes::within(0, c as isize, n);
                for (g, reg) in regs.iter_mut().enumerate().take(n) {
                    // SAFETY: lanes read src[(j0 + g)·step + first + k0 + l], l < c, below
                    // (j0 + g)·step + step ≤ groups·step.
                    *reg = unsafe {
                        T::load::<true>(T::zero(), mask, src.add((j0 + g) * step + first + k0), 0)
                    };
                }
                T::transpose(&mut regs[..n]);
                for (k, &reg) in regs.iter().enumerate().take(n) {
                    if k < c {
                        // SAFETY: writes dst[(k0 + k)·plen + j0 .. + n], in row k0 + k < count.
                        unsafe { T::store(dst.add((k0 + k) * plen + j0), u32::MAX, reg) };
                    }
                }
                k0 += n;
            }
            j0 += n;
        }
        j0
    }

    /// [`super::split_phases`] for 4-byte elements, whole blocks of 16 groups.
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
        first: usize,
        count: usize,
    ) -> usize {
        let idx = _mm512_mullo_epi32(
            _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
            _mm512_set1_epi32(step as i32),
        );
        let mut j0 = 0;
        while j0 + 16 <= groups {
            prefetch_block(src, step, j0 + 32, 16, first, count);
            for k in 0..count {
                // SAFETY: as in `split8`, for blocks of 16.
                unsafe {
                    let v = _mm512_i32gather_epi32::<4>(idx, src.add(j0 * step + first + k));
                    _mm512_storeu_si512(dst.add(k * plen + j0).cast(), v);
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
    use super::{pick, pick_body, split_phases};

    /// Every element lands in its phase's row, for steps 1 to 19, lengths around the
    /// gathered blocks (8 and 16 groups) and their tails, phase rows longer than needed,
    /// and elements of 8, 4, 16 and 1 bytes (the last two split without gathers).
    #[test]
    fn a_split_of_every_phase_puts_every_element_in_its_phase() {
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
                    split_phases(&mut dst, plen, &src, step, 0..step);
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

    /// Each phase of a range lands in its row (the range's first phase in row 0), for every
    /// range of every step to 13, lengths around the gathered blocks, 8-, 4- and 2-byte
    /// elements; nothing past a phase's elements and no row past the range is written.
    #[test]
    fn split_phases_takes_its_phases_alone() {
        fn check<T: Copy + PartialEq + std::fmt::Debug>(make: impl Fn(usize) -> T) {
            for step in 1..14 {
                for first in 0..step {
                    for end in first..=step {
                        for len in [0, step + 1, 8 * step, 16 * step + 3, 35 * step + 1] {
                            let src: Vec<T> = (0..len).map(&make).collect();
                            let plen = len.div_ceil(step) + 1;
                            let fill = make(99_999);
                            let mut dst = vec![fill; (end - first + 1) * plen];
                            split_phases(&mut dst, plen, &src, step, first..end);
                            let case = (step, first, end, len);
                            for p in first..end {
                                let row = &dst[(p - first) * plen..(p - first + 1) * plen];
                                let n = len.saturating_sub(p).div_ceil(step);
                                for j in 0..n {
                                    assert_eq!(row[j], src[j * step + p], "{case:?} p {p} j {j}");
                                }
                                assert!(row[n..].iter().all(|&v| v == fill), "{case:?} p {p}");
                            }
                            let past = &dst[(end - first) * plen..];
                            assert!(past.iter().all(|&v| v == fill), "{case:?}");
                        }
                    }
                }
            }
        }
        check(|i| i as f64 * 0.5 - 3.0);
        check(|i| i as f32 * 0.25 + 1.0);
        check(|i| (i % 30011) as u16);
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
