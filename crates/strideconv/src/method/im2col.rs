//! `im2col` (the seed's "stride-view conv"): gather strided windows into a panel and multiply
//! it by the kernel matrix, the GEMM route CNN libraries take for channel-heavy layers.
//!
//! Unlike `as_strided` + `tensordot`, windows are gathered a tile of output positions at a
//! time, so memory stays bounded by one panel (about [`PANEL_BYTES`]), never the whole window
//! matrix; a reduction too long for that is cut into pieces that accumulate.
//!
//! The panel is laid out for the input's memory order, so the gather copies contiguous runs:
//! * channels first (NCDHW): row `(c, td, th, tw)`, one column per position. A panel row for
//!   one output row is a run of the input row (stride 1), a strided read of it (stride > 1;
//!   for kernel == stride each input element is read exactly once), or, for wide rows and
//!   overlapping strided windows, a run of a phase-split copy of the row made once for all
//!   the taps that read it.
//! * channels last (C has element stride 1): one row per position, reduction ordered
//!   `(td, th, tw, c)`, so a window row is one copy of `kw·C` elements; the kernel matrix is
//!   permuted once to match.
//!
//! A 1×1 kernel with stride 1 needs no gather at all: the input already is the `C × positions`
//! matrix, and the product reads it in place.
//!
//! Channels-first float layers on AVX-512 CPUs whose windows overlap gather no panel either
//! ([`implicit`]): output positions are laid on a grid with the input's row pitch, where every
//! tap's window is a contiguous run of an input plane, so the hand-written product reads its
//! panel rows through a table of tap offsets straight from the input (at stride 1) or from a
//! copy split by stride phase (one pass over the input). On a padded layer that copy pads as
//! it goes: the plan hands over the unpadded input ([`drive_unpadded`]) and makes no padded
//! copy first (measured, Rust loop, 2 threads, float32: 3×3 stride 2 64→128 @56 517 → 436 µs,
//! batch 8 3.37 → 2.50 ms, float64 872 → 754 µs; 3×3 64→64 @56 batch 8 6.22 → 4.60 ms, where
//! each thread now pads its image into its own cache; one image at stride 1 even to 1.05×).
//! Against the tiled gather, measured
//! from Python on 2 threads, batch 1, float32: 3×3 64→64 @56 1.16× faster, 128→128 @28
//! 1.17×, 256→256 @14 1.18×, the 7×7 stride-2 stem 1.08×, 3×3 stride 2 64→128 @56 even;
//! batch 8 1.09–1.16× (stride 2 1.02×); float64 1.02–1.16×.
//!
//! On narrow outputs (where the grid's columns past an output row's end are a large share of
//! it) the product puts output channels in the vector lanes instead and broadcasts the
//! positions, through the same tap table, so it computes real outputs only
//! (`kernels/broadcast.rs`: 3×3 256→256 @14 7–10% faster); the images of a batch share its
//! packed copy of the weights. That product broadcasts one position at a time, so it needs no
//! unit-stride runs: a layer strided by at most 2 along its rows is read from a plain padded
//! copy, positions `stride` apart, with no split by phase (Rust loop, 2 threads, float32,
//! mean of 3–5 interleaved rounds: 3×3/2 64→128 @56 287 → 260 µs, batch 8 2.17 → 1.98 ms,
//! float64 537 → 511 µs; the 7×7 stride-2 stem even). An unpadded contiguous input is read in
//! place, with no copy at all (from Python, 3×3/2 64→128 on 57×57 unpadded: 263 → 233 µs).
//!
//! Real and complex floats are multiplied through [`kernels::gemm`] (the hand-written
//! AVX-512 product for f32 and f64 where it applies, else the `gemm` crate); exact integers (`i128`), and everything under `STRIDECONV_ISA=scalar`,
//! by a plain loop over the same panel, so integers are never routed through floats.

use ndarray::{
    s, ArrayView1, ArrayView2, ArrayView3, ArrayView4, ArrayView5, ArrayViewMut2, ArrayViewMut4,
    ArrayViewMut5, Axis, CowArray, Ix2, ShapeBuilder, Zip,
};
use std::any::Any;
use std::cell::RefCell;

use super::{Algorithm, Geom, Tiling};
use crate::kernels;
use crate::spec::{ConvSpec, SPATIAL};
use crate::view::copy_strided;
use crate::Scalar;

pub(crate) struct Im2col;

/// Target size of one gathered panel: large enough that one GEMM call amortises its packing,
/// small enough to stay near L2 while it is written and read back.
const PANEL_BYTES: usize = 1 << 20;
/// Hard ceiling of a panel when long reductions force tiles above [`PANEL_BYTES`].
const MAX_PANEL_BYTES: usize = 8 << 20;
/// Fewest output positions per tile worth a GEMM call (below this, the micro-kernel's edge
/// handling and the kernel matrix's packing dominate).
const MIN_TILE: usize = 64;
/// Narrowest tile row for which phase-splitting strided input rows pays (see
/// [`gather_channels_first`]).
const PHASE_SPLIT_MIN_WIDTH: usize = 32;

/// Everything about the problem the gather needs, resolved once per block.
#[derive(Clone, Copy, Debug)]
struct Geo {
    cin: usize,
    cout: usize,
    kernel: [usize; 3],
    stride: [usize; 3],
    dilation: [usize; 3],
    out: [usize; 3],
    /// Reduction length `cin · kd · kh · kw`.
    red: usize,
    /// Channels-last panel (see the module docs).
    channels_last: bool,
    /// Phase-split input rows before gathering (channels first, stride > 1, overlapping
    /// windows: each row element is then read several times).
    phase_split: bool,
}

impl Geo {
    /// The geometry of kernel `k` (`(C_out, C_in, kd, kh, kw)`) giving outputs `out`.
    fn new(
        k: &[usize],
        out: [usize; 3],
        stride: [usize; 3],
        dilation: [usize; 3],
        channels_last: bool,
    ) -> Geo {
        let [cout, cin, kd, kh, kw] = *k else {
            unreachable!("a five-axis kernel")
        };
        let [s0, s1, s2] = stride;
        Geo {
            cin,
            cout,
            kernel: [kd, kh, kw],
            stride,
            dilation,
            out,
            red: cin * kd * kh * kw,
            channels_last,
            phase_split: !channels_last && s2 > 1 && kd * kh * kw > s0 * s1 * s2,
        }
    }

    /// The stride phase (offsets modulo the stride, `(pd·s1 + ph)·s2 + pw`) kernel tap
    /// `(td, th, tw)` reads.
    fn phase(&self, [td, th, tw]: [usize; 3]) -> usize {
        let ([s0, s1, s2], [d0, d1, d2]) = (self.stride, self.dilation);
        ((td * d0 % s0) * s1 + th * d1 % s1) * s2 + tw * d2 % s2
    }

