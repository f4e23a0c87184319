//! `direct` for depthwise layers (one input and one output channel per group, one or two
//! convolved axes), padding included.
//!
//! The general path pads the whole batch, then phase-splits every plane: for the small planes
//! of depthwise layers (a few hundred elements each) those two copies and the per-plane set-up
//! cost several times the arithmetic. Here a plane is never copied.
//!
//! - Constant padding of float32 or float64 on an AVX-512 CPU (column stride 1 or 2):
//!   [`kernels::masked`] computes every output, edges included, with masked loads from the
//!   input rows (padding lanes are not read; they take the constant).
//! - Otherwise the outputs whose windows lie inside the input columns are computed by
//!   [`kernels::depthwise`] straight from the input rows (a padded row is its source row under
//!   the pad mode's index map, or a row of the constant), and the few outputs on the left and
//!   right edges are summed one by one through the same maps. Any pad mode, stride and
//!   dilation.

use ndarray::{s, ArrayView5, ArrayViewMut5, Axis};

use super::chunks;
use crate::kernels::{self, Interior, Masked, Rows};
use crate::spec::{ConvSpec, PadMode};
use crate::Scalar;

/// Largest plane copied when the input's planes are not in standard layout (elements).
const COPY_PLANE: usize = 1 << 16;

/// True when the spec is a depthwise problem (one input and one output channel per group,
/// at least two groups) this path handles, or a one-channel problem the masked kernel
/// computes faster than the general row path. That is constant padding of float32/float64 on
/// an AVX-512 CPU with a narrow kernel (at most 5 columns at column stride 1, 3 at stride 2);
/// measured on 2 threads: 4096² float32 3×3 stride 2 3.19 → 1.89 ms, 8192² float64 3×3
/// stride 2 44.7 → 19.1 ms, 1024² float32 5×5 stride 1 0.48 → 0.41 ms. Wider kernels are
/// left to the row path, whose one load per tap after its phase-split copy beats two loads
/// and a permute per tap (1024² float32 9×9 stride 1: 0.92 there, 1.03 ms here; float64 5×5
/// stride 2: 0.10 against 0.15 ms), except 5×5 kernels at stride 2 both ways, whose input rows
/// the masked kernel loads once for all their output rows ([`kernels::shares`]): float64, 1
/// thread 256² 42 → 33 µs, 1024² 753 → 551 µs; 2 threads 1024² 375 → 316 µs.
pub(crate) fn applies<T: Scalar>(spec: &ConvSpec) -> bool {
    let c = spec.groups;
    let one_channel = || {
        let (kw, sw) = (spec.kernel[2], spec.stride[2]);
        masked::<T>(spec) && (kw <= if sw == 1 { 5 } else { 3 } || shares(spec).is_some())
    };
    (c >= 2 || (c == 1 && one_channel()))
        && spec.in_channels == c
        && spec.out_channels == c
        && spec.kernel[0] == 1
        && spec.input[0] == 1
        && spec.padding[0] == (0, 0)
}

/// [`kernels::shares`] for this problem's planes: the stride, where the masked kernel loads
/// each input row once for all the output rows it feeds.
pub(crate) fn shares(spec: &ConvSpec) -> Option<usize> {
    kernels::shares(
        [spec.kernel[1], spec.kernel[2]],
        [spec.stride[1], spec.stride[2]],
        [spec.dilation[1], spec.dilation[2]],
    )
}

/// Whether [`kernels::masked`] computes this problem's planes: constant padding, and a
/// column stride and element type it handles on this CPU.
pub(crate) fn masked<T: Scalar>(spec: &ConvSpec) -> bool {
    spec.pad_mode == PadMode::Constant && kernels::masked_supported::<T>(spec.stride[2])
}

/// Whether `direct` takes this path for `T`: [`applies`], for floats (integers keep the
/// general path's exact sums).
pub(crate) fn taken<T: Scalar>(spec: &ConvSpec) -> bool {
    T::KIND != crate::scalar::Kind::Integer && applies::<T>(spec)
}

