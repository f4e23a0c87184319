//! `direct`: stride-native direct correlation on the SIMD row kernel.
//!
//! For each output depth slice and chunk of output rows, the input rows the chunk needs are
//! copied once into *phase-split* buffers: row `r` with stride `s` along W becomes `s` rows
//! `r[p], r[p+s], r[p+2s], ...`. Every kernel tap then reads contiguous memory whatever the
//! stride, and [`crate::kernels::rows`] keeps a chunk of the output row in registers across
//! all taps; for kernels taller than the vertical stride, [`crate::kernels::rows2`] keeps
//! chunks of two output rows, loading the input rows they share once for both. No output is
//! computed that the stride drops, and the copy is bounded by the chunk (a few MiB), never
//! the whole input.
//!
//! Channels-last input (`n×n×C`, NHWC) goes to dot products of kernel rows (`kw·C` values,
//! contiguous in memory), or, where those are short and the split is cheap
//! ([`flat_rows_pay`]), to the same row path with each input row read as one row of `W·C`
//! interleaved values, stride `s·C`: one split separates channels and stride phases
//! ([`crate::kernels::split_phases`]).

use std::any::Any;
use std::cell::RefCell;

use ndarray::{s, ArrayView5, ArrayViewMut5, CowArray, Ix5};

use super::{Algorithm, Geom, Tiling};
use crate::kernels::{self, PAD};
use crate::{view, Scalar};

pub(crate) struct Direct;

/// Target size of the phase-split row buffer, in elements (about half of L2 for f64).
const BUFFER_ELEMS: usize = 1 << 16;

impl<T: Scalar> Algorithm<T> for Direct {
    fn tiling(&self) -> Tiling {
        Tiling {
            split_channels: true,
            split_rows: true,
            whole_batch: false,
        }
    }

    fn run(&self, x: ArrayView5<'_, T>, k: ArrayView5<'_, T>, out: ArrayViewMut5<'_, T>, g: &Geom) {
        if channels_interleaved(&x, k.shape(), out.shape()[4], g) {
            if flat_rows::<T>(k.shape(), out.shape()[4], g) {
                if let Some(xf) = flat_view(x) {
                    return run_flat(xf, k, out, g);
                }
            }
            return run_channels_last(x, k, out, g);
        }
        let k_std = k.as_standard_layout();
        let weights = k_std.as_slice().expect("standard layout");
        with_scratch(|sc| run_rows(x, k.shape(), weights, out, g, sc))
    }

    /// One channel after another with the buffers and the kernel's copy shared.
    fn run_depthwise(
        &self,
        x: ArrayView5<'_, T>,
        k: ArrayView5<'_, T>,
        mut out: ArrayViewMut5<'_, T>,
        g: &Geom,
    ) {
        let k_std = k.as_standard_layout();
        let weights = k_std.as_slice().expect("standard layout");
        let taps = weights.len() / k.shape()[0];
        let mut kshape = [0; 5];
        kshape.copy_from_slice(k.shape());
        kshape[0] = 1;
        with_scratch(|scratch: &mut Scratch<T>| {
            for c in 0..out.shape()[1] {
                let xc = x.slice(s![.., c..c + 1, .., .., ..]);
                let kc = k.slice(s![c..c + 1, .., .., .., ..]);
                let oc = out.slice_mut(s![.., c..c + 1, .., .., ..]);
                if channels_interleaved(&xc, &kshape, oc.shape()[4], g) {
                    run_channels_last(xc, kc, oc, g);
                } else {
                    let w = &weights[c * taps..(c + 1) * taps];
                    run_rows(xc, &kshape, w, oc, g, scratch);
                }
            }
        });
    }
}