    /// Consecutive reduction elements that are one unit of the panel's reduction order: one
    /// kernel row (`kw`) channels first, `kw · C` channels last.
    fn group_len(&self) -> usize {
        if self.channels_last {
            self.kernel[2] * self.cin
        } else {
            self.kernel[2]
        }
    }

    /// Input columns (from the first needed one) that `wn` consecutive outputs read.
    fn span(&self, wn: usize) -> usize {
        (wn - 1) * self.stride[2] + (self.kernel[2] - 1) * self.dilation[2] + 1
    }
}

/// How the output positions and the reduction are cut into panels.
#[derive(Clone, Copy, Debug)]
struct Cut {
    /// Output positions per tile, as whole depth slices, whole rows or row pieces.
    dn: usize,
    hn: usize,
    wn: usize,
    /// Reduction groups ([`Geo::group_len`] each) per panel.
    groups: usize,
}

impl Cut {
    /// Tiles of at most `target` positions (fewer when the panel budget says so), their
    /// number a multiple of `parts` where the shape allows, with the reduction cut so that a
    /// panel stays within [`MAX_PANEL_BYTES`].
    fn new<T>(geo: &Geo, target: usize, parts: usize) -> Cut {
        let [od, oh, ow] = geo.out;
        let size = std::mem::size_of::<T>().max(1);
        let (budget, ceiling) = (PANEL_BYTES / size, MAX_PANEL_BYTES / size);
        let glen = geo.group_len();
        let total_groups = geo.red / glen;
        // Positions per panel: the budget's worth, or MIN_TILE when that still fits under the
        // ceiling with the whole reduction, or as many as fit.
        let mut positions = (budget / geo.red).max(MIN_TILE.min(ceiling / geo.red));
        let mut groups = total_groups;
        if positions == 0 {
            // Not even one whole window fits: cut the reduction, keep MIN_TILE positions.
            positions = MIN_TILE.min(ceiling / glen).max(1);
            groups = (ceiling / (positions * glen)).clamp(1, total_groups);
        }
        let positions = positions.min(target).max(1);
        // Cut whole depth slices, else whole rows, else pieces of a row; then even the pieces
        // out (and make their count a multiple of `parts`) so no worker gets a sliver.
        let even = |len: usize, chunk: usize| {
            let count = len.div_ceil(chunk).next_multiple_of(parts).min(len);
            len.div_ceil(count)
        };
        let (dn, hn, wn) = if oh * ow <= positions {
            (even(od, positions / (oh * ow)), oh, ow)
        } else if ow <= positions {
            (1, even(oh, positions / ow), ow)
        } else {
            (1, 1, even(ow, positions))
        };
        let groups = total_groups.div_ceil(total_groups.div_ceil(groups));
        Cut { dn, hn, wn, groups }
    }
}

/// One tile of output positions: its first position; its extent is its output view's shape.
#[derive(Clone, Copy, Debug)]
struct Tile {
    d0: usize,
    h0: usize,
    w0: usize,
    dn: usize,
    hn: usize,
    wn: usize,
}

impl Tile {
    fn positions(&self) -> usize {
        self.dn * self.hn * self.wn
    }
}

/// Per-worker buffers, reused across tiles (their stale contents are always overwritten).
struct Scratch<T> {
    panel: Vec<T>,
    /// A contiguous copy of one input row, when the input's row is not contiguous.
    row: Vec<T>,
    /// Phase-split rows.
    phases: Vec<T>,
    /// The product of one tile, when its output view is not one strided matrix.
    out: Vec<T>,
    /// Phase-split input planes of the implicit product.
    planes: Vec<T>,
}

thread_local! {
    /// The last [`Scratch`] used on this thread, of whatever element type.
    static SCRATCH: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

/// Run `f` with this thread's scratch buffers, kept between calls: a panel freed and
/// allocated again on every call makes the allocator return memory to the system and
/// fault it back in, which cost up to 40% of a mid-sized layer here. What is kept is one
/// panel-sized set per thread (dropped instead when a huge reduction made it larger).
fn with_scratch<T: Scalar, R>(f: impl FnOnce(&mut Scratch<T>) -> R) -> R {
    // Taken out rather than borrowed: `f` may run a team job whose part on this thread
    // comes back here; that part then starts from empty buffers.
    let kept = SCRATCH.with(|c| c.borrow_mut().take());
    let mut scratch = kept
        .and_then(|b| b.downcast::<Scratch<T>>().ok())
        .map_or_else(Scratch::default, |b| *b);
    let result = f(&mut scratch);
    let bytes = std::mem::size_of::<T>()
        * (scratch.panel.capacity()
            + scratch.row.capacity()
            + scratch.phases.capacity()
            + scratch.out.capacity()
            + scratch.planes.capacity());
    if bytes <= 2 * PANEL_BYTES + KEPT_PLANES_BYTES {
        SCRATCH.with(|c| *c.borrow_mut() = Some(Box::new(scratch)));
    }
    result
}

impl<T> Default for Scratch<T> {
    fn default() -> Self {
        Scratch {
            panel: Vec::new(),
            row: Vec::new(),
            phases: Vec::new(),
            out: Vec::new(),
            planes: Vec::new(),
        }
    }
}

impl<T: Scalar> Algorithm<T> for Im2col {
    fn tiling(&self) -> Tiling {
        // Whole images per block: the driver's row blocks would be small GEMMs for late CNN
        // layers, and channel blocks would gather the same windows twice. A lone block (batch
        // 1, one group) is split here instead, by tiles or by channels, whichever keeps the
        // products large.
        Tiling {
            split_channels: false,
            split_rows: false,
            whole_batch: false,
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
        let [_, cin, kd, kh, kw] = *k.shape() else {
            unreachable!()
        };
        let red = cin * kd * kh * kw;
        if nb == 0 || cout == 0 || od * oh * ow == 0 {
            return;
        }
        if red == 0 {
            out.fill(T::zero());
            return;
        }
        let channels_last = cin > 1 && x.strides()[1] == 1;
        let geo = Geo::new(k.shape(), [od, oh, ow], g.stride, g.dilation, channels_last);
        let kmat = kernel_matrix(&k, channels_last);
        let pointwise = [kd, kh, kw] == [1, 1, 1] && g.stride == [1, 1, 1];
        // Weights packed by the first image for the rest of the batch.
        let packed = kernels::Packed::new();
        let shared = (nb > 1).then_some(&packed);
        for n in 0..nb {
            let xn = x.index_axis(Axis(0), n);
            let mut on = out.index_axis_mut(Axis(0), n);
            if pointwise {
                let rows = xn.slice(s![.., ..od, ..oh, ..ow]);
                if let (Some(rhs), Some(dst)) =
                    (merge_positions(rows), merge_positions_mut(&mut on))
                {
                    // A large output's sums go past the caches (`Geom::stream`).
                    multiply_par(dst, kmat.view(), rhs, g.threads, g.stream);
                    continue;
                }
            }
            let image = Image { x: xn, pad: None };
            if !implicit(image, kmat.view(), on.view_mut(), &geo, g.threads, shared) {
                tiled(xn, kmat.view(), on, &geo, g.threads);
            }
        }
    }
}

/// The kernel matrix `(C_out, reduction)`, in the panel's reduction order: `(c, td, th, tw)`
/// channels first, `(td, th, tw, c)` channels last.
fn kernel_matrix<'a, T: Scalar>(
    k: &'a ArrayView5<'_, T>,
    channels_last: bool,
) -> CowArray<'a, T, Ix2> {
    let [cout, cin, kd, kh, kw] = *k.shape() else {
        unreachable!()
    };
    let red = cin * kd * kh * kw;
    if channels_last {
        let permuted = k
            .permuted_axes([0, 2, 3, 4, 1])
            .as_standard_layout()
            .into_owned();
        permuted
            .into_shape_with_order((cout, red))
            .expect("contiguous")
            .into()
    } else {
        k.as_standard_layout()
            .into_shape_with_order((cout, red))
            .expect("contiguous")
    }
}

