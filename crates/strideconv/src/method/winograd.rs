//! `winograd`: minimal filtering for stride-1 3×3 kernels, F(2×2, 3×3) and F(4×4, 3×3).
//!
//! Each `m × m` block of outputs of a plane (a *tile*) is computed from the `(m + 2)²`
//! input patch under it, in a transformed domain where a 3×3 correlation is an
//! element-wise product:
//!
//! `Y = Aᵀ [ Σ_c (G g_c Gᵀ) ⊙ (Bᵀ d_c B) ] A`
//!
//! with `g_c` the 3×3 kernel of input channel `c`, `d_c` the patch, and Lavin and Gray's
//! matrices: for F(2, 3) (`m = 2`, points 0, ±1, ∞) `B` is 4×4, `G` 4×3, `A` 4×2; for
//! F(4, 3) (`m = 4`, points 0, ±1, ±2, ∞) 6×6, 6×3, 6×4. The sum over input channels at
//! each point is a matrix product, `(output channels × input channels) · (input channels ×
//! tiles)`: per channel pair, 16 multiply-adds for 4 outputs (F(2, 3)) or 36 for 16
//! (F(4, 3)), where the definition takes 9 per output: 2.25× or 4× fewer. The products run
//! on the crate's matrix product ([`crate::kernels::gemm`]); the transforms are passes over
//! rows of tiles ([`crate::kernels::winograd_input`] and the others).
//!
//! float32 and complex64 take F(2, 3); float64 and complex128 F(4, 3), whose transforms'
//! larger coefficients cost more rounding than single precision has to spare. Measured
//! (Rust loop, one thread, float64): F(4, 3) against F(2, 3), 3×3 64 → 64 @56 2.69 →
//! 2.04 ms, 128 → 128 @28 2.41 → 2.10 ms, 256 → 256 @14 2.98 → 2.80 ms (a 14-wide plane
//! is 4 tiles of 4, an eighth of them padding); im2col takes 4.1–4.2 ms on each.
//!
//! Work is cut into *panels* of tiles: whole tile rows of a plane, or pieces of one long row,
//! sized so the products' vector lanes are filled and the threads finish together (see
//! [`cut`]). A panel's input is transformed channel by channel from the `m + 2` input rows
//! under each tile row (split into `m` phases, the last two rows reused by the next tile
//! row), its products run, and its outputs are transformed straight into the output. Panels
//! spread over the threads (and output channels too, when one image has too few panels); the
//! kernel is transformed once per call for the whole batch, and kept for an equal kernel on
//! the next call.
//!
//! Rounding: within 16 ε (F(2, 3)) or 128 ε (F(4, 3)) · Σ|x||k| per output, checked by the
//! tests. Under F(2, 3) a NaN reaches exactly the outputs whose windows hold it (no
//! transform multiplies by its zero coefficients); F(4, 3) spreads it over its tile; and
//! two infinities may meet as Inf − Inf in a transform where the direct sum has Inf + Inf.
//! So `auto` checks the result as it does an FFT's. Integers are refused: the kernel's
//! transform divides.

use std::sync::{Arc, Mutex};

use ndarray::{
    s, ArrayView2, ArrayView5, ArrayViewMut2, ArrayViewMut3, ArrayViewMut5, Axis, ShapeBuilder,
};

use super::{chunks, Algorithm, Geom, Tiling};
use crate::kernels::WINOGRAD_BLOCK as BLOCK;
use crate::scalar::Kind;
use crate::spec::ConvSpec;
use crate::Scalar;

/// The method, with the transformed kernel of the last call kept for the next one.
pub(crate) struct Winograd<T> {
    kept: Mutex<Option<Kept<T>>>,
}

/// A transformed kernel and the kernel it came from.
struct Kept<T> {
    tile: usize,
    shape: Vec<usize>,
    values: Vec<T>,
    u: Arc<Vec<T>>,
}

impl<T: Scalar> Winograd<T> {
    pub(crate) fn new() -> Self {
        Winograd {
            kept: Mutex::new(None),
        }
    }
}