thread_local! {
    /// Each thread's row buffers, kept from one call to the next: a buffer of half a MiB
    /// taken fresh on every call costs more in page faults than a small problem's work
    /// (512² float64 3×3 stride 2 on one thread: 420 µs with a new buffer per call, 70 µs
    /// without).
    static SCRATCH: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

/// Run `f` with this thread's kept buffers (fresh ones if none are kept for `T`, or if they
/// are in use further up this thread's stack).
fn with_scratch<T: Scalar, R>(f: impl FnOnce(&mut Scratch<T>) -> R) -> R {
    let kept = SCRATCH.with(|c| c.borrow_mut().take());
    let mut sc = kept
        .and_then(|b| b.downcast::<Scratch<T>>().ok())
        .map_or_else(Scratch::default, |b| *b);
    let r = f(&mut sc);
    if sc.buf.capacity() * std::mem::size_of::<T>() <= KEEP_BYTES {
        SCRATCH.with(|c| *c.borrow_mut() = Some(Box::new(sc)));
    }
    r
}

/// Row pairs (each times its chunks of [`PAIR_CHUNK`] outputs) a chunk of output rows needs
/// before it is computed in pairs.
const PAIRS_WORTH: usize = 4;
/// Outputs per register chunk of a row, for [`PAIRS_WORTH`] (float64 with AVX-512).
const PAIR_CHUNK: usize = 64;

/// `Some(q)` when a chunk of `rows` output rows, `ow` wide, is computed in pairs
/// ([`kernels::rows2`]): the second row of a pair reads, with its kernel row `th`, the
/// buffer rows the first reads with kernel row `th + q`, `q` the vertical stride `s1` in
/// dilations `d1`, which must be whole and fewer than the kernel's `kh` rows. The pair
/// lists cost about a row's work to build (per chunk, and their weights per output
/// channel), so only chunks with enough pairs of row chunks take them (64² ⋆ 24² stride 2
/// on 2 threads, blocks of 3 rows: 27 → 37 µs with a pair each). The cost model asks the
/// same.
pub(crate) fn pair_shift(kh: usize, s1: usize, d1: usize, rows: usize, ow: usize) -> Option<usize> {
    let d1 = d1.max(1);
    let q = s1.is_multiple_of(d1).then_some(s1 / d1)?;
    (q < kh && rows / 2 * ow.div_ceil(PAIR_CHUNK) >= PAIRS_WORTH).then_some(q)
}

/// Largest row buffer kept between calls.
const KEEP_BYTES: usize = 4 << 20;

/// The row path's buffers, kept across the channels of a depthwise block and, per thread,
/// from one call to the next.
struct Scratch<T> {
    buf: Vec<T>,
    starts: Vec<usize>,
    row_starts: Vec<usize>,
    row: Vec<T>,
    row2: Vec<T>,
    pair: Pair<T>,
}

impl<T> Default for Scratch<T> {
    fn default() -> Self {
        Scratch {
            buf: Vec::new(),
            starts: Vec::new(),
            row_starts: Vec::new(),
            row: Vec::new(),
            row2: Vec::new(),
            pair: Pair::default(),
        }
    }
}

/// The tap lists of two output rows computed together ([`kernels::rows2`]): buffer
/// positions (relative to the first row) and, for each, the kernel tap whose weight it
/// takes; the weights of one output channel.
struct Pair<T> {
    only_a: Vec<usize>,
    tap_a: Vec<usize>,
    shared: Vec<usize>,
    tap_sa: Vec<usize>,
    tap_sb: Vec<usize>,
    only_b: Vec<usize>,
    tap_b: Vec<usize>,
    wa: Vec<T>,
    wsa: Vec<T>,
    wsb: Vec<T>,
    wb: Vec<T>,
}

impl<T> Default for Pair<T> {
    fn default() -> Self {
        Pair {
            only_a: Vec::new(),
            tap_a: Vec::new(),
            shared: Vec::new(),
            tap_sa: Vec::new(),
            tap_sb: Vec::new(),
            only_b: Vec::new(),
            tap_b: Vec::new(),
            wa: Vec::new(),
            wsa: Vec::new(),
            wsb: Vec::new(),
            wb: Vec::new(),
        }
    }
}

impl<T: Scalar> Pair<T> {
    /// The lists for taps at `starts` (kernel rows of `kw` taps, `kh` rows per plane), the
    /// second output row reading `shift` buffer elements further on, which is `q` kernel
    /// rows lower: its kernel row `th` reads the first row's kernel row `th + q`.
    fn lists(&mut self, starts: &[usize], (kh, kw): (usize, usize), q: usize, shift: usize) {
        for v in [
            &mut self.only_a,
            &mut self.tap_a,
            &mut self.shared,
            &mut self.tap_sa,
            &mut self.tap_sb,
            &mut self.only_b,
            &mut self.tap_b,
        ] {
            v.clear();
        }
        for (t, &s) in starts.iter().enumerate() {
            let th = (t / kw) % kh;
            if th < q {
                self.only_a.push(s);
                self.tap_a.push(t);
            } else {
                self.shared.push(s);
                self.tap_sa.push(t);
                self.tap_sb.push(t - q * kw);
            }
        }
        for (t, &s) in starts.iter().enumerate() {
            if (t / kw) % kh + q >= kh {
                self.only_b.push(s + shift);
                self.tap_b.push(t);
            }
        }
    }

    /// The weights of one output channel (`w`, all taps) for the lists.
    fn weights(&mut self, w: &[T]) {
        let pick = |dst: &mut Vec<T>, taps: &[usize]| {
            dst.clear();
            dst.extend(taps.iter().map(|&t| w[t]));
        };
        pick(&mut self.wa, &self.tap_a);
        pick(&mut self.wsa, &self.tap_sa);
        pick(&mut self.wsb, &self.tap_sb);
        pick(&mut self.wb, &self.tap_b);
    }

    fn taps(&self) -> kernels::PairTaps<'_, T> {
        kernels::PairTaps {
            only_a: &self.only_a,
            wa: &self.wa,
            shared: &self.shared,
            shared_a: &self.wsa,
            shared_b: &self.wsb,
            only_b: &self.only_b,
            wb: &self.wb,
        }
    }
}