/// Padding applied while the implicit product's input is split by phase: for each of D, H
/// and W, the input index of every padded index (`None`: the constant `cval`).
pub(crate) struct Pad<T> {
    maps: [Vec<Option<usize>>; SPATIAL],
    /// Columns of padding before the input along W (where the maps start to be the identity).
    left: usize,
    cval: T,
}

impl<T: Scalar> Pad<T> {
    pub(crate) fn new(spec: &ConvSpec) -> Self {
        Pad {
            maps: std::array::from_fn(|a| {
                (0..spec.padded_len(a))
                    .map(|i| {
                        spec.pad_mode
                            .source_index(i, spec.padding[a].0, spec.input[a])
                    })
                    .collect()
            }),
            left: spec.padding[2].0,
            cval: T::from_f64(spec.cval),
        }
    }
}

/// One image's input as [`implicit`] reads it: `(C, D, H, W)`, padded on the fly by `pad`
/// (`None`: already padded, or not padded at all).
struct Image<'a, T> {
    x: ArrayView4<'a, T>,
    pad: Option<&'a Pad<T>>,
}

impl<'a, T: Scalar> Image<'a, T> {
    /// Channel `c`'s rows.
    fn channel(&self, c: usize) -> ChannelRows<'a, T> {
        let x = self.x.index_axis_move(Axis(0), c);
        ChannelRows {
            mem: x.to_slice(),
            x,
            pad: self.pad,
        }
    }
}

/// One channel of an [`Image`], row by row.
struct ChannelRows<'a, T> {
    x: ArrayView3<'a, T>,
    /// The channel's `(D, H, W)` block when it is in standard layout (rows found by offset,
    /// not by slicing a view: slicing cost 7% of a 3×3 stride-2 layer).
    mem: Option<&'a [T]>,
    pad: Option<&'a Pad<T>>,
}

impl<T: Scalar> ChannelRows<'_, T> {
    /// Input row `(z, y)`, whole.
    fn source<'b>(&'b self, z: usize, y: usize, buf: &'b mut Vec<T>) -> &'b [T] {
        let [_, h, w] = *self.x.shape() else {
            unreachable!()
        };
        match self.mem {
            Some(mem) => &mem[(z * h + y) * w..][..w],
            None => contiguous(self.x.slice_move(s![z, y, ..]), buf),
        }
    }

    /// Write padded row `(z, y)` into `dst` (its first `dst.len()` elements); `copy` holds
    /// an input row that is not contiguous.
    fn row_into(&self, z: usize, y: usize, dst: &mut [T], copy: &mut Vec<T>) {
        let len = dst.len();
        let Some(p) = self.pad else {
            dst.copy_from_slice(&self.source(z, y, copy)[..len]);
            return;
        };
        let (Some(sz), Some(sy)) = (p.maps[0][z], p.maps[1][y]) else {
            dst.fill(p.cval);
            return;
        };
        // Padding before, the input row itself, padding after (any pad mode, by the map).
        let src = self.source(sz, sy, copy);
        let head = p.left.min(len);
        let body = (p.left + src.len()).min(len).max(head);
        for (d, m) in dst.iter_mut().zip(&p.maps[2]).take(head) {
            *d = m.map_or(p.cval, |i| src[i]);
        }
        dst[head..body].copy_from_slice(&src[..body - head]);
        for (d, m) in dst[body..].iter_mut().zip(&p.maps[2][body..]) {
            *d = m.map_or(p.cval, |i| src[i]);
        }
    }
}

/// `im2col` straight from the unpadded input `x` (canonical, `(N, C, D, H, W)`, channels
/// first) with the prepared kernel `k`: the implicit product's phase split applies the
/// padding as it copies, so the plan makes no padded copy of the input first (for a 3×3
/// stride-2 layer that copy was another pass over the input, a sixth of the call).
/// Returns false, having written nothing, where the implicit product does not apply; the
/// caller then pads and takes the general path.
pub(crate) fn drive_unpadded<T: Scalar>(
    spec: &ConvSpec,
    x: ArrayView5<'_, T>,
    k: ArrayView5<'_, T>,
    mut out: ArrayViewMut5<'_, T>,
    threads: usize,
) -> bool {
    let [nb, cout, od, oh, ow] = *out.shape() else {
        unreachable!()
    };
    let cin = k.shape()[1];
    let channels_last = cin > 1 && x.strides()[1] == 1;
    if spec.groups != 1 || channels_last || nb * cout * od * oh * ow == 0 {
        return false;
    }
    let geo = Geo::new(k.shape(), [od, oh, ow], spec.stride, spec.dilation, false);
    if !product_takes::<T>(&geo, out.strides()[4]) || phase_planes::<T>(&geo).is_none() {
        return false;
    }
    let pad = Pad::new(spec);
    let kmat = kernel_matrix(&k, false);
    // Weights packed by the first image for the rest of the batch.
    let packed = kernels::Packed::new();
    let shared = (nb > 1).then_some(&packed);
    let one = |n: usize, on: ArrayViewMut4<'_, T>, threads: usize| {
        let image = Image {
            x: x.index_axis(Axis(0), n),
            pad: Some(&pad),
        };
        let done = implicit(image, kmat.view(), on, &geo, threads, shared);
        debug_assert!(done, "phase_planes said the implicit product applies");
    };
    if nb == 1 || threads <= 1 {
        for (n, on) in out.outer_iter_mut().enumerate() {
            one(n, on, threads);
        }
    } else {
        let images: Vec<_> = out.outer_iter_mut().enumerate().collect();
        crate::team::for_items(threads, images, |(n, on)| one(n, on, 1));
    }
    true
}

