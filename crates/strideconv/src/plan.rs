//! Planning: choose a method for a problem once, run it many times.
//!
//! A [`Plan`] is immutable and `Sync`: one plan serves many threads at once. Each named
//! method may refuse a problem (integers are never given to the FFT methods, which round);
//! `Method::Auto` prices every method that accepts with a cost model and takes the cheapest.

use std::any::Any;
use std::fmt::{self, Write as _};
use std::str::FromStr;

use ndarray::{ArrayD, ArrayView5, ArrayViewD, ArrayViewMut5, IxDyn};

use crate::cost;
use crate::error::{invalid, refused, shape_error, Error, Result};
use crate::method::fft::FftMethod;
use crate::method::{self, Algorithm, Geom};
use crate::scalar::{Element, Scalar};
use crate::spec::{ConvSpec, SPATIAL};
use crate::{view, wisdom};

/// How `Method::Auto` decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Planning {
    /// By the cost model (and any measured wisdom for this exact problem). Instant.
    #[default]
    Estimate,
    /// Time the cheapest few candidates on synthetic data of the plan's shape, keep the
    /// fastest, and remember it in the wisdom (see [`crate::wisdom`]).
    Measure,
}

/// The ways to compute a strided correlation (SPEC §4). All give the same result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Method {
    /// Choose by the cost model.
    Auto,
    /// The definition, one output at a time: the reference.
    Naive,
    /// Gather strided windows a tile at a time and multiply by the kernel.
    Im2col,
    /// Add tap × shifted strided slice, for every tap (the seed's "special conv").
    ShiftAdd,
    /// Unstrided FFT correlation, then every s-th output (the seed's "FFT conv").
    FftFull,
    /// Polyphase FFT: s^d unstrided correlations of the phase-split input and kernel, summed.
    Fft,
    /// Output rows accumulated along contiguous memory, stride-native.
    Direct,
    /// Minimal filtering, F(2×2, 3×3) or F(4×4, 3×3): stride-1 3×3 kernels, float and
    /// complex dtypes.
    Winograd,
}

impl Method {
    /// Every concrete method, in the order reports list them.
    pub const ALL: [Method; 7] = [
        Method::Naive,
        Method::Im2col,
        Method::ShiftAdd,
        Method::FftFull,
        Method::Fft,
        Method::Direct,
        Method::Winograd,
    ];

    /// The method's name as the APIs spell it.
    pub fn name(self) -> &'static str {
        match self {
            Method::Auto => "auto",
            Method::Naive => "naive",
            Method::Im2col => "im2col",
            Method::ShiftAdd => "shift_add",
            Method::FftFull => "fft_full",
            Method::Fft => "fft",
            Method::Direct => "direct",
            Method::Winograd => "winograd",
        }
    }

    /// Whether the method computes integers exactly.
    pub fn is_exact(self) -> bool {
        !matches!(
            self,
            Method::Fft | Method::FftFull | Method::Winograd | Method::Auto
        )
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Method {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        std::iter::once(Method::Auto)
            .chain(Method::ALL)
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                invalid(
                    "method",
                    s,
                    "expected auto, naive, im2col, shift_add, fft_full, fft, direct or winograd",
                )
            })
    }
}

/// What the planner thought of one method.
#[derive(Clone, Debug, PartialEq)]
pub struct Estimate {
    /// The method.
    pub method: Method,
    /// Estimated seconds, or why the method refused.
    pub cost: std::result::Result<f64, String>,
}

/// Bytes of padded input made at once (whole images; at least one).
const PADDED_PIECE: usize = 8 << 20;

/// Outputs from this size on are written past the caches where a method can ([`Geom`]'s
/// `stream`): a quarter of this machine class's L3, so they would not stay there, and
/// writing a line that missed the caches first reads it from memory. 1×1 64→256 @56, batch
/// 8 (a 25.7 MB float32 output), Rust loop, 2 threads: 4.4–4.9 ms per call with ordinary
/// stores, 4.1 ms streamed; float64 (51 MB) 14.3 → 9.8 ms. One image (3.2 MB) gained
/// nothing streamed.
const STREAM_BYTES: usize = 8 << 20;

