//! Viewing user arrays as canonical five-dimensional ones, and preparing them for the methods.
//!
//! Every mapping here is a view (axes permuted or inserted, strides kept), so any memory
//! layout, including negative strides, reaches the methods without a copy. Copies are made
//! only where the problem needs them: padding (materialised once), integer widening, and the
//! small kernel (flipped, conjugated and broadcast as the request says).

use ndarray::{
    s, Array5, ArrayView2, ArrayView5, ArrayViewD, ArrayViewMut5, ArrayViewMutD, Axis, Ix1, Ix2,
    Ix3, Ix4, Ix5, IxDyn,
};

use crate::error::{overflow, Result};
use crate::kernels::{self, Filler};
use crate::scalar::{Element, Kind, Scalar};
use crate::spec::{ConvSpec, Layout, Op, SPATIAL};

/// Permutation that moves axis `from` to position `to`, keeping the others in order.
fn move_axis(ndim: usize, from: usize, to: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..ndim).filter(|&a| a != from).collect();
    order.insert(to, from);
    order
}

/// How one user array becomes canonical: permute its axes, put `prepend` unit axes in
/// front, then unit spatial axes after the first two until there are five.
struct Mapping {
    perm: Option<Vec<usize>>,
    prepend: usize,
}

/// One unit axis more: in front if `front`, else after the first two. On fixed-rank views:
/// a dynamic-rank view of five axes keeps its shape and strides on the heap, and growing it
/// one axis at a time allocated twice per axis (the three views: a tenth of the seed's 7×7
/// call).
macro_rules! grow {
    ($v:expr, $front:expr) => {
        $v.insert_axis(Axis(if $front { 0 } else { 2 }))
    };
}

macro_rules! apply_mapping {
    ($name:ident, $view:ident, $view5:ident) => {
        fn $name<'a, T>(v: $view<'a, T>, m: &Mapping) -> $view5<'a, T> {
            let v = match &m.perm {
                Some(p) => v.permuted_axes(IxDyn(p)),
                None => v,
            };
            // The i-th axis added goes in front while i < prepend.
            let p = m.prepend;
            let fixed = "the rank was just matched";
            match v.ndim() {
                1 => {
                    let v = v.into_dimensionality::<Ix1>().expect(fixed);
                    let v = grow!(v, p > 0);
                    let v = grow!(v, p > 1);
                    let v = grow!(v, p > 2);
                    grow!(v, p > 3)
                }
                2 => {
                    let v = v.into_dimensionality::<Ix2>().expect(fixed);
                    let v = grow!(v, p > 0);
                    let v = grow!(v, p > 1);
                    grow!(v, p > 2)
                }
                3 => {
                    let v = v.into_dimensionality::<Ix3>().expect(fixed);
                    let v = grow!(v, p > 0);
                    grow!(v, p > 1)
                }
                4 => grow!(v.into_dimensionality::<Ix4>().expect(fixed), p > 0),
                _ => v
                    .into_dimensionality::<Ix5>()
                    .expect("five axes by construction"),
            }
        }
    };
}
apply_mapping!(map_view, ArrayViewD, ArrayView5);
apply_mapping!(map_view_mut, ArrayViewMutD, ArrayViewMut5);

fn data_mapping(spec: &ConvSpec, is_output: bool) -> Mapping {
    match &spec.layout {
        Layout::Signal {
            channel_axis: Some(ca),
            ..
        } if !is_output => Mapping {
            perm: Some(move_axis(spec.rank + 1, *ca, 0)),
            prepend: 1,
        },
        Layout::Signal { .. } => Mapping {
            perm: None,
            prepend: 2,
        },
        Layout::Batched {
            channels_last: false,
        } => Mapping {
            perm: None,
            prepend: 0,
        },
        Layout::Batched {
            channels_last: true,
        } => Mapping {
            perm: Some(move_axis(spec.rank + 2, spec.rank + 1, 1)),
            prepend: 0,
        },
    }
}

/// The canonical `(N, C, D, H, W)` view of the input.
pub(crate) fn input_view<'a, T>(spec: &ConvSpec, x: ArrayViewD<'a, T>) -> ArrayView5<'a, T> {
    map_view(x, &data_mapping(spec, false))
}

/// The canonical `(N, C_out, OD, OH, OW)` view of the output, laid out as the user sees it.
pub(crate) fn output_view<'a, T>(
    spec: &ConvSpec,
    out: ArrayViewMutD<'a, T>,
) -> ArrayViewMut5<'a, T> {
    map_view_mut(out, &data_mapping(spec, true))
}

