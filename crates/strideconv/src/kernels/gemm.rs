//! A safe face for the `gemm` crate's matrix product, for the element types it supports.
//!
//! `gemm::gemm` takes raw pointers and element strides. Here it takes ndarray views, whose
//! construction already guarantees what the call needs: every in-shape index of a view is a
//! valid element, and a mutable view is the only access to its elements. Shapes are checked
//! before the call, so a mistake in a caller is a panic, never undefined behaviour.
//!
//! Real floats with contiguous rows on AVX-512 CPUs go to the hand-written
//! [`super::matmul`] instead (faster on im2col's products); everything else to the crate.
//!
//! The crate detects its own instruction set (AVX-512 here, through its `x86-v4` feature);
//! `STRIDECONV_ISA` cannot narrow it. `STRIDECONV_ISA=scalar` instead makes [`supported`]
//! answer false, so callers take their plain-Rust path and that path stays testable.
#![allow(unsafe_code)]

use std::any::TypeId;

use ndarray::{ArrayView2, ArrayViewMut2};
use num_complex::{Complex32, Complex64};

use super::{isa, Isa};
use crate::Scalar;

/// True when [`gemm()`] can multiply `T`: `f32`, `f64`, `Complex32`, `Complex64`, unless
/// `STRIDECONV_ISA=scalar` asked for the plain paths.
pub(crate) fn supported<T: Scalar>() -> bool {
    let id = TypeId::of::<T>();
    isa() != Isa::Scalar
        && (id == TypeId::of::<f32>()
            || id == TypeId::of::<f64>()
            || id == TypeId::of::<Complex32>()
            || id == TypeId::of::<Complex64>())
}

