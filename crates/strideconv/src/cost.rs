//! The cost model: estimated seconds for one method on one problem.
//!
//! Each method's cost is a sum of a few counted quantities (vector multiply-adds including the
//! register chunks' tails, elements copied, FFT butterflies with a cache penalty, ...), each
//! with a per-unit time measured on the development machine. A calibration run
//! ([`crate::wisdom::calibrate`]) measures a scale factor per method and element kind on the
//! machine at hand; `auto` only needs the order of the estimates right. The defaults below
//! already include one calibration run on the development machine (AVX-512, 2 cores).

use crate::kernels::{self, Isa};
use crate::method::fft::{self, FftGeometry};
use crate::method::Geom;
use crate::plan::Method;
use crate::scalar::{Kind, Scalar};
use crate::spec::{extent, ConvSpec, Layout};

/// Seconds per unit of the counted quantities, single-threaded (development machine).
mod unit {
    /// One vector fused multiply-add in the direct kernel (load + FMA, L1/L2 resident).
    pub const DIRECT_VFMA: f64 = 3.2e-10;
    /// Least cost of one kernel tap on one register chunk of an output row (loading the
    /// tap's offset and weight), whatever the chunk's width.
    pub const DIRECT_TAP: f64 = 1.75e-9;
    /// One 8-lane multiply-add of the channels-last dot kernel, and the fixed cost of one dot
    /// (a fit over n×n×5 ⋆ f×f×5, stride 2, n = 512, f 1–128, one thread: 2.2 + 0.46·v ns
    /// per kernel row of v vectors; it was 2.7 + 0.36·v, which priced short rows 1.2–1.4×
    /// high and rows of 40–80 vectors 1.2× low).
    pub const DOT_VFMA: f64 = 5.0e-10;
    pub const DOT_FIXED: f64 = 2.4e-9;
    /// Set-up of the dot path per call (kernel rows, row starts): 16²×5 ⋆ 16²×5 (one output)
    /// took 1.06 µs against 1.35 µs for the naive loop, 16² ⋆ 16² 0.94 against 0.85 µs.
    pub const DOT_SETUP: f64 = 0.25e-6;
    /// One element copied into the direct kernel's phase-split buffers (row slices, stride 2
    /// through the vectorised deinterleave).
    pub const COPY: f64 = 2.0e-10;
    /// One element split by stride × channels phases for the direct row path on channels-last
    /// rows (an AVX-512 gather a vector, `split8`, took 61% of 512²×5 ⋆ 3²×5, stride 2,
    /// 1 thread, 574 µs, for 1.3 M elements: 0.27 ns each; the in-register transposes that
    /// replaced it made the call 1.33× faster, interleaved, 858 → 646 µs: about 0.2 ns).
    pub const SPLIT: f64 = 2.0e-10;
    /// The row path's estimate scaled for channels-last rows read as one long row, whose
    /// many taps per output chunk (`kh·kw·C`) run closer to the FMA peak than a channel's
    /// few: measured against the unscaled estimate, n×n×5 stride 2, 512², 2 threads: 3×3
    /// 0.91, 9×9 0.82, 17×17 0.70 (where the estimate had `fft` chosen over a direct
    /// method 15% faster); n×n×3 stride 1, 3×3: 0.70.
    pub const FLAT_SCALE: f64 = 0.75;
    /// One scalar multiply-add of shift-and-add over strided slices, and the slicing of
    /// one tap.
    pub const SHIFT_ADD_MAC: f64 = 4.9e-10;
    /// One tap's slicing, view and pass (at 16² most of a call: 0.9 µs with one tap, 1.5
    /// µs with 4, 2.7 µs with 9, 2 threads, float64).
    pub const SHIFT_ADD_TAP: f64 = 2.0e-7;
    /// The depthwise path's fixed work beyond a call's (views of the padded input, the
    /// output's, the blocks): a one-channel 1×1 kernel, stride 2, 16²–32², took 1.3–1.4 µs
    /// against shift-and-add's 0.9 µs.
    pub const DEPTHWISE_CALL: f64 = 0.45e-6;
    /// One multiply-add whose input is a cache line away from the previous one's (n×n×5
    /// float64, stride 2, a 1×1×5 kernel: 2.3× the estimate without it at n = 1024, where
    /// shift-and-add was chosen over a direct method 1.3× faster).
    pub const SHIFT_ADD_LINE: f64 = 8.0e-10;
    /// One multiply-add of im2col's GEMM per byte of element (f32 1e-11 s, f64 2e-11 s; the
    /// gemm crate, measured), the exact integer loop, and one gathered panel byte.
    pub const GEMM_MAC_PER_BYTE: f64 = 2.7e-12;
    pub const IM2COL_INT_MAC: f64 = 6.2e-10;
    pub const GATHER_PER_BYTE: f64 = 1.25e-11;
    /// Fixed cost of one im2col block (one image and group: panel set-up, one GEMM call),
    /// and of one output position (its panel row and result; what remains when the
    /// reduction is a tap or two).
    pub const IM2COL_BLOCK: f64 = 5.0e-7;
    pub const IM2COL_POINT: f64 = 6.0e-10;
    /// `winograd`: one transformed input value (a tile's point of one input channel: its
    /// share of the row split and of `Bᵀ d B`), one output channel's point of a tile in the
    /// output transform, and one kernel pair (its transform, or the comparison that finds it
    /// kept). Fitted to 3×3 64→64 @56, 128→128 @28 and 256→256 @14, float32, against
    /// `im2col`'s estimates on the same machine: the transforms took 25–30% of the time.
    pub const WINO_IN: f64 = 3.0e-10;
    pub const WINO_OUT: f64 = 1.2e-10;
    pub const WINO_PAIR: f64 = 2.0e-9;
    /// One window row copied into a channels-last panel (`kw·C` elements, a call to
    /// `memmove` each: n×n×5 ⋆ 2×2×5, stride 2, measured 1.8× the estimate without it at
    /// n = 1024, where im2col was chosen over a direct method 1.9× faster).
    pub const IM2COL_RUN: f64 = 2.4e-9;
    /// One multiply-add of the naive loop, and its cost per output (index arithmetic of the
    /// window: 16²×5 with a 1×1×5 kernel, stride 2, took 1.87 µs for 64 outputs of 5 taps).
    pub const NAIVE_MAC: f64 = 1.5e-9;
    pub const NAIVE_POINT: f64 = 3.0e-8;
    /// One FFT butterfly unit (n·log2 n per transform of n points, real transforms halved).
    pub const FFT_UNIT: f64 = 1.3e-10;
    /// Fixed costs of one transform (buffer set-up) and of one FFT call (plans, allocations).
    /// (A whole polyphase call on 16²×5 ⋆ 9²×5, 41 transforms, took 7.7 µs: at 0.5 µs per
    /// transform the estimate was 29 µs, and `fft` lost cells at n = 48–64 it was fastest on.)
    pub const FFT_TRANSFORM: f64 = 0.15e-6;
    pub const FFT_CALL: f64 = 4.0e-6;
    /// Both FFT methods' estimates for a channels-last input of several channels at a
    /// last-axis stride of 3 or more (the seed's n×n×10 stride 5), where the phase split
    /// goes by gathers: measured against the estimate, float64, 2 threads, 192²–1024²,
    /// kernels 48²–128²: `fft` 1.6–2.5×, `fft_full` 1.5–2.8× (`direct` 0.99–1.17×), so
    /// `fft` was chosen at 48² kernels where `direct` was 1.3–1.7× faster.
    pub const FFT_GATHERED_SCALE: f64 = 2.0;
    /// One complex multiply-add of spectra.
    pub const SPECTRUM_MAC: f64 = 1.5e-9;
    /// Fixed cost of a call, and of waking the thread pool.
    pub const CALL: f64 = 2.0e-6;
    pub const POOL: f64 = 8.0e-6;
}