/// The blocks' geometry for a call whose whole output takes `out_bytes`.
fn geom(spec: &ConvSpec, out_bytes: usize) -> Geom {
    Geom {
        stride: spec.stride,
        dilation: spec.dilation,
        threads: 1,
        stream: out_bytes >= STREAM_BYTES,
    }
}

fn build<T: Scalar>(m: Method) -> Box<dyn Algorithm<T>> {
    match m {
        Method::Naive => Box::new(method::naive::Naive),
        Method::Direct => Box::new(method::direct::Direct),
        Method::ShiftAdd => Box::new(method::shift_add::ShiftAdd),
        Method::Im2col => Box::new(method::im2col::Im2col),
        Method::Winograd => Box::new(method::winograd::Winograd::<T>::new()),
        Method::Fft | Method::FftFull => {
            build_fft::<T>(m == Method::Fft).expect("FFT refused non-float types earlier")
        }
        Method::Auto => unreachable!("never built"),
    }
}

/// [`Unpadded::drive`] for one type.
type DriveUnpadded<T> = fn(
    Unpadded,
    &ConvSpec,
    ArrayView5<'_, T>,
    ArrayView5<'_, T>,
    ArrayViewMut5<'_, T>,
    usize,
) -> bool;

/// [`method::drive`] for one type.
type Drive<T> = fn(
    &dyn Algorithm<T>,
    ArrayView5<'_, T>,
    ArrayView5<'_, T>,
    ArrayViewMut5<'_, T>,
    usize,
    &Geom,
    usize,
);

