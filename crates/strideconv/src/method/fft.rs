//! `fft` (polyphase) and `fft_full` (the seed's FFT-then-subsample), on one engine.
//!
//! Polyphase: with stride `s`, split input and (dilated) kernel by offset modulo `s` along
//! every axis; each of the `s^d` phase pairs is an unstrided correlation, and their sum is
//! exactly the strided result. All phases and input channels are summed in the frequency
//! domain, so each output channel needs one inverse transform and no output is computed only
//! to be dropped. `fft_full` is the same engine with one phase: it computes every unstrided
//! output and keeps every s-th.
//!
//! Correlation by FFT: with the kernel reversed and zero-padded to `M ≥ V + L − 1` (V outputs
//! wanted, kernel length L), circular convolution at index `o + L − 1` is the valid
//! correlation at `o`, untouched by wrap-around.
//!
//! Transforms: real input uses real-to-complex transforms along the last axis (half the
//! work); the other axes are complex transforms made contiguous by a transpose. Spectra stay
//! in the transposed layout (products are elementwise, so the layout does not matter), which
//! saves the transposes back; only the inverse undoes them. Rows are transformed on the
//! plan's threads. Real 2-D transforms made on one thread (each thread its own phases, or
//! one thread in all) take the pass along the columns a block of columns at a time, fused
//! with the products ([`Setup::accumulate_fused`]).

use std::any::Any;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use ndarray::{s, ArrayView5, ArrayViewMut3, ArrayViewMut5, Axis};
use num_complex::{Complex, Complex32, Complex64};
use num_traits::{Float, One, Zero};
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};
use rustfft::{Fft, FftNum, FftPlanner};

use super::{Algorithm, Geom, Tiling};
use crate::kernels::split_phases;
use crate::spec::{extent, SPATIAL};
use crate::{view, Scalar};

type C<F> = Complex<F>;

/// Work of one transform of length `m` per element, in radix-2 stages: each prime factor
/// is one pass over the data, priced by its radix. The radix prices are RustFFT's on this
/// machine (`examples/fft_sizes.rs`, complex and real float64 over all 7-smooth lengths from
/// 16 to 2100; a least-squares fit of time = m · Σ price within ±20% on 80% of lengths):
/// radix-3 passes cost 2.1× a radix-2 pass, radix-5 4.7×, radix-7 5.3×, so 2^a·3^b lengths
/// win even when a little longer (105 = 3·5·7 takes 1.8× the time of 128).
pub(crate) fn radix_work(m: usize) -> f64 {
    const PRICE: [(usize, f64); 4] = [(2, 1.0), (3, 2.1), (5, 4.7), (7, 5.3)];
    let mut rest = m;
    let mut work = 0.0;
    for (p, price) in PRICE {
        while rest.is_multiple_of(p) {
            rest /= p;
            work += price;
        }
    }
    // Other primes go to slower algorithms (Rader, Bluestein); lengths chosen here never
    // have them.
    if rest > 1 {
        work += 4.0 * (rest as f64).log2() * 2.0;
    }
    work
}

/// The transform length for `n` points: among 2·3·5·7-smooth lengths ≥ n (and even when
/// `even`, as real transforms of odd length run at complex speed), the one that minimises
/// `m · (radix_work(m) + rest)`, where `rest` is the per-element work that grows with the
/// length but does not depend on its factors (the other axes' passes, copies, products).
pub(crate) fn fast_len(n: usize, rest: f64, even: bool) -> usize {
    if n <= 1 {
        return 1;
    }
    let cost = |m: usize| m as f64 * (radix_work(m) + rest);
    let limit = 2 * n.next_power_of_two();
    let mut best = limit;
    let mut p7 = 1;
    while p7 < limit {
        let mut p5 = p7;
        while p5 < limit {
            let mut p3 = p5;
            while p3 < limit {
                let mut v = p3;
                while v < n || (even && !v.is_multiple_of(2)) {
                    v *= 2;
                }
                if cost(v) < cost(best) || (cost(v) == cost(best) && v < best) {
                    best = v;
                }
                p3 *= 3;
            }
            p5 *= 5;
        }
        p7 *= 7;
    }
    best
}

/// The sizes one FFT problem uses; also what the cost model prices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FftGeometry {
    /// Phases per axis (stride for polyphase, 1 for full).
    pub phases: [usize; SPATIAL],
    /// Output step within the unstrided result (1 for polyphase, stride for full).
    pub step: [usize; SPATIAL],
    /// Common reversed-kernel length per axis.
    pub klen: [usize; SPATIAL],
    /// Transform size per axis.
    pub m: [usize; SPATIAL],
}

impl FftGeometry {
    pub fn new(
        out: [usize; SPATIAL],
        kernel: [usize; SPATIAL],
        g: &Geom,
        polyphase: bool,
        real: bool,
    ) -> Self {
        let phases = if polyphase { g.stride } else { [1; SPATIAL] };
        let step = if polyphase { [1; SPATIAL] } else { g.stride };
        let klen: [usize; SPATIAL] =
            std::array::from_fn(|a| extent(kernel[a], g.dilation[a]).div_ceil(phases[a]));
        let need: [usize; SPATIAL] =
            std::array::from_fn(|a| (out[a] - 1) * step[a] + 1 + klen[a] - 1);
        // Per element, besides this axis's passes: the other axes' passes (about log2 of
        // their lengths) and about two passes' worth of copies, transposes and products.
        let m = std::array::from_fn(|a| {
            let others: f64 = (0..SPATIAL)
                .filter(|&b| b != a && need[b] > 1)
                .map(|b| (need[b] as f64).log2())
                .sum();
            fast_len(need[a], others + 2.0, real && a == SPATIAL - 1)
        });
        FftGeometry {
            phases,
            step,
            klen,
            m,
        }
    }

    /// Overlap-save bands along H: the output rows per band and the band's geometry. Bands
    /// keep a spectrum within L2 when the kernel is short against the band, else within
    /// `BAND_SPECTRUM`; they are as few as that allows, of equal height (the last one may be
    /// shorter by less than a row per band), never less than one row.
    pub fn banded(
        out: [usize; SPATIAL],
        kernel: [usize; SPATIAL],
        g: &Geom,
        polyphase: bool,
        real: bool,
    ) -> (usize, Self) {
        let whole = Self::new(out, kernel, g, polyphase, real);
        let oh = out[1];
        let spectrum_row = whole.m[0] * if real { whole.m[2] / 2 + 1 } else { whole.m[2] };
        let band_rows = |budget: usize| {
            let max_m1 = (budget / spectrum_row.max(1)).max(1);
            if whole.m[1] <= max_m1 {
                oh
            } else {
                // Rows r with (r-1)·step + klen ≤ max_m1, at least one.
                (max_m1.saturating_sub(whole.klen[1]) / whole.step[1] + 1).clamp(1, oh)
            }
        };
        let small = band_rows(BAND_L2);
        let most = if small == oh || small * whole.step[1] >= 4 * whole.klen[1] {
            small
        } else {
            band_rows(BAND_SPECTRUM)
        };
        // As many bands as the budget needs, of equal height: every band is transformed at
        // the tallest one's size, so a short last band cost as much as a full one (seed-2d
        // 1024² ⋆ 65², stride 2: bands of 223, 223 and 34 rows, each in 256-row transforms;
        // now three of 160 in 192-row ones, 0.64–0.9× the time on one and two threads).
        let band = oh.div_ceil(oh.div_ceil(most));
        (
            band,
            Self::new([out[0], band, out[2]], kernel, g, polyphase, real),
        )
    }

    /// Number of phase combinations with a non-empty kernel part.
    pub fn live_phases(&self, kernel: [usize; SPATIAL], g: &Geom) -> usize {
        (0..SPATIAL)
            .map(|a| self.phases[a].min(extent(kernel[a], g.dilation[a])))
            .product()
    }
}