/// Size of one element of the compute type, in bytes.
fn elem_bytes<T: Scalar>() -> usize {
    std::mem::size_of::<T>()
}

/// SIMD lanes the kernels use for `T` on this machine (1 where they do not vectorise).
fn lanes<T: Scalar>() -> f64 {
    if T::KIND != Kind::Real {
        return 1.0;
    }
    let bytes = match kernels::isa() {
        Isa::Avx512 => 64,
        Isa::Avx2 => 32,
        Isa::Scalar => 16,
    };
    (bytes / elem_bytes::<T>()) as f64
}

/// How much slower an element kind is than real floats, per multiply-add of a scalar loop.
fn kind_factor<T: Scalar>() -> f64 {
    match T::KIND {
        Kind::Real => 1.0,
        Kind::Complex => 2.5,
        Kind::Integer => 3.5,
    }
}

/// The same for the direct kernel, whose real path is already counted in vectors.
fn direct_kind_factor<T: Scalar>() -> f64 {
    match T::KIND {
        Kind::Real => 1.0,
        Kind::Complex => 0.25,
        Kind::Integer => 3.0,
    }
}

/// Scale factors from calibration, per method and element kind.
#[derive(Clone, Debug, PartialEq)]
pub struct Scales(pub Vec<(Method, Kind, f64)>);

