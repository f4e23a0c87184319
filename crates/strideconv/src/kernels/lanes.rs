//! One AVX-512 register of `f32` or `f64` and the operations the hand-written AVX-512
//! kernels ([`super::masked`], [`super::matmul`]) need, so each kernel is written once for
//! both element types.
#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

/// The lanes `l < n` whose index `c0 + l` lies in `0..w`, as a mask: the columns of a row a
/// load starting at `c0` may read, or the outputs of a block a store may write.
#[inline(always)]
pub(super) fn within(c0: isize, w: isize, n: usize) -> u32 {
    let (lo, hi) = (-c0, w - c0);
    let (lo, hi) = (
        lo.clamp(0, n as isize) as u32,
        hi.clamp(0, n as isize) as u32,
    );
    if hi <= lo {
        0
    } else {
        let ones = |k: u32| if k >= 32 { u32::MAX } else { (1u32 << k) - 1 };
        ones(hi) & !ones(lo)
    }
}

/// One AVX-512 register of an element type, and the operations the kernels need.
///
/// # Safety
/// Every method needs a CPU with AVX-512 F; callers are `target_feature` functions entered
/// only after [`super::isa`] saw it.
pub(super) trait Lanes: Copy {
    type V: Copy;
    const N: usize;
    unsafe fn splat(v: Self) -> Self::V;
    unsafe fn zero() -> Self::V;
    /// `N` elements from `p + at` (lanes outside `mask` are not read: they take `fill`,
    /// or zero when `Z`).
    unsafe fn load<const Z: bool>(fill: Self::V, mask: u32, p: *const Self, at: isize) -> Self::V;
    /// The even lanes of `lo` then of `hi`.
    unsafe fn evens(lo: Self::V, hi: Self::V) -> Self::V;
    /// The odd lanes of `lo` then of `hi`.
    unsafe fn odds(lo: Self::V, hi: Self::V) -> Self::V;
    /// Lanes 1.. of `v`, then lane 0 of `last`.
    unsafe fn next(v: Self::V, last: Self::V) -> Self::V;
    unsafe fn fma(a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    unsafe fn add(a: Self::V, b: Self::V) -> Self::V;
    /// The sum of the lanes.
    unsafe fn sum(v: Self::V) -> Self;
    /// Lanes in `mask` to `p` (those must be writable).
    unsafe fn store(p: *mut Self, mask: u32, v: Self::V);
    /// All `N` lanes to `p`, which must be 64-byte aligned, with a non-temporal store (the
    /// line goes to memory without being read into the caches; weakly ordered, so the
    /// writer fences before others may read it).
    unsafe fn stream(p: *mut Self, v: Self::V);
    /// `N` registers (`rows.len() == N`) as an `N × N` matrix, transposed in place: lane `l`
    /// of register `r` becomes lane `r` of register `l`.
    unsafe fn transpose(rows: &mut [Self::V]);
}

/// Lane indices of one step of a transpose by bit swaps: for registers `lo` and `hi` whose
/// indices differ in bit `bit` only, `(lo, hi)` become the two-source permutations by
/// `swap_index(n, bit, false)` and `(…, true)`, which exchange bit `bit` of the register
/// index with bit `bit` of the lane index. After every bit of `n` lanes, the `n × n` block
/// is transposed.
const fn swap_index<const N: usize>(bit: usize, high: bool) -> [i64; N] {
    let mut out = [0i64; N];
    let step = 1 << bit;
    let mut c = 0;
    while c < N {
        let set = c & step != 0;
        // Lane c of the low result: lane c of `lo` where the lane's bit is clear, else lane
        // c − step of `hi`; of the high result: lane c + step of `lo`, else lane c of `hi`.
        out[c] = match (high, set) {
            (false, false) => c as i64,
            (false, true) => (N + c - step) as i64,
            (true, false) => (c + step) as i64,
            (true, true) => (N + c) as i64,
        };
        c += 1;
    }
    out
}

/// Transpose `rows` (`n` registers) by `bits` bit swaps, each a pair of two-source permutes.
#[inline(always)]
fn transpose_by<V: Copy>(rows: &mut [V], bits: usize, mut swap: impl FnMut(V, V, usize) -> (V, V)) {
    for bit in 0..bits {
        let step = 1 << bit;
        for lo in 0..rows.len() {
            if lo & step == 0 {
                let hi = lo | step;
                (rows[lo], rows[hi]) = swap(rows[lo], rows[hi], bit);
            }
        }
    }
}

impl Lanes for f32 {
    type V = __m512;
    const N: usize = 16;
    #[inline(always)]
    unsafe fn splat(v: f32) -> __m512 {
        _mm512_set1_ps(v)
    }
    #[inline(always)]
    unsafe fn zero() -> __m512 {
        _mm512_setzero_ps()
    }
    #[inline(always)]
    unsafe fn load<const Z: bool>(fill: __m512, mask: u32, p: *const f32, at: isize) -> __m512 {
        // SAFETY (caller): every lane in `mask` is within the plane; the others are not
        // accessed, so their addresses may lie outside it (computed without `offset`).
        let (m, a) = (mask as __mmask16, p.wrapping_offset(at));
        unsafe {
            if Z {
                _mm512_maskz_loadu_ps(m, a)
            } else {
                _mm512_mask_loadu_ps(fill, m, a)
            }
        }
    }
    #[inline(always)]
    unsafe fn evens(lo: __m512, hi: __m512) -> __m512 {
        let idx = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
        _mm512_permutex2var_ps(lo, idx, hi)
    }
    #[inline(always)]
    unsafe fn odds(lo: __m512, hi: __m512) -> __m512 {
        let idx = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
        _mm512_permutex2var_ps(lo, idx, hi)
    }
    #[inline(always)]
    unsafe fn next(v: __m512, last: __m512) -> __m512 {
        let idx = _mm512_set_epi32(16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1);
        _mm512_permutex2var_ps(v, idx, last)
    }
    #[inline(always)]
    unsafe fn fma(a: __m512, b: __m512, c: __m512) -> __m512 {
        _mm512_fmadd_ps(a, b, c)
    }
    #[inline(always)]
    unsafe fn add(a: __m512, b: __m512) -> __m512 {
        _mm512_add_ps(a, b)
    }
    #[inline(always)]
    unsafe fn sum(v: __m512) -> f32 {
        _mm512_reduce_add_ps(v)
    }