/// The transforms of one transform size, real or complex along the last axis.
#[derive(Clone)]
pub(crate) struct Transforms<F: FftNum> {
    m: [usize; SPATIAL],
    /// Length of a spectrum row along the last axis (m2/2+1 for real data, m2 for complex).
    h2: usize,
    r2c: Arc<dyn RealToComplex<F>>,
    c2r: Arc<dyn ComplexToReal<F>>,
    last: [Arc<dyn Fft<F>>; 2],
    mid: [Arc<dyn Fft<F>>; 2],
    first: [Arc<dyn Fft<F>>; 2],
    /// Threads the rows of one transform are spread over (1: this thread alone).
    threads: usize,
    /// A buffer for the transforms to overwrite whole, not zeroed first
    /// ([`FftScalar::spectrum`]).
    buffer: fn(usize) -> Vec<C<F>>,
}

/// Element types the FFT engine accepts, with their complex working type.
pub(crate) trait FftScalar: Scalar {
    type F: FftNum + Float;
    const REAL: bool;
    fn to_c(self) -> C<Self::F>;
    /// The result from a real transform's output value.
    fn from_re(v: Self::F) -> Self;
    /// The result from a complex transform's output value.
    fn from_c(c: C<Self::F>) -> Self;
    /// Real data as the transform's working type (itself), so it is transformed in place
    /// instead of copied; `None` for complex types.
    fn real_mut(data: &mut [Self]) -> Option<&mut [Self::F]>;
    /// A buffer of `n` complex values for a transform to overwrite, not zeroed first
    /// ([`crate::kernels::output`]: poisoned in test builds, so a value read before it is
    /// written fails the tests).
    fn spectrum(n: usize) -> Vec<C<Self::F>>;
}

macro_rules! real_fft_scalar {
    ($t:ty) => {
        impl FftScalar for $t {
            type F = $t;
            const REAL: bool = true;
            fn to_c(self) -> C<$t> {
                Complex::new(self, 0.0)
            }
            fn from_re(v: $t) -> $t {
                v
            }
            fn from_c(c: C<$t>) -> $t {
                c.re
            }
            fn real_mut(data: &mut [$t]) -> Option<&mut [$t]> {
                Some(data)
            }
            fn spectrum(n: usize) -> Vec<C<$t>> {
                crate::kernels::output::<C<$t>>(n)
            }
        }
    };
}
real_fft_scalar!(f32);
real_fft_scalar!(f64);

macro_rules! complex_fft_scalar {
    ($t:ty, $f:ty) => {
        impl FftScalar for $t {
            type F = $f;
            const REAL: bool = false;
            fn to_c(self) -> $t {
                self
            }
            fn from_re(v: $f) -> $t {
                Complex::new(v, 0.0)
            }
            fn from_c(c: $t) -> $t {
                c
            }
            fn real_mut(_: &mut [$t]) -> Option<&mut [$f]> {
                None
            }
            fn spectrum(n: usize) -> Vec<$t> {
                crate::kernels::output::<$t>(n)
            }
        }
    };
}
complex_fft_scalar!(Complex32, f32);
complex_fft_scalar!(Complex64, f64);

/// Smallest buffer (complex elements) whose rows, transposes and products are worth
/// spreading over threads. At 2^16 the inverse transform that ends a polyphase call on
/// 512² ⋆ 33² (stride 2, a 256×129 spectrum) ran on one thread while the other waited:
/// 2^14 made that call 605 → 554 µs (512² ⋆ 65²: 609 → 576 µs), and a lone 192² transform
/// is no slower for being spread (153 µs either way).
pub(crate) const PARALLEL_MIN: usize = 1 << 14;

/// Run `f(row, scratch)` on every `len`-long row of `buf`, on `threads` threads.
fn for_rows<F: FftNum>(
    buf: &mut [C<F>],
    len: usize,
    scratch_len: usize,
    threads: usize,
    f: impl Fn(&mut [C<F>], &mut [C<F>]) + Sync,
) {
    let zero = C::new(F::zero(), F::zero());
    // Fanning out costs ~10 µs: only worth it for transforms of some size.
    if threads > 1 && buf.len() >= PARALLEL_MIN && buf.len() >= 8 * len {
        // Rows in batches so one scratch serves several rows.
        let batch = len * (buf.len() / len / 16).max(1);
        crate::team::for_chunks_mut_init(
            threads,
            buf,
            batch,
            || vec![zero; scratch_len],
            |scratch, _, rows| f(rows, scratch),
        );
    } else {
        let mut scratch = vec![zero; scratch_len];
        f(buf, &mut scratch);
    }
}

/// `dst[c·rows + r] = src[r·cols + c]`, in cache-sized tiles, on `threads` threads.
fn transpose<F: FftNum>(src: &[C<F>], dst: &mut [C<F>], rows: usize, cols: usize, threads: usize) {
    const T: usize = 32;
    let tile = |c0: usize, band: &mut [C<F>]| {
        let c1 = (c0 + band.len() / rows).min(cols);
        for r0 in (0..rows).step_by(T) {
            // The next tile's row pieces, into L2: T short streams a whole row apart, which
            // the hardware prefetcher does not follow. 2 threads, float64, best of 4–5
            // interleaved rounds: 1024² ⋆ 65² stride 2 5.77 → 5.24 ms, ⋆ 33² 4.86 → 4.72 ms,
            // 1024² ⋆ 512² even.
            for r in (r0 + T).min(rows)..(r0 + 2 * T).min(rows) {
                crate::kernels::prefetch_l2(&src[r * cols + c0..r * cols + c1]);
            }
            for c in c0..c1 {
                for r in r0..(r0 + T).min(rows) {
                    band[(c - c0) * rows + r] = src[r * cols + c];
                }
            }
        }
    };
    let threads = if rows * cols >= PARALLEL_MIN {
        threads
    } else {
        1
    };
    crate::team::for_chunks_mut(threads, dst, T * rows, |i, band| tile(i * T, band));
}

impl<F: FftNum + Float> Transforms<F> {
    fn new(
        m: [usize; SPATIAL],
        real: bool,
        planner: &mut FftPlanner<F>,
        rplanner: &mut RealFftPlanner<F>,
        threads: usize,
        buffer: fn(usize) -> Vec<C<F>>,
    ) -> Self {
        Transforms {
            m,
            buffer,
            h2: if real { m[2] / 2 + 1 } else { m[2] },
            r2c: rplanner.plan_fft_forward(m[2]),
            c2r: rplanner.plan_fft_inverse(m[2]),
            last: [
                planner.plan_fft_forward(m[2]),
                planner.plan_fft_inverse(m[2]),
            ],
            mid: [
                planner.plan_fft_forward(m[1]),
                planner.plan_fft_inverse(m[1]),
            ],
            first: [
                planner.plan_fft_forward(m[0]),
                planner.plan_fft_inverse(m[0]),
            ],
            threads,
        }
    }

    /// Number of complex values in a spectrum.
    fn spectrum_len(&self) -> usize {
        self.m[0] * self.m[1] * self.h2
    }

    /// Make `buf` `len` long for a transform or transpose that overwrites all of it: a new
    /// buffer, not zeroed, when its length differs. Zeroing was a pass over memory for
    /// nothing, on every call (the kernel spectra of each call are new buffers).
    fn sized(&self, buf: &mut Vec<C<F>>, len: usize) {
        if buf.len() != len {
            *buf = (self.buffer)(len);
        }
    }

    /// Transform the spectrum rows (already along the last axis) along axes 1 and 0, leaving
    /// them in transposed layout.
    fn forward_rest(&self, spec: &mut Vec<C<F>>, tmp: &mut Vec<C<F>>) {
        let [m0, m1, _] = self.m;
        let h2 = self.h2;
        self.sized(tmp, spec.len());
        if m1 > 1 {
            for (s, t) in spec.chunks(m1 * h2).zip(tmp.chunks_mut(m1 * h2)) {
                transpose(s, t, m1, h2, self.threads);
            }
            std::mem::swap(spec, tmp);
            let f = &self.mid[0];
            for_rows(
                spec,
                m1,
                f.get_inplace_scratch_len(),
                self.threads,
                |rows, sc| f.process_with_scratch(rows, sc),
            );
        }
        if m0 > 1 {
            transpose(spec, tmp, m0, m1 * h2, self.threads);
            std::mem::swap(spec, tmp);
            let f = &self.first[0];
            for_rows(
                spec,
                m0,
                f.get_inplace_scratch_len(),
                self.threads,
                |rows, sc| f.process_with_scratch(rows, sc),
            );
        }
    }