/// True when every input row holds its channels interleaved (`x[.., c, d, h, w]` at
/// `w·C + c`), so a kernel row's window is one contiguous run of `kw·C` elements.
/// A single channel with contiguous rows also qualifies when the kernel row is much longer
/// than the output row (few outputs, long windows: dot products beat row accumulation).
fn channels_interleaved<T>(x: &ArrayView5<'_, T>, k: &[usize], out_w: usize, g: &Geom) -> bool {
    let (cin, kw) = (k[1], k[4]);
    let st = x.strides();
    let interleaved = cin > 1 && st[1] == 1 && st[4] == cin as isize;
    let long_rows = cin == 1 && st[4] == 1 && out_w * 4 <= kw;
    g.dilation[2] == 1 && (interleaved || long_rows)
}

/// Channels-last path: every output is `kd·kh` dot products of length `kw·C`, four outputs
/// at a time ([`kernels::dots`]); no copy of the input at all.
fn run_channels_last<T: Scalar>(
    x: ArrayView5<'_, T>,
    k: ArrayView5<'_, T>,
    mut out: ArrayViewMut5<'_, T>,
    g: &Geom,
) {
    let [nb, cout, od, oh, ow] = *out.shape() else {
        unreachable!()
    };
    let [_, cin, kd, kh, kw] = *k.shape() else {
        unreachable!()
    };
    let [s0, s1, s2] = g.stride;
    let [d0, d1, _] = g.dilation;
    let xw = g.input_len(2, ow, kw);
    let len = kw * cin;
    // Kernel rows as (o, td, th) → [tw·C + c], the order of the input's memory.
    let krows_std = channels_inner(k);
    let krows = krows_std.as_slice().expect("standard layout");
    let starts: Vec<usize> = (0..ow).map(|w| w * s2 * cin).collect();
    // Input row `r` of depth slice `dd` of image `n`: one slice of the whole (H, W·C) plane
    // when its rows are evenly spaced in memory, else sliced row by row.
    let sh = x.strides()[3];
    // Each (image, depth slice) plane as one slice when it is one block of memory, found
    // once: slicing views per kernel row cost more than the dot products of small outputs
    // (a 64² kernel on a 64² input: 4.1 µs against 2.9 µs for the naive loop).
    let xd = x.shape()[2];
    let planes: Vec<Option<&[T]>> = (0..nb * xd)
        .map(|i| {
            x.slice_move(s![i / xd, .., i % xd, .., ..])
                .to_slice_memory_order()
                .filter(|_| sh > 0)
        })
        .collect();
    let row_of = |n: usize, dd: usize, r: usize| -> &[T] {
        match planes[n * xd + dd] {
            Some(mem) => &mem[r * sh as usize..][..xw * cin],
            None => {
                let row = x.slice_move(s![n, .., dd, r, ..xw]);
                row.to_slice_memory_order()
                    .expect("interleaved channels are contiguous")
            }
        }
    };
    // Add kernel rows `taps` (td·kh + th) of output row (n, o, d, h) into `row`.
    // Runs of kernel rows within one depth slice go to the kernel together: their input
    // rows are `d1` plane rows apart in one slice of memory.
    let add_rows = |[n, o, d, h]: [usize; 4], taps: std::ops::Range<usize>, row: &mut [T]| {
        let mut t = taps.start;
        while t < taps.end {
            let (td, th) = (t / kh, t % kh);
            let dd = d * s0 + td * d0;
            let r = h * s1 + th * d1;
            let kr = |count: usize| &krows[((o * kd + td) * kh + th) * len..][..count * len];
            match planes[n * xd + dd] {
                Some(mem) => {
                    let count = (kh - th).min(taps.end - t);
                    let step = sh as usize * d1;
                    let xs = &mem[r * sh as usize..][..(count - 1) * step + xw * cin];
                    kernels::dots(xs, step, count, &starts, kr(count), row);
                    t += count;
                }
                None => {
                    kernels::dots(row_of(n, dd, r), 0, 1, &starts, kr(1), row);
                    t += 1;
                }
            }
        }
    };
    // Few outputs with long sums (the kernel nearly as large as the input): the sum over
    // kernel rows is cut among the threads, each adding into its own copy of the outputs.
    let rows = kd * kh;
    let outputs = nb * cout * od * oh * ow;
    if g.threads > 1 && outputs <= 1 << 12 && rows >= 4 * g.threads {
        let parts = g.threads;
        let partial = |p: usize| {
            let mut acc = vec![T::zero(); outputs];
            for (i, row) in acc.chunks_exact_mut(ow).enumerate() {
                // Rows of `acc` in (n, o, d, h) order.
                let at = [
                    i / (cout * od * oh),
                    i / (od * oh) % cout,
                    i / oh % od,
                    i % oh,
                ];
                add_rows(at, p * rows / parts..(p + 1) * rows / parts, row);
            }
            acc
        };
        let mut partials = crate::team::map(parts, parts, partial);
        let mut sums = partials.swap_remove(0);
        for more in &partials {
            sums.iter_mut().zip(more).for_each(|(y, &v)| *y += v);
        }
        let shape = (nb, cout, od, oh, ow);
        out.assign(&ndarray::ArrayView5::from_shape(shape, &sums).expect("one sum per output"));
        return;
    }
    let mut row = vec![T::zero(); ow];
    for n in 0..nb {
        for d in 0..od {
            for h in 0..oh {
                for o in 0..cout {
                    row.fill(T::zero());
                    add_rows([n, o, d, h], 0..rows, &mut row);
                    out.slice_mut(s![n, o, d, h, ..])
                        .iter_mut()
                        .zip(&row)
                        .for_each(|(y, &v)| *y = v);
                }
            }
        }
    }
}