/// The canonical `(C_out, C_in/groups, KD, KH, KW)` view of the kernel; a broadcast kernel
/// has one input channel here and is expanded by [`prepare_kernel`].
pub(crate) fn kernel_view<'a, T>(spec: &ConvSpec, k: ArrayViewD<'a, T>) -> ArrayView5<'a, T> {
    let m = match &spec.layout {
        Layout::Signal {
            channel_axis: Some(ca),
            kernel_broadcast: false,
        } => Mapping {
            perm: Some(move_axis(spec.rank + 1, *ca, 0)),
            prepend: 1,
        },
        Layout::Signal { .. } => Mapping {
            perm: None,
            prepend: 2,
        },
        Layout::Batched { .. } => Mapping {
            perm: None,
            prepend: 0,
        },
    };
    map_view(k, &m)
}

/// `v.map(f)`, through a plain slice when `v` is in standard layout (the result is too):
/// ndarray's `map` first looks for a memory order by sorting the strides, which cost as much
/// as converting the seed's 7×7 example.
fn map_standard<A, B>(v: ArrayView5<'_, A>, f: impl FnMut(&A) -> B) -> Array5<B> {
    match v.as_slice() {
        Some(values) => Array5::from_shape_vec(v.raw_dim(), values.iter().map(f).collect())
            .expect("one value per element"),
        None => v.map(f),
    }
}

/// The kernel as the methods want it: in the compute type, flipped for convolution,
/// conjugated for complex correlation in the signal layout, broadcast over channels if asked.
/// A view of the user's kernel when no element needs changing, else one standard-layout copy.
pub(crate) fn prepare_kernel<'a, E: Element>(
    spec: &ConvSpec,
    k: ArrayView5<'a, E>,
) -> ndarray::CowArray<'a, E::Compute, Ix5> {
    let cin = spec.in_channels / spec.groups;
    let flip = spec.op == Op::Convolve;
    // numpy/scipy correlation conjugates a complex kernel; PyTorch-style layers never do.
    let conj = spec.op == Op::Correlate
        && <E::Compute as Scalar>::KIND == Kind::Complex
        && matches!(spec.layout, Layout::Signal { .. });
    let mut k = k;
    if flip {
        for a in 2..5 {
            k.invert_axis(Axis(a));
        }
    }
    let convert = |v: &E| {
        let c = v.to_compute();
        if conj {
            c.conj()
        } else {
            c
        }
    };
    // Already in the compute type with nothing to conjugate or broadcast: borrowed, in any
    // layout (a flip is a reversed view). A kernel as large as the input is not copied on
    // every call; methods that need another order copy what they need.
    if k.shape()[1] == cin && !conj {
        if let Some(v) = E::view_compute(k) {
            return v.into();
        }
    }
    // `map` walks the view in logical order and returns a standard-layout array: one pass.
    if k.shape()[1] == cin {
        map_standard(k, convert).into()
    } else {
        let dims = (
            k.shape()[0],
            cin,
            spec.kernel[0],
            spec.kernel[1],
            spec.kernel[2],
        );
        k.broadcast(dims)
            .expect("a broadcast kernel has one channel")
            .map(convert)
            .into()
    }
}