/// The plane geometry shared by every channel of one call.
struct Geometry<T> {
    /// Source row of padded row `r` (`None`: a row of the constant).
    rows: Vec<Option<usize>>,
    /// Source column of padded column `c`.
    cols: Vec<Option<usize>>,
    cval: T,
    ow: usize,
    kh: usize,
    kw: usize,
    sh: usize,
    sw: usize,
    dh: usize,
    dw: usize,
    /// Input width and height.
    w: usize,
    h: usize,
    /// First interior output column, their number, the input column of its first tap.
    ox0: usize,
    cols_in: usize,
    first: usize,
    /// Elements each row slice must hold.
    need: usize,
    /// Padding before the first row and column; whether [`kernels::masked`] computes the planes
    /// (constant padding, AVX-512, a column stride it handles).
    top: usize,
    left: usize,
    masked: bool,
}

impl<T: Scalar> Geometry<T> {
    fn new(spec: &ConvSpec, oh: usize, ow: usize) -> Self {
        let [_, kh, kw] = spec.kernel;
        let [_, sh, sw] = spec.stride;
        let [_, dh, dw] = spec.dilation;
        let [_, h, w] = spec.input;
        let (top, left) = (spec.padding[1].0, spec.padding[2].0);
        let hp = (oh - 1) * sh + (kh - 1) * dh + 1;
        let wp = (ow - 1) * sw + (kw - 1) * dw + 1;
        let map = |n: usize, before: usize, len: usize| -> Vec<Option<usize>> {
            (0..n)
                .map(|i| spec.pad_mode.source_index(i, before, len))
                .collect()
        };
        // Interior outputs: every tap's column c = ox·sw + kx·dw satisfies left ≤ c < left + w.
        let ox0 = left.div_ceil(sw);
        let span = (kw - 1) * dw;
        let ox_end = if left + w > span {
            ((left + w - 1 - span) / sw + 1).min(ow)
        } else {
            0
        };
        let cols_in = ox_end.saturating_sub(ox0);
        let first = (ox0 * sw).saturating_sub(left);
        let need = if cols_in > 0 {
            Interior::<T>::row_need(sw, dw, kw, first, cols_in)
        } else {
            w
        }
        .max(w);
        Geometry {
            rows: map(hp, top, h),
            cols: map(wp, left, w),
            cval: T::from_f64(spec.cval),
            ow,
            kh,
            kw,
            sh,
            sw,
            dh,
            dw,
            w,
            h,
            ox0,
            cols_in,
            first,
            need,
            top,
            left,
            masked: masked::<T>(spec),
        }
    }
}

/// Per-thread buffers: padded-row offsets (the block's, and one channel's patched copy), the
/// constant row and spilled rows, a plane copy, an output copy.
struct Scratch<T> {
    offs: Vec<usize>,
    patched: Vec<usize>,
    extra: Vec<T>,
    plane: Vec<T>,
    out: Vec<T>,
}

impl<T> Default for Scratch<T> {
    fn default() -> Self {
        Scratch {
            offs: Vec::new(),
            patched: Vec::new(),
            extra: Vec::new(),
            plane: Vec::new(),
            out: Vec::new(),
        }
    }
}