impl Scales {
    fn get(&self, m: Method, k: Kind) -> f64 {
        self.0
            .iter()
            .find(|(mm, kk, _)| *mm == m && *kk == k)
            .map_or(1.0, |s| s.2)
    }
}

/// Estimated single-problem seconds for method `m`, or why it refuses.
pub(crate) fn estimate<T: Scalar>(
    m: Method,
    spec: &ConvSpec,
    threads: usize,
    scales: &Scales,
) -> Result<f64, String> {
    let base = match m {
        Method::Auto => return Err("auto is not a method".into()),
        Method::Winograd => match crate::method::winograd::refusal::<T>(spec) {
            Some(reason) => return Err(reason),
            None => winograd::<T>(spec, threads),
        },
        Method::Fft | Method::FftFull if T::KIND == Kind::Integer => {
            return Err("FFT rounds; integers are computed exactly by the other methods".into())
        }
        Method::Naive => {
            let outputs = spec.batch as f64
                * spec.out_channels as f64
                * spec.out_spatial().iter().product::<usize>() as f64;
            spec.macs() * unit::NAIVE_MAC * kind_factor::<T>() + outputs * unit::NAIVE_POINT
        }
        Method::Direct => direct::<T>(spec, threads),
        Method::ShiftAdd => {
            let taps = (spec.batch * spec.out_channels * spec.in_channels / spec.groups) as f64
                * spec.kernel.iter().product::<usize>() as f64;
            // Inputs a cache line or more apart along a row (stride times the interleaved
            // channels): every multiply-add reads a line of its own, from beyond L2 when the
            // input is larger (below that, n ≤ 192 at n×n×5, shift-and-add stayed fastest).
            let step = spec.stride[2]
                * if channels_last(spec) {
                    spec.in_channels
                } else {
                    1
                }
                * elem_bytes::<T>();
            let input = padded_input(spec) * elem_bytes::<T>() as f64;
            let line = if step >= 64 && input > (2 << 20) as f64 {
                unit::SHIFT_ADD_LINE
            } else {
                0.0
            };
            spec.macs() * (unit::SHIFT_ADD_MAC * kind_factor::<T>() + line)
                + taps * unit::SHIFT_ADD_TAP
        }
        Method::Im2col => im2col::<T>(spec),
        Method::Fft | Method::FftFull => fft::<T>(spec, m == Method::Fft),
    };
    let par = parallel_speedup::<T>(m, spec, threads);
    let overhead = unit::CALL
        + if threads > 1 && spec.macs() >= crate::method::PARALLEL_MACS {
            unit::POOL
        } else {
            0.0
        };
    Ok(base * scales.get(m, T::KIND) / par + overhead)
}

/// Transform points from which one FFT's rows, spread over the threads, run faster than on
/// one (below it, nothing gained: 160² ⋆ 33², a 192² transform, took 153 µs on 1 thread
/// and on 2, although the method spreads buffers from `fft::PARALLEL_MIN` on).
const FFT_SPREAD_GAINS: usize = 1 << 16;