/// The input in the compute type, padded as asked: a view when nothing needs changing.
/// A large padded copy is made on `threads` threads.
pub(crate) fn prepare_input<'a, E: Element>(
    spec: &ConvSpec,
    x: ArrayView5<'a, E>,
    threads: usize,
) -> Result<ndarray::CowArray<'a, E::Compute, Ix5>> {
    if !spec.is_padded() {
        if let Some(v) = E::view_compute(x) {
            return Ok(v.into());
        }
        return Ok(map_standard(x, |v| v.to_compute()).into());
    }
    let [n, c] = [x.shape()[0], x.shape()[1]];
    let padded: [usize; SPATIAL] = std::array::from_fn(|a| spec.padded_len(a));
    // Huge padding (the spec only checked that the copy is addressable): the system may
    // refuse the memory, for the copy or for the lists of its edges' sources; reported, not
    // aborted on. The copy's memory is had first: nothing is built for a refused copy.
    let shape = [n, c, padded[0], padded[1], padded[2]];
    let refused = || {
        let what = "padded copy of the input";
        crate::error::memory_refused(what, &shape, std::mem::size_of::<E::Compute>())
    };
    let total = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let mut data = Vec::new();
    if total.is_none_or(|t| data.try_reserve_exact(t).is_err()) {
        return Err(refused());
    }
    kernels::advise_huge_capacity(&data);
    // Source index of padded position `i` along axis `a` (None: cval), found per plane and
    // per row; along the rows, the edges' sources are listed once (none for constant
    // padding, whose edges are runs of cval: a list as long as a huge padding would cost
    // more than the copy).
    let source = |a: usize, i: usize| {
        spec.pad_mode
            .source_index(i, spec.padding[a].0, spec.input[a])
    };
    let cval = <E::Compute as Scalar>::from_f64(spec.cval);
    // One pass in memory order, each element written once: rows of padding are runs of
    // cval, an input row is its edges (by the index map) around the row itself.
    let (lo, w) = (spec.padding[2].0, spec.input[2]);
    let constant = matches!(spec.pad_mode, crate::spec::PadMode::Constant);
    let edge = |range: std::ops::Range<usize>| -> Option<Vec<usize>> {
        let mut v = Vec::new();
        if !constant {
            v.try_reserve_exact(range.len()).ok()?;
            v.extend(range.map(|i| source(2, i).expect("a mode other than constant has a source")));
        }
        Some(v)
    };
    let (Some(before), Some(after)) = (edge(0..lo), edge(lo + w..padded[2])) else {
        return Err(refused());
    };
    let plane_len = padded[1] * padded[2];
    let planes = n * c * padded[0];
    // Planes of (image, channel, depth) in parallel when the copy is large.
    let parallel = threads > 1 && planes > 1 && planes * plane_len >= 1 << 17;
    let fill = |i: usize, f: &mut Filler<'_, E::Compute>| {
        let (b, ch, pd) = (i / (c * padded[0]), (i / padded[0]) % c, i % padded[0]);
        let Some(sd) = source(0, pd) else {
            return f.repeat(cval, plane_len);
        };
        let plane = x.slice(s![b, ch, sd, .., ..]);
        for ph in 0..padded[1] {
            let Some(sh) = source(1, ph) else {
                f.repeat(cval, padded[2]);
                continue;
            };
            let src = plane.row(sh);
            let at = |&sw: &usize| src[sw].to_compute();
            if constant {
                f.repeat(cval, lo);
            } else {
                f.extend(before.iter().map(at));
            }
            match src.as_slice() {
                Some(xs) => f.extend(xs.iter().map(|v| v.to_compute())),
                None => f.extend(src.iter().map(|v| v.to_compute())),
            }
            if constant {
                f.repeat(cval, padded[2] - lo - w);
            } else {
                f.extend(after.iter().map(at));
            }
        }
    };
    let threads = if parallel { threads } else { 1 };
    let data = kernels::fill_planes(data, planes, plane_len, threads, fill);
    Ok(Array5::from_shape_vec(shape, data)
        .expect("one element per padded position")
        .into())
}

/// For integers: refuse (as overflow) a problem whose partial sums could leave `i128`, so
/// that every method may use plain arithmetic. The bound is max|x| · max over output
/// channels of Σ|k|, which bounds every partial sum in any order.
pub(crate) fn check_integer_bound<T: Scalar>(
    x: &ArrayView5<'_, T>,
    k: &ArrayView5<'_, T>,
) -> Result<()> {
    if T::KIND != Kind::Integer {
        return Ok(());
    }
    // In whole numbers (a float conversion per element was a tenth of the seed's 7×7 call),
    // over plain slices when the arrays are in standard layout (as the widened copies made
    // for integers are): ndarray's `fold` first sorts the strides to find a memory order,
    // which cost as much as the scan on the seed's 7×7 example.
    let max_x = match x.as_slice() {
        Some(xs) => xs.iter().fold(0, |m, v| m.max(v.whole_magnitude())),
        None => x.fold(0, |m, v| m.max(v.whole_magnitude())),
    };
    let sum = |m: u128, v: &T| m.saturating_add(v.whole_magnitude());
    let per_out = k.len() / k.shape()[0].max(1);
    let max_k = match k.as_slice() {
        Some(ks) => ks
            .chunks(per_out.max(1))
            .map(|o| o.iter().fold(0u128, sum))
            .max(),
        None => k.outer_iter().map(|o| o.fold(0u128, sum)).max(),
    }
    .unwrap_or(0);
    let bound = max_x.saturating_mul(max_k);
    if bound >= 1 << 125 {
        return Err(overflow(format!(
            "partial sums may reach {:.3e}, beyond the 128-bit exact accumulator; \
             reduce the input or kernel magnitudes",
            bound as f64
        )));
    }
    Ok(())
}

/// Elements above which [`has_non_finite`] scans on several threads.
const PARALLEL_SCAN: usize = 1 << 17;