/// Outputs per tile side for `T` on `planes` planes of `oh × ow` outputs with `cin` and
/// `cout` channels, on `threads` threads: F(4×4, 3×3) for float64 and complex128, whose
/// rounding leaves room for its larger transform coefficients, unless its panels would be
/// fewer than the threads; F(2×2, 3×3) otherwise.
///
/// Fewer panels than threads leave the threads to share output channels, each strip
/// transforming the panel's input again, and each reading its share of a transformed kernel
/// 36/9 the kernel's size for few tiles. Two threads, float64, F(4×4, 3×3) against
/// F(2×2, 3×3): 3×3 256 → 256 @14, one image (one panel of 4 × 4 tiles) 2.33 against
/// 1.66 ms, eight images 11.7 against 13.3 ms; 128 → 128 @28, one image (two panels)
/// 1.28 against 1.42 ms; 64 → 64 @56 1.14 against 1.62 ms.
pub(crate) fn tile<T: Scalar>(
    [oh, ow]: [usize; 2],
    [cin, cout]: [usize; 2],
    planes: usize,
    threads: usize,
) -> usize {
    if !matches!(T::NAME, "float64" | "complex128") {
        return 2;
    }
    let th = oh.div_ceil(4);
    // Panels as one thread would cut them (the least work in all).
    let rows = cut::<T>([th, ow.div_ceil(4)], [cin, cout], points(4), planes, 1).rows;
    if planes * th.div_ceil(rows) >= threads {
        4
    } else {
        2
    }
}

/// Points of the transformed domain for tiles of `tile × tile` outputs: `(tile + 2)²`.
pub(crate) fn points(tile: usize) -> usize {
    (tile + 2) * (tile + 2)
}

/// Bytes of kernel and transformed kernel kept between calls, at most (3×3 512 → 512 in
/// float32 is 26 MB with F(2×2, 3×3); 256 → 256 in float64 is 24 MB with F(4×4, 3×3)).
const KEPT_BYTES: usize = 32 << 20;

/// Bytes of a panel's transformed input and products together, at most (a panel of at least
/// one micro-kernel tile's width is always allowed).
const PANEL_BYTES: usize = 2 << 20;

/// Why `winograd` cannot compute `spec`, if it cannot.
pub(crate) fn refusal<T: Scalar>(spec: &ConvSpec) -> Option<String> {
    if T::KIND == Kind::Integer {
        return Some(
            "winograd's kernel transform divides (by 2, 6 and 24), so it rounds; integers are \
             computed exactly by the other methods"
                .into(),
        );
    }
    if spec.stride != [1; 3] {
        return Some(format!(
            "winograd computes stride 1 only (stride {:?})",
            &spec.stride[3 - spec.rank..]
        ));
    }
    if spec.dilation != [1; 3] {
        return Some(format!(
            "winograd computes dilation 1 only (dilation {:?})",
            &spec.dilation[3 - spec.rank..]
        ));
    }
    if spec.kernel[0] != 1 || spec.kernel[1] != 3 || spec.kernel[2] != 3 {
        return Some(format!(
            "winograd computes 3×3 kernels (one deep in 3-D) only (kernel {:?})",
            &spec.kernel[3 - spec.rank..]
        ));
    }
    None
}

/// How the work of a call is cut into items: panels of `rows` whole tile rows (`width`
/// = the row's tiles) or pieces of `width` tiles of one row, for each of `strips` strips of
/// output channels (`chunk` channels each, the last one short).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cut {
    pub rows: usize,
    pub width: usize,
    pub chunk: usize,
}