    /// Undo [`Self::forward_rest`] (unnormalised), back to rows along the last axis.
    fn inverse_rest(&self, spec: &mut Vec<C<F>>, tmp: &mut Vec<C<F>>) {
        let [m0, m1, _] = self.m;
        let h2 = self.h2;
        self.sized(tmp, spec.len());
        if m0 > 1 {
            let f = &self.first[1];
            for_rows(
                spec,
                m0,
                f.get_inplace_scratch_len(),
                self.threads,
                |rows, sc| f.process_with_scratch(rows, sc),
            );
            transpose(spec, tmp, m1 * h2, m0, self.threads);
            std::mem::swap(spec, tmp);
        }
        if m1 > 1 {
            let f = &self.mid[1];
            for_rows(
                spec,
                m1,
                f.get_inplace_scratch_len(),
                self.threads,
                |rows, sc| f.process_with_scratch(rows, sc),
            );
            for (s, t) in spec.chunks(m1 * h2).zip(tmp.chunks_mut(m1 * h2)) {
                transpose(s, t, h2, m1, self.threads);
            }
            std::mem::swap(spec, tmp);
        }
    }

    /// Real-to-complex transforms of the first `rows` rows of `data` (`[rows][m2]`, used as
    /// scratch) into `out` (`[rows][h2]`); `scratch` at least the transform's scratch length.
    fn rows_forward(&self, data: &mut [F], rows: usize, out: &mut [C<F>], scratch: &mut [C<F>]) {
        let (m2, h2) = (self.m[2], self.h2);
        let scratch = &mut scratch[..self.r2c.get_scratch_len()];
        for (x, y) in data
            .chunks_exact_mut(m2)
            .zip(out.chunks_exact_mut(h2))
            .take(rows)
        {
            self.r2c
                .process_with_scratch(x, y, scratch)
                .expect("buffer lengths match the plan");
        }
    }

    /// Threads the rows of a `len`-element buffer are spread over: 1 for small buffers.
    fn row_threads(&self, len: usize) -> usize {
        if len >= PARALLEL_MIN {
            self.threads
        } else {
            1
        }
    }

    /// The same transforms, spreading their rows over `threads` threads.
    fn with_threads(&self, threads: usize) -> Self {
        Transforms {
            threads,
            ..self.clone()
        }
    }

    /// Forward transform of real data `[m0][m1][m2]` into `spec`, where only the first
    /// `live[1]` rows of the first `live[0]` planes can hold non-zeros (a kernel or a band
    /// is shorter than the transform): the other rows' spectra are zero without a transform.
    fn forward_real(
        &self,
        data: &mut [F],
        spec: &mut Vec<C<F>>,
        tmp: &mut Vec<C<F>>,
        live: [usize; 2],
    ) {
        let (m1, m2, h2) = (self.m[1], self.m[2], self.h2);
        let zero = C::new(F::zero(), F::zero());
        // Every row is written below: transformed, or zero.
        self.sized(spec, self.spectrum_len());
        let r2c = &self.r2c;
        let row = |scratch: &mut Vec<C<F>>, i: usize, x: &mut [F], y: &mut [C<F>]| {
            if i / m1 < live[0] && i % m1 < live[1] {
                r2c.process_with_scratch(x, y, scratch)
                    .expect("buffer lengths match the plan");
            } else {
                y.fill(zero);
            }
        };
        let threads = self.row_threads(spec.len());
        let scratch = || r2c.make_scratch_vec();
        crate::team::for_pairs_mut(threads, (data, m2), (spec, h2), 16, scratch, row);
        self.forward_rest(spec, tmp);
    }

    /// Inverse transform of `spec` into real data `[m0][m1][m2]` (unnormalised); only the
    /// rows `wanted(plane · m1 + row)` are computed along the last axis, the others are left
    /// as they were.
    fn inverse_real(
        &self,
        spec: &mut Vec<C<F>>,
        data: &mut [F],
        tmp: &mut Vec<C<F>>,
        wanted: impl Fn(usize) -> bool + Sync,
    ) {
        self.inverse_rest(spec, tmp);
        let (m2, h2) = (self.m[2], self.h2);
        let c2r = &self.c2r;
        let row = |scratch: &mut Vec<C<F>>, i: usize, y: &mut [C<F>], x: &mut [F]| {
            if !wanted(i) {
                return;
            }
            // A real signal's spectrum has real first (and, for even lengths, last) bins; the
            // imaginary parts left there are rounding noise.
            y[0].im = F::zero();
            if m2 % 2 == 0 {
                y[h2 - 1].im = F::zero();
            }
            c2r.process_with_scratch(y, x, scratch)
                .expect("buffer lengths match the plan");
        };
        let threads = self.row_threads(spec.len());
        let scratch = || c2r.make_scratch_vec();
        crate::team::for_pairs_mut(threads, (spec, h2), (data, m2), 16, scratch, row);
    }

    /// Forward transform of complex data (already in `spec`, `[m0][m1][m2]`), in place.
    fn forward_complex(&self, spec: &mut Vec<C<F>>, tmp: &mut Vec<C<F>>) {
        let f = &self.last[0];
        for_rows(
            spec,
            self.m[2],
            f.get_inplace_scratch_len(),
            self.threads,
            |rows, sc| f.process_with_scratch(rows, sc),
        );
        self.forward_rest(spec, tmp);
    }

    /// Inverse transform of `spec` back to complex data `[m0][m1][m2]`, in place.
    fn inverse_complex(&self, spec: &mut Vec<C<F>>, tmp: &mut Vec<C<F>>) {
        self.inverse_rest(spec, tmp);
        let f = &self.last[1];
        for_rows(
            spec,
            self.m[2],
            f.get_inplace_scratch_len(),
            self.threads,
            |rows, sc| f.process_with_scratch(rows, sc),
        );
    }
}

pub(crate) struct FftMethod<F: FftNum> {
    polyphase: bool,
    planners: Mutex<(FftPlanner<F>, RealFftPlanner<F>)>,
    /// The last kernel seen and, once it has been seen twice, its spectra ([`KernelSpectra`]
    /// of the plan's type): a plan called again with an equal kernel, or on the next image
    /// of a batch, transforms only the input.
    spectra: Mutex<Option<Box<dyn Any + Send + Sync>>>,
}

/// One kernel spectrum, `None` for a phase without taps.
type Spectrum<F> = Option<Vec<C<F>>>;
/// Every kernel spectrum of one run, shared between the plan's memory and the run.
type SpectraSet<F> = Arc<Vec<Spectrum<F>>>;

/// A kernel with everything its spectra are computed from, and the spectra themselves in the
/// order of `run` (`((phase·cin + c)·cout + o)`, `None` for a phase without taps) once they
/// are kept.
struct KernelSpectra<T: FftScalar> {
    shape: Vec<usize>,
    /// The kernel's element strides, and its values in memory order when its memory is
    /// contiguous in some order (a channels-last kernel seen as `(cout, cin, d, h, w)`),
    /// else `None` and its values in logical order.
    strides: Option<Vec<isize>>,
    values: Vec<T>,
    m: [usize; SPATIAL],
    phases: Vec<[usize; SPATIAL]>,
    stride: [usize; SPATIAL],
    dilation: [usize; SPATIAL],
    spectra: Option<SpectraSet<T::F>>,
}