/// Expected speed-up on `threads` threads: blocks for most methods; rows of transforms for a
/// single FFT block.
fn parallel_speedup<T: Scalar>(m: Method, spec: &ConvSpec, threads: usize) -> f64 {
    if threads <= 1 || spec.macs() < crate::method::PARALLEL_MACS {
        return 1.0;
    }
    let t = threads as f64;
    match m {
        Method::Fft | Method::FftFull => {
            let geom = Geom {
                stride: spec.stride,
                dilation: spec.dilation,
                threads: 1,
                stream: false,
            };
            let geo = FftGeometry::new(
                spec.out_spatial(),
                spec.kernel,
                &geom,
                m == Method::Fft,
                T::KIND == Kind::Real,
            );
            let transforms = geo.live_phases(spec.kernel, &geom) * spec.in_channels / spec.groups;
            if spec.batch >= threads {
                0.9 * t
            } else if transforms >= threads {
                // Whole transforms spread over the threads (method/fft.rs). Measured with the
                // thread team on 2 threads: 1.8-2× on n×n×5 and n×n×10 inputs, 1.5-1.7× on
                // one channel (four phases; 0.9 there took fft over direct at 512² ⋆ 17²,
                // 1.5× slower).
                if spec.in_channels > 1 {
                    0.9 * t
                } else {
                    0.75 * t
                }
            } else if geo.m.iter().product::<usize>() >= FFT_SPREAD_GAINS {
                1.0 + 0.6 * (t - 1.0)
            } else {
                1.0 // transforms too small to be spread over threads
            }
        }
        Method::Winograd => 0.9 * t,
        Method::Im2col => {
            // One block per image and group, split inside by tiles or output channels.
            let positions = spec.out_spatial().iter().product::<usize>();
            if positions >= 256 || spec.out_channels >= 32 * threads {
                0.9 * t
            } else {
                1.0
            }
        }
        _ => {
            let rows =
                (spec.batch * spec.out_channels * spec.out_spatial()[0] * spec.out_spatial()[1])
                    as f64;
            0.8 * t.min(rows)
        }
    }
}

/// True when the direct method takes its channels-last path (interleaved channels).
fn channels_interleaved(spec: &ConvSpec) -> bool {
    // (The signal layout has one group.)
    let last = channels_last(spec) && spec.groups == 1;
    let long_rows = spec.in_channels == spec.groups && spec.out_spatial()[2] * 4 <= spec.kernel[2];
    spec.dilation[2] == 1 && ((last && spec.in_channels > 1) || long_rows)
}

fn im2col<T: Scalar>(spec: &ConvSpec) -> f64 {
    let cout_g = spec.out_channels / spec.groups;
    // gemm's micro-kernel pads output channels to multiples of six.
    let padded = (cout_g.div_ceil(6) * 6) as f64 / cout_g as f64;
    let bytes = elem_bytes::<T>() as f64;
    let mac = if T::KIND == Kind::Integer {
        unit::IM2COL_INT_MAC
    } else {
        unit::GEMM_MAC_PER_BYTE * bytes
    };
    // Fewer output channels than the micro-kernel's width: a matrix-vector product, bound by
    // reading the panel (measured on depthwise layers).
    let thin = if cout_g < 6 { 1.8 } else { 1.0 };
    let out_points = spec.out_spatial().iter().product::<usize>() as f64 * spec.batch as f64;
    let blocks = (spec.batch * spec.groups) as f64;
    // The implicit product gathers no panel: it reads the (phase-split, when strided) input
    // and computes the grid's extra positions past each output row. Otherwise the panel is
    // gathered: channels last, a window row (kw·C elements, or C when dilated along W) is
    // one copy each; channels first, a panel row is a long run per tile row, counted in the
    // gathered bytes alone.
    let (waste, gathered, runs) = match implicit_grid::<T>(spec) {
        Some((pitch, copied)) => {
            let ow = spec.out_spatial()[2] as f64;
            let input = if copied { padded_input(spec) } else { 0.0 };
            (pitch as f64 / ow, input, 0.0)
        }
        None => {
            let gathered = out_points * spec.reduction_len() as f64 * spec.groups as f64;
            let runs = if channels_last(spec) && spec.in_channels > 1 {
                let [kd, kh, kw] = spec.kernel;
                let per_window = kd * kh * if spec.dilation[2] == 1 { 1 } else { kw };
                out_points * (spec.groups * per_window) as f64
            } else {
                0.0
            };
            (1.0, gathered, runs)
        }
    };
    spec.macs() * mac * padded * thin * waste
        + gathered * bytes * unit::GATHER_PER_BYTE
        + runs * unit::IM2COL_RUN
        + blocks * unit::IM2COL_BLOCK
        + out_points * spec.groups as f64 * unit::IM2COL_POINT
}