/// How `planes` planes of `th × tw` tiles with `cin`, `cout` channels are cut into items for
/// `threads` threads (see [`Cut`]).
///
/// A panel's tiles are the columns of its products (one per point), which run in vectors of
/// `lanes` columns, and a panel's transformed input and products are held to
/// [`PANEL_BYTES`]. When a row is longer than a panel it is cut into pieces of whole
/// vectors. Otherwise, among the row counts that fit, the one taken finishes first when the
/// items go to the threads in turn ([`makespan`]), each costed by [`item_cost`] (idle lanes
/// cost as much as used ones); the larger on a tie. Then, as `run` cuts them:
/// - fewer panels than threads: rows are cut to give each thread one (256 → 256 @14, float64,
///   F(4×4, 3×3): one panel in four strips 2.31 ms, two panels in two 2.12 ms, 2 threads);
/// - fewer items than two a thread (one small image): output channels are cut into strips
///   of the product's eight rows too, each strip transforming the panel's input again.
///
/// Measured on 64 → 64 @56 float32 (F(2×2, 3×3)), one thread: one tile row per panel (28
/// tiles, 2 vectors, 4 lanes idle, and panels held to 512 KiB) 1.80 ms, four rows (112 tiles,
/// 7 vectors, none idle) 1.51 ms. On two threads that layer's eight-row panels (8, 8, 8 and
/// 4 rows: 16 rows on one thread, 12 on the other) took 0.84 ms, seven-row ones (a vector's
/// 12 lanes idle in each, 14 rows a thread) 0.68 ms (interleaved, best of 6 rounds).
pub(crate) fn cut<T>(
    [th, tw]: [usize; 2],
    [cin, cout]: [usize; 2],
    points: usize,
    planes: usize,
    threads: usize,
) -> Cut {
    let elem = std::mem::size_of::<T>().max(1);
    let lanes = (64 / elem).max(1);
    let most = (PANEL_BYTES / (points * (cin + cout) * elem).max(1)).max(3 * lanes);
    let (planes, threads) = (planes.max(1), threads.max(1));
    let shape = |rows: usize| {
        let mut per = rows;
        if threads > 1 && planes * th.div_ceil(per) < threads {
            per = th.div_ceil(threads.div_ceil(planes)).max(1);
        }
        let row_items = planes * th.div_ceil(per);
        let strips = if threads > 1 && row_items < 2 * threads {
            (2 * threads)
                .div_ceil(row_items)
                .min(cout.div_ceil(32))
                .max(1)
        } else {
            1
        };
        let chunk = cout.div_ceil(strips).next_multiple_of(8).min(cout).max(1);
        (per, chunk)
    };
    if tw >= most {
        let (rows, chunk) = shape(1);
        return Cut {
            rows,
            width: most / (3 * lanes) * 3 * lanes,
            chunk,
        };
    }
    let finish = |rows: usize| {
        let (per, chunk) = shape(rows);
        let strips: Vec<usize> = (0..cout)
            .step_by(chunk)
            .map(|c0| chunk.min(cout - c0))
            .collect();
        makespan(th, per, planes, &strips, threads, |r, oc| {
            item_cost(r * tw, lanes, cin, oc)
        })
    };
    let rows = (1..=th.min(most / tw).max(1))
        .map(|rows| shape(rows).0)
        .min_by(|&a, &b| finish(a).cmp(&finish(b)).then(b.cmp(&a)))
        .unwrap_or(1);
    let (rows, chunk) = shape(rows);
    Cut {
        rows,
        width: tw,
        chunk,
    }
}

/// The work of an item of `tiles` tiles and `cin` × `oc` channel pairs, per point, in
/// multiply-adds: the products, on whole vectors of `lanes` tiles, with a vector's worth more
/// for reading the item's share of the transformed kernel, and the transforms of its input
/// (each channel, again in each strip) and of its outputs, ~16 a tile and channel (float32
/// 64 → 64 @56, profiled: the products 48% of the time, the two transforms 13 and 12%).
fn item_cost(tiles: usize, lanes: usize, cin: usize, oc: usize) -> usize {
    if tiles == 0 {
        return 0;
    }
    (tiles.next_multiple_of(lanes) + lanes) * cin * oc + 16 * tiles * (cin + oc)
}

/// When the last of `threads` threads is done with the items of `planes` planes, each cut
/// into `strips` (their channel counts), each strip into panels of `rows` of its `th` tile
/// rows (the last holds the rest), a panel costing `cost(rows, channels)`, taken in that
/// order by the thread that is free first.
fn makespan(
    th: usize,
    rows: usize,
    planes: usize,
    strips: &[usize],
    threads: usize,
    cost: impl Fn(usize, usize) -> usize,
) -> usize {
    let rows = rows.max(1);
    let threads = threads.max(1);
    let items = planes * strips.len() * th.div_ceil(rows);
    if items > 16 * threads {
        // Many items a thread: the last ones even the threads out.
        let plane: usize = (strips.iter())
            .map(|&oc| th / rows * cost(rows, oc) + cost(th % rows, oc))
            .sum();
        return (planes * plane).div_ceil(threads);
    }
    let mut busy = vec![0usize; threads];
    for _ in 0..planes {
        for &oc in strips {
            for r0 in (0..th).step_by(rows) {
                let first = busy.iter_mut().min().expect("at least one thread");
                *first += cost(rows.min(th - r0), oc);
            }
        }
    }
    busy.into_iter().max().unwrap_or(0)
}