/// What a run does with its kernel spectra.
enum Memo<F> {
    /// Kept from an earlier call with an equal kernel: only read.
    Kept(SpectraSet<F>),
    /// Transform them all first and keep them: the kernel was seen before, or this run uses
    /// each spectrum more than once (several images or bands).
    Keep,
    /// Transform each where it is multiplied, into a buffer reused for the next one.
    OnTheFly,
}

impl<T: FftScalar> KernelSpectra<T> {
    /// Kernel `k` on this geometry, without spectra yet.
    fn of(
        k: &ArrayView5<'_, T>,
        m: [usize; SPATIAL],
        phases: &[[usize; SPATIAL]],
        g: &Geom,
    ) -> Self {
        // Copied in memory order where that is one flat run: a logical-order walk of a
        // channels-last kernel strides through it (n×n×5 1024² ⋆ 512²: 10 MB, 5% of a call).
        let (strides, values) = match k.as_slice_memory_order() {
            Some(flat) => (Some(k.strides().to_vec()), flat.to_vec()),
            None => (None, k.iter().copied().collect()),
        };
        KernelSpectra {
            shape: k.shape().to_vec(),
            strides,
            values,
            m,
            phases: phases.to_vec(),
            stride: g.stride,
            dilation: g.dilation,
            spectra: None,
        }
    }

    /// True when these are the spectra of kernel `k` on this geometry. A kernel holding NaN
    /// never matches (NaN ≠ NaN), nor one laid out in memory otherwise than the kept one:
    /// either is transformed again, which is only slower.
    fn matches(
        &self,
        k: &ArrayView5<'_, T>,
        m: [usize; SPATIAL],
        phases: &[[usize; SPATIAL]],
        g: &Geom,
    ) -> bool {
        self.m == m
            && self.phases == phases
            && self.stride == g.stride
            && self.dilation == g.dilation
            && self.shape == k.shape()
            && match (&self.strides, k.as_slice_memory_order()) {
                (Some(strides), Some(flat)) if strides[..] == *k.strides() => {
                    super::equal(&self.values, flat, g.threads)
                }
                (None, _) => self.values.iter().eq(k.iter()),
                // Laid out otherwise than the kept one: taken as another kernel (transformed
                // again, which is only slower).
                (Some(_), _) => false,
            }
    }
}

impl<F: FftNum + Float> FftMethod<F> {
    pub fn new(polyphase: bool) -> Self {
        FftMethod {
            polyphase,
            planners: Mutex::new((FftPlanner::new(), RealFftPlanner::new())),
            spectra: Mutex::new(None),
        }
    }

    fn transforms<T: FftScalar<F = F>>(
        &self,
        m: [usize; SPATIAL],
        threads: usize,
    ) -> Transforms<F> {
        let mut p = self.planners.lock().unwrap_or_else(|e| e.into_inner());
        let (c, r) = &mut *p;
        Transforms::new(m, T::REAL, c, r, threads, T::spectrum)
    }
}

/// Working buffers of one run.
struct Work<T: FftScalar> {
    data: Vec<T>,
    /// The inputs of several channels of one phase, one transform size each.
    group: Vec<T>,
    real: Vec<T::F>,
    spec: Vec<C<T::F>>,
    /// The input spectrum being multiplied.
    xs: Vec<C<T::F>>,
    tmp: Vec<C<T::F>>,
    /// [`Setup::accumulate_fused`]: the kernels' rows along the last axis, one column block
    /// of the input and of a kernel, and the transforms' scratch.
    krows: Vec<C<T::F>>,
    col: Vec<C<T::F>>,
    kcol: Vec<C<T::F>>,
    scratch: Vec<C<T::F>>,
    /// Which output channels' kernels have taps in the phase at hand.
    taps: Vec<bool>,
    /// [`Setup::fill_kernels`]: a kernel phase's rows for several channels.
    kgroup: Vec<T>,
}

impl<T: FftScalar> Work<T> {
    fn new(size: usize) -> Self {
        Work {
            // Every value a transform reads is written first (`clear_rest` and the fills).
            data: crate::kernels::output::<T>(size),
            group: Vec::new(),
            real: Vec::new(),
            spec: Vec::new(),
            xs: Vec::new(),
            tmp: Vec::new(),
            krows: Vec::new(),
            col: Vec::new(),
            kcol: Vec::new(),
            scratch: Vec::new(),
            taps: Vec::new(),
            kgroup: Vec::new(),
        }
    }

    /// Transform `self.data` into `self.spec`; `live` as in [`Transforms::forward_real`].
    fn forward(&mut self, t: &Transforms<T::F>, live: [usize; 2]) {
        Self::transform(
            &mut self.data,
            &mut self.real,
            &mut self.spec,
            &mut self.tmp,
            t,
            live,
        );
    }

    /// Transform channel `i` of `self.group` into `self.spec`.
    fn forward_grouped(&mut self, t: &Transforms<T::F>, i: usize, live: [usize; 2]) {
        let size = self.data.len();
        let data = &mut self.group[i * size..(i + 1) * size];
        Self::transform(data, &mut self.real, &mut self.spec, &mut self.tmp, t, live);
    }

    /// Transform `data` (overwritten: real transforms use their input as scratch).
    fn transform(
        data: &mut [T],
        real: &mut Vec<T::F>,
        spec: &mut Vec<C<T::F>>,
        tmp: &mut Vec<C<T::F>>,
        t: &Transforms<T::F>,
        live: [usize; 2],
    ) {
        if let Some(data) = T::real_mut(data) {
            t.forward_real(data, spec, tmp, live);
        } else if T::REAL {
            real.clear();
            real.extend(data.iter().map(|v| v.to_c().re));
            t.forward_real(real, spec, tmp, live);
        } else {
            spec.clear();
            spec.extend(data.iter().map(|v| v.to_c()));
            t.forward_complex(spec, tmp);
        }
    }
}

/// Spectrum elements a band's transforms may use (4 MiB of complex f64 per buffer; a run
/// holds about ten such buffers).
const BAND_SPECTRUM: usize = 1 << 18;
/// A band whose spectrum fits L2 (1 MiB of complex f64), preferred when the overlap between
/// bands (the kernel's length) is small against the band.
const BAND_L2: usize = 1 << 16;
/// Above this many elements, kernel spectra are recomputed per band instead of kept.
const KEPT_KERNEL_SPECTRA: usize = 1 << 24;

/// One run's fixed quantities.
struct Setup<'a, T: FftScalar> {
    x: &'a ArrayView5<'a, T>,
    k: &'a ArrayView5<'a, T>,
    g: &'a Geom,
    geo: FftGeometry,
    t: Transforms<T::F>,
    kernel: [usize; SPATIAL],
    /// Live phases (non-empty kernel part).
    phases: Vec<[usize; SPATIAL]>,
    /// Products taken column block by column block ([`Self::accumulate_fused`]).
    fused: bool,
}