/// The kernel `(C_out, C, kd, kh, kw)` in standard order `(C_out, kd, kh, kw, C)`, the order
/// of a channels-last input's memory: borrowed when already in it (a signal's kernel shaped
/// like its input, not flipped), else one copy.
fn channels_inner<'a, T: Scalar>(k: ArrayView5<'a, T>) -> CowArray<'a, T, Ix5> {
    let p = k.permuted_axes([0, 2, 3, 4, 1]);
    if p.is_standard_layout() {
        CowArray::from(p)
    } else {
        CowArray::from(p.as_standard_layout().into_owned())
    }
}

/// Largest split step (stride × channels) [`run_flat`] takes at strides above 1.
const FLAT_STEP: usize = 10;
/// Largest split step (channels) [`run_flat`] takes at stride 1.
const FLAT_STEP_UNIT: usize = 16;

/// Whether a channels-last problem goes to [`run_flat`] rather than to dot products: where
/// every input row and every phase of the split is read (kernel at least as long as the
/// stride on each axis), the step is small, and the outputs are not few against the
/// kernel. Dot products of a short kernel row (`kw·C` of 15 to 45 values) spend more on
/// their reductions and tails than on their products: Rust loop, 2 threads, float64,
/// n×n×5 stride 2, dots → one long row: 256² ⋆ 3² 95 → 83 µs, 512² ⋆ 3² 354 → 295 µs,
/// 512² ⋆ 9² 1320 → 770 µs, 512² ⋆ 17² 3.44 → 2.15 ms, 1024² ⋆ 3² even (1.46 ms); n×n×3
/// stride 1, 512² ⋆ 3²: 811 → 225 µs. With stride 5 and 10 channels (step 50) it lost
/// (512² ⋆ 5²: 169 → 698 µs): rows and phases the kernel skips are copied, and dot
/// products of 50 values are efficient already. At stride 2 the split pays up to 5
/// channels (8 channels, 512² ⋆ 3²: 299 → 466 µs; 6 channels, 256²: 76 → 92 µs); at
/// stride 1, where the row kernel shares loads between neighbouring outputs and dot
/// products do not, up to 16 (256²×16 ⋆ 3²: 517 → 382 µs).
fn flat_rows<T>(k: &[usize], ow: usize, g: &Geom) -> bool {
    let [_, cin, kd, kh, kw] = *k else {
        return false;
    };
    flat_rows_pay(cin, [kd, kh, kw], g.stride, ow, std::mem::size_of::<T>())
}

