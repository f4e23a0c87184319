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
//! plan's threads.

use std::any::Any;
use std::sync::{Arc, Mutex};

use ndarray::{s, ArrayView5, ArrayViewMut5};
use num_complex::{Complex, Complex32, Complex64};
use num_traits::{Float, One, Zero};
use rayon::prelude::*;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};
use rustfft::{Fft, FftNum, FftPlanner};

use super::{Algorithm, Geom, Tiling};
use crate::spec::{extent, SPATIAL};
use crate::{view, Scalar};

type C<F> = Complex<F>;

/// Smallest 2·3·5·7-smooth number ≥ n: the sizes RustFFT does fastest.
pub(crate) fn fast_len(n: usize) -> usize {
    let mut best = n.next_power_of_two();
    let mut p7 = 1;
    while p7 < best {
        let mut p5 = p7;
        while p5 < best {
            let mut p3 = p5;
            while p3 < best {
                let mut v = p3;
                while v < n {
                    v *= 2;
                }
                best = best.min(v);
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
    pub fn new(out: [usize; SPATIAL], kernel: [usize; SPATIAL], g: &Geom, polyphase: bool) -> Self {
        let phases = if polyphase { g.stride } else { [1; SPATIAL] };
        let step = if polyphase { [1; SPATIAL] } else { g.stride };
        let klen: [usize; SPATIAL] =
            std::array::from_fn(|a| extent(kernel[a], g.dilation[a]).div_ceil(phases[a]));
        let m = std::array::from_fn(|a| fast_len((out[a] - 1) * step[a] + 1 + klen[a] - 1));
        FftGeometry {
            phases,
            step,
            klen,
            m,
        }
    }

    /// Overlap-save bands along H: the output rows per band and the band's geometry. Bands
    /// keep a spectrum within L2 when the kernel is short against the band, else within
    /// `BAND_SPECTRUM`; never fewer than one row.
    pub fn banded(
        out: [usize; SPATIAL],
        kernel: [usize; SPATIAL],
        g: &Geom,
        polyphase: bool,
        real: bool,
    ) -> (usize, Self) {
        let whole = Self::new(out, kernel, g, polyphase);
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
        let band = if small == oh || small * whole.step[1] >= 4 * whole.klen[1] {
            small
        } else {
            band_rows(BAND_SPECTRUM)
        };
        (
            band,
            Self::new([out[0], band, out[2]], kernel, g, polyphase),
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
pub(crate) struct Transforms<F: FftNum> {
    m: [usize; SPATIAL],
    /// Length of a spectrum row along the last axis (m2/2+1 for real data, m2 for complex).
    h2: usize,
    r2c: Arc<dyn RealToComplex<F>>,
    c2r: Arc<dyn ComplexToReal<F>>,
    last: [Arc<dyn Fft<F>>; 2],
    mid: [Arc<dyn Fft<F>>; 2],
    first: [Arc<dyn Fft<F>>; 2],
    threads: bool,
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
        }
    };
}
complex_fft_scalar!(Complex32, f32);
complex_fft_scalar!(Complex64, f64);

/// Smallest buffer (complex elements) whose rows, transposes and products are worth
/// spreading over threads.
pub(crate) const PARALLEL_MIN: usize = 1 << 16;

/// Run `f(row, scratch)` on every `len`-long row of `buf`, on the pool's threads if asked.
fn for_rows<F: FftNum>(
    buf: &mut [C<F>],
    len: usize,
    scratch_len: usize,
    threads: bool,
    f: impl Fn(&mut [C<F>], &mut [C<F>]) + Sync,
) {
    let zero = C::new(F::zero(), F::zero());
    // Fanning out costs ~10 µs: only worth it for transforms of some size.
    if threads && buf.len() >= PARALLEL_MIN && buf.len() >= 8 * len {
        // Rows in batches so one scratch serves several rows.
        let batch = len * (buf.len() / len / 16).max(1);
        buf.par_chunks_mut(batch)
            .for_each_init(|| vec![zero; scratch_len], |scratch, rows| f(rows, scratch));
    } else {
        let mut scratch = vec![zero; scratch_len];
        f(buf, &mut scratch);
    }
}

/// `dst[c·rows + r] = src[r·cols + c]`, in cache-sized tiles, on the pool's threads if asked.
fn transpose<F: FftNum>(src: &[C<F>], dst: &mut [C<F>], rows: usize, cols: usize, threads: bool) {
    const T: usize = 32;
    let tile = |c0: usize, band: &mut [C<F>]| {
        let c1 = (c0 + band.len() / rows).min(cols);
        for r0 in (0..rows).step_by(T) {
            for c in c0..c1 {
                for r in r0..(r0 + T).min(rows) {
                    band[(c - c0) * rows + r] = src[r * cols + c];
                }
            }
        }
    };
    if threads && rows * cols >= PARALLEL_MIN {
        dst.par_chunks_mut(T * rows)
            .enumerate()
            .for_each(|(i, band)| tile(i * T, band));
    } else {
        for (i, band) in dst.chunks_mut(T * rows).enumerate() {
            tile(i * T, band);
        }
    }
}

impl<F: FftNum + Float> Transforms<F> {
    fn new(
        m: [usize; SPATIAL],
        real: bool,
        planner: &mut FftPlanner<F>,
        rplanner: &mut RealFftPlanner<F>,
        threads: bool,
    ) -> Self {
        Transforms {
            m,
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

    /// Transform the spectrum rows (already along the last axis) along axes 1 and 0, leaving
    /// them in transposed layout.
    fn forward_rest(&self, spec: &mut Vec<C<F>>, tmp: &mut Vec<C<F>>) {
        let [m0, m1, _] = self.m;
        let h2 = self.h2;
        tmp.resize(spec.len(), C::new(F::zero(), F::zero()));
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
        tmp.resize(spec.len(), C::new(F::zero(), F::zero()));
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

    /// Forward transform of real data `[m0][m1][m2]` into `spec`.
    fn forward_real(&self, data: &mut [F], spec: &mut Vec<C<F>>, tmp: &mut Vec<C<F>>) {
        let (m2, h2) = (self.m[2], self.h2);
        spec.resize(self.spectrum_len(), C::new(F::zero(), F::zero()));
        let r2c = &self.r2c;
        let mut scratch = r2c.make_scratch_vec();
        for (row, out) in data.chunks_exact_mut(m2).zip(spec.chunks_exact_mut(h2)) {
            r2c.process_with_scratch(row, out, &mut scratch)
                .expect("buffer lengths match the plan");
        }
        self.forward_rest(spec, tmp);
    }

    /// Inverse transform of `spec` into real data `[m0][m1][m2]` (unnormalised).
    fn inverse_real(&self, spec: &mut Vec<C<F>>, data: &mut [F], tmp: &mut Vec<C<F>>) {
        self.inverse_rest(spec, tmp);
        let (m2, h2) = (self.m[2], self.h2);
        let c2r = &self.c2r;
        let mut scratch = c2r.make_scratch_vec();
        for (row, out) in spec.chunks_exact_mut(h2).zip(data.chunks_exact_mut(m2)) {
            // A real signal's spectrum has real first (and, for even lengths, last) bins; the
            // imaginary parts left there are rounding noise.
            row[0].im = F::zero();
            if m2 % 2 == 0 {
                row[h2 - 1].im = F::zero();
            }
            c2r.process_with_scratch(row, out, &mut scratch)
                .expect("buffer lengths match the plan");
        }
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
    /// The kernel spectra of the last kernel seen ([`KernelSpectra`] of the plan's type):
    /// a plan called again with an equal kernel, or on the next image of a batch, transforms
    /// only the input.
    spectra: Mutex<Option<Box<dyn Any + Send + Sync>>>,
}

/// Every kernel spectrum of one run, shared between the plan's memory and the run.
type SpectraSet<F> = Arc<Vec<Option<Vec<C<F>>>>>;

/// Kernel spectra in the order of `run` (`((phase·cin + c)·cout + o)`, `None` for a phase
/// without taps), with everything they were computed from.
struct KernelSpectra<T: FftScalar> {
    shape: Vec<usize>,
    values: Vec<T>,
    m: [usize; SPATIAL],
    phases: Vec<[usize; SPATIAL]>,
    stride: [usize; SPATIAL],
    dilation: [usize; SPATIAL],
    spectra: SpectraSet<T::F>,
}

impl<T: FftScalar> KernelSpectra<T> {
    /// True when these are the spectra of kernel `k` on this geometry. A kernel holding NaN
    /// never matches (NaN ≠ NaN) and is transformed again, which is only slower.
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
            && self.values.iter().eq(k.iter())
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

    fn transforms(&self, m: [usize; SPATIAL], real: bool, threads: bool) -> Transforms<F> {
        let mut p = self.planners.lock().unwrap_or_else(|e| e.into_inner());
        let (c, r) = &mut *p;
        Transforms::new(m, real, c, r, threads)
    }
}

/// Working buffers of one run.
struct Work<T: FftScalar> {
    data: Vec<T>,
    real: Vec<T::F>,
    spec: Vec<C<T::F>>,
    tmp: Vec<C<T::F>>,
}

impl<T: FftScalar> Work<T> {
    /// Transform `self.data` into `self.spec`.
    fn forward(&mut self, t: &Transforms<T::F>) {
        if T::REAL {
            self.real.clear();
            self.real.extend(self.data.iter().map(|v| v.to_c().re));
            t.forward_real(&mut self.real, &mut self.spec, &mut self.tmp);
        } else {
            self.spec.clear();
            self.spec.extend(self.data.iter().map(|v| v.to_c()));
            t.forward_complex(&mut self.spec, &mut self.tmp);
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
}

impl<T: FftScalar> Setup<'_, T> {
    /// Write input phase `p` of channel `c` into `data`, for the band whose first unstrided
    /// output row is `row0` (phase-row units).
    fn fill_input(&self, data: &mut [T], n: usize, c: usize, p: [usize; SPATIAL], row0: usize) {
        let (m, q) = (self.geo.m, self.geo.phases);
        let xlen = [self.x.shape()[2], self.x.shape()[3], self.x.shape()[4]];
        data.fill(T::zero());
        let cnt: [usize; SPATIAL] = std::array::from_fn(|a| {
            let avail = xlen[a].saturating_sub(p[a]).div_ceil(q[a]);
            let first = if a == 1 { row0 } else { 0 };
            avail.saturating_sub(first).min(m[a])
        });
        if cnt[1] == 0 || cnt[2] == 0 {
            return;
        }
        for i0 in 0..cnt[0] {
            // One plane per call: slicing row by row costs more than copying the row.
            let r0 = row0 * q[1] + p[1];
            let plane = self.x.slice(s![n, c, i0 * q[0] + p[0], r0..;q[1], ..]);
            let plane = plane.slice(s![..cnt[1], ..]);
            let base = i0 * m[1] * m[2];
            view::gather_rows(&mut data[base..], m[2], plane, p[2], q[2], cnt[2]);
        }
    }

    /// Write kernel phase `p` of (o, c), reversed within the common length, into `data`;
    /// false when that phase holds no tap.
    fn fill_kernel(&self, data: &mut [T], o: usize, c: usize, p: [usize; SPATIAL]) -> bool {
        let (m, q, klen, dil) = (self.geo.m, self.geo.phases, self.geo.klen, self.g.dilation);
        data.fill(T::zero());
        let mut any = false;
        for j0 in 0..klen[0] {
            let Some(t0) = tap(j0, p[0], q[0], dil[0], self.kernel[0]) else {
                continue;
            };
            for j1 in 0..klen[1] {
                let Some(t1) = tap(j1, p[1], q[1], dil[1], self.kernel[1]) else {
                    continue;
                };
                for j2 in 0..klen[2] {
                    let Some(t2) = tap(j2, p[2], q[2], dil[2], self.kernel[2]) else {
                        continue;
                    };
                    let r = [klen[0] - 1 - j0, klen[1] - 1 - j1, klen[2] - 1 - j2];
                    data[(r[0] * m[1] + r[1]) * m[2] + r[2]] = self.k[(o, c, t0, t1, t2)];
                    any = true;
                }
            }
        }
        any
    }
}

impl<T: FftScalar> Algorithm<T> for FftMethod<T::F> {
    fn tiling(&self) -> Tiling {
        Tiling {
            split_channels: false,
            split_rows: false,
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
        let mut phases = Vec::new();
        for pd in 0..q[0] {
            for ph in 0..q[1] {
                for pw in 0..q[2] {
                    let p = [pd, ph, pw];
                    if (0..SPATIAL).all(|a| p[a] < extent(kernel[a], g.dilation[a])) {
                        phases.push(p);
                    }
                }
            }
        }
        // With at least as many (phase, channel) input transforms as threads, whole transforms
        // go to the threads (each adds into its own spectra, summed at the end); otherwise the
        // rows of each transform are spread.
        let coarse = g.threads > 1 && phases.len() * cin >= g.threads;
        let t = self.transforms(m, T::REAL, g.threads > 1 && !coarse);
        let spec_len = t.spectrum_len();
        let setup = Setup {
            x: &x,
            k: &k,
            g,
            geo,
            t,
            kernel,
            phases,
        };
        let t = &setup.t;
        let zero = C::new(T::F::zero(), T::F::zero());
        let mut w = Work::<T> {
            data: vec![T::zero(); size],
            real: Vec::new(),
            spec: Vec::new(),
            tmp: Vec::new(),
        };
        // Kernel spectra: index ((p·cin + c)·cout + o); None where a phase is empty. Remembered
        // from the last block or call when the kernel and the geometry are equal.
        let keep = setup.phases.len() * cin * cout * spec_len <= KEPT_KERNEL_SPECTRA;
        let coarse = coarse && keep;
        let new_work = || Work::<T> {
            data: vec![T::zero(); size],
            real: Vec::new(),
            spec: Vec::new(),
            tmp: Vec::new(),
        };
        let remembered = if keep {
            let mut slot = self.spectra.lock().unwrap_or_else(|e| e.into_inner());
            let hit = slot
                .as_ref()
                .and_then(|b| b.downcast_ref::<KernelSpectra<T>>())
                .filter(|c| c.matches(&k, m, &setup.phases, g))
                .map(|c| c.spectra.clone());
            if hit.is_none() {
                // Freed before the new spectra are made, so they reuse its memory (cache-warm
                // and without growing the heap).
                *slot = None;
            }
            hit
        } else {
            None
        };
        let kspec: SpectraSet<T::F> = match remembered {
            Some(spectra) => spectra,
            None => {
                let mut kspec: Vec<Option<Vec<C<T::F>>>> = Vec::new();
                if coarse {
                    let jobs: Vec<([usize; SPATIAL], usize, usize)> = (setup.phases.iter())
                        .flat_map(|&p| {
                            (0..cin).flat_map(move |c| (0..cout).map(move |o| (p, c, o)))
                        })
                        .collect();
                    kspec = jobs
                        .into_par_iter()
                        .map_init(new_work, |w, (p, c, o)| {
                            setup.fill_kernel(&mut w.data, o, c, p).then(|| {
                                w.forward(t);
                                w.spec.clone()
                            })
                        })
                        .collect();
                } else if keep {
                    for &p in &setup.phases {
                        for c in 0..cin {
                            for o in 0..cout {
                                kspec.push(setup.fill_kernel(&mut w.data, o, c, p).then(|| {
                                    w.forward(t);
                                    w.spec.clone()
                                }));
                            }
                        }
                    }
                }
                let kspec = Arc::new(kspec);
                if keep {
                    let entry = KernelSpectra::<T> {
                        shape: k.shape().to_vec(),
                        values: k.iter().copied().collect(),
                        m,
                        phases: setup.phases.clone(),
                        stride: g.stride,
                        dilation: g.dilation,
                        spectra: kspec.clone(),
                    };
                    *self.spectra.lock().unwrap_or_else(|e| e.into_inner()) = Some(Box::new(entry));
                }
                kspec
            }
        };
        let mut xs: Vec<C<T::F>> = Vec::new();
        let mut acc = vec![zero; spec_len * cout];
        let scale = T::F::one()
            / <T::F as num_traits::NumCast>::from(size).expect("transform size fits the float");
        let at = |i: [usize; SPATIAL]| (i[0] * m[1] + i[1]) * m[2] + i[2];
        for n in 0..nb {
            let mut h0 = 0;
            while h0 < oh {
                let rows = band.min(oh - h0);
                acc.fill(zero);
                if coarse {
                    let pairs: Vec<(usize, usize)> = (0..setup.phases.len())
                        .flat_map(|pi| (0..cin).map(move |c| (pi, c)))
                        .collect();
                    let parts = g.threads.min(pairs.len());
                    let row0 = h0 * geo.step[1];
                    let partial = |part: usize| {
                        let mut w = new_work();
                        let mut mine = vec![zero; spec_len * cout];
                        let range = part * pairs.len() / parts..(part + 1) * pairs.len() / parts;
                        for &(pi, c) in &pairs[range] {
                            setup.fill_input(&mut w.data, n, c, setup.phases[pi], row0);
                            w.forward(t);
                            for o in 0..cout {
                                if let Some(kv) = &kspec[(pi * cin + c) * cout + o] {
                                    let dst = &mut mine[o * spec_len..(o + 1) * spec_len];
                                    multiply_add(dst, &w.spec, kv, false);
                                }
                            }
                        }
                        mine
                    };
                    let partials: Vec<Vec<C<T::F>>> =
                        (0..parts).into_par_iter().map(partial).collect();
                    for mine in &partials {
                        for (a, &b) in acc.iter_mut().zip(mine) {
                            *a = *a + b;
                        }
                    }
                }
                for (pi, &p) in setup.phases.iter().enumerate().filter(|_| !coarse) {
                    for c in 0..cin {
                        setup.fill_input(&mut w.data, n, c, p, h0 * geo.step[1]);
                        w.forward(t);
                        std::mem::swap(&mut xs, &mut w.spec);
                        for o in 0..cout {
                            let kv = if keep {
                                match &kspec[(pi * cin + c) * cout + o] {
                                    Some(v) => v,
                                    None => continue,
                                }
                            } else {
                                if !setup.fill_kernel(&mut w.data, o, c, p) {
                                    continue;
                                }
                                w.forward(t);
                                &w.spec
                            };
                            multiply_add(
                                &mut acc[o * spec_len..(o + 1) * spec_len],
                                &xs,
                                kv,
                                t.threads,
                            );
                        }
                        std::mem::swap(&mut xs, &mut w.spec);
                    }
                }
                let first = |d: usize, h: usize, wi: usize| {
                    [
                        d * geo.step[0] + geo.klen[0] - 1,
                        h * geo.step[1] + geo.klen[1] - 1,
                        wi * geo.step[2] + geo.klen[2] - 1,
                    ]
                };
                for o in 0..cout {
                    let mut spec = acc[o * spec_len..(o + 1) * spec_len].to_vec();
                    let mut dst = out.slice_mut(s![n, o, .., h0..h0 + rows, ..]);
                    if T::REAL {
                        w.real.resize(size, T::F::zero());
                        t.inverse_real(&mut spec, &mut w.real, &mut w.tmp);
                        for ((d, h, wi), y) in dst.indexed_iter_mut() {
                            *y = T::from_re(w.real[at(first(d, h, wi))] * scale);
                        }
                    } else {
                        t.inverse_complex(&mut spec, &mut w.tmp);
                        for ((d, h, wi), y) in dst.indexed_iter_mut() {
                            *y = T::from_c(spec[at(first(d, h, wi))] * scale);
                        }
                    }
                }
                h0 += rows;
            }
        }
    }
}

/// `acc += a · b`, elementwise.
fn multiply_add<F: FftNum>(acc: &mut [C<F>], a: &[C<F>], b: &[C<F>], threads: bool) {
    fn body<F: FftNum>(acc: &mut [C<F>], a: &[C<F>], b: &[C<F>]) {
        for ((y, &u), &v) in acc.iter_mut().zip(a).zip(b) {
            *y = *y + u * v;
        }
    }
    const CHUNK: usize = 1 << 14;
    if threads && acc.len() >= PARALLEL_MIN {
        acc.par_chunks_mut(CHUNK)
            .zip(a.par_chunks(CHUNK).zip(b.par_chunks(CHUNK)))
            .for_each(|(y, (u, v))| body(y, u, v));
    } else {
        body(acc, a, b);
    }
}

/// The kernel tap behind position `j` of phase `p` (phase step `q`), if that position of the
/// dilated kernel holds a tap.
#[inline]
fn tap(j: usize, p: usize, q: usize, dil: usize, f: usize) -> Option<usize> {
    let t = j * q + p;
    (t.is_multiple_of(dil) && t / dil < f).then_some(t / dil)
}