impl<T: FftScalar> Setup<'_, T> {
    /// Input points of phase `p` per axis that the band from unstrided output row `row0`
    /// (phase-row units) reads, at most the transform size.
    fn counts(&self, p: [usize; SPATIAL], row0: usize) -> [usize; SPATIAL] {
        let (m, q) = (self.geo.m, self.geo.phases);
        let xlen = [self.x.shape()[2], self.x.shape()[3], self.x.shape()[4]];
        let cnt: [usize; SPATIAL] = std::array::from_fn(|a| {
            let avail = xlen[a].saturating_sub(p[a]).div_ceil(q[a]);
            let first = if a == 1 { row0 } else { 0 };
            avail.saturating_sub(first).min(m[a])
        });
        // No point on one axis: none at all (and no row the transform must read).
        if cnt.contains(&0) {
            [0; SPATIAL]
        } else {
            cnt
        }
    }

    /// Zero what the transform of a buffer filled with `cnt` points per axis reads besides
    /// them: the rest of each filled row. Real transforms skip the rows past `cnt`
    /// ([`Transforms::forward_real`]); complex ones read everything, so all is zeroed first.
    fn clear_rest(&self, data: &mut [T], cnt: [usize; SPATIAL]) {
        let m = self.geo.m;
        if !T::REAL {
            data.fill(T::zero());
            return;
        }
        for i0 in 0..cnt[0] {
            for r in 0..cnt[1] {
                let row = (i0 * m[1] + r) * m[2];
                data[row + cnt[2]..row + m[2]].fill(T::zero());
            }
        }
    }

    /// Write input phase `p` of channel `c` into `data`, for the band whose first unstrided
    /// output row is `row0` (phase-row units); `cnt` is [`Self::counts`] of them.
    fn fill_input(
        &self,
        data: &mut [T],
        n: usize,
        c: usize,
        p: [usize; SPATIAL],
        row0: usize,
        cnt: [usize; SPATIAL],
    ) {
        let (m, q) = (self.geo.m, self.geo.phases);
        self.clear_rest(data, cnt);
        for i0 in 0..cnt[0] {
            // One plane per call: slicing row by row costs more than copying the row.
            let r0 = row0 * q[1] + p[1];
            let plane = self.x.slice(s![n, c, i0 * q[0] + p[0], r0..;q[1], ..]);
            let plane = plane.slice(s![..cnt[1], ..]);
            let base = i0 * m[1] * m[2];
            view::gather_rows(&mut data[base..], m[2], plane, p[2], q[2], cnt[2]);
        }
    }

    /// [`Self::fill_input`] for channels `chans` at once, one transform size apart in
    /// `group`, for input whose channels are adjacent in memory (the seed's n×n×c arrays):
    /// each input row is split into the phase's channels in one pass ([`split_phases`],
    /// which reads only the cache lines holding the phase's points), instead of one strided
    /// pass per channel, each of whose reads would touch its own cache line. Against a loop
    /// of short copies per point, 2 threads, float64, a new kernel each call: n×n×10 stride
    /// 5, 512² ⋆ 256² 14.8 → 13.3 ms, 1024² ⋆ 65² 46.8 → 42.8 ms; n×n×5 stride 2, 512² ⋆ 33²
    /// 4.70 → 4.51 ms. (Filling every last-axis phase of a row at once, so the row is read
    /// once, was no better at stride 2 and worse at stride 5, where the groups of all
    /// phases outgrew the caches: 1024² ⋆ 256², 55 → 66 ms.)
    fn fill_inputs(
        &self,
        group: &mut Vec<T>,
        n: usize,
        chans: Range<usize>,
        p: [usize; SPATIAL],
        row0: usize,
        cnt: [usize; SPATIAL],
    ) {
        let (m, q) = (self.geo.m, self.geo.phases);
        let size = m.iter().product::<usize>();
        let nc = chans.len();
        group.resize(nc * size, T::zero());
        for data in group.chunks_exact_mut(size) {
            self.clear_rest(data, cnt);
        }
        let r0 = row0 * q[1] + p[1];
        // The points a transform row can take (m2), as values of the flat row.
        let used = self.x.shape()[4].min(m[2] * q[2]) * nc;
        let plen = m[2];
        let mut stage = vec![T::zero(); nc * plen];
        for i0 in 0..cnt[0] {
            for r in 0..cnt[1] {
                let base = (i0 * m[1] + r) * m[2];
                let row = self
                    .x
                    .slice(s![n, chans.clone(), i0 * q[0] + p[0], r0 + r * q[1], ..]);
                let flat = row.as_slice_memory_order();
                match flat.filter(|_| row.strides() == [1, nc as isize]) {
                    // Phase p2·nc + ci of the flat row, step q2·nc, is channel ci of
                    // last-axis phase p2.
                    Some(flat) => {
                        let ts = p[2] * nc..(p[2] + 1) * nc;
                        split_phases(&mut stage, plen, &flat[..used], q[2] * nc, ts);
                    }
                    None => {
                        let points = row.slice(s![.., p[2]..;q[2]]);
                        for (j, point) in points.axis_iter(Axis(1)).take(cnt[2]).enumerate() {
                            for (ci, &v) in point.iter().enumerate() {
                                stage[ci * plen + j] = v;
                            }
                        }
                    }
                }
                for (ci, data) in group.chunks_exact_mut(size).enumerate() {
                    data[base..base + cnt[2]].copy_from_slice(&stage[ci * plen..][..cnt[2]]);
                }
            }
        }
    }

    /// Add to `acc` (one spectrum per output channel) the products of phase `pi`'s input
    /// spectra, channels `chans` of image `n` in the band from `row0`, with their kernel
    /// spectra: `kspec` when kept, else transformed here.
    #[allow(clippy::too_many_arguments)]
    fn accumulate(
        &self,
        w: &mut Work<T>,
        acc: &mut [C<T::F>],
        kspec: Option<&[Spectrum<T::F>]>,
        n: usize,
        pi: usize,
        chans: Range<usize>,
        row0: usize,
    ) {
        if self.fused {
            return self.accumulate_fused(w, acc, kspec, n, pi, chans, row0);
        }
        let (t, p) = (&self.t, self.phases[pi]);
        let (cout, cin) = (self.k.shape()[0], self.k.shape()[1]);
        let len = t.spectrum_len();
        let grouped = chans.len() > 1;
        let cnt = self.counts(p, row0);
        if grouped {
            self.fill_inputs(&mut w.group, n, chans.clone(), p, row0, cnt);
        }
        let live = [cnt[0], cnt[1]];
        for (i, c) in chans.enumerate() {
            if grouped {
                w.forward_grouped(t, i, live);
            } else {
                self.fill_input(&mut w.data, n, c, p, row0, cnt);
                w.forward(t, live);
            }
            std::mem::swap(&mut w.xs, &mut w.spec);
            for o in 0..cout {
                let kv = match kspec {
                    Some(kspec) => match &kspec[(pi * cin + c) * cout + o] {
                        Some(v) => v,
                        None => continue,
                    },
                    None => {
                        if !self.kernel_spectrum(w, o, c, p) {
                            continue;
                        }
                        &w.spec
                    }
                };
                multiply_add(&mut acc[o * len..(o + 1) * len], &w.xs, kv, t.threads);
            }
            std::mem::swap(&mut w.xs, &mut w.spec);
        }
    }

    /// [`Self::accumulate`] for real 2-D transforms on one thread, the pass along the
    /// columns fused with the products: each (phase, channel) input and each kernel is
    /// transformed along its rows that hold values only; then, a block of columns at a time,
    /// the block is gathered (a small transpose, into L1), transformed along the columns,
    /// multiplied and added into `acc`. Against whole transforms (a transpose and a pass
    /// along the columns over the whole spectrum, then a pass of products), each spectrum is
    /// written and read once instead of three times, and a kernel's zero rows are never
    /// transformed.
    #[allow(clippy::too_many_arguments)]
    fn accumulate_fused(
        &self,
        w: &mut Work<T>,
        acc: &mut [C<T::F>],
        kspec: Option<&[Spectrum<T::F>]>,
        n: usize,
        pi: usize,
        chans: Range<usize>,
        row0: usize,
    ) {
        let (t, p) = (&self.t, self.phases[pi]);
        let (cout, cin) = (self.k.shape()[0], self.k.shape()[1]);
        let [_, m1, m2] = t.m;
        let (h2, len, size) = (t.h2, t.spectrum_len(), m1 * m2);
        let grouped = chans.len() > 1;
        let cnt = self.counts(p, row0);
        // Input rows holding points; none in this band: nothing to add.
        let live = cnt[1];
        if live == 0 {
            return;
        }
        if grouped {
            self.fill_inputs(&mut w.group, n, chans.clone(), p, row0, cnt);
        }
        let klive = self.geo.klen[1];
        // Columns per block: 32 KiB of float64 spectrum (L1's size); with the kernel's block
        // and the sum's, within L2.
        let block = (2048 / m1).clamp(1, 16);
        let col_fft = &t.mid[0];
        let zero = C::new(T::F::zero(), T::F::zero());
        w.col.resize(block * m1, zero);
        w.kcol.resize(block * m1, zero);
        // One scratch for the row transforms and those along the columns.
        let need = col_fft.get_inplace_scratch_len();
        w.scratch.resize(need.max(t.r2c.get_scratch_len()), zero);
        if w.xs.len() < live * h2 {
            w.xs = (t.buffer)(len);
        }
        if kspec.is_none() && w.krows.len() < cout * klive * h2 {
            w.krows = (t.buffer)(cout * klive * h2);
        }
        // One output channel's kernel phase, all channels filled at once.
        let kgrouped = grouped && kspec.is_none() && cout == 1;
        let kany = kgrouped && self.fill_kernels(&mut w.kgroup, 0, chans.clone(), p);
        let Work {
            data,
            group,
            xs,
            krows,
            col,
            kcol,
            scratch,
            taps,
            kgroup,
            ..
        } = w;
        // The first `rows` rows of `data` along the last axis into `out` (the fused path
        // takes real element types only, which are their own real values).
        let forward =
            |data: &mut [T], rows: usize, out: &mut [C<T::F>], scratch: &mut [C<T::F>]| {
                let x = T::real_mut(data).expect("the fused path takes real elements");
                t.rows_forward(x, rows, out, scratch)
            };
        for (i, c) in chans.enumerate() {
            if grouped {
                forward(&mut group[i * size..(i + 1) * size], live, xs, scratch);
            } else {
                self.fill_input(data, n, c, p, row0, cnt);
                forward(data, live, xs, scratch);
            }
            if kgrouped {
                taps.clear();
                if kany {
                    let rows = &mut kgroup[i * klive * m2..(i + 1) * klive * m2];
                    forward(rows, klive, &mut krows[..klive * h2], scratch);
                }
                taps.push(kany);
            } else if kspec.is_none() {
                taps.clear();
                for o in 0..cout {
                    let any = self.fill_kernel(data, o, c, p);
                    if any {
                        let out = &mut krows[o * klive * h2..(o + 1) * klive * h2];
                        forward(data, klive, out, scratch);
                    }
                    taps.push(any);
                }
            }
            for j0 in (0..h2).step_by(block) {
                let b = block.min(h2 - j0);
                let col = &mut col[..b * m1];
                gather_columns(col, xs, live, h2, j0, m1);
                col_fft.process_with_scratch(col, &mut scratch[..need]);
                for o in 0..cout {
                    let kv: &[C<T::F>] = match kspec {
                        Some(kspec) => match &kspec[(pi * cin + c) * cout + o] {
                            Some(v) => &v[j0 * m1..(j0 + b) * m1],
                            None => continue,
                        },
                        None => {
                            if !taps[o] {
                                continue;
                            }
                            let kcol = &mut kcol[..b * m1];
                            let rows = &krows[o * klive * h2..(o + 1) * klive * h2];
                            gather_columns(kcol, rows, klive, h2, j0, m1);
                            col_fft.process_with_scratch(kcol, &mut scratch[..need]);
                            kcol
                        }
                    };
                    let y = &mut acc[o * len + j0 * m1..][..b * m1];
                    crate::kernels::complex_multiply_add(y, col, kv);
                }
            }
        }
    }

    /// Transform kernel phase `p` of (o, c) into `w.spec`; false (and nothing transformed)
    /// when that phase holds no tap.
    fn kernel_spectrum(&self, w: &mut Work<T>, o: usize, c: usize, p: [usize; SPATIAL]) -> bool {
        let any = self.fill_kernel(&mut w.data, o, c, p);
        if any {
            w.forward(&self.t, [self.geo.klen[0], self.geo.klen[1]]);
        }
        any
    }

    /// Write kernel phase `p` of (o, c), reversed within the common length, into `data`;
    /// false when that phase holds no tap.
    fn fill_kernel(&self, data: &mut [T], o: usize, c: usize, p: [usize; SPATIAL]) -> bool {
        let (m, q, klen, dil) = (self.geo.m, self.geo.phases, self.geo.klen, self.g.dilation);
        // The transform reads only the kernel's rows (`live` = klen), whole.
        self.clear_rest(data, [klen[0], klen[1], 0]);
        let last = self.last_taps(p[2]);
        if last.is_empty() {
            return false;
        }
        let mut any = false;
        for j0 in 0..klen[0] {
            let Some(t0) = tap(j0, p[0], q[0], dil[0], self.kernel[0]) else {
                continue;
            };
            for j1 in 0..klen[1] {
                let Some(t1) = tap(j1, p[1], q[1], dil[1], self.kernel[1]) else {
                    continue;
                };
                let r = (klen[0] - 1 - j0) * m[1] + klen[1] - 1 - j1;
                let dst = &mut data[r * m[2]..(r + 1) * m[2]];
                // One view per row, not a 5-D index per tap: 1024² ⋆ 512² stride 2 with a new
                // kernel on every call went from 4.32 to 4.07 ms (2 threads).
                let row = self.k.slice(s![o, c, t0, t1, ..]);
                match row.as_slice() {
                    // Undilated: the taps p2, p2 + q2, … fill the row's last positions in
                    // reverse, one strided copy (vector shuffles for q2 ≤ 4) and a reversal
                    // instead of an index pair per tap.
                    Some(row) if dil[2] == 1 => {
                        let run = &mut dst[klen[2] - last.len()..klen[2]];
                        view::copy_strided(run, &row[p[2]..], q[2]);
                        run.reverse();
                    }
                    Some(row) => last.iter().for_each(|&(i, t2)| dst[i] = row[t2]),
                    None => last.iter().for_each(|&(i, t2)| dst[i] = row[t2]),
                }
                any = true;
            }
        }
        any
    }

    /// The kernel taps of last-axis phase `p2`, found once per row set: (position in the
    /// reversed transform row, tap).
    fn last_taps(&self, p2: usize) -> Vec<(usize, usize)> {
        let (q, klen, dil) = (self.geo.phases[2], self.geo.klen[2], self.g.dilation[2]);
        (0..klen)
            .filter_map(|j2| tap(j2, p2, q, dil, self.kernel[2]).map(|t2| (klen - 1 - j2, t2)))
            .collect()
    }

    /// [`Self::fill_kernel`] of output channel `o` for input channels `chans` at once, for
    /// a one-plane transform (`m[0] = 1`): each channel's `klen[1]` rows, `m[2]` long, one
    /// after the other in `group`. Each kernel row is read once for all the channels, from
    /// its flat memory when the channels are adjacent in it (the seed's f×f×c kernels),
    /// instead of once per channel, each read touching a cache line per tap. n×n×5 1024² ⋆
    /// 512² stride 2, float64, 2 threads (perf samples): filling kernel phases 9.4% of the
    /// call one channel at a time, ~3% now; n×n×10 stride 5 about even (its phases of five
    /// go through the gathers of [`split_phases`], as its inputs do).
    fn fill_kernels(
        &self,
        group: &mut Vec<T>,
        o: usize,
        chans: Range<usize>,
        p: [usize; SPATIAL],
    ) -> bool {
        let (m, q, klen, dil) = (self.geo.m, self.geo.phases, self.geo.klen, self.g.dilation);
        debug_assert_eq!((m[0], klen[0]), (1, 1), "a one-plane transform");
        let (nc, rows) = (chans.len(), klen[1]);
        let per = rows * m[2];
        group.resize(nc * per, T::zero());
        let last = self.last_taps(p[2]);
        let t0 = tap(0, p[0], q[0], dil[0], self.kernel[0]);
        let (Some(t0), false) = (t0, last.is_empty()) else {
            return false;
        };
        // Positions of a row that no tap writes: zeroed (those past klen[2] are read by the
        // transform as padding).
        let head = klen[2] - last.len();
        // Undilated: the taps p2, p2 + q2, … of every channel, split from the flat row in one
        // pass ([`split_phases`]), then written reversed.
        let plen = klen[2];
        let used = self.kernel[2].min(plen * q[2]) * nc;
        let mut stage = vec![T::zero(); nc * plen];
        let mut any = false;
        for j1 in 0..rows {
            let r = rows - 1 - j1;
            let Some(t1) = tap(j1, p[1], q[1], dil[1], self.kernel[1]) else {
                for ci in 0..nc {
                    group[ci * per + r * m[2]..][..m[2]].fill(T::zero());
                }
                continue;
            };
            let taps = self.k.slice(s![o, chans.clone(), t0, t1, ..]);
            let flat = taps
                .as_slice_memory_order()
                .filter(|_| taps.strides() == [1, nc as isize]);
            let split = match flat {
                Some(flat) if dil[2] == 1 => {
                    let phase = p[2] * nc..(p[2] + 1) * nc;
                    split_phases(&mut stage, plen, &flat[..used], q[2] * nc, phase);
                    true
                }
                _ => false,
            };
            for ci in 0..nc {
                let dst = &mut group[ci * per + r * m[2]..][..m[2]];
                dst[..head].fill(T::zero());
                dst[klen[2]..].fill(T::zero());
                if split {
                    let taps = &stage[ci * plen..][..last.len()];
                    for (y, &v) in dst[head..klen[2]].iter_mut().rev().zip(taps) {
                        *y = v;
                    }
                } else {
                    dst[head..klen[2]].fill(T::zero());
                    let row = taps.row(ci);
                    last.iter().for_each(|&(i, t2)| dst[i] = row[t2]);
                }
            }
            any = true;
        }
        any
    }
}

