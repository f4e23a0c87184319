//! The methods, one module each, behind one trait, and the driver that tiles a problem into
//! independent blocks and runs them on threads.
//!
//! A method sees only the core problem: a *valid* (already padded), ungrouped, strided
//! correlation of a canonical input block with a canonical kernel block into an output
//! block. Groups, batch, padding, flips, dtype conversion and threading are done once, here
//! and in [`crate::plan`], for all methods alike.

use std::sync::OnceLock;

use ndarray::{s, ArrayView5, ArrayViewMut5, Axis};

use crate::spec::{extent, SPATIAL};
use crate::Scalar;

pub(crate) mod depthwise;
pub(crate) mod direct;
pub(crate) mod fft;
pub(crate) mod im2col;
pub(crate) mod naive;
pub(crate) mod shift_add;
pub(crate) mod winograd;

/// Stride and dilation of the core problem, canonical axes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Geom {
    pub stride: [usize; SPATIAL],
    pub dilation: [usize; SPATIAL],
    /// Threads the block may run on ([`crate::team`]); a method parallelises inside a block
    /// only when this is above 1.
    pub threads: usize,
    /// The whole call's output is much larger than the caches: a method may write its final
    /// values past them (non-temporal stores), sparing the read of each line a store that
    /// misses the caches makes first.
    pub stream: bool,
}

impl Geom {
    /// Input length along axis `a` needed for `out_len` outputs with kernel length `f`.
    #[inline]
    pub fn input_len(&self, a: usize, out_len: usize, f: usize) -> usize {
        (out_len - 1) * self.stride[a] + extent(f, self.dilation[a])
    }
}

/// How a method wants its work cut into blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tiling {
    /// Output channels may be computed in separate blocks.
    pub split_channels: bool,
    /// Output rows (and depth slices) may be computed in separate blocks.
    pub split_rows: bool,
    /// All images of a group are one block (the method shares work across the batch and
    /// spreads it over the threads itself); otherwise every image is a block of its own.
    pub whole_batch: bool,
}

/// One method. `run` computes, for every index,
/// `out[n, o, od, oh, ow] = Σ_{c, t} x[n, c, od·s_d + t_d·dil_d, ...] · k[o, c, t_d, t_h, t_w]`
/// where the output block's shape decides how many outputs there are; `x` is at least long
/// enough. `x` and `k` may have any strides.
pub(crate) trait Algorithm<T: Scalar>: Send + Sync {
    fn tiling(&self) -> Tiling;
    fn run(&self, x: ArrayView5<'_, T>, k: ArrayView5<'_, T>, out: ArrayViewMut5<'_, T>, g: &Geom);

    /// Depthwise blocks: output channel `c` reads input channel `c` only (`x`, `k` and `out`
    /// have the same number of channels, `k` one input channel each). By default one `run`
    /// per channel; a method may share its set-up across the channels.
    fn run_depthwise(
        &self,
        x: ArrayView5<'_, T>,
        k: ArrayView5<'_, T>,
        mut out: ArrayViewMut5<'_, T>,
        g: &Geom,
    ) {
        for c in 0..out.shape()[1] {
            self.run(
                x.slice(s![.., c..c + 1, .., .., ..]),
                k.slice(s![c..c + 1, .., .., .., ..]),
                out.slice_mut(s![.., c..c + 1, .., .., ..]),
                g,
            );
        }
    }
}

/// Multiply-adds below which a problem runs on one thread whatever the plan's count (at
/// 5e4, seed 200² ⋆ 3² on 2 threads took 13.4 µs against 10.6 µs on one: its input is hot in
/// the caller's cache).
pub(crate) const PARALLEL_MACS: f64 = 2e5;

/// Number of threads used when the caller does not say.
/// (Asked once: the query costs tens of microseconds.)
pub(crate) fn default_threads() -> usize {
    static THREADS: OnceLock<usize> = OnceLock::new();
    *THREADS.get_or_init(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    })
}