impl<T: Scalar> Winograd<T> {
    /// The transformed kernel of `k`: the kept one when `k` equals, value for value, the
    /// kernel of the last call (a plan called again with the same weights, as in
    /// inference), else made now (and kept, when not too large).
    fn transformed(&self, k: ArrayView5<'_, T>, tile: usize, threads: usize) -> Arc<Vec<T>> {
        let k = k.as_standard_layout();
        let flat = k.as_slice().expect("standard layout");
        let pts = points(tile);
        let keep = (flat.len() + flat.len() / 9 * pts) * std::mem::size_of::<T>() <= KEPT_BYTES;
        let mut slot = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(kept) = slot.as_ref() {
            if kept.tile == tile
                && kept.shape == k.shape()
                && super::equal(&kept.values, flat, threads)
            {
                return kept.u.clone();
            }
        }
        // Freed first, so the new one reuses its memory.
        *slot = None;
        let u = Arc::new(kernel_transform(
            flat,
            k.shape()[0],
            k.shape()[1],
            tile,
            threads,
        ));
        if keep {
            *slot = Some(Kept {
                tile,
                shape: k.shape().to_vec(),
                values: flat.to_vec(),
                u: u.clone(),
            });
        }
        u
    }
}

impl<T: Scalar> Algorithm<T> for Winograd<T> {
    fn tiling(&self) -> Tiling {
        // The whole batch is one block, so the kernel is transformed once per call; panels
        // (and output channels, for a lone image) are spread over the threads here.
        Tiling {
            split_channels: false,
            split_rows: false,
            whole_batch: true,
        }
    }

    fn run(
        &self,
        x: ArrayView5<'_, T>,
        k: ArrayView5<'_, T>,
        mut out: ArrayViewMut5<'_, T>,
        g: &Geom,
    ) {
        let [nb, cout, od, oh, ow] = *out.shape() else {
            unreachable!()
        };
        let cin = k.shape()[1];
        debug_assert_eq!(&k.shape()[2..], &[1, 3, 3]);
        debug_assert_eq!((g.stride, g.dilation), ([1; 3], [1; 3]));
        if nb * cout * od * oh * ow == 0 {
            return;
        }
        if cin == 0 {
            out.fill(T::zero());
            return;
        }
        let threads = g.threads.max(1);
        let m = tile::<T>([oh, ow], [cin, cout], nb * od, threads);
        let u = self.transformed(k, m, threads);
        let x = x.as_standard_layout();
        let (th, tw) = (oh.div_ceil(m), ow.div_ceil(m));
        let planes = nb * od;
        let Cut {
            rows: per,
            width,
            chunk: ch_chunk,
        } = cut::<T>([th, tw], [cin, cout], points(m), planes, threads);
        let tc = per * width;
        let mut items = Vec::new();
        for (n, out_n) in chunks(out.view_mut(), 0, 1).into_iter().enumerate() {
            for (ci, out_c) in chunks(out_n, 1, ch_chunk).into_iter().enumerate() {
                for (d, out_d) in chunks(out_c, 2, 1).into_iter().enumerate() {
                    for (ri, out_r) in chunks(out_d, 3, m * per).into_iter().enumerate() {
                        let plane = out_r
                            .index_axis_move(Axis(0), 0)
                            .index_axis_move(Axis(1), 0);
                        items.push(Item {
                            n,
                            d,
                            c0: ci * ch_chunk,
                            ty0: ri * per,
                            out: plane,
                        });
                    }
                }
            }
        }
        let geo = Geo {
            tile: m,
            cin,
            cout,
            ow,
            tw,
            tc,
            tcs: tc + BLOCK,
        };
        crate::team::for_items_init(
            threads,
            items,
            || Scratch::<T>::new(&geo),
            |sc, item| run_item(&x.view(), &u, item, &geo, sc),
        )
    }
}