/// Compute the whole depthwise problem from the unpadded input `x` (canonical, compute type)
/// and the prepared kernel `k` (`(C, 1, 1, kh, kw)`). Returns false, having written
/// nothing, when the input's layout would need large plane copies (the caller then takes
/// the general path).
pub(crate) fn drive<T: Scalar>(
    spec: &ConvSpec,
    x: ArrayView5<'_, T>,
    k: ArrayView5<'_, T>,
    mut out: ArrayViewMut5<'_, T>,
    threads: usize,
) -> bool {
    let [nb, channels, _, oh, ow] = *out.shape() else {
        unreachable!()
    };
    let geo = Geometry::<T>::new(spec, oh, ow);
    let st = x.strides();
    let standard = st[4] == 1 && st[3] == geo.w as isize;
    if !standard && geo.h * geo.w > COPY_PLANE {
        return false;
    }
    if nb * channels * oh * ow == 0 {
        return true;
    }
    let k_std = k.as_standard_layout();
    let weights = k_std.as_slice().expect("standard layout");
    let taps = geo.kh * geo.kw;
    // At least `want` blocks: runs of whole channels, or, with fewer planes than that, runs
    // of output rows of one plane.
    let want = if threads > 1 { 4 * threads } else { 1 };
    let planes_n = nb * channels;
    let (ch_chunk, row_chunk) = if planes_n >= want {
        (channels.div_ceil(want.div_ceil(nb)).max(1), oh)
    } else {
        (1, oh.div_ceil(want.div_ceil(planes_n)).max(1))
    };
    let mut blocks = Vec::new();
    for (n, out_n) in chunks(out.view_mut(), 0, 1).into_iter().enumerate() {
        for (ci, out_c) in chunks(out_n, 1, ch_chunk).into_iter().enumerate() {
            for (yi, out_y) in chunks(out_c, 3, row_chunk).into_iter().enumerate() {
                blocks.push((n, ci * ch_chunk, yi * row_chunk, out_y));
            }
        }
    }
    let run = |sc: &mut Scratch<T>,
               (n, c0, y0, ob): (usize, usize, usize, ArrayViewMut5<'_, T>)| {
        let [_, nc, _, ohb, _] = *ob.shape() else {
            unreachable!()
        };
        let ys = y0..y0 + ohb;
        let xb = x.slice(s![n, c0..c0 + nc, 0, .., ..]);
        let ws = &weights[c0 * taps..(c0 + nc) * taps];
        let plane_out = ohb * ow;
        let mut ob = ob.slice_move(s![0, .., 0, .., ..]);
        // Planes as slices of the block's memory when both are in standard order (NCHW).
        if let (Some(mem_in), Some(mem_out)) = (xb.as_slice(), ob.as_slice_mut()) {
            return planes(&geo, mem_in, ws, mem_out, ys, sc);
        }
        let mut dst = std::mem::take(&mut sc.out);
        let mut copy = std::mem::take(&mut sc.plane);
        for c in 0..nc {
            dst.clear();
            dst.resize(plane_out, T::zero());
            let xc = xb.index_axis(Axis(0), c);
            let mem = match xc.to_slice() {
                Some(m) => m,
                None => {
                    copy.clear();
                    copy.extend(xc.iter().copied());
                    &copy
                }
            };
            planes(&geo, mem, &ws[c * taps..][..taps], &mut dst, ys.clone(), sc);
            ob.index_axis_mut(Axis(0), c)
                .iter_mut()
                .zip(&dst)
                .for_each(|(y, &v)| *y = v);
        }
        sc.out = dst;
        sc.plane = copy;
    };
    crate::team::for_items_init(threads, blocks, Scratch::default, run);
    true
}