/// The parts of a plan that compute, for one compute type: every method, the paths around
/// them and the costs that choose among them.
///
/// Rust compiles a generic function again in every crate that calls it for a type, so if
/// [`Plan`]'s methods called the kernels themselves, each crate using a plan (every test
/// binary, the command-line tool, the Python module) would compile every method for every
/// type over again: most of the build. A plan calls them through these pointers instead,
/// and [`Scalar::engine`] returns a table made in this crate, where the kernels are
/// compiled once.
#[doc(hidden)]
pub struct Engine<T: Scalar> {
    build: fn(Method) -> Box<dyn Algorithm<T>>,
    estimate: fn(Method, &ConvSpec, usize, &cost::Scales) -> std::result::Result<f64, String>,
    unpadded: fn(Method, &ConvSpec) -> Option<Unpadded>,
    drive_unpadded: DriveUnpadded<T>,
    drive: Drive<T>,
    has_non_finite: fn(&ArrayView5<'_, T>, usize) -> bool,
}

impl<T: Scalar> Engine<T> {
    /// The table for `T` (only ever placed in a static of this crate, see [`Scalar::engine`]).
    pub(crate) const NEW: Self = Engine {
        build: build::<T>,
        estimate: cost::estimate::<T>,
        unpadded: Unpadded::of::<T>,
        drive_unpadded: Unpadded::drive::<T>,
        drive: method::drive::<T>,
        has_non_finite: view::has_non_finite::<T>,
    };
}

/// The FFT engine exists only for float and complex types; pick it by the concrete type.
fn build_fft<T: Scalar>(polyphase: bool) -> Option<Box<dyn Algorithm<T>>> {
    fn boxed<U: Scalar>(a: Box<dyn Algorithm<U>>) -> Box<dyn Any> {
        Box::new(a)
    }
    let any: Box<dyn Any> = match T::NAME {
        "float32" => boxed::<f32>(Box::new(FftMethod::<f32>::new(polyphase))),
        "float64" => boxed::<f64>(Box::new(FftMethod::<f64>::new(polyphase))),
        "complex64" => boxed::<num_complex::Complex32>(Box::new(FftMethod::<f32>::new(polyphase))),
        "complex128" => boxed::<num_complex::Complex64>(Box::new(FftMethod::<f64>::new(polyphase))),
        _ => return None,
    };
    any.downcast::<Box<dyn Algorithm<T>>>().ok().map(|b| *b)
}

/// A problem with its method chosen: run it with [`Plan::execute`] as often as needed.
///
/// ```
/// use ndarray::array;
/// use strideconv::{ConvSpec, Layout, Method, Options, Plan};
/// let x = array![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]];
/// let k = array![[1.0, 0.0], [0.0, 1.0]];
/// let layout = Layout::Signal { channel_axis: None, kernel_broadcast: false };
/// let spec = ConvSpec::new(x.shape(), k.shape(), layout, &Options::default()).unwrap();
/// let plan = Plan::<f64>::new(spec, Method::Auto, None).unwrap();
/// let y = plan.execute(x.view().into_dyn(), k.view().into_dyn()).unwrap();
/// assert_eq!(y, array![[6.0, 8.0], [12.0, 14.0]].into_dyn());
/// ```
pub struct Plan<T: Scalar> {
    spec: ConvSpec,
    method: Method,
    requested: Method,
    algorithm: Box<dyn Algorithm<T>>,
    /// For `auto` plans that chose an FFT or winograd: the best method that keeps NaN and
    /// Inf in their windows (and Inf as Inf), used when the result is not finite.
    finite_fallback: Option<(Method, Box<dyn Algorithm<T>>)>,
    estimates: Vec<Estimate>,
    threads: usize,
    /// How `auto` decided, for `explain`.
    decided: Decided,
    /// A path of the chosen method that reads the unpadded input itself.
    unpadded: Option<Unpadded>,
}

/// Paths that compute from the unpadded input, so the plan makes no padded copy first. Each
/// may still decline a call (an input layout it does not take); the general path then runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Unpadded {
    /// `direct` on a depthwise problem of floats (or a one-channel one the masked kernel
    /// takes): planes straight from the input ([`method::depthwise`]).
    Depthwise,
    /// `im2col` on a padded problem of floats: the implicit product's phase split pads as it
    /// copies ([`method::im2col::drive_unpadded`]), where that product applies.
    Im2col,
}

impl Unpadded {
    /// The path of the `chosen` method on `spec`, if it has one.
    fn of<T: Scalar>(chosen: Method, spec: &ConvSpec) -> Option<Unpadded> {
        match chosen {
            Method::Direct if method::depthwise::taken::<T>(spec) => Some(Unpadded::Depthwise),
            Method::Im2col
                if spec.is_padded() && spec.groups == 1 && crate::kernels::own_product::<T>() =>
            {
                Some(Unpadded::Im2col)
            }
            _ => None,
        }
    }

    /// Compute the whole problem; false, having written nothing, when the path declines.
    fn drive<T: Scalar>(
        self,
        spec: &ConvSpec,
        x: ArrayView5<'_, T>,
        k: ArrayView5<'_, T>,
        out: ArrayViewMut5<'_, T>,
        threads: usize,
    ) -> bool {
        match self {
            Unpadded::Depthwise => method::depthwise::drive(spec, x, k, out, threads),
            Unpadded::Im2col => method::im2col::drive_unpadded(spec, x, k, out, threads),
        }
    }

    /// A line for `explain`.
    fn describe(self) -> &'static str {
        match self {
            Unpadded::Depthwise => {
                "direct runs plane by plane on the unpadded input (depthwise path)"
            }
            Unpadded::Im2col => {
                "im2col pads the input as its implicit product splits it by phase, where that product applies (no padded copy first)"
            }
        }
    }
}

/// How `auto` decided.
#[derive(Clone, Debug, PartialEq)]
enum Decided {
    /// A named method, or the cost model.
    Estimate,
    /// Remembered from an earlier measurement of this problem (wisdom).
    Recalled,
    /// Timed now: each candidate's best time in seconds.
    Measured(Vec<(Method, f64)>),
}