/// [`flat_rows`] by sizes (shared with the cost model): `cin` interleaved channels, the
/// kernel's and the stride's lengths per axis, the output width, the element's bytes.
pub(crate) fn flat_rows_pay(
    cin: usize,
    [kd, kh, kw]: [usize; 3],
    [s0, s1, s2]: [usize; 3],
    ow: usize,
    elem_bytes: usize,
) -> bool {
    cin > 1
        && elem_bytes <= 8
        && kw >= s2
        && kh >= s1
        && kd >= s0
        && s2 * cin <= if s2 == 1 { FLAT_STEP_UNIT } else { FLAT_STEP }
        && ow >= kw.max(8)
}

/// Channels-last input as one channel: each input row's `W·C` interleaved values are one
/// row, the kernel's `kw·C` values per kernel row one run of taps, and the stride along it
/// `s·C`; the row path's phase split then separates channels and stride phases in one copy.
/// `xf` is the input as [`flat_view`] gives it.
fn run_flat<T: Scalar>(
    xf: ArrayView5<'_, T>,
    k: ArrayView5<'_, T>,
    out: ArrayViewMut5<'_, T>,
    g: &Geom,
) {
    let [cout, cin, kd, kh, kw] = *k.shape() else {
        unreachable!()
    };
    let k_std = channels_inner(k);
    let weights = k_std.as_slice().expect("standard layout");
    let kshape = [cout, 1, kd, kh, kw * cin];
    let gf = Geom {
        stride: [g.stride[0], g.stride[1], g.stride[2] * cin],
        dilation: [g.dilation[0], g.dilation[1], 1],
        threads: g.threads,
        stream: g.stream,
    };
    with_scratch(|sc| run_rows(xf, &kshape, weights, out, &gf, sc))
}