/// Phase-split copies up to this size stay allocated between calls, like the panels.
const KEPT_PLANES_BYTES: usize = 4 << 20;
/// Largest phase-split copy of an image's input [`implicit`] makes (bytes); beyond it the
/// tiled gather, whose panels stay bounded, is used.
const MAX_PLANES_BYTES: usize = 16 << 20;

/// Longest reduction [`implicit`] takes: its tap table (two words per tap) stays below 8 MiB.
const MAX_TAPS: usize = 1 << 19;

/// The implicit im2col: no panel at all. Output positions are laid on a grid whose rows are
/// input rows (`pitch` positions apart; the positions past an output row's end are computed
/// and dropped), so the window of every kernel tap is one contiguous run of a plane, and the
/// product reads its panel rows straight from the input: [`kernels::gathered`], given one
/// offset per tap.
///
/// At stride 1 the planes are the input itself when it is C-contiguous and already padded.
/// Otherwise each channel's input is first split by phase (offset modulo the stride, per
/// axis) into a copy, which makes every tap at every stride a unit-stride run: one pass over
/// the input instead of one gathered panel row per tap. The copy also pads, when the image
/// comes unpadded ([`drive_unpadded`]).
///
/// Returns false, having done nothing, where it does not apply: other element types or
/// CPUs, channels-last panels, output rows not contiguous, reductions above [`MAX_TAPS`],
/// windows that do not overlap (each input element read once: the tiled gather is then as
/// cheap), a grid narrower than one vector, or a copy above [`MAX_PLANES_BYTES`].
fn implicit<T: Scalar>(
    image: Image<'_, T>,
    kmat: ArrayView2<'_, T>,
    on: ArrayViewMut4<'_, T>,
    geo: &Geo,
    threads: usize,
    packed: Option<&kernels::Packed<T>>,
) -> bool {
    let [d0, d1, d2] = geo.dilation;
    let lanes = 64 / std::mem::size_of::<T>().max(1);
    if !product_takes::<T>(geo, on.strides()[3]) {
        return false;
    }
    let xn = image.x;
    if geo.stride == [1, 1, 1] && image.pad.is_none() && xn.shape()[3] >= lanes {
        if let Some(src) = xn.as_slice() {
            let [_, xd, xh, xw] = *xn.shape() else {
                unreachable!()
            };
            let taps = plane_taps(geo, [xd, xh, xw]);
            kernels::gathered(on, kmat, src, &taps, (xw, xh), threads, packed);
            return true;
        }
    }
    let Some(phases) = phase_planes::<T>(geo) else {
        return false;
    };
    // Where the channels-in-lanes product multiplies anyway, a layer strided by at most 2
    // along its rows is read from a plain padded copy, positions `stride` apart, instead of
    // one split by phase: one copy of each row instead of a copy and a split (3×3/2 64→128
    // @56: the split was 13% of the call).
    let need = phases.need;
    let unsplit = geo.stride != [1, 1, 1]
        && geo.stride[2] <= 2
        && kernels::prefers_channels::<T>(geo.cout, geo.out, (phases.q[2], phases.q[1]))
        && geo.cin * need.iter().product::<usize>() * std::mem::size_of::<T>() <= MAX_PLANES_BYTES;
    if unsplit && image.pad.is_none() {
        if let Some(src) = xn.as_slice() {
            // Unpadded and contiguous: the input itself is the plain copy.
            let [_, xd, xh, xw] = *xn.shape() else {
                unreachable!()
            };
            stepped(on, kmat, src, [xd, xh, xw], geo, threads, packed);
            return true;
        }
    }
    let (
        Phases {
            need,
            q,
            slot,
            used,
        },
        [s0, s1, s2],
    ) = if unsplit {
        let whole = Phases {
            need,
            q: need,
            slot: vec![0],
            used: vec![0],
        };
        (whole, [1, 1, 1])
    } else {
        (phases, geo.stride)
    };
    let plane = q[0] * q[1] * q[2];
    let len = geo.cin * used.len() * plane;
    with_scratch(|scratch: &mut Scratch<T>| {
        // Stale values from an earlier call may stay where no phase element lands: only
        // positions of the grid outside the output read them, and those are not stored.
        let buf = &mut scratch.planes;
        if buf.len() < len {
            buf.resize(len, T::zero());
        }
        let split = |(c, chunk): (usize, &mut [T])| {
            let rows = image.channel(c);
            let mut planes: Vec<&mut [T]> = chunk.chunks_exact_mut(plane).collect();
            let (mut copy, mut padded) = (Vec::new(), Vec::new());
            // Row phases (depth, height) in use, each with its column phases.
            for pd in 0..s0 {
                for ph in 0..s1 {
                    let cols: Vec<(usize, usize)> = (0..s2)
                        .filter_map(|pw| {
                            let at = slot[(pd * s1 + ph) * s2 + pw];
                            (at != usize::MAX).then_some((pw, at))
                        })
                        .collect();
                    if cols.is_empty() {
                        continue;
                    }
                    for z in 0..q[0] {
                        for y in 0..q[1] {
                            let (iz, iy) = (z * s0 + pd, y * s1 + ph);
                            if iz >= need[0] || iy >= need[1] {
                                continue;
                            }
                            let at = (z * q[1] + y) * q[2];
                            if s2 == 1 {
                                // One column phase: the row goes straight to its plane.
                                let dst = &mut planes[cols[0].1][at..at + need[2]];
                                rows.row_into(iz, iy, dst, &mut copy);
                            } else if rows.pad.is_none() {
                                let src = &rows.source(iz, iy, &mut copy)[..need[2]];
                                split_row(src, s2, &cols, &mut planes, at);
                            } else {
                                padded.resize(need[2], T::zero());
                                rows.row_into(iz, iy, &mut padded, &mut copy);
                                split_row(&padded, s2, &cols, &mut planes, at);
                            }
                        }
                    }
                }
            }
        };
        let buf = &mut buf[..len];
        let per_channel = used.len() * plane;
        crate::team::for_chunks_mut(threads, buf, per_channel, |c, chunk| split((c, chunk)));
        if unsplit {
            stepped(on, kmat, &buf[..], q, geo, threads, packed);
            return;
        }
        let taps = taps(geo, used.len() * plane, |[td, th, tw]| {
            let (a, b, e) = (td * d0, th * d1, tw * d2);
            let at = slot[geo.phase([td, th, tw])];
            at * plane + ((a / s0) * q[1] + b / s1) * q[2] + e / s2
        });
        kernels::gathered(on, kmat, &buf[..], &taps, (q[2], q[1]), threads, packed);
    });
    true
}