/// Consecutive channels: `mem` holds their input planes (`h × w` each, in order), `out`
/// their output rows `ys` (`ys.len() × ow` each), `k` their kernels.
fn planes<T: Scalar>(
    geo: &Geometry<T>,
    mem: &[T],
    k: &[T],
    out: &mut [T],
    ys: std::ops::Range<usize>,
    sc: &mut Scratch<T>,
) {
    if geo.masked {
        let p = Masked {
            x: mem,
            h: geo.h,
            w: geo.w,
            k,
            kh: geo.kh,
            kw: geo.kw,
            sh: geo.sh,
            sw: geo.sw,
            dh: geo.dh,
            dw: geo.dw,
            top: geo.top,
            left: geo.left,
            cval: geo.cval,
        };
        return kernels::masked(&p, out, ys, geo.ow);
    }
    let (h, w, need) = (geo.h, geo.w, geo.need);
    let (plane_in, plane_out) = (h * w, ys.len() * geo.ow);
    let taps = geo.kh * geo.kw;
    let Scratch {
        offs,
        patched,
        extra,
        ..
    } = sc;
    // Row offsets within a plane; rows of the constant are the first row of `extra`.
    offs.clear();
    offs.extend(geo.rows.iter().map(|sr| match *sr {
        None => Rows::<T>::EXTRA,
        Some(r) => r * w,
    }));
    extra.clear();
    extra.resize(need, geo.cval);
    // Rows at or past `limit` in `mem` have fewer than `need` elements after them.
    let limit = mem.len().checked_sub(need);
    for (c, dst) in out.chunks_exact_mut(plane_out).enumerate() {
        let base = c * plane_in;
        let short_from = match limit {
            Some(l) if l >= base => ((l - base) / w.max(1) + 1).min(h),
            _ => 0,
        };
        let table: &[usize] = if short_from < h {
            // The last rows of the block: copied into `extra` after the constant row.
            extra.truncate(need);
            patched.clear();
            for sr in &geo.rows {
                patched.push(match *sr {
                    Some(r) if r >= short_from => {
                        let at = extra.len();
                        extra.extend_from_slice(&mem[base + r * w..base + (r + 1) * w]);
                        extra.resize(at + need, T::zero());
                        Rows::<T>::EXTRA | at
                    }
                    Some(r) => r * w,
                    None => Rows::<T>::EXTRA,
                });
            }
            patched
        } else {
            offs
        };
        let rows = Rows {
            main: mem,
            extra,
            offs: &table[ys.start * geo.sh..],
            shift: base,
        };
        channel(geo, rows, &k[c * taps..][..taps], dst, ys.len());
    }
}

/// One channel's `oh` output rows (`out`, in standard order); `rows` starts at the first
/// one's first padded row.
fn channel<T: Scalar>(geo: &Geometry<T>, rows: Rows<'_, T>, k: &[T], out: &mut [T], oh: usize) {
    let ow = geo.ow;
    let p = Interior {
        rows,
        k,
        kh: geo.kh,
        kw: geo.kw,
        sh: geo.sh,
        dh: geo.dh,
        sw: geo.sw,
        dw: geo.dw,
        first: geo.first,
        cols: geo.cols_in,
    };
    if geo.cols_in > 0 {
        // First, as it may write past each row's interior; the edges overwrite that.
        kernels::depthwise(&p, &mut out[geo.ox0..], ow, oh);
    }
    let edges = (0..geo.ox0.min(ow)).chain((geo.ox0 + geo.cols_in).max(geo.ox0.min(ow))..ow);
    for ox in edges {
        edge_column(geo, &p.rows, k, ox, out, oh);
    }
}

/// Output column `ox` (an edge one, some taps in the padding), eight rows at a time so the
/// sums are independent.
fn edge_column<T: Scalar>(
    geo: &Geometry<T>,
    rows: &Rows<'_, T>,
    k: &[T],
    ox: usize,
    out: &mut [T],
    oh: usize,
) {
    const R: usize = 8;
    // The constant's share: taps reading padding columns (in the other pad modes every
    // column maps to an input column).
    let col = |kx: usize| geo.cols[ox * geo.sw + kx * geo.dw];
    let mut base = T::zero();
    for kx in (0..geo.kw).filter(|&kx| col(kx).is_none()) {
        for ky in 0..geo.kh {
            base += k[ky * geo.kw + kx] * geo.cval;
        }
    }
    let ow = geo.ow;
    let mut oy = 0;
    while oy < oh {
        let mut acc = [base; R];
        for ky in 0..geo.kh {
            let mut src: [&[T]; R] = [&[]; R];
            for (r, s) in src.iter_mut().enumerate() {
                *s = rows.get((oy + r).min(oh - 1) * geo.sh + ky * geo.dh);
            }
            for kx in 0..geo.kw {
                let Some(c) = col(kx) else { continue };
                let wt = k[ky * geo.kw + kx];
                for (a, s) in acc.iter_mut().zip(&src) {
                    *a += wt * s[c];
                }
            }
        }
        for (r, &a) in acc.iter().enumerate().take(oh - oy) {
            out[(oy + r) * ow + ox] = a;
        }
        oy += R;
    }
}