/// `dst = lhs · rhs`, or `dst += lhs · rhs` when `accumulate`, for views of any strides
/// (negative and zero strides included), single-threaded. `stream` asks for the final sums
/// to be written past the caches where the hand-written product can (a destination much
/// larger than the caches; the crate ignores it).
///
/// # Panics
/// If the shapes do not chain (`lhs` m×k, `rhs` k×n, `dst` m×n) or `T` is not
/// [`supported`].
pub(crate) fn gemm<T: Scalar>(
    mut dst: ArrayViewMut2<'_, T>,
    lhs: ArrayView2<'_, T>,
    rhs: ArrayView2<'_, T>,
    accumulate: bool,
    stream: bool,
) {
    let (m, k) = lhs.dim();
    let (k2, n) = rhs.dim();
    assert_eq!(k, k2, "gemm: lhs is {m}×{k} but rhs is {k2}×{n}");
    assert_eq!(
        dst.dim(),
        (m, n),
        "gemm: dst is {:?}, the product {m}×{n}",
        dst.dim()
    );
    assert!(supported::<T>(), "gemm: {} is not supported", T::NAME);
    if m == 0 || n == 0 {
        return;
    }
    if super::matmul::applies::<T>(dst.strides()[1], rhs.strides()[1], k) {
        return super::matmul::matmul(dst, lhs, rhs, accumulate, stream);
    }
    let (dst_rs, dst_cs) = (dst.strides()[0], dst.strides()[1]);
    let (lhs_rs, lhs_cs) = (lhs.strides()[0], lhs.strides()[1]);
    let (rhs_rs, rhs_cs) = (rhs.strides()[0], rhs.strides()[1]);
    // gemm computes dst := alpha·dst + beta·lhs·rhs, and ignores alpha unless it reads dst.
    let one = T::from_f64(1.0);
    let dst_ptr = dst.as_mut_ptr();
    // SAFETY:
    // - `T` is f32, f64, Complex32 or Complex64 (asserted above); gemm dispatches on exactly
    //   these `TypeId`s (its c32/c64 are num-complex 0.4's Complex32/Complex64, the types used
    //   here), so it never reaches its panicking branch or reinterprets another type.
    // - dst: `dst_ptr` is the element [0, 0] of a view of shape m×n with element strides
    //   (dst_rs, dst_cs); ndarray guarantees every [i, j] with i < m, j < n addresses a valid,
    //   initialised element, and that nothing else reads or writes those elements while the
    //   `&mut` view lives. gemm writes exactly those m×n elements (and reads them only when
    //   `read_dst`). A mutable view never maps two indices to one element, so no write races
    //   another.
    // - lhs, rhs: element [0, 0] of m×k and k×n shared views with their own strides, read
    //   only inside those shapes (k may be 0: gemm then reads nothing and zeroes dst, or
    //   leaves it when accumulating). They cannot overlap `dst`: Rust forbids a shared and a
    //   mutable borrow of the same elements.
    // - Negative and zero strides are allowed by gemm (it re-bases negative ones itself).
    // - Parallelism::None: gemm runs on the calling thread only, so the borrows above cover
    //   every access for the whole call.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst_ptr,
            dst_cs,
            dst_rs,
            accumulate,
            lhs.as_ptr(),
            lhs_cs,
            lhs_rs,
            rhs.as_ptr(),
            rhs_cs,
            rhs_rs,
            one,
            one,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

#[cfg(test)]
mod tests {
    use ndarray::{s, Array2, ShapeBuilder};

    use super::*;

    fn reference(a: &ArrayView2<'_, f64>, b: &ArrayView2<'_, f64>) -> Array2<f64> {
        Array2::from_shape_fn((a.nrows(), b.ncols()), |(i, j)| {
            (0..a.ncols()).map(|l| a[(i, l)] * b[(l, j)]).sum()
        })
    }

    #[test]
    fn strided_views_and_accumulation() {
        if !supported::<f64>() {
            return;
        }
        let a = Array2::from_shape_fn((9, 14), |(i, j)| (i * 3 + j) as f64 % 7.0 - 3.0);
        let b = Array2::from_shape_fn((7, 11), |(i, j)| (i + 2 * j) as f64 % 5.0 - 2.0);
        // A transposed, step-2 lhs and a reversed rhs.
        let lhs = a.slice(s![..;2, ..;2]).reversed_axes();
        let rhs = b.slice(s![..5, ..;-1]);
        let want = reference(&lhs, &rhs);
        let mut out = Array2::<f64>::zeros((14, 11));
        let mut dst = out.slice_mut(s![..;-2, ..]);
        dst.fill(1.0);
        gemm(dst.view_mut(), lhs, rhs, true, false);
        assert_eq!(dst, want.mapv(|v| v + 1.0));
        gemm(dst.view_mut(), lhs, rhs, false, true);
        assert_eq!(dst, want);
        // Rows the step-2 view skips stay untouched.
        assert!(out.slice(s![..;2, ..]).iter().all(|&v| v == 0.0));
    }

    #[test]
    fn contiguous_rows_match_the_reference() {
        // Row-major operands take the hand-written product on AVX-512 CPUs (the crate
        // elsewhere): partial tiles in both directions, reductions over several blocks, a
        // destination whose rows are wider than the product, accumulation.
        let mut seed = 5u64;
        let mut next = |below: usize| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as usize % below
        };
        for case in 0..60 {
            // Every fifth case has rows over 8 KiB apart, which the product reads a wide
            // block at a time, prefetching the next (and reduces 256 rows per block).
            let wide = if case % 5 == 4 { 2050 + next(700) } else { 0 };
            let (m, n, k) = (1 + next(40), 1 + next(130) + wide, 1 + next(600));
            let a = Array2::from_shape_fn((m, k), |(i, j)| ((i * 7 + j * 3) % 11) as f64 - 5.0);
            let b = Array2::from_shape_fn((k, n), |(i, j)| ((i * 5 + j) % 13) as f64 - 6.0);
            let want = reference(&a.view(), &b.view());
            let extra = next(5);
            let accumulate = case % 3 == 0;
            // Final sums streamed past the caches (the vectors that start a cache line) or not.
            let stream = case % 2 == 1;
            let start = if accumulate { 2.0 } else { 9.0 };
            if supported::<f64>() {
                let mut out = Array2::<f64>::from_elem((m, n + extra), start);
                gemm(
                    out.slice_mut(s![.., ..n]),
                    a.view(),
                    b.view(),
                    accumulate,
                    stream,
                );
                let base = if accumulate { 2.0 } else { 0.0 };
                assert_eq!(
                    out.slice(s![.., ..n]),
                    want.mapv(|v| v + base),
                    "{m}×{n}×{k}"
                );
                assert!(out.slice(s![.., n..]).iter().all(|&v| v == start));
            }
            if supported::<f32>() {
                let (a32, b32) = (a.mapv(|v| v as f32), b.mapv(|v| v as f32));
                let mut out = Array2::<f32>::from_elem((m, n + extra), start as f32);
                gemm(
                    out.slice_mut(s![.., ..n]),
                    a32.view(),
                    b32.view(),
                    accumulate,
                    stream,
                );
                let base = if accumulate { 2.0 } else { 0.0 };
                // Small integers: every partial sum is exact in f32 too.
                assert_eq!(
                    out.slice(s![.., ..n]),
                    want.mapv(|v| (v + base) as f32),
                    "{m}×{n}×{k}"
                );
                assert!(out.slice(s![.., n..]).iter().all(|&v| v == start as f32));
            }
        }
    }

    /// One product of [`panels_off_a_cache_line`] in `T` (`size_of::<T>()·lanes` = 64):
    /// the panel `shift` elements past a line, the destination `dst_shift` past its
    /// vector's start. Returns the lead columns the product cut off.
    fn off_line_product<T: Scalar + std::fmt::Debug>(
        a: &Array2<f64>,
        b: &Array2<f64>,
        lanes: usize,
        shift: usize,
        dst_shift: usize,
        accumulate: bool,
        stream: bool,
    ) -> usize {
        let ((m, k), n) = (a.dim(), b.ncols());
        // Row stride a multiple of the line (`lanes` elements), past n + shift.
        let ld = (n + shift).next_multiple_of(lanes) + lanes;
        let mut store = vec![T::zero(); k * ld + 2 * lanes];
        let first = store.as_ptr().align_offset(64) + shift;
        let mut panel =
            ndarray::ArrayViewMut2::from_shape((k, n).strides((ld, 1)), &mut store[first..])
                .unwrap();
        panel.assign(&b.mapv(T::from_f64));
        let lead = crate::kernels::lead_columns(panel.as_ptr(), ld as isize, k, n);
        assert_eq!(lead, if lanes - shift < n { lanes - shift } else { 0 });
        let one = T::from_f64(1.0);
        let mut out = Array2::<T>::from_elem((m, n + dst_shift), one);
        let lhs = a.mapv(T::from_f64);
        gemm(
            out.slice_mut(s![.., dst_shift..]),
            lhs.view(),
            panel.view(),
            accumulate,
            stream,
        );
        let base = if accumulate { 1.0 } else { 0.0 };
        // Small integers: every partial sum is exact in f32 too.
        let want = reference(&a.view(), &b.view()).mapv(|v| T::from_f64(v + base));
        assert_eq!(out.slice(s![.., dst_shift..]), want, "{m}×{n}×{k} +{shift}");
        assert!(out.slice(s![.., ..dst_shift]).iter().all(|&v| v == one));
        lead
    }

    #[test]
    fn panels_off_a_cache_line() {
        // Panels whose rows all start the same distance past a cache line (their stride a
        // whole number of lines): the product multiplies the columns before the first line
        // on their own, then the rest. Every offset, widths up to and just past it, the
        // destination on the panel's phase or not, streamed or not, accumulating or not.
        if !supported::<f64>() || !crate::kernels::own_product::<f64>() {
            return;
        }
        let mut cases = 0;
        for lanes in [8usize, 16] {
            for shift in 1..lanes {
                let sizes = [
                    (1, 3),
                    (lanes - shift + 1, 5),
                    (37, 1),
                    (200, 17),
                    (530, 70),
                ];
                for (n, k) in sizes {
                    let m = 1 + (shift * 3 + n) % 19;
                    let a = Array2::from_shape_fn((m, k), |(i, j)| ((i * 5 + j) % 9) as f64 - 4.0);
                    let b = Array2::from_shape_fn((k, n), |(i, j)| ((i + 3 * j) % 7) as f64 - 3.0);
                    let accumulate = (shift + n) % 2 == 0;
                    let stream = shift % 3 == 0;
                    // float64 with the destination on the panel's phase, float32 off it.
                    let lead = if lanes == 8 {
                        off_line_product::<f64>(&a, &b, lanes, shift, shift, accumulate, stream)
                    } else {
                        off_line_product::<f32>(&a, &b, lanes, shift, 1, accumulate, stream)
                    };
                    cases += usize::from(lead > 0);
                }
            }
        }
        // Most cases were cut (all but the narrowest of each offset).
        assert!(cases >= 60, "{cases}");
    }

    #[test]
    fn empty_reduction_zeroes_or_keeps() {
        if !supported::<f32>() {
            return;
        }
        let lhs = Array2::<f32>::zeros((3, 0));
        let rhs = Array2::<f32>::zeros((0, 4));
        let mut dst = Array2::<f32>::from_elem((3, 4), 5.0);
        gemm(dst.view_mut(), lhs.view(), rhs.view(), true, false);
        assert!(dst.iter().all(|&v| v == 5.0));
        gemm(dst.view_mut(), lhs.view(), rhs.view(), false, false);
        assert!(dst.iter().all(|&v| v == 0.0));
    }

    #[test]
    #[should_panic(expected = "gemm: lhs")]
    fn mismatched_shapes_panic() {
        let lhs = Array2::<f64>::zeros((3, 2));
        let rhs = Array2::<f64>::zeros((3, 4));
        let mut dst = Array2::<f64>::zeros((3, 4));
        gemm(dst.view_mut(), lhs.view(), rhs.view(), false, false);
    }
}
