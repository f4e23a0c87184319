//! `winograd`: minimal filtering F(2×2, 3×3) for stride-1 3×3 kernels.
//!
//! Each 2×2 block of outputs of a plane (a *tile*) is computed from the 4×4 input patch
//! under it, in a transformed domain where a 3×3 correlation is an element-wise product:
//!
//! `Y = Aᵀ [ Σ_c (G g_c Gᵀ) ⊙ (Bᵀ d_c B) ] A`
//!
//! with `g_c` the 3×3 kernel of input channel `c`, `d_c` the patch, and the 4×4, 4×3 and 4×2
//! matrices `B`, `G`, `A` of Lavin and Gray's F(2, 3) (interpolation points 0, 1, −1, ∞).
//! The sum over input channels at each of the 16 points is a matrix product,
//! `(output channels × input channels) · (input channels × tiles)`: 16 multiply-adds per
//! tile and channel pair where the definition takes 36 (9 per output), 2.25× fewer. The
//! products run on the crate's matrix product ([`crate::kernels::gemm`]), the transforms are
//! additions (and halvings, in the kernel's).
//!
//! Work is cut into *panels* of tiles: whole tile rows of a plane, or pieces of one long row,
//! a few dozen tiles each, so that a panel's 16 transformed input matrices and 16 product
//! matrices stay in L2. A panel's input is transformed channel by channel from four input
//! rows at a time, its 16 products run, and its outputs are transformed straight into the
//! output. Panels spread over the threads (and output channels too, when one image has too
//! few panels); the kernel is transformed once per call for the whole batch.
//!
//! Rounding: the transforms add at most four terms and halve exactly, so the result differs
//! from the direct definition's by a few units in the last place of the sums' magnitudes;
//! the tests hold it to 16 ε · Σ|x||k| per output. A NaN reaches exactly the outputs whose
//! windows hold it (no transform multiplies by its zero coefficients), but two infinities
//! may meet as Inf − Inf in a transform where the direct sum has Inf + Inf, so `auto`
//! checks the result as it does an FFT's. Integers are refused: the kernel's transform
//! halves.

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
    shape: Vec<usize>,
    values: Vec<T>,
    u: Arc<Vec<T>>,
}

impl<T> Winograd<T> {
    pub(crate) fn new() -> Self {
        Winograd {
            kept: Mutex::new(None),
        }
    }
}

/// Bytes of kernel and transformed kernel kept between calls (3×3 1024 → 1024 in float32
/// is 100 MB; 512 → 512 is 25 MB).
const KEPT_BYTES: usize = 32 << 20;

/// Points of the transformed domain (4 × 4).
const POINTS: usize = 16;

/// Bytes of a panel's transformed input and products together, at most (a panel of at least
/// one micro-kernel tile's width is always allowed).
const PANEL_BYTES: usize = 2 << 20;