/// The channels-last input `(N, C, D, H, W)` as one channel `(N, 1, D, H, W·C)` whose rows
/// hold each input row's interleaved values; `None` if the width and channel axes do not
/// merge into one run of memory.
fn flat_view<T>(x: ArrayView5<'_, T>) -> Option<ArrayView5<'_, T>> {
    let mut xf = x.permuted_axes([0, 2, 3, 4, 1]);
    // Width into channels: axis 4 becomes the W·C values, axis 3 a single one.
    let merged = xf.merge_axes(ndarray::Axis(3), ndarray::Axis(4));
    (merged && xf.strides()[4] == 1).then(|| xf.permuted_axes([0, 3, 1, 2, 4]))
}

/// Row path: phase-split row buffers and the register-blocked row kernel.
/// `weights` is the kernel of shape `kshape` in standard order.
fn run_rows<T: Scalar>(
    x: ArrayView5<'_, T>,
    kshape: &[usize],
    weights: &[T],
    mut out: ArrayViewMut5<'_, T>,
    g: &Geom,
    scratch: &mut Scratch<T>,
) {
    let [nb, cout, od, oh, ow] = *out.shape() else {
        unreachable!()
    };
    let [_, cin, kd, kh, kw] = *kshape else {
        unreachable!()
    };
    let [s0, s1, s2] = g.stride;
    let [d0, d1, d2] = g.dilation;
    let xw = g.input_len(2, ow, kw);
    // Phase rows follow each other with no gap: the row kernel's overrun past a row's end
    // reads the next row (those lanes are dropped), and PAD after the last one.
    let plen = xw.div_ceil(s2);
    let ext1 = g.input_len(1, 1, kh);
    // One input row in the buffer: the phases some tap reads (tap `tw` reads phase
    // `tw·d2 % s2 ≤ tw·d2`, below the kernel's extent; a stride longer than the kernel
    // leaves the others unread, and a stride of 10⁹ must not buffer them).
    let phases = s2.min(g.input_len(2, 1, kw));
    let row_len = phases * plen;
    // Output rows per chunk: as many as keep the buffer near BUFFER_ELEMS; at least 8 where
    // chunks share input rows (kernel taller than the stride), so those are not copied too
    // often, else at least one (a vertical stride of 10¹² must not buffer the rows between).
    let per_row = cin * kd * s1.saturating_mul(row_len);
    let least = if s1 <= ext1 { 8 } else { 1 };
    let rows_chunk = (BUFFER_ELEMS.saturating_sub(cin * kd * ext1 * row_len) / per_row.max(1))
        .clamp(least, oh.max(least))
        .min(oh);
    let taps = cin * kd * kh * kw;
    let Scratch {
        buf,
        starts,
        row_starts,
        row,
        row2,
        pair,
    } = scratch;
    starts.resize(taps, 0);
    row_starts.resize(taps, 0);
    row.resize(ow, T::zero());
    row2.resize(ow, T::zero());
    // Output rows in pairs where [`pair_shift`] says so: buffer rows both read are loaded
    // once for both. Measured, one thread: float64 1024² ⋆ 17² stride 2 4.97 → 3.41 ms,
    // ⋆ 33² 17.7 → 12.1 ms; n×n×5 512² ⋆ 17² 7.08 → 5.25 ms; float32 512² ⋆ 17² stride 1
    // 2.40 → 1.51 ms; kernels of 3 or 5 rows unchanged.
    // The shift between output rows.
    let shift = s1 * row_len;
    // Each (channel, depth slice) block of the buffer holds up to a whole chunk's rows.
    let nrows_max = rows_chunk.saturating_sub(1) * s1 + ext1;
    let need = cin * kd * nrows_max * row_len + PAD;
    if buf.len() < need {
        buf.resize(need, T::zero());
    }
    // Tap list of a chunk's first row (the same for every chunk: each block starts with the
    // chunk's first input row); later rows shift by s1 buffer rows.
    let mut t = 0;
    for c in 0..cin {
        for td in 0..kd {
            for th in 0..kh {
                let rbase = ((c * kd + td) * nrows_max + th * d1) * row_len;
                for tw in 0..kw {
                    let off = tw * d2;
                    starts[t] = rbase + (off % s2) * plen + off / s2;
                    t += 1;
                }
            }
        }
    }
    // The pair lists (for a row shift of `q`) and the output channel whose weights they
    // hold, kept from one chunk to the next: building them costs divisions and gathers a
    // tap, as much as the kernel's work on a few outputs. With the rows kept from one chunk
    // to the next (below), interleaved, float64 n×n×5 ⋆ 17² stride 2, one thread: 256²
    // 1.18 → 1.03 ms, 1024² 31.4 → 28.5 ms; two threads: 512² 3.36 → 3.06 ms, 1024² 17.0 →
    // 14.8 ms; ⋆ 33² 256², one thread 4.04 → 3.38 ms.
    let (mut pair_made, mut weights_of) = (None, None);
    for n in 0..nb {
        for d in 0..od {
            // Input rows [a, b) already split, at the front of each block: the rows a chunk
            // shares with the one before are moved, not split again.
            let mut have = 0..0;
            let mut h0 = 0;
            while h0 < oh {
                let h1 = (h0 + rows_chunk).min(oh);
                let xh0 = h0 * s1;
                let nrows = (h1 - 1 - h0) * s1 + ext1;
                let kept = if have.contains(&xh0) {
                    have.end.min(xh0 + nrows) - xh0
                } else {
                    0
                };
                // Phase-split copy of the rows [xh0, xh0 + nrows) of every used depth slice.
                // Stale elements from earlier chunks only ever reach dropped lanes.
                for c in 0..cin {
                    for td in 0..kd {
                        let base = (c * kd + td) * nrows_max * row_len;
                        if kept > 0 {
                            let from = base + (xh0 - have.start) * row_len;
                            buf.copy_within(from..from + kept * row_len, base);
                        }
                        let rows = xh0 + kept..xh0 + nrows;
                        let plane = x.slice(s![n, c, d * s0 + td * d0, rows, ..xw]);
                        view::split_phases(
                            &mut buf[base + kept * row_len..],
                            plen,
                            plane,
                            s2,
                            xw,
                            phases,
                        );
                    }
                }
                have = xh0..xh0 + nrows;
                let paired = pair_shift(kh, s1, d1, h1 - h0, ow);
                if let Some(q) = paired.filter(|_| pair_made != paired) {
                    pair.lists(starts, (kh, kw), q, shift);
                    pair_made = paired;
                    weights_of = None;
                }
                for o in 0..cout {
                    let w = &weights[o * taps..(o + 1) * taps];
                    if paired.is_some() && weights_of != Some(o) {
                        pair.weights(w);
                        weights_of = Some(o);
                    }
                    let mut plane = out.slice_mut(s![n, o, d, h0..h1, ..]);
                    let rows = h1 - h0;
                    let mut i = 0;
                    while i < rows {
                        if paired.is_some() && i + 1 < rows {
                            let (mut ya, mut yb) = plane
                                .slice_mut(s![i..i + 2, ..])
                                .split_at(ndarray::Axis(0), 1);
                            let (mut ya, mut yb) = (ya.row_mut(0), yb.row_mut(0));
                            let taps = pair.taps();
                            match (ya.as_slice_mut(), yb.as_slice_mut()) {
                                (Some(a), Some(b)) => kernels::rows2(buf, i * shift, &taps, a, b),
                                _ => {
                                    kernels::rows2(buf, i * shift, &taps, row, row2);
                                    ya.assign(&ndarray::ArrayView1::from(&row[..]));
                                    yb.assign(&ndarray::ArrayView1::from(&row2[..]));
                                }
                            }
                            i += 2;
                            continue;
                        }
                        let mut dst = plane.row_mut(i);
                        for (rs, &s) in row_starts.iter_mut().zip(starts.iter()) {
                            *rs = s + i * shift;
                        }
                        match dst.as_slice_mut() {
                            Some(d) => kernels::rows(buf, row_starts, w, d),
                            None => {
                                kernels::rows(buf, row_starts, w, row);
                                dst.iter_mut().zip(row.iter()).for_each(|(y, &v)| *y = v);
                            }
                        }
                        i += 1;
                    }
                }
                h0 = h1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Pair;
    use crate::kernels::{self, PAD};

    /// Two output rows at once ([`kernels::rows2`] on [`Pair`]'s lists) against one at a
    /// time ([`kernels::rows`]): for a kernel of one plane the same sums in the same order,
    /// so equal to the bit, a NaN included (it reaches the same outputs), for kernels
    /// shorter and taller than the shift, row lengths around the chunk sizes, and the
    /// instruction set in use.
    #[test]
    fn two_rows_at_once_match_one_at_a_time() {
        for (kh, kw, q, n) in [
            (3, 3, 1, 37),
            (5, 2, 2, 200),
            (17, 17, 2, 64),
            (4, 1, 3, 9),
            (2, 5, 1, 130),
            (9, 4, 4, 3),
        ] {
            let plen = n + 11;
            let len = (kh + q) * plen + kw + PAD;
            let mut buf: Vec<f64> = (0..len)
                .map(|i| ((i * 7919) % 1013) as f64 / 97.0 - 5.0)
                .collect();
            buf[(kh / 2 + q) * plen + n / 2] = f64::NAN;
            let starts: Vec<usize> = (0..kh * kw).map(|t| (t / kw) * plen + t % kw).collect();
            let w: Vec<f64> = (0..kh * kw).map(|t| (t as f64 * 0.37).sin()).collect();
            let shift = q * plen;
            let one = |base: usize| {
                let at: Vec<usize> = starts.iter().map(|&s| s + base).collect();
                let mut y = vec![0.0; n];
                kernels::rows(&buf, &at, &w, &mut y);
                y
            };
            let mut pair = Pair::default();
            pair.lists(&starts, (kh, kw), q, shift);
            pair.weights(&w);
            let (mut a, mut b) = (vec![0.0; n], vec![0.0; n]);
            kernels::rows2(&buf, 0, &pair.taps(), &mut a, &mut b);
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            let case = format!("{kh}×{kw} kernel, shift {q} rows, {n} outputs");
            assert_eq!(bits(&a), bits(&one(0)), "first row, {case}");
            assert_eq!(bits(&b), bits(&one(shift)), "second row, {case}");
            assert!(a.iter().chain(&b).any(|v| v.is_nan()), "{case}: NaN unread");
        }
    }
}