/// The channels-in-lanes product over channel planes of extent `dims` laid end to end in `src`
/// (padded: every window inside), output positions `stride` apart.
fn stepped<T: Scalar>(
    on: ArrayViewMut4<'_, T>,
    kmat: ArrayView2<'_, T>,
    src: &[T],
    [d, h, w]: [usize; 3],
    geo: &Geo,
    threads: usize,
    packed: Option<&kernels::Packed<T>>,
) {
    let [s0, s1, s2] = geo.stride;
    let taps = plane_taps(geo, [d, h, w]);
    let walk = kernels::Walk {
        pitch: s1 * w,
        slice: s0 * h * w,
        step: s2,
    };
    kernels::gathered_strided(on, kmat, src, &taps, walk, threads, packed);
}

/// Whether the implicit product multiplies this problem: floats on a CPU with the hand-written
/// product, channels first, output rows contiguous (`out_w_stride`, the output's element
/// stride along W), a reduction up to [`MAX_TAPS`].
fn product_takes<T: Scalar>(geo: &Geo, out_w_stride: isize) -> bool {
    kernels::own_product::<T>()
        && !geo.channels_last
        && (out_w_stride == 1 || geo.out[2] <= 1)
        && geo.red <= MAX_TAPS
}

/// The phase planes of [`implicit`]'s split copy.
struct Phases {
    /// Input extent the outputs read, per axis (padded coordinates).
    need: [usize; SPATIAL],
    /// Plane extent per axis: `⌈need / stride⌉`.
    q: [usize; SPATIAL],
    /// For each phase (offsets modulo the stride, `(pd·s1 + ph)·s2 + pw`), its plane's
    /// place among the phases in use (`usize::MAX`: no tap reads it).
    slot: Vec<usize>,
    /// The phases in use, in order of first use.
    used: Vec<usize>,
}

/// The phase planes [`implicit`] copies the input into, or `None` where that copy does not
/// pay or fit: windows that do not overlap (each input element is read once: the tiled
/// gather is then as cheap), a grid narrower than one vector, or a copy above
/// [`MAX_PLANES_BYTES`]. (The product's own conditions are checked by the caller.)
fn phase_planes<T: Scalar>(geo: &Geo) -> Option<Phases> {
    let [kd, kh, kw] = geo.kernel;
    let [s0, s1, s2] = geo.stride;
    let [d0, d1, d2] = geo.dilation;
    let [od, oh, ow] = geo.out;
    let lanes = 64 / std::mem::size_of::<T>().max(1);
    let need = [
        (od - 1) * s0 + (kd - 1) * d0 + 1,
        (oh - 1) * s1 + (kh - 1) * d1 + 1,
        (ow - 1) * s2 + (kw - 1) * d2 + 1,
    ];
    // For each channel, one plane of q = ⌈need / s⌉ per axis for each phase that some tap
    // reads: all s0·s1·s2 of them for overlapping windows, one for a 1×1 kernel.
    let q = [
        need[0].div_ceil(s0),
        need[1].div_ceil(s1),
        need[2].div_ceil(s2),
    ];
    // A slot per phase: not for strides whose phases outnumber any use (a stride of 10¹²).
    let phase_count = s0.checked_mul(s1).and_then(|p| p.checked_mul(s2))?;
    if phase_count > 1 << 16 {
        return None;
    }
    let mut slot = vec![usize::MAX; phase_count];
    let mut used = Vec::new();
    for td in 0..kd {
        for th in 0..kh {
            for tw in 0..kw {
                let ph = geo.phase([td, th, tw]);
                if slot[ph] == usize::MAX {
                    slot[ph] = used.len();
                    used.push(ph);
                }
            }
        }
    }
    // Windows that do not overlap (kernel ≤ stride: each input element is read once): the
    // tiled gather's panel is then no bigger than this copy and its product writes whole
    // rows, which measured faster (1×1 64→128 @56 stride 2: 43 against 52 µs).
    let plane = q[0] * q[1] * q[2];
    let len = geo.cin * used.len() * plane;
    (used.len() < kd * kh * kw
        && q[2] >= lanes
        && len * std::mem::size_of::<T>() <= MAX_PLANES_BYTES)
        .then_some(Phases {
            need,
            q,
            slot,
            used,
        })
}

/// Column phases `cols` (phase, plane) of one input row into their planes at `at`: plane
/// element `at + j` is `src[j·step + phase]`.
fn split_row<T: Scalar>(
    src: &[T],
    step: usize,
    cols: &[(usize, usize)],
    planes: &mut [&mut [T]],
    at: usize,
) {
    match (step, cols) {
        (1, &[(_, p)]) => planes[p][at..at + src.len()].copy_from_slice(src),
        (2, &[(0, pe), (1, po)]) => {
            // Both phases of a stride-2 row in one pass.
            let pairs = src.len() / 2;
            let (lo, hi) = (pe.min(po), pe.max(po));
            let (first, rest) = planes.split_at_mut(hi);
            let (even, odd) = if pe < po {
                (&mut first[lo][at..], &mut rest[0][at..])
            } else {
                (&mut rest[0][at..], &mut first[lo][at..])
            };
            kernels::deinterleave(src, &mut even[..pairs], &mut odd[..pairs]);
            if src.len() % 2 == 1 {
                even[pairs] = src[src.len() - 1];
            }
        }
        _ => {
            for &(phase, p) in cols {
                if phase < src.len() {
                    let count = (src.len() - phase).div_ceil(step);
                    copy_strided(&mut planes[p][at..at + count], &src[phase..], step);
                }
            }
        }
    }
}

/// [`taps`] into channel planes of extent `[d, h, w]` laid end to end (a contiguous input, or
/// a plain padded copy of it): each tap's window starts at its (dilated) offset in the plane.
fn plane_taps(geo: &Geo, [d, h, w]: [usize; 3]) -> Vec<usize> {
    let [d0, d1, d2] = geo.dilation;
    taps(geo, d * h * w, |[td, th, tw]| {
        (td * d0 * h + th * d1) * w + tw * d2
    })
}

/// One offset per reduction element, in the kernel matrix's order `(c, td, th, tw)`: channel
/// `c`'s tap at `c·per_channel + at(tap)`. `at` runs once per kernel tap, not once per
/// element (its divisions were 1.4% of a 3×3 256→256 @14 call, on one thread while the
/// others waited).
fn taps(geo: &Geo, per_channel: usize, at: impl Fn([usize; 3]) -> usize) -> Vec<usize> {
    let [kd, kh, kw] = geo.kernel;
    let mut one = Vec::with_capacity(kd * kh * kw);
    for td in 0..kd {
        for th in 0..kh {
            for tw in 0..kw {
                one.push(at([td, th, tw]));
            }
        }
    }
    let mut out = Vec::with_capacity(geo.red);
    for c in 0..geo.cin {
        out.extend(one.iter().map(|&t| c * per_channel + t));
    }
    out
}