impl<T: Scalar> fmt::Debug for Plan<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plan")
            .field("method", &self.method)
            .field("spec", &self.spec)
            .finish()
    }
}

impl<T: Scalar> Plan<T> {
    /// Plan `spec` with `method` (or the cheapest, for [`Method::Auto`]) on `threads` threads
    /// (`None`: all cores).
    pub fn new(spec: ConvSpec, method: Method, threads: Option<usize>) -> Result<Self> {
        Self::with_planning(spec, method, threads, Planning::Estimate)
    }

    /// As [`Plan::new`], choosing how `auto` decides.
    pub fn with_planning(
        spec: ConvSpec,
        method: Method,
        threads: Option<usize>,
        planning: Planning,
    ) -> Result<Self> {
        let threads = match threads {
            Some(0) => {
                return Err(invalid(
                    "threads",
                    0,
                    "must be positive (or None for all cores)",
                ))
            }
            Some(t) => t,
            None => method::default_threads(),
        };
        crate::kernels::keep_freed_memory();
        let engine = T::engine();
        let scales = wisdom::scales();
        // An empty batch (no image: an empty output, computed by no method) is costed as one
        // image, so that the plan still names the method a batch of this shape would take.
        let costed = ConvSpec {
            batch: spec.batch.max(1),
            ..spec.clone()
        };
        let estimates: Vec<Estimate> = Method::ALL
            .iter()
            .map(|&m| Estimate {
                method: m,
                cost: (engine.estimate)(m, &costed, threads, &scales),
            })
            .collect();
        let ranked = |allow: &dyn Fn(Method) -> bool| {
            let mut r: Vec<(Method, f64)> = estimates
                .iter()
                .filter(|e| allow(e.method))
                .filter_map(|e| e.cost.as_ref().ok().map(|c| (e.method, *c)))
                .collect();
            r.sort_by(|a, b| a.1.total_cmp(&b.1));
            r
        };
        let best =
            |allow: &dyn Fn(Method) -> bool| ranked(allow).first().map_or(Method::Naive, |r| r.0);
        let key = wisdom::problem_key::<T>(&spec, threads);
        let mut decided = Decided::Estimate;
        let (chosen, fallback) = match method {
            Method::Auto => {
                let remembered = wisdom::recall(&key)
                    .filter(|m| estimates.iter().any(|e| e.method == *m && e.cost.is_ok()));
                let m = match (remembered, planning) {
                    (Some(m), _) => {
                        decided = Decided::Recalled;
                        m
                    }
                    (None, Planning::Estimate) => best(&|_| true),
                    (None, Planning::Measure) => {
                        let mut times = Vec::new();
                        for (m, _) in ranked(&|_| true).into_iter().take(3) {
                            let p = Plan::<T>::new(spec.clone(), m, Some(threads))?;
                            times.push((m, wisdom::time_plan(&p)?));
                        }
                        let fastest = times
                            .iter()
                            .copied()
                            .min_by(|a, b| a.1.total_cmp(&b.1))
                            .unwrap_or((Method::Naive, f64::INFINITY));
                        wisdom::remember(key, fastest.0, fastest.1);
                        decided = Decided::Measured(times);
                        fastest.0
                    }
                };
                let fb = (!m.is_exact()).then(|| best(&|m: Method| m.is_exact()));
                (m, fb)
            }
            m => {
                // Every concrete method was estimated above; a refusal is its reason.
                if let Some(Err(reason)) = estimates.iter().find(|e| e.method == m).map(|e| &e.cost)
                {
                    return Err(refused(m.name(), reason.clone()));
                }
                (m, None)
            }
        };
        Ok(Plan {
            unpadded: (engine.unpadded)(chosen, &spec),
            algorithm: (engine.build)(chosen),
            finite_fallback: fallback.map(|m| (m, (engine.build)(m))),
            spec,
            method: chosen,
            requested: method,
            estimates,
            threads,
            decided,
        })
    }

