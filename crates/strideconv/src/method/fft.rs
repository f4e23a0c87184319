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

use std::sync::{Arc, Mutex};

use ndarray::{ArrayView5, ArrayViewMut5};
use num_complex::{Complex, Complex32, Complex64};
use num_traits::{One, Zero};
use rustfft::{Fft, FftNum, FftPlanner};

use super::{Algorithm, Geom, Tiling};
use crate::spec::{extent, SPATIAL};
use crate::Scalar;

/// Element types the FFT engine accepts, with their complex working type.
pub(crate) trait FftScalar: Scalar {
    type F: FftNum + num_traits::Float;
    fn to_c(self) -> Complex<Self::F>;
    fn from_c(c: Complex<Self::F>) -> Self;
}

impl FftScalar for f32 {
    type F = f32;
    fn to_c(self) -> Complex32 {
        Complex::new(self, 0.0)
    }
    fn from_c(c: Complex32) -> f32 {
        c.re
    }
}
impl FftScalar for f64 {
    type F = f64;
    fn to_c(self) -> Complex64 {
        Complex::new(self, 0.0)
    }
    fn from_c(c: Complex64) -> f64 {
        c.re
    }
}
impl FftScalar for Complex32 {
    type F = f32;
    fn to_c(self) -> Complex32 {
        self
    }
    fn from_c(c: Complex32) -> Complex32 {
        c
    }
}
impl FftScalar for Complex64 {
    type F = f64;
    fn to_c(self) -> Complex64 {
        self
    }
    fn from_c(c: Complex64) -> Complex64 {
        c
    }
}

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
        let klen: [usize; SPATIAL] = std::array::from_fn(|a| extent(kernel[a], g.dilation[a]).div_ceil(phases[a]));
        let m = std::array::from_fn(|a| fast_len((out[a] - 1) * step[a] + 1 + klen[a] - 1));
        FftGeometry { phases, step, klen, m }
    }

    /// Number of phase combinations with a non-empty kernel part.
    pub fn live_phases(&self, kernel: [usize; SPATIAL], g: &Geom) -> usize {
        (0..SPATIAL).map(|a| self.phases[a].min(extent(kernel[a], g.dilation[a]))).product()
    }
}

pub(crate) struct FftMethod<F: FftNum> {
    polyphase: bool,
    planner: Mutex<FftPlanner<F>>,
}

impl<F: FftNum> FftMethod<F> {
    pub fn new(polyphase: bool) -> Self {
        FftMethod { polyphase, planner: Mutex::new(FftPlanner::new()) }
    }

    fn plans(&self, m: [usize; SPATIAL]) -> [(Arc<dyn Fft<F>>, Arc<dyn Fft<F>>); SPATIAL] {
        let mut p = self.planner.lock().unwrap_or_else(|e| e.into_inner());
        std::array::from_fn(|a| (p.plan_fft_forward(m[a]), p.plan_fft_inverse(m[a])))
    }
}

/// Transform a 3-D buffer (row-major, dims `m`) along every axis longer than 1.
fn fft3<F: FftNum>(buf: &mut [Complex<F>], m: [usize; SPATIAL], ffts: [&Arc<dyn Fft<F>>; SPATIAL], tmp: &mut Vec<Complex<F>>, scratch: &mut Vec<Complex<F>>) {
    let need = ffts.iter().map(|f| f.get_inplace_scratch_len()).max().unwrap_or(0);
    if scratch.len() < need {
        scratch.resize(need, Complex::new(F::zero(), F::zero()));
    }
    if m[2] > 1 {
        ffts[2].process_with_scratch(buf, &mut scratch[..ffts[2].get_inplace_scratch_len()]);
    }
    // Axis 1 within each depth plane, then axis 0: transpose so the axis is contiguous.
    if m[1] > 1 {
        for plane in buf.chunks_exact_mut(m[1] * m[2]) {
            transpose_fft(plane, m[1], m[2], ffts[1].as_ref(), tmp, scratch);
        }
    }
    if m[0] > 1 {
        transpose_fft(buf, m[0], m[1] * m[2], ffts[0].as_ref(), tmp, scratch);
    }
}

/// FFT along the rows axis of a `rows × cols` block: transpose, transform, transpose back.
fn transpose_fft<F: FftNum>(block: &mut [Complex<F>], rows: usize, cols: usize, fft: &dyn Fft<F>, tmp: &mut Vec<Complex<F>>, scratch: &mut [Complex<F>]) {
    tmp.resize(rows * cols, Complex::new(F::zero(), F::zero()));
    for r in 0..rows {
        for c in 0..cols {
            tmp[c * rows + r] = block[r * cols + c];
        }
    }
    fft.process_with_scratch(tmp, &mut scratch[..fft.get_inplace_scratch_len()]);
    for r in 0..rows {
        for c in 0..cols {
            block[r * cols + c] = tmp[c * rows + r];
        }
    }
}

