//! # strideconv
//!
//! Strided convolution and cross-correlation of 1-D, 2-D and 3-D arrays, by every method
//! people use (and faster ones), with exact integers, every padding mode and an automatic
//! choice of method.
//!
//! ```
//! use ndarray::array;
//! use strideconv::{correlate, Options};
//!
//! // The question this library grew from: a 7×7 array, a 3×3 kernel, stride 2.
//! let x = array![[2, 3, 7, 4, 6, 2, 9], [6, 6, 9, 8, 7, 4, 3], [3, 4, 8, 3, 8, 9, 7],
//!                [7, 8, 3, 6, 6, 3, 4], [4, 2, 1, 8, 3, 4, 6], [3, 2, 4, 1, 9, 8, 3],
//!                [0, 1, 3, 9, 2, 1, 4]];
//! let k = array![[3, 4, 4], [1, 0, 2], [-1, 0, 3]];
//! let y = correlate(x.view(), k.view(), &Options::strided(2)).unwrap();
//! // Integers are exact and come back as i64.
//! assert_eq!(y, array![[91i64, 100, 88], [69, 91, 117], [44, 72, 74]].into_dyn());
//! ```
//!
//! ## The operation
//! `out[o] = Σ_t xpad[o·s + t·dil] · k[t]` (cross-correlation, no kernel flip); [`convolve`]
//! flips the kernel. `xpad` is `x` padded as [`Options::padding`] and [`Options::pad_mode`]
//! say, with numpy.pad's meanings. Integers (and `bool`) are computed exactly in 128-bit
//! arithmetic and returned as `i64`; a result that does not fit is [`Error::Overflow`].
//! Complex correlation conjugates the kernel, as numpy and scipy do.
//!
//! ## Design
//! * [`ConvSpec`] resolves a request (shapes, stride, dilation, padding, groups, layout) once.
//! * [`Plan`] picks a [`Method`] (or takes the one named) and executes many times; it is
//!   immutable and can be shared between threads.
//! * Methods see one canonical problem: a padded, ungrouped, five-dimensional
//!   `(N, C, D, H, W)` correlation. Layouts (channels-last, the seed's `n×n×c`, single arrays)
//!   are views onto it, so every memory layout works without copies.

mod cost;
pub mod error;
pub mod kernels;
pub mod memory;
mod method;
pub mod plan;
pub mod scalar;
pub mod spec;
mod team;
mod view;
pub mod wisdom;

use ndarray::{ArrayD, ArrayView, Dimension};

pub use error::{Error, Result};
pub use plan::{Estimate, Method, Plan, Planning};
pub use scalar::{narrow_i128, Element, Kind, Scalar};
pub use spec::{ConvSpec, Layout, Op, Options, PadMode, Padding};

/// How to run a request: method and thread count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    /// The method, or [`Method::Auto`].
    pub method: Method,
    /// Worker threads; `None` for all cores, `Some(1)` for single-threaded.
    pub threads: Option<usize>,
}

impl Default for Run {
    fn default() -> Self {
        Run {
            method: Method::Auto,
            threads: None,
        }
    }
}

/// Plan and run one request in one call.
pub fn compute<E: Element>(
    x: ndarray::ArrayViewD<'_, E>,
    k: ndarray::ArrayViewD<'_, E>,
    layout: Layout,
    opts: &Options,
    run: Run,
) -> Result<ArrayD<E::Output>> {
    let spec = ConvSpec::new(x.shape(), k.shape(), layout, opts)?;
    Plan::<E::Compute>::new(spec, run.method, run.threads)?.execute(x, k)
}

const SIGNAL: Layout = Layout::Signal {
    channel_axis: None,
    kernel_broadcast: false,
};

/// Strided cross-correlation of `x` with `k` (same number of axes, 1 to 3), method chosen
/// automatically. `opts.op` is ignored.
///
/// ```
/// use ndarray::array;
/// use strideconv::{correlate, Options, Padding};
/// let x = array![1.0, 2.0, 3.0, 4.0, 5.0];
/// let opts = Options { stride: vec![2], padding: Padding::Same, ..Options::default() };
/// let y = correlate(x.view(), array![1.0, 1.0, 1.0].view(), &opts).unwrap();
/// assert_eq!(y, array![3.0, 9.0, 9.0].into_dyn());
/// ```
pub fn correlate<E: Element, D: Dimension>(
    x: ArrayView<'_, E, D>,
    k: ArrayView<'_, E, D>,
    opts: &Options,
) -> Result<ArrayD<E::Output>> {
    let opts = Options {
        op: Op::Correlate,
        ..opts.clone()
    };
    compute(x.into_dyn(), k.into_dyn(), SIGNAL, &opts, Run::default())
}

/// Strided convolution (kernel flipped along every axis; scipy.signal.convolve plus stride).
///
/// ```
/// use ndarray::array;
/// use strideconv::{convolve, Options};
/// let y = convolve(array![1, 2, 3, 4].view(), array![1, 0, -1].view(), &Options::default()).unwrap();
/// assert_eq!(y, array![2i64, 2].into_dyn());
/// ```
pub fn convolve<E: Element, D: Dimension>(
    x: ArrayView<'_, E, D>,
    k: ArrayView<'_, E, D>,
    opts: &Options,
) -> Result<ArrayD<E::Output>> {
    let opts = Options {
        op: Op::Convolve,
        ..opts.clone()
    };
    compute(x.into_dyn(), k.into_dyn(), SIGNAL, &opts, Run::default())
}