    /// The method that runs (never `Auto`).
    pub fn method(&self) -> Method {
        self.method
    }

    /// The problem this plan computes.
    pub fn spec(&self) -> &ConvSpec {
        &self.spec
    }

    /// The method asked for (`Auto` or a named one).
    pub fn requested(&self) -> Method {
        self.requested
    }

    /// Worker threads the plan runs on.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// The cost model's view of every method.
    pub fn estimates(&self) -> &[Estimate] {
        &self.estimates
    }

    /// A human-readable account of the choice.
    pub fn explain(&self) -> String {
        let s = &self.spec;
        let mut t = String::new();
        let _ = writeln!(
            t,
            "problem: x {:?} * k {:?} -> {:?}, stride {:?}, dilation {:?}, padding {:?} ({}), {} ({})",
            s.x_shape,
            s.k_shape,
            s.out_shape(),
            &s.stride[SPATIAL - s.rank..],
            &s.dilation[SPATIAL - s.rank..],
            &s.padding[SPATIAL - s.rank..],
            s.pad_mode,
            T::NAME,
            if s.op == crate::Op::Correlate { "correlate" } else { "convolve" },
        );
        let _ = writeln!(
            t,
            "requested: {}; chosen: {}; threads: {}",
            self.requested, self.method, self.threads
        );
        match &self.decided {
            Decided::Estimate => {}
            Decided::Recalled => {
                let _ = writeln!(t, "planning: measured earlier for this problem (wisdom)");
            }
            Decided::Measured(times) => {
                let _ = write!(t, "planning: measure; best times");
                for (m, s) in times {
                    let _ = write!(t, " {m} {s:.3e} s");
                }
                let _ = writeln!(t);
            }
        }
        if let Some(path) = self.unpadded {
            let _ = writeln!(t, "{}", path.describe());
        }
        if let Some((m, _)) = &self.finite_fallback {
            let _ = writeln!(
                t,
                "if the result holds NaN or Inf (as NaN or Inf in x or k makes it): \
                 computed again by {m}, which keeps them in their windows"
            );
        }
        for e in &self.estimates {
            match &e.cost {
                Ok(c) => {
                    let _ = writeln!(
                        t,
                        "  {:<10} {:>12.3e} s{}",
                        e.method.name(),
                        c,
                        if e.method == self.method { "  <-" } else { "" }
                    );
                }
                Err(r) => {
                    let _ = writeln!(t, "  {:<10} refused: {r}", e.method.name());
                }
            }
        }
        t
    }

    /// Compute the result in the user's layout and the output type of `E`.
    pub fn execute<E: Element<Compute = T>>(
        &self,
        x: ArrayViewD<'_, E>,
        k: ArrayViewD<'_, E>,
    ) -> Result<ArrayD<E::Output>> {
        E::to_output_array(self.execute_compute(x, k)?)
    }