    #[inline(always)]
    unsafe fn store(p: *mut f32, mask: u32, v: __m512) {
        // SAFETY (caller): every lane in `mask` is within the output.
        unsafe { _mm512_mask_storeu_ps(p, mask as __mmask16, v) }
    }
    #[inline(always)]
    unsafe fn stream(p: *mut f32, v: __m512) {
        // SAFETY (caller): `p` is 64-byte aligned and its 16 elements are within the output.
        unsafe { _mm512_stream_ps(p, v) }
    }
    #[inline(always)]
    unsafe fn transpose(rows: &mut [__m512]) {
        assert_eq!(rows.len(), 16, "transpose: 16 registers");
        // Within 128-bit lanes first (pairs of 32-bit, then of 64-bit elements), then whole
        // 128-bit lanes twice: 64 one-cycle shuffles, no two-source permutes.
        // SAFETY (caller): AVX-512 F.
        unsafe {
            let mut t = [_mm512_setzero_ps(); 16];
            for i in 0..8 {
                t[2 * i] = _mm512_unpacklo_ps(rows[2 * i], rows[2 * i + 1]);
                t[2 * i + 1] = _mm512_unpackhi_ps(rows[2 * i], rows[2 * i + 1]);
            }
            // u[4g + j], lane L: rows 4g .. 4g + 4 of column 4L + j.
            let mut u = [_mm512_setzero_ps(); 16];
            for g in 0..4 {
                let pd = |v: __m512| _mm512_castps_pd(v);
                let (a, b, c, d) = (
                    pd(t[4 * g]),
                    pd(t[4 * g + 1]),
                    pd(t[4 * g + 2]),
                    pd(t[4 * g + 3]),
                );
                u[4 * g] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
                u[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
                u[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
                u[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
            }
            for j in 0..4 {
                // Rows 0–7 and 8–15 of columns j, 8 + j (even) and 4 + j, 12 + j (odd).
                let a = _mm512_shuffle_f32x4::<0x88>(u[j], u[4 + j]);
                let b = _mm512_shuffle_f32x4::<0xdd>(u[j], u[4 + j]);
                let c = _mm512_shuffle_f32x4::<0x88>(u[8 + j], u[12 + j]);
                let d = _mm512_shuffle_f32x4::<0xdd>(u[8 + j], u[12 + j]);
                rows[j] = _mm512_shuffle_f32x4::<0x88>(a, c);
                rows[8 + j] = _mm512_shuffle_f32x4::<0xdd>(a, c);
                rows[4 + j] = _mm512_shuffle_f32x4::<0x88>(b, d);
                rows[12 + j] = _mm512_shuffle_f32x4::<0xdd>(b, d);
            }
        }
    }
}

impl Lanes for f64 {
    type V = __m512d;
    const N: usize = 8;
    #[inline(always)]
    unsafe fn splat(v: f64) -> __m512d {
        _mm512_set1_pd(v)
    }
    #[inline(always)]
    unsafe fn zero() -> __m512d {
        _mm512_setzero_pd()
    }
    #[inline(always)]
    unsafe fn load<const Z: bool>(fill: __m512d, mask: u32, p: *const f64, at: isize) -> __m512d {
        // SAFETY (caller): as for f32.
        let (m, a) = (mask as __mmask8, p.wrapping_offset(at));
        unsafe {
            if Z {
                _mm512_maskz_loadu_pd(m, a)
            } else {
                _mm512_mask_loadu_pd(fill, m, a)
            }
        }
    }
    #[inline(always)]
    unsafe fn evens(lo: __m512d, hi: __m512d) -> __m512d {
        let idx = _mm512_set_epi64(14, 12, 10, 8, 6, 4, 2, 0);
        _mm512_permutex2var_pd(lo, idx, hi)
    }
    #[inline(always)]
    unsafe fn odds(lo: __m512d, hi: __m512d) -> __m512d {
        let idx = _mm512_set_epi64(15, 13, 11, 9, 7, 5, 3, 1);
        _mm512_permutex2var_pd(lo, idx, hi)
    }
    #[inline(always)]
    unsafe fn next(v: __m512d, last: __m512d) -> __m512d {
        let idx = _mm512_set_epi64(8, 7, 6, 5, 4, 3, 2, 1);
        _mm512_permutex2var_pd(v, idx, last)
    }
    #[inline(always)]
    unsafe fn fma(a: __m512d, b: __m512d, c: __m512d) -> __m512d {
        _mm512_fmadd_pd(a, b, c)
    }
    #[inline(always)]
    unsafe fn add(a: __m512d, b: __m512d) -> __m512d {
        _mm512_add_pd(a, b)
    }
    #[inline(always)]
    unsafe fn sum(v: __m512d) -> f64 {
        _mm512_reduce_add_pd(v)
    }

    #[inline(always)]
    unsafe fn store(p: *mut f64, mask: u32, v: __m512d) {
        // SAFETY (caller): as for f32.
        unsafe { _mm512_mask_storeu_pd(p, mask as __mmask8, v) }
    }
    #[inline(always)]
    unsafe fn stream(p: *mut f64, v: __m512d) {
        // SAFETY (caller): as for f32.
        unsafe { _mm512_stream_pd(p, v) }
    }
    #[inline(always)]
    unsafe fn transpose(rows: &mut [__m512d]) {
        const IDX: [[[i64; 8]; 2]; 3] = [
            [swap_index::<8>(0, false), swap_index::<8>(0, true)],
            [swap_index::<8>(1, false), swap_index::<8>(1, true)],
            [swap_index::<8>(2, false), swap_index::<8>(2, true)],
        ];
        assert_eq!(rows.len(), 8, "transpose: 8 registers");
        transpose_by(rows, 3, |lo, hi, bit| {
            // SAFETY (caller): AVX-512 F; the index arrays hold 8 lanes each.
            unsafe {
                let il = _mm512_loadu_si512(IDX[bit][0].as_ptr().cast());
                let ih = _mm512_loadu_si512(IDX[bit][1].as_ptr().cast());
                (
                    _mm512_permutex2var_pd(lo, il, hi),
                    _mm512_permutex2var_pd(lo, ih, hi),
                )
            }
        });
    }
}