/// Cut a mutable view into consecutive pieces of `chunk` along `axis`, keeping its lifetime.
fn chunks<T>(mut v: ArrayViewMut5<'_, T>, axis: usize, chunk: usize) -> Vec<ArrayViewMut5<'_, T>> {
    let mut pieces = Vec::new();
    while v.shape()[axis] > chunk {
        let (head, tail) = v.split_at(Axis(axis), chunk);
        pieces.push(head);
        v = tail;
    }
    pieces.push(v);
    pieces
}

/// `a == b` element by element (NaN unequal to itself, as `==` has it), in blocks without
/// an early exit, which the compiler vectorises (a slice's `==` stops at the first
/// difference and compares one element at a time: 12% of a winograd 256 → 256 @14 call),
/// spread over `threads` threads when long.
pub(super) fn equal<T: Scalar>(a: &[T], b: &[T], threads: usize) -> bool {
    let same = |a: &[T], b: &[T]| {
        a.chunks(64)
            .zip(b.chunks(64))
            .all(|(x, y)| x.iter().zip(y).fold(true, |all, (p, q)| all & (p == q)))
    };
    if a.len() != b.len() {
        return false;
    }
    if threads <= 1 || a.len() < 1 << 16 {
        return same(a, b);
    }
    let piece = a.len().div_ceil(threads);
    crate::team::map(threads, threads, |i| {
        let r = (i * piece).min(a.len())..((i + 1) * piece).min(a.len());
        same(&a[r.clone()], &b[r])
    })
    .into_iter()
    .all(|s| s)
}

/// Run `alg` over the whole (padded, canonical) problem, in blocks, on `threads` threads.
pub(crate) fn drive<T: Scalar>(
    alg: &dyn Algorithm<T>,
    x: ArrayView5<'_, T>,
    k: ArrayView5<'_, T>,
    mut out: ArrayViewMut5<'_, T>,
    groups: usize,
    g: &Geom,
    threads: usize,
) {
    let tiling = alg.tiling();
    let cin_g = x.shape()[1] / groups;
    let cout_g = out.shape()[1] / groups;
    let want = if threads > 1 { 4 * threads } else { 1 };
    if groups > 1 && cin_g == 1 && cout_g == 1 && out.shape()[0] * groups >= want {
        return drive_depthwise(alg, x, k, out, g, threads, want);
    }
    let [od, oh] = [out.shape()[2], out.shape()[3]];
    let [kd, kh] = [k.shape()[2], k.shape()[3]];
    if threads <= 1 && groups == 1 && (out.shape()[0] == 1 || tiling.whole_batch) {
        // One block, the whole problem: what the loop below would make, without its
        // splitting (a tenth of the seed's 7×7 call).
        let dl = g.input_len(0, od, kd);
        let hl = g.input_len(1, oh, kh);
        // Slicing five axes costs a twentieth of that call: skipped when it cuts nothing.
        let x = if [dl, hl] == [x.shape()[2], x.shape()[3]] {
            x
        } else {
            x.slice_move(s![.., .., ..dl, ..hl, ..])
        };
        return alg.run(x, k, out, &Geom { threads: 1, ..*g });
    }
    // Aim for a few blocks per thread so uneven blocks still balance.
    let fixed = out.shape()[0] * groups;
    let ch_chunk = if tiling.split_channels && fixed < want {
        cout_g.div_ceil((want / fixed).max(1)).max(1)
    } else {
        cout_g
    };
    let ch_blocks = cout_g.div_ceil(ch_chunk);
    let row_chunk = if tiling.split_rows && fixed * ch_blocks < want {
        let per = (want / (fixed * ch_blocks)).max(1);
        (od * oh).div_ceil(per).max(1)
    } else {
        od * oh
    };
    // Rows are cut along OH within one depth slice when a block is smaller than a slice,
    // else whole depth slices are grouped.
    let (d_chunk, h_chunk) = if row_chunk >= oh {
        ((row_chunk / oh).max(1), oh)
    } else {
        (1, row_chunk)
    };

    let images = if tiling.whole_batch {
        out.shape()[0].max(1)
    } else {
        1
    };
    let mut blocks = Vec::new();
    for (ni, out_n) in chunks(out.view_mut(), 0, images).into_iter().enumerate() {
        let n = ni * images;
        let n1 = n + out_n.shape()[0];
        for (gi, out_g) in chunks(out_n, 1, cout_g).into_iter().enumerate() {
            let x_g = x.slice_move(s![n..n1, gi * cin_g..(gi + 1) * cin_g, .., .., ..]);
            for (ci, out_c) in chunks(out_g, 1, ch_chunk).into_iter().enumerate() {
                let c0 = gi * cout_g + ci * ch_chunk;
                let k_c = k.slice_move(s![c0..c0 + out_c.shape()[1], .., .., .., ..]);
                for (di, out_d) in chunks(out_c, 2, d_chunk).into_iter().enumerate() {
                    for (hi, out_h) in chunks(out_d, 3, h_chunk).into_iter().enumerate() {
                        let (d0, h0) = (di * d_chunk, hi * h_chunk);
                        let dl = g.input_len(0, out_h.shape()[2], kd);
                        let hl = g.input_len(1, out_h.shape()[3], kh);
                        let (xd0, xh0) = (d0 * g.stride[0], h0 * g.stride[1]);
                        let x_b = x_g.slice_move(s![.., .., xd0..xd0 + dl, xh0..xh0 + hl, ..]);
                        blocks.push((x_b, k_c, out_h));
                    }
                }
            }
        }
    }
    run_blocks(blocks, threads, g, |xb, kb, ob, g| alg.run(xb, kb, ob, g));
}

/// Depthwise problems (one input and one output channel per group): blocks of whole
/// channels, at least `want` of them over the batch.
fn drive_depthwise<T: Scalar>(
    alg: &dyn Algorithm<T>,
    x: ArrayView5<'_, T>,
    k: ArrayView5<'_, T>,
    mut out: ArrayViewMut5<'_, T>,
    g: &Geom,
    threads: usize,
    want: usize,
) {
    let [nb, channels] = [out.shape()[0], out.shape()[1]];
    let per_image = want.div_ceil(nb).max(1);
    let ch_chunk = channels.div_ceil(per_image).max(1);
    let mut blocks = Vec::new();
    for (n, out_n) in chunks(out.view_mut(), 0, 1).into_iter().enumerate() {
        for (ci, out_c) in chunks(out_n, 1, ch_chunk).into_iter().enumerate() {
            let (c0, c1) = (ci * ch_chunk, ci * ch_chunk + out_c.shape()[1]);
            let x_b = x.slice_move(s![n..n + 1, c0..c1, .., .., ..]);
            let k_b = k.slice_move(s![c0..c1, .., .., .., ..]);
            blocks.push((x_b, k_b, out_c));
        }
    }
    run_blocks(blocks, threads, g, |xb, kb, ob, g| {
        alg.run_depthwise(xb, kb, ob, g)
    });
}

type Block<'a, T> = (ArrayView5<'a, T>, ArrayView5<'a, T>, ArrayViewMut5<'a, T>);

/// Run the blocks: in order on this thread, or spread over `threads` threads.
fn run_blocks<T: Scalar>(
    blocks: Vec<Block<'_, T>>,
    threads: usize,
    g: &Geom,
    run: impl Fn(ArrayView5<'_, T>, ArrayView5<'_, T>, ArrayViewMut5<'_, T>, &Geom) + Sync,
) {
    if threads <= 1 {
        let g = Geom { threads: 1, ..*g };
        for (xb, kb, ob) in blocks {
            run(xb, kb, ob, &g);
        }
    } else if blocks.len() == 1 {
        // One block: the method may use the threads inside it.
        let g = Geom { threads, ..*g };
        for (xb, kb, ob) in blocks {
            run(xb, kb, ob, &g);
        }
    } else {
        let g = Geom { threads: 1, ..*g };
        crate::team::for_items(threads, blocks, |(xb, kb, ob)| run(xb, kb, ob, &g));
    }
}