/// Why `winograd` cannot compute `spec`, if it cannot.
pub(crate) fn refusal<T: Scalar>(spec: &ConvSpec) -> Option<String> {
    if T::KIND == Kind::Integer {
        return Some(
            "winograd's kernel transform halves, so it rounds; integers are computed exactly by \
             the other methods"
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

/// How a plane's tiles are cut into panels, for `th × tw` tiles and `cin`, `cout` channels:
/// `(rows, width)`, whole tile rows `rows` at a time when a row fits a panel (`width = tw`),
/// else one row in pieces of `width` tiles.
///
/// A panel's tiles are the columns of its 16 products, which run in vectors of `lanes`
/// columns: among the row counts that fit [`PANEL_BYTES`], the one that wastes the fewest
/// lanes (`rows·tw` against its next multiple of `lanes`) is taken, the larger on a tie.
/// Measured on 64 → 64 @56 float32, one thread: one row per panel (28 tiles, 2 vectors, 12
/// lanes idle) against four (112 tiles, 7 vectors, none idle).
pub(crate) fn panels<T>(th: usize, tw: usize, cin: usize, cout: usize) -> (usize, usize) {
    let elem = std::mem::size_of::<T>().max(1);
    let lanes = (64 / elem).max(1);
    let most = (PANEL_BYTES / (POINTS * (cin + cout) * elem).max(1)).max(3 * lanes);
    if tw >= most {
        return (1, most / (3 * lanes) * 3 * lanes);
    }
    let waste = |rows: usize| {
        let nt = rows * tw;
        (nt.next_multiple_of(lanes) - nt) as f64 / nt as f64
    };
    let rows = (1..=th.min(most / tw).max(1))
        .min_by(|&a, &b| waste(a).total_cmp(&waste(b)).then(b.cmp(&a)))
        .unwrap_or(1);
    (rows, tw)
}

impl<T: Scalar> Winograd<T> {
    /// The transformed kernel of `k`: the kept one when `k` equals, value for value, the
    /// kernel of the last call (a plan called again with the same weights, as in
    /// inference), else made now (and kept, when not too large).
    fn transformed(&self, k: ArrayView5<'_, T>, threads: usize) -> Arc<Vec<T>> {
        let k = k.as_standard_layout();
        let flat = k.as_slice().expect("standard layout");
        let keep = (flat.len() + flat.len() / 9 * POINTS) * std::mem::size_of::<T>() <= KEPT_BYTES;
        let mut slot = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(kept) = slot.as_ref() {
            if kept.shape == k.shape() && equal(&kept.values, flat) {
                return kept.u.clone();
            }
        }
        // Freed first, so the new one reuses its memory.
        *slot = None;
        let u = Arc::new(kernel_transform(flat, k.shape()[0], k.shape()[1], threads));
        if keep {
            *slot = Some(Kept {
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
        let u = self.transformed(k, threads);
        let x = x.as_standard_layout();
        let (th, tw) = (oh.div_ceil(2), ow.div_ceil(2));
        // Tile rows per item: one panel's.
        let (per, width) = panels::<T>(th, tw, cin, cout);
        let tc = per * width;
        let row_items = nb * od * th.div_ceil(per);
        // Too few items for the threads (one small image): output channels are cut too, in
        // strips of the product's eight rows; each strip transforms the panel's input again.
        let strips = if threads > 1 && row_items < 2 * threads {
            (2 * threads)
                .div_ceil(row_items)
                .min(cout.div_ceil(32))
                .max(1)
        } else {
            1
        };
        let ch_chunk = cout.div_ceil(strips).next_multiple_of(8).min(cout);
        let mut items = Vec::new();
        for (n, out_n) in chunks(out.view_mut(), 0, 1).into_iter().enumerate() {
            for (ci, out_c) in chunks(out_n, 1, ch_chunk).into_iter().enumerate() {
                for (d, out_d) in chunks(out_c, 2, 1).into_iter().enumerate() {
                    for (ri, out_r) in chunks(out_d, 3, 2 * per).into_iter().enumerate() {
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

/// One thread's buffers: a panel's transformed input `v` (`POINTS × cin × tc`), its
/// products `m` (`POINTS × cout × tc`), four input rows split into even and odd columns,
/// one input row padded with zeros, two output rows that do not fit the output whole.
struct Scratch<T> {
    v: Vec<T>,
    m: Vec<T>,
    evens: Vec<T>,
    odds: Vec<T>,
    row: Vec<T>,
    y: Vec<T>,
}

impl<T: Scalar> Scratch<T> {
    fn new(geo: &Geo) -> Self {
        let piece = geo.tw.min(geo.tc);
        let whole = piece.next_multiple_of(BLOCK);
        Scratch {
            // Written before they are read (every panel's tiles, then its products).
            v: crate::kernels::output::<T>(POINTS * geo.cin * geo.tcs),
            m: crate::kernels::output::<T>(POINTS * geo.cout * geo.tcs),
            evens: vec![T::zero(); 4 * (whole + 1)],
            odds: vec![T::zero(); 4 * (whole + 1)],
            row: vec![T::zero(); 2 * piece + 2],
            y: vec![T::zero(); 4 * whole],
        }
    }
}

/// `a == b` element by element (NaN unequal to itself, as `==` has it), in blocks without
/// an early exit, which the compiler vectorises (a slice's `==` stops at the first
/// difference and compares one element at a time: 12% of a 256 → 256 @14 call).
fn equal<T: Scalar>(a: &[T], b: &[T]) -> bool {
    a.len() == b.len()
        && a.chunks(64)
            .zip(b.chunks(64))
            .all(|(x, y)| x.iter().zip(y).fold(true, |all, (p, q)| all & (p == q)))
}

/// The kernel (`cout × cin` 3×3 kernels, contiguous) in the transformed domain, `(cout, POINTS, cin)`: `G g Gᵀ` for each channel
/// pair, point `(ξ, ν)` at `4ξ + ν`; the matrix of point `p` is rows `o·POINTS + p`.
/// Output channels are spread over the threads.
fn kernel_transform<T: Scalar>(flat: &[T], cout: usize, cin: usize, threads: usize) -> Vec<T> {
    let mut u = crate::kernels::output::<T>(cout * POINTS * cin);
    let per = POINTS * cin;
    let chunk = cout.div_ceil(threads.max(1) * 4).max(1);
    crate::team::for_chunks_mut(threads, &mut u, chunk * per, |i, dst| {
        for (oi, uo) in dst.chunks_mut(per).enumerate() {
            let o = i * chunk + oi;
            crate::kernels::winograd_kernel(&flat[o * cin * 9..(o + 1) * cin * 9], uo);
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
    let rows = item.out.shape()[1].div_ceil(2);
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
        for p in 0..POINTS {
            let lhs = ArrayView2::from_shape(
                (oc, cin).strides((POINTS * cin, 1)),
                &u[(item.c0 * POINTS + p) * cin..],
            )
            .expect("kernel matrix in bounds");
            let rhs = ArrayView2::from_shape((cin, nt).strides((tcs, 1)), &sc.v[p * cin * tcs..])
                .expect("panel in bounds");
            let dst =
                ArrayViewMut2::from_shape((oc, nt).strides((tcs, 1)), &mut sc.m[p * oc * tcs..])
                    .expect("products in bounds");
            super::im2col::multiply(dst, lhs, rhs, false);
        }
        transform_output(&mut item.out, &sc.m, &mut sc.y, oc, (rows, pw, tx0), geo);
        tx0 += pw;
    }
}

/// `Bᵀ d B` of every tile of a panel (tile rows `ty0 ..+ rows`, columns `tx0 ..+ pw`) of
/// input channel `c` (`plane`, contiguous), into `v[point][c][tile]`. Rows and columns past
/// the plane's end read as zeros (a last tile whose second output row or column does not
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
    let width = 2 * pw + 2;
    let col0 = 2 * tx0;
    let have = w.saturating_sub(col0).min(width);
    let (tcs, cin) = (geo.tcs, geo.cin);
    // Each row's evens and odds, with room for the transform's last block.
    let half = pw.next_multiple_of(BLOCK) + 1;
    let Scratch {
        v,
        evens,
        odds,
        row,
        ..
    } = sc;
    // Slots of the four rows in `evens`/`odds`: a tile row's last two input rows are the
    // next one's first two, so only two rows are split per tile row after the first.
    let mut slot = [0, 1, 2, 3];
    for ty in 0..rows {
        let fresh = if ty == 0 {
            0
        } else {
            slot = [slot[2], slot[3], slot[0], slot[1]];
            2
        };
        // The input rows under this tile row, split into even and odd columns, zero past
        // the plane's edges.
        for (i, &si) in slot.iter().enumerate().skip(fresh) {
            let r = 2 * (ty0 + ty) + i;
            let (e, o) = (
                &mut evens[si * half..si * half + pw + 1],
                &mut odds[si * half..si * half + pw + 1],
            );
            if r < h && have == width {
                crate::kernels::deinterleave(&flat[r * w + col0..][..width], e, o);
            } else {
                let buf = &mut row[..width];
                if r < h {
                    buf[..have].copy_from_slice(&flat[r * w + col0..][..have]);
                    buf[have..].fill(T::zero());
                } else {
                    buf.fill(T::zero());
                }
                crate::kernels::deinterleave(buf, e, o);
            }
        }
        let ev: [&[T]; 4] = std::array::from_fn(|i| &evens[slot[i] * half..(slot[i] + 1) * half]);
        let od: [&[T]; 4] = std::array::from_fn(|i| &odds[slot[i] * half..(slot[i] + 1) * half]);
        let at = c * tcs + ty * pw;
        crate::kernels::winograd_input(ev, od, &mut v[at..], cin * tcs, pw);
    }
}

/// `Aᵀ M A` of every tile of a panel into the item's output rows (`out` is
/// `(channels, rows, ow)`); outputs past the plane's end are dropped.
fn transform_output<T: Scalar>(
    out: &mut ArrayViewMut3<'_, T>,
    m: &[T],
    y: &mut [T],
    oc: usize,
    (rows, pw, tx0): (usize, usize, usize),
    geo: &Geo,
) {
    let tcs = geo.tcs;
    let out_rows = out.shape()[1];
    let col0 = 2 * tx0;
    let cols = (geo.ow - col0).min(2 * pw);
    let whole = pw.next_multiple_of(BLOCK);
    let (top, bottom) = y[..4 * whole].split_at_mut(2 * whole);
    for o in 0..oc {
        let mut chan = out.index_axis_mut(Axis(0), o);
        for ty in 0..rows {
            let src = &m[o * tcs + ty * pw..];
            crate::kernels::winograd_output(src, oc * tcs, pw, top, bottom);
            for (a, ya) in [&*top, &*bottom].into_iter().enumerate() {
                let r = 2 * ty + a;
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