/// The 4-D `(C, D, H, W)` view as `C × positions`, if its spatial axes merge into one stride.
fn merge_positions<T>(mut v: ArrayView4<'_, T>) -> Option<ArrayView2<'_, T>> {
    (v.merge_axes(Axis(2), Axis(3)) && v.merge_axes(Axis(1), Axis(3)))
        .then(|| v.index_axis_move(Axis(1), 0).index_axis_move(Axis(1), 0))
}

/// [`merge_positions`] for an output view; `v` is left as it was when they do not merge.
fn merge_positions_mut<'a, T>(v: &'a mut ArrayViewMut4<'_, T>) -> Option<ArrayViewMut2<'a, T>> {
    let mut m = v.view_mut();
    (m.merge_axes(Axis(2), Axis(3)) && m.merge_axes(Axis(1), Axis(3)))
        .then(|| m.index_axis_move(Axis(1), 0).index_axis_move(Axis(1), 0))
}

/// `dst = lhs · rhs`, or `dst += lhs · rhs` when `accumulate`; with `stream`, the final
/// sums go past the caches where they can (see [`kernels::gemm`]).
pub(crate) fn multiply<T: Scalar>(
    dst: ArrayViewMut2<'_, T>,
    lhs: ArrayView2<'_, T>,
    rhs: ArrayView2<'_, T>,
    accumulate: bool,
    stream: bool,
) {
    if kernels::gemm_supported::<T>() {
        kernels::gemm(dst, lhs, rhs, accumulate, stream);
    } else {
        multiply_plain(dst, lhs, rhs, accumulate);
    }
}

/// The plain product, exact for integers: each output row is accumulated in a contiguous
/// buffer as a sum of `rhs` rows scaled by `lhs` entries (dot products when `rhs` rows are
/// strided but its columns are not).
fn multiply_plain<T: Scalar>(
    mut dst: ArrayViewMut2<'_, T>,
    lhs: ArrayView2<'_, T>,
    rhs: ArrayView2<'_, T>,
    accumulate: bool,
) {
    let n = rhs.ncols();
    let columns_contiguous = rhs.strides()[0] == 1 && rhs.strides()[1] != 1;
    let mut acc = vec![T::zero(); n];
    for (lrow, mut drow) in lhs.outer_iter().zip(dst.outer_iter_mut()) {
        if columns_contiguous {
            for (y, col) in acc.iter_mut().zip(rhs.columns()) {
                *y = Zip::from(&lrow)
                    .and(&col)
                    .fold(T::zero(), |s, &a, &b| s + a * b);
            }
        } else {
            acc.fill(T::zero());
            for (&a, row) in lrow.iter().zip(rhs.outer_iter()) {
                Zip::from(&mut acc[..])
                    .and(&row)
                    .for_each(|y, &b| *y += a * b);
            }
        }
        if accumulate {
            Zip::from(&mut drow).and(&acc[..]).for_each(|d, &v| *d += v);
        } else {
            drow.assign(&ArrayView1::from(&acc[..]));
        }
    }
}

/// [`multiply`] on up to `threads` threads of the current pool, cutting `dst` along positions
/// (columns) when there are enough of them, else along output channels (rows).
fn multiply_par<T: Scalar>(
    dst: ArrayViewMut2<'_, T>,
    lhs: ArrayView2<'_, T>,
    rhs: ArrayView2<'_, T>,
    threads: usize,
    stream: bool,
) {
    let (m, n) = dst.dim();
    if threads <= 1 || m * n * lhs.ncols() < 1 << 18 {
        return multiply(dst, lhs, rhs, false, stream);
    }
    let parts: Vec<_> = if n >= threads * 2 * MIN_TILE || m < threads * 16 {
        // Pieces a multiple of the SIMD width, which gemm reads without copying, cut where
        // the panel's rows start a cache line (the first piece takes the columns before
        // the first line), so only one piece has a part vector to multiply on its own.
        let lanes = (64 / std::mem::size_of::<T>()).max(1);
        let lead = kernels::lead_columns(rhs.as_ptr(), rhs.strides()[0], rhs.nrows(), rhs.ncols());
        let chunk = n.div_ceil(threads).next_multiple_of(lanes);
        let (mut dst, mut rhs) = (dst, rhs);
        let mut parts = Vec::with_capacity(threads);
        while dst.ncols() > 0 {
            let cut = if parts.is_empty() {
                lead + chunk
            } else {
                chunk
            };
            let cut = cut.min(dst.ncols());
            let (d, d_rest) = dst.split_at(Axis(1), cut);
            let (r, r_rest) = rhs.split_at(Axis(1), cut);
            parts.push((d, lhs.view(), r));
            (dst, rhs) = (d_rest, r_rest);
        }
        parts
    } else {
        let chunk = m.div_ceil(threads);
        dst.into_axis_chunks_iter_mut(Axis(0), chunk)
            .zip(lhs.axis_chunks_iter(Axis(0), chunk))
            .map(|(d, l)| (d, l, rhs.view()))
            .collect()
    };
    crate::team::for_items(threads, parts, |(d, l, r)| multiply(d, l, r, false, stream));
}

/// Gather-and-multiply over tiles of one image. `on` is `(C_out, OD, OH, OW)`.
fn tiled<T: Scalar>(
    xn: ArrayView4<'_, T>,
    kmat: ArrayView2<'_, T>,
    on: ArrayViewMut4<'_, T>,
    geo: &Geo,
    threads: usize,
) {
    let total: usize = geo.out.iter().product();
    // With threads: one tile per worker at least (several when tiles are small anyway),
    // unless that leaves tiles too small, when each product is split by channels instead.
    let by_tiles = threads > 1 && total >= threads * 2 * MIN_TILE;
    let target = if by_tiles {
        total.div_ceil(threads)
    } else {
        total
    };
    let cut = Cut::new::<T>(geo, target, if by_tiles { threads } else { 1 });
    let mut tiles = Vec::new();
    for (di, od) in on.into_axis_chunks_iter_mut(Axis(1), cut.dn).enumerate() {
        for (hi, oh) in od.into_axis_chunks_iter_mut(Axis(2), cut.hn).enumerate() {
            for (wi, ow) in oh.into_axis_chunks_iter_mut(Axis(3), cut.wn).enumerate() {
                let [_, dn, hn, wn] = *ow.shape() else {
                    unreachable!()
                };
                let tile = Tile {
                    d0: di * cut.dn,
                    h0: hi * cut.hn,
                    w0: wi * cut.wn,
                    dn,
                    hn,
                    wn,
                };
                tiles.push((tile, ow));
            }
        }
    }
    if by_tiles {
        crate::team::for_items(threads, tiles, |(tile, view)| {
            with_scratch(|scratch| run_tile(&xn, kmat, view, &tile, geo, &cut, scratch, 1));
        });
    } else {
        with_scratch(|scratch| {
            for (tile, view) in tiles {
                run_tile(&xn, kmat, view, &tile, geo, &cut, scratch, threads);
            }
        });
    }
}

/// Gather one tile's windows (a reduction piece at a time) and multiply them into `view`.
fn run_tile<T: Scalar>(
    xn: &ArrayView4<'_, T>,
    kmat: ArrayView2<'_, T>,
    mut view: ArrayViewMut4<'_, T>,
    tile: &Tile,
    geo: &Geo,
    cut: &Cut,
    scratch: &mut Scratch<T>,
    threads: usize,
) {
    let p = tile.positions();
    let glen = geo.group_len();
    let total_groups = geo.red / glen;
    let Scratch {
        panel,
        row,
        phases,
        out,
        ..
    } = scratch;
    // Multiply straight into the output when its positions are one strided axis (both
    // NCDHW and NDHWC outputs are), else into a buffer copied out at the end.
    let merged = merge_positions_mut(&mut view);
    // When positions are the output's faster axis (NCDHW), the gemm crate takes them as its
    // rows and reads a channels-first panel in place only if their count is a multiple of the
    // SIMD width (the hand-written product masks partial vectors instead); otherwise it
    // copies the whole panel once more. Padding the panel's rows to that multiple (junk
    // columns, whose products land in discarded rows) and copying the much smaller product
    // out is cheaper.
    let lanes = (64 / std::mem::size_of::<T>()).max(1);
    let positions_fast = merged
        .as_ref()
        .is_none_or(|d| d.strides()[1].unsigned_abs() < d.strides()[0].unsigned_abs());
    let ld = if !geo.channels_last
        && positions_fast
        && !p.is_multiple_of(lanes)
        && kernels::gemm_supported::<T>()
        && !kernels::own_product::<T>()
    {
        p.next_multiple_of(lanes)
    } else {
        p
    };
    let (mut dst, direct) = match merged {
        Some(d) if ld == p => (d, true),
        _ => {
            out.resize(geo.cout * ld, T::zero());
            let d = ArrayViewMut2::from_shape((geo.cout, ld), &mut out[..geo.cout * ld])
                .expect("sized above");
            (d, false)
        }
    };
    let mut g0 = 0;
    while g0 < total_groups {
        let g1 = (g0 + cut.groups).min(total_groups);
        let len = (g1 - g0) * glen;
        if panel.len() < len * ld {
            panel.resize(len * ld, T::zero());
        }
        let panel = &mut panel[..len * ld];
        let rhs = if geo.channels_last {
            gather_channels_last(xn, tile, geo, (g0, g1), panel, row);
            ArrayView2::from_shape((len, p).strides((1, len)), panel).expect("sized above")
        } else if threads > 1 && g1 - g0 >= 2 * threads {
            // The product is about to be split across threads; split the gather too, by
            // panel rows (each part a run of reduction groups with its own row buffers).
            let per = (g1 - g0).div_ceil(threads);
            crate::team::for_chunks_mut(threads, panel, per * glen * ld, |i, part| {
                let (a, b) = (g0 + i * per, (g0 + (i + 1) * per).min(g1));
                gather_channels_first(
                    xn,
                    tile,
                    geo,
                    (a, b),
                    ld,
                    part,
                    &mut Vec::new(),
                    &mut Vec::new(),
                );
            });
            ArrayView2::from_shape((len, ld), panel).expect("sized above")
        } else {
            gather_channels_first(xn, tile, geo, (g0, g1), ld, panel, row, phases);
            ArrayView2::from_shape((len, ld), panel).expect("sized above")
        };
        let lhs = kmat.slice(s![.., g0 * glen..g1 * glen]);
        if g0 == 0 && g1 == total_groups {
            multiply_par(dst.view_mut(), lhs, rhs, threads, false);
        } else {
            // Reduction pieces accumulate; rare (huge kernels), so single-threaded.
            multiply(dst.view_mut(), lhs, rhs, g0 > 0, false);
        }
        g0 = g1;
    }
    if !direct {
        let shape = (tile.dn, tile.hn, tile.wn);
        for (o, mut channel) in view.outer_iter_mut().enumerate() {
            let row = &out[o * ld..o * ld + p];
            channel.assign(&ArrayView3::from_shape(shape, row).expect("p positions"));
        }
    }
}

/// Output rows `h` (within `[h0, h0 + hn)`) and kernel rows `th` that read input row `ih`.
fn readers(
    ih: usize,
    kh: usize,
    step: usize,
    dil: usize,
    h0: usize,
    hn: usize,
) -> impl Iterator<Item = (usize, usize)> {
    (0..kh).filter_map(move |th| {
        let rel = ih.checked_sub(th * dil)?;
        let h = rel / step;
        (rel % step == 0 && h >= h0 && h < h0 + hn).then_some((th, h))
    })
}

/// A contiguous input row as the gather reads it: `data[off + j·step]` is the input at column
/// `base + off + j·stride`, or, phase-split, `data[(off % s)·plen + off / s + j]`.
struct RowSource<'a, T> {
    data: &'a [T],
    step: usize,
    phases: usize,
    plen: usize,
}