impl<T: FftScalar> Algorithm<T> for FftMethod<T::F> {
    fn tiling(&self) -> Tiling {
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
        let cin = k.shape()[1];
        let kernel = [k.shape()[2], k.shape()[3], k.shape()[4]];
        let (band, geo) = FftGeometry::banded([od, oh, ow], kernel, g, self.polyphase, T::REAL);
        let m = geo.m;
        let size = m[0] * m[1] * m[2];
        let q = geo.phases;
        // Phases past the kernel's extent hold no tap: not even visited (a stride of 10¹²
        // would otherwise loop 10¹² times).
        let live: [usize; SPATIAL] =
            std::array::from_fn(|a| q[a].min(extent(kernel[a], g.dilation[a])));
        let mut phases = Vec::new();
        for pd in 0..live[0] {
            for ph in 0..live[1] {
                for pw in 0..live[2] {
                    phases.push([pd, ph, pw]);
                }
            }
        }
        // Work units: (phase, channels). Input with adjacent channels is read a whole phase
        // at a time (all its channels in one pass) when there are phases enough for the
        // threads; otherwise each unit is one (phase, channel) pair. With at least as many
        // units as threads, whole units go to the threads (each adds into its own spectra,
        // summed at the end); otherwise the rows of each transform are spread.
        let grouped = cin > 1 && x.strides()[1] == 1 && phases.len() >= g.threads;
        let units: Vec<(usize, Range<usize>)> = if grouped {
            (0..phases.len()).map(|pi| (pi, 0..cin)).collect()
        } else {
            (0..phases.len())
                .flat_map(|pi| (0..cin).map(move |c| (pi, c..c + 1)))
                .collect()
        };
        let coarse = g.threads > 1 && units.len() >= g.threads;
        let t = self.transforms::<T>(m, if coarse { 1 } else { g.threads });
        let spec_len = t.spectrum_len();
        // Real 2-D transforms, each on one thread: the pass along the columns fused with the
        // products ([`Setup::accumulate_fused`]).
        let fused = T::REAL && m[0] == 1 && m[1] > 1 && t.row_threads(spec_len) == 1;
        let setup = Setup {
            x: &x,
            k: &k,
            g,
            geo,
            t,
            kernel,
            phases,
            fused,
        };
        let t = &setup.t;
        let zero = C::new(T::F::zero(), T::F::zero());
        // Kernel spectra: index ((p·cin + c)·cout + o); None where a phase is empty. Remembered
        // from the last block or call when the kernel and the geometry are equal.
        let small = setup.phases.len() * cin * cout * spec_len <= KEPT_KERNEL_SPECTRA;
        let coarse = coarse && small;
        // The caller's own buffers; in the coarse split the threads transform into buffers of
        // their own, and this one serves the inverses only (no input buffer to zero).
        let mut w = Work::<T>::new(if coarse { 0 } else { size });
        let new_work = || Work::<T>::new(size);
        // Kernel spectra are kept when they will serve again: in this run (the next image or
        // band) or in the next call (a kernel seen twice in a row is taken to recur). A kernel
        // seen once is only remembered, and its spectra made where they are multiplied, into
        // one reused buffer: keeping spectra that no call reads cost a pass of writes and
        // fresh pages (glibc gives a freed heap top back to the system). One thread, float64,
        // a new kernel each call: n×n×10 stride 5, 1024² ⋆ 256² (89 MB of spectra, 20k page
        // faults a call) 127 → 79 ms.
        let reused = nb > 1 || oh > band;
        let memo = if small {
            let mut slot = self.spectra.lock().unwrap_or_else(|e| e.into_inner());
            let seen = slot
                .as_ref()
                .and_then(|b| b.downcast_ref::<KernelSpectra<T>>())
                .filter(|c| c.matches(&k, m, &setup.phases, g))
                .map(|c| c.spectra.clone());
            match seen {
                Some(Some(spectra)) => Memo::Kept(spectra),
                Some(None) => Memo::Keep,
                None => {
                    // Freed before new spectra are made, so they reuse its memory (cache-warm
                    // and without growing the heap). Reusing its buffers directly was
                    // measured 5–8% slower (seed-3d 1024², kernel 256², stride 5): they are
                    // cold by then, while freshly faulted pages arrive zeroed in cache.
                    *slot = None;
                    if reused {
                        Memo::Keep
                    } else {
                        *slot = Some(Box::new(KernelSpectra::<T>::of(&k, m, &setup.phases, g)));
                        Memo::OnTheFly
                    }
                }
            }
        } else {
            Memo::OnTheFly
        };
        let kspec: SpectraSet<T::F> = match &memo {
            Memo::Kept(spectra) => spectra.clone(),
            Memo::OnTheFly => Arc::new(Vec::new()),
            Memo::Keep => {
                let kernel_spectrum = |w: &mut Work<T>, p, c, o| {
                    setup
                        .kernel_spectrum(w, o, c, p)
                        .then(|| std::mem::take(&mut w.spec))
                };
                let jobs: Vec<([usize; SPATIAL], usize, usize)> = (setup.phases.iter())
                    .flat_map(|&p| (0..cin).flat_map(move |c| (0..cout).map(move |o| (p, c, o))))
                    .collect();
                let kspec = Arc::new(if coarse {
                    crate::team::map_init(g.threads, jobs.len(), new_work, |w, i| {
                        let (p, c, o) = jobs[i];
                        kernel_spectrum(w, p, c, o)
                    })
                } else {
                    (jobs.iter())
                        .map(|&(p, c, o)| kernel_spectrum(&mut w, p, c, o))
                        .collect()
                });
                let mut entry = KernelSpectra::<T>::of(&k, m, &setup.phases, g);
                entry.spectra = Some(kspec.clone());
                *self.spectra.lock().unwrap_or_else(|e| e.into_inner()) = Some(Box::new(entry));
                kspec
            }
        };
        // Summed spectra: the coarse split's first partial sum becomes them; otherwise zeroed
        // for each band below.
        let mut acc: Vec<C<T::F>> = Vec::new();
        let scale = T::F::one()
            / <T::F as num_traits::NumCast>::from(size).expect("transform size fits the float");
        let at = |i: [usize; SPATIAL]| (i[0] * m[1] + i[1]) * m[2] + i[2];
        let kept = (!matches!(memo, Memo::OnTheFly)).then_some(&kspec[..]);
        // Whole transforms go to the threads; the inverses, one per output channel, spread
        // their rows instead.
        let inverse = t.with_threads(g.threads);
        for n in 0..nb {
            let mut h0 = 0;
            while h0 < oh {
                let rows = band.min(oh - h0);
                let row0 = h0 * geo.step[1];
                if coarse {
                    let parts = g.threads.min(units.len());
                    let partial = |part: usize| {
                        let mut w = new_work();
                        let mut mine = vec![zero; spec_len * cout];
                        let range = part * units.len() / parts..(part + 1) * units.len() / parts;
                        for (pi, chans) in &units[range] {
                            setup.accumulate(&mut w, &mut mine, kept, n, *pi, chans.clone(), row0);
                        }
                        mine
                    };
                    let mut partials: Vec<Vec<C<T::F>>> = crate::team::map(parts, parts, partial);
                    acc = partials.swap_remove(0);
                    const CHUNK: usize = 1 << 14;
                    crate::team::for_chunks_mut(g.threads, &mut acc, CHUNK, |i, a| {
                        for mine in &partials {
                            for (a, &b) in a.iter_mut().zip(&mine[i * CHUNK..]) {
                                *a = *a + b;
                            }
                        }
                    });
                } else {
                    acc.clear();
                    acc.resize(spec_len * cout, zero);
                    for (pi, chans) in &units {
                        setup.accumulate(&mut w, &mut acc, kept, n, *pi, chans.clone(), row0);
                    }
                }
                let first = |d: usize, h: usize, wi: usize| {
                    [
                        d * geo.step[0] + geo.klen[0] - 1,
                        h * geo.step[1] + geo.klen[1] - 1,
                        wi * geo.step[2] + geo.klen[2] - 1,
                    ]
                };
                let start = |d: usize, h: usize| at(first(d, h, 0));
                for o in 0..cout {
                    // One output channel: its sums are transformed in place (the buffer
                    // comes back below, refilled before its next use).
                    let mut spec = if cout == 1 {
                        std::mem::take(&mut acc)
                    } else {
                        acc[o * spec_len..(o + 1) * spec_len].to_vec()
                    };
                    let mut dst = out.slice_mut(s![n, o, .., h0..h0 + rows, ..]);
                    if T::REAL {
                        w.real.resize(size, T::F::zero());
                        // Rows of the unstrided result that hold a wanted output.
                        let wanted = |i: usize| {
                            let (i0, i1) = (i / m[1], i % m[1]);
                            let hit = |i: usize, a: usize, count: usize| {
                                i >= geo.klen[a] - 1
                                    && (i + 1 - geo.klen[a]).is_multiple_of(geo.step[a])
                                    && (i + 1 - geo.klen[a]) / geo.step[a] < count
                            };
                            hit(i0, 0, od) && hit(i1, 1, rows)
                        };
                        inverse.inverse_real(&mut spec, &mut w.real, &mut w.tmp, wanted);
                        let real = &w.real;
                        put_rows(&mut dst, start, geo.step[2], |i| {
                            T::from_re(real[i] * scale)
                        });
                    } else {
                        inverse.inverse_complex(&mut spec, &mut w.tmp);
                        put_rows(&mut dst, start, geo.step[2], |i| T::from_c(spec[i] * scale));
                    }
                    if cout == 1 {
                        acc = spec;
                    }
                }
                h0 += rows;
            }
        }
    }
}