    /// Compute the result in the compute type (`i128` for integers), before narrowing.
    pub fn execute_compute<E: Element<Compute = T>>(
        &self,
        x: ArrayViewD<'_, E>,
        k: ArrayViewD<'_, E>,
    ) -> Result<ArrayD<T>> {
        let s = &self.spec;
        let engine = T::engine();
        if x.shape() != s.x_shape.as_slice() {
            return Err(shape_error(
                "x",
                x.shape(),
                format!("the plan was made for x of shape {:?}", s.x_shape),
            ));
        }
        if k.shape() != s.k_shape.as_slice() {
            return Err(shape_error(
                "k",
                k.shape(),
                format!("the plan was made for k of shape {:?}", s.k_shape),
            ));
        }
        let kc = view::prepare_kernel::<E>(s, view::kernel_view(s, k));
        // Small problems are not worth a fan-out.
        let threads = if s.macs() < method::PARALLEL_MACS {
            1
        } else {
            self.threads
        };
        let shape = s.out_shape();
        let n: usize = shape.iter().product();
        // A 1×1 layer's product reads its input in place and cuts its columns where the
        // input's rows start a cache line; the output then starts as far past a line as the
        // input does, so that the same columns start lines of the output too.
        let pointwise = self.method == Method::Im2col
            && s.kernel == [1; SPATIAL]
            && s.stride == [1; SPATIAL]
            && !s.is_padded()
            && std::mem::size_of::<E>() == std::mem::size_of::<T>();
        let phase = if pointwise {
            x.as_ptr() as usize % 64
        } else {
            0
        };
        let Some((data, off)) = crate::kernels::try_output_aligned::<T>(n, phase) else {
            let size = std::mem::size_of::<T>();
            return Err(crate::error::memory_refused("output", &shape, size));
        };
        let mut out = if off == 0 && data.len() == n {
            ArrayD::from_shape_vec(IxDyn(&shape), data)
        } else {
            // A large output starts on a cache line, `off` elements into its vector.
            ndarray::Array1::from_vec(data)
                .slice_move(ndarray::s![off..off + n])
                .into_shape_with_order(IxDyn(&shape))
        }
        .expect("the output's length is its shape's product");
        if n == 0 {
            // An empty batch: nothing to compute (as torch returns an empty result).
            return Ok(out);
        }
        let x5 = view::input_view(s, x);
        if let (Some(path), Some(xv)) = (self.unpadded, E::view_compute(x5.view())) {
            let out5 = view::output_view(s, out.view_mut());
            if (engine.drive_unpadded)(path, s, xv, kc.view(), out5, threads) {
                return Ok(out);
            }
        }
        // A padded copy of a large batch is made a few images at a time: the copy stays
        // within cache-friendly, reusable memory instead of fresh pages on every call.
        let image = s.in_channels * (0..SPATIAL).map(|a| s.padded_len(a)).product::<usize>();
        let per = if s.is_padded() {
            (PADDED_PIECE / (image * std::mem::size_of::<T>()).max(1)).clamp(1, s.batch)
        } else {
            s.batch
        };
        let g = geom(s, n.saturating_mul(std::mem::size_of::<T>()));
        let mut out5 = view::output_view(s, out.view_mut());
        let mut b0 = 0;
        while b0 < s.batch {
            let b1 = (b0 + per).min(s.batch);
            // One piece (every small problem): the whole batch, not sliced.
            let whole = b0 == 0 && b1 == s.batch;
            let piece = if whole {
                x5.view()
            } else {
                x5.slice(ndarray::s![b0..b1, .., .., .., ..])
            };
            let xc = view::prepare_input::<E>(s, piece, threads)?;
            view::check_integer_bound(&xc.view(), &kc.view())?;
            let mut piece_out = if whole {
                out5.view_mut()
            } else {
                out5.slice_mut(ndarray::s![b0..b1, .., .., .., ..])
            };
            let run = |alg: &dyn method::Algorithm<T>, o: ArrayViewMut5<'_, T>| {
                (engine.drive)(alg, xc.view(), kc.view(), o, s.groups, &g, threads)
            };
            run(self.algorithm.as_ref(), piece_out.view_mut());
            // `auto` chose an FFT: a NaN or Inf in the input or the kernel spreads over every
            // output of its transform, so a finite result shows the operands were finite (and
            // checks the outputs, not the larger input and kernel). Winograd keeps them in
            // their windows but may turn Inf into NaN (Inf − Inf in a transform); a non-finite
            // value it reads reaches some output too. Otherwise the piece is computed again
            // by the exact method, which keeps non-finite values in their windows (a result
            // that overflowed is recomputed too).
            if let Some((_, fb)) = &self.finite_fallback {
                if (engine.has_non_finite)(&piece_out.view(), threads) {
                    piece_out.fill(T::zero());
                    run(fb.as_ref(), piece_out.view_mut());
                }
            }
            b0 = b1;
        }
        Ok(out)
    }
}