/// True when any element is NaN or infinite. `v − v` is 0 for finite values and NaN
/// otherwise, so eight running sums (which vectorise) tell. Large contiguous arrays are
/// scanned in `threads` pieces at once (the scan `auto` makes before an FFT was a tenth of
/// a 1024² FFT call on one thread).
pub(crate) fn has_non_finite<T: Scalar>(a: &ArrayView5<'_, T>, threads: usize) -> bool {
    if T::KIND == Kind::Integer {
        return false;
    }
    match a.as_slice_memory_order() {
        Some(s) if threads > 1 && s.len() >= PARALLEL_SCAN => {
            let pieces: Vec<&[T]> = s.chunks(s.len().div_ceil(threads)).collect();
            crate::team::map(threads, pieces.len(), |i| {
                crate::kernels::has_non_finite(pieces[i])
            })
            .contains(&true)
        }
        Some(s) => crate::kernels::has_non_finite(s),
        None => !a.iter().all(|v| v.is_finite()),
    }
}

/// Copy every `step`-th element of each row of `src`, from column `start`, `cnt` of them,
/// into consecutive rows of `dst` that are `dst_stride` apart.
///
/// The phase split of the direct and FFT methods. Rows with a contiguous inner axis (the
/// usual case) are read as plain slices; an element-wise ndarray assignment costs several
/// times more on the short rows of small problems.
pub(crate) fn gather_rows<T: Copy>(
    dst: &mut [T],
    dst_stride: usize,
    src: ArrayView2<'_, T>,
    start: usize,
    step: usize,
    cnt: usize,
) {
    if cnt == 0 {
        return;
    }
    for (r, row) in src.rows().into_iter().enumerate() {
        let d = &mut dst[r * dst_stride..][..cnt];
        match row.as_slice() {
            Some(xs) => copy_strided(d, &xs[start..], step),
            None => d
                .iter_mut()
                .zip(row.slice(s![start..;step]).iter())
                .for_each(|(y, &v)| *y = v),
        }
    }
}

/// `dst[j] = src[j·step]`; `src` must hold `(dst.len() - 1)·step + 1` elements.
///
/// Steps 2 to 4, most of the gathers' strided reads, go to [`crate::kernels::pick`]: fixed
/// blocks compiled for the detected instruction set, which the compiler turns into
/// shuffles (with AVX-512, two loads and one permute per eight float64 values). The FFT's
/// input phases of a 1024² ⋆ 512² stride-2 float64 problem (2 threads, a new kernel every
/// call) went 4.21 → 3.95 ms with them against the same loops compiled for plain x86-64.
#[inline]
pub(crate) fn copy_strided<T: Copy>(dst: &mut [T], src: &[T], step: usize) {
    match step {
        1 => dst.copy_from_slice(&src[..dst.len()]),
        2..=4 => crate::kernels::pick(dst, src, step),
        _ => {
            let Some(n) = dst.len().checked_sub(1) else {
                return;
            };
            let src = &src[..n * step + 1];
            for (j, y) in dst.iter_mut().enumerate() {
                *y = src[j * step];
            }
        }
    }
}

/// Split each row of `src` (its first `width` elements) into its first `phases` stride
/// phases (`phases ≤ min(step, width)`): phase `p` of row `r` (elements `p, p + step, ...`)
/// goes to `dst[(r·phases + p)·plen ..]`. The phases past the kernel's extent are never read
/// (a stride longer than the kernel), so they take neither room nor copying.
pub(crate) fn split_phases<T: Copy>(
    dst: &mut [T],
    plen: usize,
    src: ArrayView2<'_, T>,
    step: usize,
    width: usize,
    phases: usize,
) {
    debug_assert!(phases >= 1 && phases <= step.min(width));
    let whole = phases * plen;
    for (r, row) in src.rows().into_iter().enumerate() {
        let d = &mut dst[r * whole..][..whole];
        match (row.as_slice(), step) {
            (Some(xs), 1) => d[..width].copy_from_slice(&xs[..width]),
            (Some(xs), 2) if phases == 2 => {
                // Both phases in one pass over the row.
                let xs = &xs[..width];
                let (a, b) = d.split_at_mut(plen);
                crate::kernels::deinterleave(xs, a, b);
                if width % 2 == 1 {
                    a[width / 2] = xs[width - 1];
                }
            }
            (Some(xs), step) if step > 4 => {
                crate::kernels::split_phases(d, plen, &xs[..width], step, 0..phases);
            }
            _ => {
                let row2 = row.slice(s![..width]).insert_axis(ndarray::Axis(0));
                for p in 0..phases {
                    gather_rows(
                        &mut d[p * plen..],
                        0,
                        row2,
                        p,
                        step,
                        (width - p).div_ceil(step),
                    );
                }
            }
        }
    }
}