/// Sizes shared by every item of a call.
struct Geo {
    /// Outputs per tile side.
    tile: usize,
    cin: usize,
    cout: usize,
    ow: usize,
    /// Tiles per output row.
    tw: usize,
    /// Tiles per panel.
    tc: usize,
    /// Row stride of the panel matrices: `tc` and room for the transforms' last block.
    tcs: usize,
}

/// Some output rows (whole tile rows, from tile row `ty0`) of some output channels (from
/// `c0`) of one plane of one image: `out` is `(channels, rows, ow)`.
struct Item<'a, T> {
    n: usize,
    d: usize,
    c0: usize,
    ty0: usize,
    out: ArrayViewMut3<'a, T>,
}

/// One thread's buffers: a panel's transformed input `v` (`points × cin × tcs`), its
/// products `m` (`points × cout × tcs`), the `tile + 2` input rows under a tile row each
/// split into `tile` phases (columns `tile·u + p`), one input row padded with zeros, and
/// `tile` output rows.
struct Scratch<T> {
    v: Vec<T>,
    m: Vec<T>,
    phases: Vec<T>,
    row: Vec<T>,
    y: Vec<T>,
}

impl<T: Scalar> Scratch<T> {
    fn new(geo: &Geo) -> Self {
        let piece = geo.tw.min(geo.tc);
        let whole = piece.next_multiple_of(BLOCK);
        let (m, alpha) = (geo.tile, geo.tile + 2);
        Scratch {
            // Written before they are read (every panel's tiles, then its products).
            v: crate::kernels::output::<T>(points(geo.tile) * geo.cin * geo.tcs),
            m: crate::kernels::output::<T>(points(geo.tile) * geo.cout * geo.tcs),
            phases: vec![T::zero(); alpha * m * (whole + 1)],
            row: vec![T::zero(); m * (piece + 1)],
            y: vec![T::zero(); m * m * whole],
        }
    }
}

/// The kernel (`cout × cin` 3×3 kernels, contiguous) in the transformed domain,
/// `(cout, points, cin)`: `G g Gᵀ` for each channel pair, point `(ξ, ν)` at
/// `(tile + 2)·ξ + ν`; the matrix of point `p` is rows `o·points + p`.
/// Output channels are spread over the threads.
fn kernel_transform<T: Scalar>(
    flat: &[T],
    cout: usize,
    cin: usize,
    tile: usize,
    threads: usize,
) -> Vec<T> {
    let mut u = crate::kernels::output::<T>(cout * points(tile) * cin);
    let per = points(tile) * cin;
    let chunk = cout.div_ceil(threads.max(1) * 4).max(1);
    crate::team::for_chunks_mut(threads, &mut u, chunk * per, |i, dst| {
        for (oi, uo) in dst.chunks_mut(per).enumerate() {
            let o = i * chunk + oi;
            let src = &flat[o * cin * 9..(o + 1) * cin * 9];
            if tile == 4 {
                crate::kernels::winograd_kernel4(src, uo);
            } else {
                crate::kernels::winograd_kernel(src, uo);
            }
        }
    });
    u
}