/// Output rows from an unstrided result: row (d, h) of `dst` takes `get(start(d, h) + j·step)`
/// for its j-th element (the wanted results of a result row are `step` apart).
fn put_rows<T>(
    dst: &mut ArrayViewMut3<'_, T>,
    start: impl Fn(usize, usize) -> usize,
    step: usize,
    get: impl Fn(usize) -> T,
) {
    let [depth, height, _] = *dst.shape() else {
        unreachable!()
    };
    for d in 0..depth {
        for h in 0..height {
            let first = start(d, h);
            for (j, y) in dst.slice_mut(s![d, h, ..]).iter_mut().enumerate() {
                *y = get(first + j * step);
            }
        }
    }
}

/// Columns `j0 ..` of `rows` (`[live][h2]`; the rows after them are zero) as the
/// `col.len() / m1` columns of `col`, each `m1` long.
fn gather_columns<F: FftNum>(
    col: &mut [C<F>],
    rows: &[C<F>],
    live: usize,
    h2: usize,
    j0: usize,
    m1: usize,
) {
    let b = col.len() / m1;
    for (r, row) in rows.chunks_exact(h2).take(live).enumerate() {
        for (k, &v) in row[j0..j0 + b].iter().enumerate() {
            col[k * m1 + r] = v;
        }
    }
    for k in 0..b {
        col[k * m1 + live..(k + 1) * m1].fill(C::new(F::zero(), F::zero()));
    }
}