/// `winograd`: 16 products of (output × input channels) by (input channels × tiles), with
/// the transforms of the input (per tile, input channel and point), of the products (per
/// tile, output channel and point) and of the kernel (per channel pair) around them.
fn winograd<T: Scalar>(spec: &ConvSpec, threads: usize) -> f64 {
    let [cin_g, cout_g] = [
        spec.in_channels / spec.groups,
        spec.out_channels / spec.groups,
    ];
    let out = spec.out_spatial();
    let planes = spec.batch * spec.groups * out[0];
    let m = crate::method::winograd::tile::<T>([out[1], out[2]], [cin_g, cout_g], planes, threads);
    let tiles =
        (spec.batch * spec.groups * out[0] * out[1].div_ceil(m) * out[2].div_ceil(m)) as f64;
    let points = crate::method::winograd::points(m) as f64 * tiles;
    let padded = (cout_g.div_ceil(8) * 8) as f64 / cout_g as f64;
    let thin = if cout_g < 6 { 1.8 } else { 1.0 };
    let bytes = elem_bytes::<T>() as f64;
    let copy = if spec.is_padded() {
        padded_input(spec) * bytes * unit::GATHER_PER_BYTE
    } else {
        0.0
    };
    // The transforms' passes move elements: their cost grows with the element's size, and
    // F(4×4, 3×3) does about 1.5× the arithmetic per point of F(2×2, 3×3).
    let per_point = bytes / 4.0 * if m == 4 { 1.5 } else { 1.0 };
    let macs = points * (cin_g * cout_g) as f64;
    macs * unit::GEMM_MAC_PER_BYTE * bytes * padded * thin
        + points * per_point * (cin_g as f64 * unit::WINO_IN + cout_g as f64 * unit::WINO_OUT)
        + (spec.out_channels * cin_g) as f64 * unit::WINO_PAIR
        + copy
}

/// Where `im2col` takes its implicit product (see `method::im2col`): the grid's pitch, and
/// whether the input is copied (strided: split by phase) rather than read in place. A
/// planning estimate: the method decides again on the views it is given.
fn implicit_grid<T: Scalar>(spec: &ConvSpec) -> Option<(usize, bool)> {
    let channels_last = channels_last(spec);
    let lanes = 64 / elem_bytes::<T>();
    let taps = spec.kernel.iter().product::<usize>();
    // Kernel taps per stride phase: more than one when windows overlap.
    let phases: usize = (0..3)
        .map(|a| spec.kernel[a].min(spec.stride[a] / gcd(spec.stride[a], spec.dilation[a])))
        .product();
    let out = spec.out_spatial();
    let need = (out[2] - 1) * spec.stride[2] + extent(spec.kernel[2], spec.dilation[2]);
    let pitch = need.div_ceil(spec.stride[2]);
    let ok = kernels::own_product::<T>() && !channels_last && taps > phases && pitch >= lanes;
    ok.then_some((pitch, spec.stride != [1, 1, 1]))
}

/// Elements of the padded input, every image and channel.
fn padded_input(spec: &ConvSpec) -> f64 {
    (spec.batch * spec.in_channels) as f64
        * (0..3).map(|a| spec.padded_len(a) as f64).product::<f64>()
}