impl<T: FftScalar> Algorithm<T> for FftMethod<T::F> {
    fn tiling(&self) -> Tiling {
        Tiling { split_channels: false, split_rows: false }
    }

    fn run(&self, x: ArrayView5<'_, T>, k: ArrayView5<'_, T>, mut out: ArrayViewMut5<'_, T>, g: &Geom) {
        let [nb, cout, od, oh, ow] = *out.shape() else { unreachable!() };
        let cin = k.shape()[1];
        let kernel = [k.shape()[2], k.shape()[3], k.shape()[4]];
        let xlen = [x.shape()[2], x.shape()[3], x.shape()[4]];
        let geo = FftGeometry::new([od, oh, ow], kernel, g, self.polyphase);
        let m = geo.m;
        let size = m[0] * m[1] * m[2];
        let plans = self.plans(m);
        let fwd = [&plans[0].0, &plans[1].0, &plans[2].0];
        let inv = [&plans[0].1, &plans[1].1, &plans[2].1];
        let zero = Complex::new(T::F::zero(), T::F::zero());
        let (mut tmp, mut scratch) = (Vec::new(), Vec::new());
        let mut xs = vec![zero; size];
        let mut ks = vec![zero; size];
        let mut acc = vec![zero; size * cout];
        let scale = T::F::one() / <T::F as num_traits::NumCast>::from(size).expect("transform size fits the float");
        for n in 0..nb {
            acc.fill(zero);
            for pd in 0..geo.phases[0] {
                for ph in 0..geo.phases[1] {
                    for pw in 0..geo.phases[2] {
                        let p = [pd, ph, pw];
                        if (0..SPATIAL).any(|a| p[a] >= extent(kernel[a], g.dilation[a])) {
                            continue;
                        }
                        // Input phase: x[i·q + p], as many as fit both x and the transform.
                        let cnt: [usize; SPATIAL] = std::array::from_fn(|a| {
                            xlen[a].saturating_sub(p[a]).div_ceil(geo.phases[a]).min(m[a])
                        });
                        for c in 0..cin {
                            xs.fill(zero);
                            for i0 in 0..cnt[0] {
                                for i1 in 0..cnt[1] {
                                    let base = (i0 * m[1] + i1) * m[2];
                                    for i2 in 0..cnt[2] {
                                        xs[base + i2] = x[(
                                            n,
                                            c,
                                            i0 * geo.phases[0] + pd,
                                            i1 * geo.phases[1] + ph,
                                            i2 * geo.phases[2] + pw,
                                        )]
                                            .to_c();
                                    }
                                }
                            }
                            fft3(&mut xs, m, fwd, &mut tmp, &mut scratch);
                            for o in 0..cout {
                                // Kernel phase, reversed within the common length klen.
                                ks.fill(zero);
                                let mut any = false;
                                for j0 in 0..geo.klen[0] {
                                    let Some(t0) = tap(j0, pd, geo.phases[0], g.dilation[0], kernel[0]) else { continue };
                                    for j1 in 0..geo.klen[1] {
                                        let Some(t1) = tap(j1, ph, geo.phases[1], g.dilation[1], kernel[1]) else { continue };
                                        for j2 in 0..geo.klen[2] {
                                            let Some(t2) = tap(j2, pw, geo.phases[2], g.dilation[2], kernel[2]) else { continue };
                                            let r = [geo.klen[0] - 1 - j0, geo.klen[1] - 1 - j1, geo.klen[2] - 1 - j2];
                                            ks[(r[0] * m[1] + r[1]) * m[2] + r[2]] = k[(o, c, t0, t1, t2)].to_c();
                                            any = true;
                                        }
                                    }
                                }
                                if !any {
                                    continue;
                                }
                                fft3(&mut ks, m, fwd, &mut tmp, &mut scratch);
                                for ((a, &xv), &kv) in acc[o * size..(o + 1) * size].iter_mut().zip(&xs).zip(&ks) {
                                    *a = *a + xv * kv;
                                }
                            }
                        }
                    }
                }
            }
            for o in 0..cout {
                let spec = &mut acc[o * size..(o + 1) * size];
                fft3(spec, m, inv, &mut tmp, &mut scratch);
                for d in 0..od {
                    for h in 0..oh {
                        for w in 0..ow {
                            let i = [d * geo.step[0] + geo.klen[0] - 1, h * geo.step[1] + geo.klen[1] - 1, w * geo.step[2] + geo.klen[2] - 1];
                            out[(n, o, d, h, w)] = T::from_c(spec[(i[0] * m[1] + i[1]) * m[2] + i[2]] * scale);
                        }
                    }
                }
            }
        }
    }
}

/// The kernel tap behind position `j` of phase `p` (phase step `q`), if that position of the
/// dilated kernel holds a tap.
#[inline]
fn tap(j: usize, p: usize, q: usize, dil: usize, f: usize) -> Option<usize> {
    let t = j * q + p;
    (t % dil == 0 && t / dil < f).then_some(t / dil)
}