/// `acc += a · b`, elementwise.
fn multiply_add<F: FftNum + Float>(acc: &mut [C<F>], a: &[C<F>], b: &[C<F>], threads: usize) {
    const CHUNK: usize = 1 << 14;
    let threads = if acc.len() >= PARALLEL_MIN {
        threads
    } else {
        1
    };
    crate::team::for_chunks_mut(threads, acc, CHUNK, |i, y| {
        crate::kernels::complex_multiply_add(y, &a[i * CHUNK..], &b[i * CHUNK..]);
    });
}

/// The kernel tap behind position `j` of phase `p` (phase step `q`), if that position of the
/// dilated kernel holds a tap.
#[inline]
fn tap(j: usize, p: usize, q: usize, dil: usize, f: usize) -> Option<usize> {
    let t = j * q + p;
    (t.is_multiple_of(dil) && t / dil < f).then_some(t / dil)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn smooth(mut m: usize) -> bool {
        for p in [2, 3, 5, 7] {
            while m.is_multiple_of(p) {
                m /= p;
            }
        }
        m == 1
    }

    #[test]
    fn lengths_are_the_cheapest_smooth_ones_that_fit() {
        for n in 1..1500 {
            for (rest, even) in [(2.0, false), (12.0, true), (0.0, true)] {
                let m = fast_len(n, rest, even);
                assert!(m >= n && smooth(m), "{n}: {m}");
                assert!(!even || m == 1 || m.is_multiple_of(2), "{n}: {m} is odd");
                let cost = |m: usize| m as f64 * (radix_work(m) + rest);
                // No smooth length in [n, 2·next_power_of_two(n)) is cheaper.
                for v in (n..2 * n.next_power_of_two()).filter(|&v| smooth(v)) {
                    if !even || v.is_multiple_of(2) {
                        assert!(cost(m) <= cost(v), "{n}: {m} costs more than {v}");
                    }
                }
            }
        }
        // Powers of two are pure radix-2 passes; 105 = 3·5·7 loses to 108 = 2²·3³.
        assert_eq!(radix_work(512), 9.0);
        assert_eq!(fast_len(102, 2.0, false), 108);
        assert_eq!(fast_len(500, 10.0, true), 512);
    }

    #[test]
    fn bands_are_as_few_as_the_budget_allows_and_of_equal_height() {
        let g = Geom {
            stride: [1, 2, 2],
            dilation: [1; 3],
            threads: 1,
            stream: false,
        };
        // seed-2d 1024² ⋆ 65², stride 2: 480 output rows; a 223-row band fits L2.
        let (band, geo) = FftGeometry::banded([1, 480, 480], [1, 65, 65], &g, true, true);
        assert_eq!(band, 160);
        assert!(geo.m[1] >= 160 + 32 && geo.m[1] < 223 + 32, "{geo:?}");
        // A band per budget, whatever the remainder: 496 rows in three of 166 (165 last).
        let (band, _) = FftGeometry::banded([1, 496, 496], [1, 33, 33], &g, true, true);
        assert_eq!(band, 166);
        // Within the budget: one band.
        let (band, _) = FftGeometry::banded([1, 120, 120], [1, 17, 17], &g, true, true);
        assert_eq!(band, 120);
    }
}