/// Compute one item: its panels, each transformed in, multiplied and transformed out.
fn run_item<T: Scalar>(
    x: &ArrayView5<'_, T>,
    u: &[T],
    mut item: Item<'_, T>,
    geo: &Geo,
    sc: &mut Scratch<T>,
) {
    let oc = item.out.shape()[0];
    let rows = item.out.shape()[1].div_ceil(geo.tile);
    let pts = points(geo.tile);
    let (tw, tc, tcs, cin) = (geo.tw, geo.tc, geo.tcs, geo.cin);
    // Panels: the item's tile rows whole, or pieces of its one row when a row is longer
    // than a panel.
    let piece = tw.min(tc);
    let mut tx0 = 0;
    while tx0 < tw {
        let pw = piece.min(tw - tx0);
        let nt = rows * pw;
        for c in 0..cin {
            let plane = x.slice(s![item.n, c, item.d, .., ..]);
            transform_input(&plane, c, (item.ty0, rows), (tx0, pw), geo, sc);
        }
        for p in 0..pts {
            let lhs = ArrayView2::from_shape(
                (oc, cin).strides((pts * cin, 1)),
                &u[(item.c0 * pts + p) * cin..],
            )
            .expect("kernel matrix in bounds");
            let rhs = ArrayView2::from_shape((cin, nt).strides((tcs, 1)), &sc.v[p * cin * tcs..])
                .expect("panel in bounds");
            let dst =
                ArrayViewMut2::from_shape((oc, nt).strides((tcs, 1)), &mut sc.m[p * oc * tcs..])
                    .expect("products in bounds");
            super::im2col::multiply(dst, lhs, rhs, false, false);
        }
        transform_output(&mut item.out, &sc.m, &mut sc.y, oc, (rows, pw, tx0), geo);
        tx0 += pw;
    }
}

/// `Bᵀ d B` of every tile of a panel (tile rows `ty0 ..+ rows`, columns `tx0 ..+ pw`) of
/// input channel `c` (`plane`, contiguous), into `v[point][c][tile]`. Rows and columns past
/// the plane's end read as zeros (a last tile whose later output rows or columns do not
/// exist).
fn transform_input<T: Scalar>(
    plane: &ArrayView2<'_, T>,
    c: usize,
    (ty0, rows): (usize, usize),
    (tx0, pw): (usize, usize),
    geo: &Geo,
    sc: &mut Scratch<T>,
) {
    let (h, w) = plane.dim();
    let flat = plane.as_slice().expect("a contiguous plane");
    let (m, alpha) = (geo.tile, geo.tile + 2);
    // A tile row's input rows hold its tiles' columns m·tx0 .. m·(tx0 + pw) + 2, read as
    // pw + 1 columns of each of the m phases.
    let width = m * (pw + 1);
    let col0 = m * tx0;
    let have = w.saturating_sub(col0).min(width);
    let (tcs, cin) = (geo.tcs, geo.cin);
    // Each phase of each row, with room for the transform's last block.
    let half = pw.next_multiple_of(BLOCK) + 1;
    let Scratch { v, phases, row, .. } = sc;
    // Slots of the rows in `phases`: a tile row's last two input rows are the next one's
    // first two, so only `m` rows are split per tile row after the first.
    let mut slot = [0, 1, 2, 3, 4, 5];
    for ty in 0..rows {
        let fresh = if ty == 0 {
            0
        } else {
            slot[..alpha].rotate_left(m);
            2
        };
        for (i, &si) in slot[..alpha].iter().enumerate().skip(fresh) {
            let r = m * (ty0 + ty) + i;
            let src: &[T] = if r < h && have == width {
                &flat[r * w + col0..][..width]
            } else {
                let buf = &mut row[..width];
                if r < h {
                    buf[..have].copy_from_slice(&flat[r * w + col0..][..have]);
                    buf[have..].fill(T::zero());
                } else {
                    buf.fill(T::zero());
                }
                buf
            };
            let dst = &mut phases[si * m * half..(si + 1) * m * half];
            if m == 2 {
                let (e, o) = dst.split_at_mut(half);
                crate::kernels::deinterleave(src, &mut e[..pw + 1], &mut o[..pw + 1]);
            } else {
                for (p, ph) in dst.chunks_mut(half).enumerate() {
                    crate::kernels::pick(&mut ph[..pw + 1], &src[p..], m);
                }
            }
        }
        let at = c * tcs + ty * pw;
        let part = |i: usize, p: usize| -> &[T] {
            let base = (slot[i] * m + p) * half;
            &phases[base..base + half]
        };
        if m == 2 {
            let ev: [&[T]; 4] = std::array::from_fn(|i| part(i, 0));
            let od: [&[T]; 4] = std::array::from_fn(|i| part(i, 1));
            crate::kernels::winograd_input(ev, od, &mut v[at..], cin * tcs, pw);
        } else {
            let ph: [[&[T]; 4]; 6] = std::array::from_fn(|i| std::array::from_fn(|p| part(i, p)));
            crate::kernels::winograd_input4(ph, &mut v[at..], cin * tcs, pw);
        }
    }
}