impl<T: Scalar> RowSource<'_, T> {
    /// Write the `dst.len()` inputs that kernel column offset `off` meets.
    #[inline]
    fn copy_tap(&self, off: usize, dst: &mut [T]) {
        if self.phases > 1 {
            let start = (off % self.phases) * self.plen + off / self.phases;
            dst.copy_from_slice(&self.data[start..start + dst.len()]);
        } else {
            copy_strided(dst, &self.data[off..], self.step);
        }
    }
}

/// Contiguous input columns `[base, base + span)` of `row`: borrowed when the row is
/// contiguous, else copied into `buf`.
fn contiguous<'a, T: Scalar>(row: ArrayView1<'a, T>, buf: &'a mut Vec<T>) -> &'a [T] {
    match row.to_slice() {
        Some(s) => s,
        None => {
            buf.clear();
            buf.extend(row.iter().copied());
            buf
        }
    }
}

/// Channels-first panel, rows `ld` apart: row `r = ((c·kd + td)·kh + th)·kw + tw` (relative
/// to the first of the reduction groups `groups`), one column per tile position.
#[allow(clippy::too_many_arguments)]
fn gather_channels_first<T: Scalar>(
    xn: &ArrayView4<'_, T>,
    tile: &Tile,
    geo: &Geo,
    groups: (usize, usize),
    ld: usize,
    panel: &mut [T],
    rowbuf: &mut Vec<T>,
    phases: &mut Vec<T>,
) {
    let [kd, kh, kw] = geo.kernel;
    let [s0, s1, s2] = geo.stride;
    let [d0, d1, d2] = geo.dilation;
    let wn = tile.wn;
    let base = tile.w0 * s2;
    let span = geo.span(wn);
    let plen = span.div_ceil(s2);
    let (g0, g1) = groups;
    // Short rows copy faster straight from the strided input than through a phase split
    // and a call to memcpy per tap.
    let split = geo.phase_split && wn >= PHASE_SPLIT_MIN_WIDTH;
    // Channels whose groups fall in the range.
    let per_channel = kd * kh;
    for c in g0 / per_channel..g1.div_ceil(per_channel) {
        let xc = xn.index_axis(Axis(0), c);
        for dd in 0..tile.dn {
            let d = tile.d0 + dd;
            for td in 0..kd {
                let first = (c * kd + td) * kh;
                if first + kh <= g0 || first >= g1 {
                    continue;
                }
                let plane = xc.index_axis(Axis(0), d * s0 + td * d0);
                // Rows as plain sub-slices when the plane is one block (the usual case), which
                // spares a view per row; else each row is viewed (and copied if not contiguous),
                // and phase-split when that pays.
                let flat = plane.to_slice();
                let row_len = plane.shape()[1];
                if let (Some(f), false) = (flat, split) {
                    // Straight from the plane, one panel row (tap) at a time: a run per output
                    // row, contiguous at stride 1, a strided read otherwise.
                    for th in 0..kh {
                        let g = first + th;
                        if g < g0 || g >= g1 {
                            continue;
                        }
                        for tw in 0..kw {
                            let r = (g - g0) * kw + tw;
                            let at = r * ld + dd * tile.hn * wn;
                            let runs = panel[at..at + tile.hn * wn].chunks_exact_mut(wn);
                            for (hi, run) in runs.enumerate() {
                                let start =
                                    ((tile.h0 + hi) * s1 + th * d1) * row_len + base + tw * d2;
                                copy_strided(run, &f[start..], s2);
                            }
                        }
                    }
                    continue;
                }
                let ih_lo = tile.h0 * s1;
                let ih_hi = (tile.h0 + tile.hn - 1) * s1 + (kh - 1) * d1;
                for ih in ih_lo..=ih_hi {
                    let mut pairs = readers(ih, kh, s1, d1, tile.h0, tile.hn)
                        .filter(|&(th, _)| (g0..g1).contains(&(first + th)))
                        .peekable();
                    if pairs.peek().is_none() {
                        continue;
                    }
                    let src = match flat {
                        Some(f) => &f[ih * row_len + base..ih * row_len + base + span],
                        None => contiguous(plane.slice(s![ih, base..base + span]), rowbuf),
                    };
                    let source = if split {
                        phases.resize(s2 * plen, T::zero());
                        for q in 0..s2.min(span) {
                            let count = (span - q).div_ceil(s2);
                            copy_strided(&mut phases[q * plen..q * plen + count], &src[q..], s2);
                        }
                        RowSource {
                            data: &phases[..],
                            step: 1,
                            phases: s2,
                            plen,
                        }
                    } else {
                        RowSource {
                            data: src,
                            step: s2,
                            phases: 1,
                            plen,
                        }
                    };
                    for (th, h) in pairs {
                        let col0 = (dd * tile.hn + (h - tile.h0)) * wn;
                        for tw in 0..kw {
                            let r = (first + th - g0) * kw + tw;
                            let at = r * ld + col0;
                            source.copy_tap(tw * d2, &mut panel[at..at + wn]);
                        }
                    }
                }
            }
        }
    }
}