/// True when the channels are the input's last axis (interleaved in memory).
fn channels_last(spec: &ConvSpec) -> bool {
    match &spec.layout {
        Layout::Signal { channel_axis, .. } => *channel_axis == Some(spec.rank),
        Layout::Batched { channels_last } => *channels_last,
    }
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

fn direct<T: Scalar>(spec: &ConvSpec, threads: usize) -> f64 {
    let [od, oh, ow] = spec.out_spatial();
    let [kd, kh, kw] = spec.kernel;
    if channels_interleaved(spec) {
        let c = spec.in_channels;
        // The kernel is borrowed when already in the input's memory order (a signal's
        // kernel shaped like its input, not flipped); a flipped kernel, or CNN weights
        // (channels before the kernel's axes), is copied on each call first.
        let weights = matches!(spec.layout, Layout::Batched { .. }) && c > 1;
        let copied = weights || spec.op == crate::spec::Op::Convolve;
        let kernel = if copied {
            (spec.out_channels * c * kd * kh * kw) as f64 * 2.0 * unit::COPY
        } else {
            0.0
        };
        if crate::method::direct::flat_rows_pay(c, spec.kernel, spec.stride, ow, elem_bytes::<T>())
        {
            // One channel of rows W·C long, read `stride·C` apart, split by the gathering
            // copy.
            let [s1, s2] = [spec.stride[1], spec.stride[2]];
            return rows::<T>(
                spec,
                1,
                [kd, kh, kw * c],
                [s1, s2 * c],
                [spec.dilation[1], 1],
                (unit::SPLIT, true, threads),
            ) * unit::FLAT_SCALE
                + kernel;
        }
        // kd·kh dot products of kw·C per output, four outputs per kernel load.
        let outputs = (spec.batch * spec.out_channels * od * oh * ow) as f64;
        let vectors = (kw * c).div_ceil(8) as f64;
        return outputs
            * (kd * kh) as f64
            * (vectors * unit::DOT_VFMA * direct_kind_factor::<T>() + unit::DOT_FIXED)
            + kernel
            + unit::DOT_SETUP;
    }
    // The depthwise path (and one-channel problems the masked kernel takes) reads the input
    // where it is.
    let taken = crate::method::depthwise::taken::<T>(spec);
    // Taps whose input rows the masked kernel loads once for every output row they feed.
    let shared = crate::method::depthwise::shares(spec)
        .filter(|_| taken && crate::method::depthwise::masked::<T>(spec))
        .map_or(1.0, |s| 1.0 / kernels::shared_gain(spec.kernel[1], s));
    let fixed = if taken { unit::DEPTHWISE_CALL } else { 0.0 };
    fixed
        + shared
            * rows::<T>(
                spec,
                spec.in_channels / spec.groups,
                spec.kernel,
                [spec.stride[1], spec.stride[2]],
                [spec.dilation[1], spec.dilation[2]],
                if taken {
                    (0.0, false, threads)
                } else {
                    (unit::COPY, true, threads)
                },
            )
}

/// How much cheaper a tap is when it serves two output rows ([`rows`]).
const PAIR_GAIN: f64 = 1.55;

/// The direct row path: `cin` channels of rows, kernel `kernel`, strides and dilations
/// along H and W; `copy` per element copied into the phase-split buffers, whether output
/// rows go in pairs where they share input rows (`method::direct`; not the depthwise path),
/// and the threads (which cut the rows into blocks, each paired only if tall enough).
fn rows<T: Scalar>(
    spec: &ConvSpec,
    cin: usize,
    [kd, kh, kw]: [usize; 3],
    [s1, s2]: [usize; 2],
    [d1, d2]: [usize; 2],
    (copy, paired, threads): (f64, bool, usize),
) -> f64 {
    let [od, oh, ow] = spec.out_spatial();
    // The row kernel's register chunk (`kernels::rows`).
    let chunk = kernels::chunk_for::<T>(
        ow,
        if kernels::isa() == Isa::Avx512 {
            512
        } else {
            256
        },
    );
    let padded_ow = ow.div_ceil(chunk) * chunk;
    let out_rows = (spec.batch * spec.out_channels * od * oh) as f64;
    let chunk_taps = out_rows * (cin * kd * kh * kw) as f64 * (padded_ow / chunk) as f64;
    // Paired output rows: a tap both rows read is one load for two multiply-adds, about
    // 1.55× cheaper (measured gains, one thread: 9×9 stride 2 1.36-1.43×, 17×17 1.46×, 8×8
    // stride 3 1.3×, 17×17 stride 1 1.59×, against 1.38, 1.42, 1.27 and 1.5 here).
    // Rows per block: `method::drive` aims at four blocks per thread, cutting output channels
    // first, then rows.
    let fixed = spec.batch * spec.out_channels;
    let want = 4 * threads;
    let block_rows = if threads > 1 && fixed < want {
        oh.div_ceil(want / fixed).max(1)
    } else {
        oh
    };
    let shared = match crate::method::direct::pair_shift(kh, s1, d1, block_rows, ow) {
        Some(q) if paired => (kh - q) as f64 / kh as f64,
        _ => 0.0,
    };
    let per_chunk_tap =
        ((chunk as f64 / lanes::<T>()).max(1.0) * unit::DIRECT_VFMA * direct_kind_factor::<T>())
            .max(unit::DIRECT_TAP)
            * (shared / PAIR_GAIN + 1.0 - shared);
    // Copies: the input rows of every chunk of output rows (at least 8 rows a chunk), all phases.
    let xw = (ow - 1) * s2 + extent(kw, d2);
    let rows_copied = oh * s1 + oh.div_ceil(8) * extent(kh, d1);
    let copied = (spec.batch * od * rows_copied * cin * kd * xw) as f64;
    // Working set of one output row beyond L2 costs cache misses on every tap.
    let ws = (cin * kd * kh) as f64 * (xw + kernels::PAD) as f64 * elem_bytes::<T>() as f64;
    let cache = 1.0 + (ws / (1 << 20) as f64).min(8.0) * 0.5;
    chunk_taps * per_chunk_tap * cache + copied * copy
}

fn fft<T: Scalar>(spec: &ConvSpec, polyphase: bool) -> f64 {
    let geom = Geom {
        stride: spec.stride,
        dilation: spec.dilation,
        threads: 1,
        stream: false,
    };
    let real = T::KIND == Kind::Real;
    let out = spec.out_spatial();
    let (band, geo) = FftGeometry::banded(out, spec.kernel, &geom, polyphase, real);
    let bands = out[1].div_ceil(band) as f64;
    let points = geo.m.iter().product::<usize>() as f64;
    let spectrum = if real { points / 2.0 } else { points };
    let bytes = spectrum * 2.0 * elem_bytes::<T>() as f64 / if real { 1.0 } else { 2.0 };
    // Spectra past half of L2 cost more per element, growing with their size (a fit over
    // the three seed presets' FFT cells, n 256–1024, f 9–256, one thread: within 20% of
    // the measured time on 46 of 54 cells, against up to 4.5× too high before).
    let cache = 1.0 + 0.2 * (bytes / (1 << 20) as f64 - 0.5).max(0.0);
    // Passes over the data, in radix-2 stages: log2 of the size for powers of two, more
    // for lengths with factors 3, 5 and 7 (priced by `radix_work`).
    let passes: f64 = geo.m.iter().map(|&m| fft::radix_work(m)).sum();
    let per_transform = spectrum * passes.max(1.0) * unit::FFT_UNIT * cache
        + points * unit::COPY * 0.5
        + unit::FFT_TRANSFORM;
    let live = geo.live_phases(spec.kernel, &geom) as f64;
    let (cin_g, cout_g) = (
        (spec.in_channels / spec.groups) as f64,
        (spec.out_channels / spec.groups) as f64,
    );
    // Kernel spectra once per call; input spectra, products and inverses once per band.
    let kernels = live * cin_g * cout_g * per_transform;
    let per_band = (live * cin_g + cout_g) * per_transform
        + live * cin_g * cout_g * spectrum * unit::SPECTRUM_MAC;
    // Channels-last input split by gathers ([`unit::FFT_GATHERED_SCALE`]).
    let gathered = channels_last(spec) && spec.in_channels > 1 && spec.stride[2] >= 3;
    let scale = if gathered {
        unit::FFT_GATHERED_SCALE
    } else {
        1.0
    };
    scale * spec.batch as f64 * spec.groups as f64 * (kernels + bands * per_band) + unit::FFT_CALL
}