/// `Aᵀ M A` of every tile of a panel into the item's output rows (`out` is
/// `(channels, rows, ow)`); outputs past the plane's end are dropped.
fn transform_output<T: Scalar>(
    out: &mut ArrayViewMut3<'_, T>,
    mp: &[T],
    y: &mut [T],
    oc: usize,
    (rows, pw, tx0): (usize, usize, usize),
    geo: &Geo,
) {
    let (tcs, m) = (geo.tcs, geo.tile);
    let out_rows = out.shape()[1];
    let col0 = m * tx0;
    let cols = (geo.ow - col0).min(m * pw);
    let line = m * pw.next_multiple_of(BLOCK);
    for o in 0..oc {
        let mut chan = out.index_axis_mut(Axis(0), o);
        for ty in 0..rows {
            let src = &mp[o * tcs + ty * pw..];
            let mut lines = y[..m * line].chunks_mut(line);
            if m == 2 {
                let (t, b) = (lines.next().unwrap(), lines.next().unwrap());
                crate::kernels::winograd_output(src, oc * tcs, pw, t, b);
            } else {
                let four: [&mut [T]; 4] = std::array::from_fn(|_| lines.next().unwrap());
                crate::kernels::winograd_output4(src, oc * tcs, pw, four);
            }
            for (a, ya) in y[..m * line].chunks(line).enumerate() {
                let r = m * ty + a;
                if r >= out_rows {
                    break;
                }
                let mut dst = chan.slice_mut(s![r, col0..col0 + cols]);
                match dst.as_slice_mut() {
                    Some(d) => d.copy_from_slice(&ya[..cols]),
                    None => dst.assign(&ndarray::ArrayView1::from(&ya[..cols])),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_share_the_tiles_evenly_among_the_threads() {
        let cut_f32 = |planes, threads| cut::<f32>([28, 28], [64, 64], 16, planes, threads);
        // 64 → 64 @56 float32, F(2×2, 3×3): 28 × 28 tiles, at most 9 rows a panel.
        // One thread: whole vectors in every panel (8, 8, 8, 4 rows; 4 would tie).
        assert_eq!(
            cut_f32(1, 1),
            Cut {
                rows: 8,
                width: 28,
                chunk: 64
            }
        );
        // Two threads: 8-row panels leave one thread 12 rows against 16; 7-row ones, 14 each.
        assert_eq!(
            cut_f32(1, 2),
            Cut {
                rows: 7,
                width: 28,
                chunk: 64
            }
        );
        // Eight images: 32 panels of 8 rows share out evenly.
        assert_eq!(
            cut_f32(8, 2),
            Cut {
                rows: 8,
                width: 28,
                chunk: 64
            }
        );
        // One 14 × 14-tile image of 128 channels: two panels (9 and 5 rows: 128 and 80 lanes,
        // 12 idle), each in two strips of channels.
        let c = cut::<f32>([14, 14], [128, 128], 16, 1, 2);
        assert_eq!((c.rows, c.chunk), (9, 64), "{c:?}");
        // A row longer than a panel is cut into pieces of whole vectors.
        let c = cut::<f64>([10, 4096], [256, 256], 36, 1, 2);
        assert_eq!(c.rows, 1);
        assert!(c.width < 4096 && c.width.is_multiple_of(24), "{c:?}");
    }

    #[test]
    fn makespan_follows_the_busiest_thread() {
        let rows = |r: usize, _| r;
        assert_eq!(makespan(28, 8, 1, &[1], 2, rows), 16);
        assert_eq!(makespan(28, 7, 1, &[1], 2, rows), 14);
        assert_eq!(makespan(28, 7, 1, &[1], 1, rows), 28);
        assert_eq!(makespan(5, 2, 3, &[1], 2, rows), 8);
        // Strips: each plane's rows once per strip, costed by its channels.
        assert_eq!(makespan(4, 4, 1, &[8, 8, 4], 2, |r, oc| r * oc), 48);
        // Many items: the total shared out.
        assert_eq!(makespan(100, 1, 10, &[1], 2, rows), 500);
    }
}