/// Channels-last panel: one row per tile position, holding the reduction groups `groups` of
/// the order `(td, th, tw, c)`; each group is one window row of `kw · C` inputs.
#[allow(clippy::too_many_arguments)]
fn gather_channels_last<T: Scalar>(
    xn: &ArrayView4<'_, T>,
    tile: &Tile,
    geo: &Geo,
    groups: (usize, usize),
    panel: &mut [T],
    rowbuf: &mut Vec<T>,
) {
    let [kd, kh, kw] = geo.kernel;
    let [s0, s1, s2] = geo.stride;
    let [d0, d1, d2] = geo.dilation;
    let cin = geo.cin;
    let glen = kw * cin;
    let (g0, g1) = groups;
    let len = (g1 - g0) * glen;
    let base = tile.w0 * s2;
    let span = geo.span(tile.wn);
    for dd in 0..tile.dn {
        let d = tile.d0 + dd;
        for td in 0..kd {
            let first = td * kh;
            if first + kh <= g0 || first >= g1 {
                continue;
            }
            let ih_lo = tile.h0 * s1;
            let ih_hi = (tile.h0 + tile.hn - 1) * s1 + (kh - 1) * d1;
            for ih in ih_lo..=ih_hi {
                let mut pairs = readers(ih, kh, s1, d1, tile.h0, tile.hn)
                    .filter(|&(th, _)| (g0..g1).contains(&(first + th)))
                    .peekable();
                if pairs.peek().is_none() {
                    continue;
                }
                // The row's (C, span) inputs, in memory order (W outer, C inner).
                let cols = xn.slice(s![.., d * s0 + td * d0, ih, base..base + span]);
                let src: &[T] = match cols
                    .to_slice_memory_order()
                    .filter(|_| cols.strides()[1] == cin as isize || span == 1)
                {
                    Some(s) => s,
                    None => {
                        rowbuf.resize(cin * span, T::zero());
                        ArrayViewMut2::from_shape((cin, span).strides((1, cin)), &mut rowbuf[..])
                            .expect("sized above")
                            .assign(&cols);
                        &rowbuf[..]
                    }
                };
                for (th, h) in pairs {
                    let g = first + th - g0;
                    let row0 = (dd * tile.hn + (h - tile.h0)) * tile.wn;
                    for j in 0..tile.wn {
                        let at = (row0 + j) * len + g * glen;
                        let dst = &mut panel[at..at + glen];
                        let from = j * s2 * cin;
                        if d2 == 1 {
                            dst.copy_from_slice(&src[from..from + glen]);
                        } else {
                            for (tw, chunk) in dst.chunks_exact_mut(cin).enumerate() {
                                let at = from + tw * d2 * cin;
                                chunk.copy_from_slice(&src[at..at + cin]);
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::view::copy_strided;

    #[test]
    fn strided_copies_read_exactly_the_strided_elements() {
        for step in 1..=6 {
            for n in 0..6 {
                // The source ends right after the last element read.
                let len = if n == 0 { 0 } else { (n - 1) * step + 1 };
                let src: Vec<i32> = (0..len as i32).collect();
                let mut dst = vec![-1; n];
                copy_strided(&mut dst, &src, step);
                let want: Vec<i32> = (0..n).map(|j| (j * step) as i32).collect();
                assert_eq!(dst, want, "step {step}, {n} elements");
            }
        }
    }
}
