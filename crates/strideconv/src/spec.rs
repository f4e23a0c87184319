//! The problem: shapes, stride, dilation, padding, groups, and the output shape.
//!
//! One [`ConvSpec`] describes every request the library serves. Internally every problem is
//! canonical and five-dimensional: input `(N, C_in, D, H, W)`, kernel `(C_out, C_in/groups,
//! KD, KH, KW)`, output `(N, C_out, OD, OH, OW)`, where the unused leading spatial axes of a
//! 1-D or 2-D problem have length 1. The seed's single arrays (`N = C_in = C_out = 1`) and its
//! `n×n×c` channel-last case (`C_in = c`, `C_out = 1`) are special cases of the same
//! description; they differ only in how user arrays are viewed as canonical ones
//! ([`Layout`]).

use std::fmt;
use std::str::FromStr;

use crate::error::{invalid, shape_error, too_large, Error, Result};

/// Number of canonical spatial axes.
pub const SPATIAL: usize = 3;

/// How values beyond the input's edges are made (numpy.pad's names and meanings).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PadMode {
    /// A constant value (`cval`); PyTorch's `"zeros"` when it is 0.
    Constant,
    /// Mirror without repeating the edge: `d c b | a b c d | c b a`.
    Reflect,
    /// Mirror repeating the edge: `b a | a b c d | d c` (scipy.ndimage calls this "reflect").
    Symmetric,
    /// Repeat the edge value (PyTorch's `"replicate"`).
    Edge,
    /// Periodic (PyTorch's `"circular"`).
    Wrap,
}

impl PadMode {
    /// numpy's name of the mode.
    pub fn name(self) -> &'static str {
        match self {
            PadMode::Constant => "constant",
            PadMode::Reflect => "reflect",
            PadMode::Symmetric => "symmetric",
            PadMode::Edge => "edge",
            PadMode::Wrap => "wrap",
        }
    }

    /// Index into an axis of length `n` for padded position `i` (`before` pad elements come
    /// first); `None` means the constant value.
    ///
    /// Large pads repeat the pattern as numpy.pad does (periodic reflection).
    #[inline]
    pub fn source_index(self, i: usize, before: usize, n: usize) -> Option<usize> {
        let j = i as i64 - before as i64;
        let n_i = n as i64;
        if (0..n_i).contains(&j) {
            return Some(j as usize);
        }
        match self {
            PadMode::Constant => None,
            PadMode::Edge => Some(j.clamp(0, n_i - 1) as usize),
            PadMode::Wrap => Some(j.rem_euclid(n_i) as usize),
            PadMode::Reflect => {
                if n == 1 {
                    return Some(0);
                }
                let period = 2 * (n_i - 1);
                let m = j.rem_euclid(period);
                Some(if m >= n_i { period - m } else { m } as usize)
            }
            PadMode::Symmetric => {
                let period = 2 * n_i;
                let m = j.rem_euclid(period);
                Some(if m >= n_i { period - 1 - m } else { m } as usize)
            }
        }
    }
}

impl FromStr for PadMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "constant" | "zeros" => PadMode::Constant,
            "reflect" => PadMode::Reflect,
            "symmetric" => PadMode::Symmetric,
            "edge" | "replicate" => PadMode::Edge,
            "wrap" | "circular" => PadMode::Wrap,
            "nearest" | "mirror" | "grid-wrap" | "grid-constant" | "grid-mirror" => {
                return Err(invalid(
                    "pad_mode",
                    s,
                    "this is a scipy.ndimage mode name; strideconv uses numpy.pad's names \
                     (ndimage 'reflect' is numpy 'symmetric', 'mirror' is 'reflect', \
                     'nearest' is 'edge', 'grid-wrap' is 'wrap')",
                ))
            }
            _ => {
                return Err(invalid(
                    "pad_mode",
                    s,
                    "expected one of constant, reflect, symmetric, edge, wrap \
                     (or PyTorch's zeros, replicate, circular)",
                ))
            }
        })
    }
}

impl fmt::Display for PadMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How much to pad, as the user asked for it. Resolved to `(before, after)` per axis by
/// [`ConvSpec::new`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Padding {
    /// No padding.
    Valid,
    /// scipy's `mode='same'`, then every s-th output from index 0: `ceil(n/s)` outputs.
    /// Pads `f_eff/2` before and `(f_eff-1)/2` after, centring even kernels as scipy does.
    Same,
    /// scipy's `mode='full'`: `f_eff - 1` on both sides.
    Full,
    /// TensorFlow/JAX "SAME": `ceil(n/s)` outputs, total pad
    /// `max((out-1)·s + f_eff − n, 0)`, the extra element at the end. With stride 1 this is
    /// PyTorch's `padding="same"`.
    SameTf,
    /// The same `(before, after)` on every axis.
    Uniform(usize, usize),
    /// One `(before, after)` pair per convolved axis.
    Explicit(Vec<(usize, usize)>),
}

/// Correlation (no kernel flip, the CNN convention) or convolution (kernel flipped).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// `out[o] = Σ x[o·s + t·dil] k[t]`.
    Correlate,
    /// The same with the kernel reversed along every convolved axis.
    Convolve,
}

/// How user arrays map onto the canonical five-dimensional views.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Layout {
    /// numpy/scipy style: `x` holds only spatial axes plus, optionally, one channel axis that
    /// is summed over. `k` has the same number of axes, or one fewer (then it is broadcast
    /// over the channels).
    Signal {
        /// Position of the channel axis in `x` (and in `k` when `k` has it).
        channel_axis: Option<usize>,
        /// `k` lacks the channel axis and is broadcast over it.
        kernel_broadcast: bool,
    },
    /// PyTorch style: input `(N, C, *spatial)` or, channels-last, `(N, *spatial, C)`; weight
    /// `(C_out, C_in/groups, *kernel)`; output like the input.
    Batched {
        /// `NHWC`-style input and output.
        channels_last: bool,
    },
}

/// The options of a request, before shapes are known.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// Correlate or convolve.
    pub op: Op,
    /// One stride per convolved axis, or one for all.
    pub stride: Vec<usize>,
    /// One dilation per convolved axis, or one for all.
    pub dilation: Vec<usize>,
    /// Padding amounts.
    pub padding: Padding,
    /// How padded values are made.
    pub pad_mode: PadMode,
    /// The value of [`PadMode::Constant`] padding.
    pub cval: f64,
    /// Number of channel groups (batched layout only).
    pub groups: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            op: Op::Correlate,
            stride: vec![1],
            dilation: vec![1],
            padding: Padding::Valid,
            pad_mode: PadMode::Constant,
            cval: 0.0,
            groups: 1,
        }
    }
}

impl Options {
    /// Correlation with the given stride on every axis, no padding.
    pub fn strided(stride: usize) -> Self {
        Options {
            stride: vec![stride],
            ..Options::default()
        }
    }
}

/// A fully resolved problem: every size known, every option checked.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvSpec {
    /// Number of convolved axes (1 to 3).
    pub rank: usize,
    /// Batch size N.
    pub batch: usize,
    /// Channel groups.
    pub groups: usize,
    /// Input channels (all groups).
    pub in_channels: usize,
    /// Output channels (all groups).
    pub out_channels: usize,
    /// Canonical input spatial lengths (leading unused axes are 1).
    pub input: [usize; SPATIAL],
    /// Canonical kernel spatial lengths.
    pub kernel: [usize; SPATIAL],
    /// Canonical strides.
    pub stride: [usize; SPATIAL],
    /// Canonical dilations.
    pub dilation: [usize; SPATIAL],
    /// Canonical `(before, after)` padding.
    pub padding: [(usize, usize); SPATIAL],
    /// How padded values are made.
    pub pad_mode: PadMode,
    /// Constant padding value.
    pub cval: f64,
    /// Correlate or convolve.
    pub op: Op,
    /// How user arrays are viewed.
    pub layout: Layout,
    /// Input shape as the user gave it.
    pub x_shape: Vec<usize>,
    /// Kernel shape as the user gave it.
    pub k_shape: Vec<usize>,
}

fn per_axis(arg: &'static str, v: &[usize], rank: usize) -> Result<[usize; SPATIAL]> {
    let full: Vec<usize> = match v.len() {
        1 => vec![v[0]; rank],
        n if n == rank => v.to_vec(),
        _ => {
            return Err(invalid(
                arg,
                v,
                format!("expected one value or {rank} (one per convolved axis)"),
            ))
        }
    };
    if full.contains(&0) {
        return Err(invalid(arg, v, "must be positive"));
    }
    let mut out = [1; SPATIAL];
    out[SPATIAL - rank..].copy_from_slice(&full);
    Ok(out)
}

/// Kernel extent along an axis: `dil·(f−1)+1`.
#[inline]
pub fn extent(f: usize, dil: usize) -> usize {
    dil * (f - 1) + 1
}

impl ConvSpec {
    /// Resolve a request: user shapes, their layout and the options.
    ///
    /// ```
    /// use strideconv::{ConvSpec, Layout, Options};
    /// let layout = Layout::Signal { channel_axis: None, kernel_broadcast: false };
    /// let spec = ConvSpec::new(&[7, 7], &[3, 3], layout, &Options::strided(2)).unwrap();
    /// assert_eq!(spec.out_shape(), vec![3, 3]);
    /// ```
    pub fn new(
        x_shape: &[usize],
        k_shape: &[usize],
        layout: Layout,
        opts: &Options,
    ) -> Result<Self> {
        let (rank, batch, in_channels, out_channels, groups, xs, ks) = match &layout {
            Layout::Signal {
                channel_axis,
                kernel_broadcast,
            } => {
                if opts.groups != 1 {
                    return Err(invalid(
                        "groups",
                        opts.groups,
                        "groups apply to conv1d/2d/3d only; must be 1",
                    ));
                }
                match channel_axis {
                    None => {
                        if *kernel_broadcast {
                            return Err(invalid(
                                "channel_axis",
                                "None",
                                "kernel broadcast needs a channel axis",
                            ));
                        }
                        if x_shape.len() != k_shape.len() {
                            return Err(shape_error(
                                "k",
                                k_shape,
                                format!("k must have as many axes as x ({})", x_shape.len()),
                            ));
                        }
                        if !(1..=SPATIAL).contains(&x_shape.len()) {
                            return Err(shape_error("x", x_shape, "expected 1 to 3 axes"));
                        }
                        (
                            x_shape.len(),
                            1,
                            1,
                            1,
                            1,
                            x_shape.to_vec(),
                            k_shape.to_vec(),
                        )
                    }
                    Some(ca) => {
                        let ca = *ca;
                        if ca >= x_shape.len() {
                            return Err(invalid(
                                "channel_axis",
                                ca,
                                format!("x has only {} axes", x_shape.len()),
                            ));
                        }
                        if !(2..=SPATIAL + 1).contains(&x_shape.len()) {
                            return Err(shape_error(
                                "x",
                                x_shape,
                                "with a channel axis, expected 2 to 4 axes",
                            ));
                        }
                        let c = x_shape[ca];
                        let mut xs = x_shape.to_vec();
                        xs.remove(ca);
                        let ks = if *kernel_broadcast {
                            if k_shape.len() + 1 != x_shape.len() {
                                return Err(shape_error(
                                    "k",
                                    k_shape,
                                    "a broadcast kernel has one axis fewer than x",
                                ));
                            }
                            k_shape.to_vec()
                        } else {
                            if k_shape.len() != x_shape.len() {
                                return Err(shape_error(
                                    "k",
                                    k_shape,
                                    format!(
                                        "k must have as many axes as x ({}), or one fewer",
                                        x_shape.len()
                                    ),
                                ));
                            }
                            if k_shape[ca] != c {
                                return Err(shape_error(
                                    "k",
                                    k_shape,
                                    format!(
                                        "k has {} channels along channel_axis {ca}, x has {c}",
                                        k_shape[ca]
                                    ),
                                ));
                            }
                            let mut ks = k_shape.to_vec();
                            ks.remove(ca);
                            ks
                        };
                        (xs.len(), 1, c, 1, 1, xs, ks)
                    }
                }
            }
            Layout::Batched { channels_last } => {
                let nd = x_shape.len();
                if !(3..=SPATIAL + 2).contains(&nd) {
                    return Err(shape_error(
                        "input",
                        x_shape,
                        "expected (N, C, *spatial) with 1 to 3 spatial axes",
                    ));
                }
                if k_shape.len() != nd {
                    return Err(shape_error(
                        "weight",
                        k_shape,
                        format!("weight must have {nd} axes (C_out, C_in/groups, *kernel)"),
                    ));
                }
                let (c, spatial) = if *channels_last {
                    (x_shape[nd - 1], x_shape[1..nd - 1].to_vec())
                } else {
                    (x_shape[1], x_shape[2..].to_vec())
                };
                let g = opts.groups;
                if g == 0 {
                    return Err(invalid("groups", g, "must be positive"));
                }
                if c % g != 0 {
                    return Err(invalid(
                        "groups",
                        g,
                        format!("must divide the input channels ({c})"),
                    ));
                }
                let c_out = k_shape[0];
                if !c_out.is_multiple_of(g) {
                    return Err(invalid(
                        "groups",
                        g,
                        format!("must divide the output channels ({c_out})"),
                    ));
                }
                if k_shape[1] * g != c {
                    return Err(shape_error(
                        "weight",
                        k_shape,
                        format!(
                            "weight.shape[1] must be C_in/groups = {}/{g} = {}",
                            c,
                            c / g
                        ),
                    ));
                }
                (
                    nd - 2,
                    x_shape[0],
                    c,
                    c_out,
                    g,
                    spatial,
                    k_shape[2..].to_vec(),
                )
            }
        };
        if ks.contains(&0) {
            return Err(shape_error("k", k_shape, "kernel axes must be non-empty"));
        }
        if in_channels == 0 || out_channels == 0 {
            return Err(if in_channels == 0 {
                shape_error("x", x_shape, "channel axes must be non-empty")
            } else {
                shape_error("k", k_shape, "the output channel axis must be non-empty")
            });
        }
        let stride = per_axis("stride", &opts.stride, rank)?;
        let dilation = per_axis("dilation", &opts.dilation, rank)?;
        let mut input = [1; SPATIAL];
        input[SPATIAL - rank..].copy_from_slice(&xs);
        let mut kernel = [1; SPATIAL];
        kernel[SPATIAL - rank..].copy_from_slice(&ks);
        // Lengths that would not fit a machine word (a dilation or padding near 2⁶³) are
        // refused here; past this point `extent` and `padded_len` cannot overflow.
        for a in SPATIAL - rank..SPATIAL {
            let spans = dilation[a].checked_mul(kernel[a] - 1);
            if spans.and_then(|v| v.checked_add(1)).is_none() {
                return Err(invalid(
                    "dilation",
                    &opts.dilation,
                    format!(
                        "too large: the dilated kernel would span more than {} elements along \
                         convolved axis {}",
                        usize::MAX,
                        a - (SPATIAL - rank)
                    ),
                ));
            }
        }
        let mut padding = [(0, 0); SPATIAL];
        for a in SPATIAL - rank..SPATIAL {
            let fe = extent(kernel[a], dilation[a]);
            let n = input[a];
            padding[a] = match &opts.padding {
                Padding::Valid => (0, 0),
                Padding::Full => (fe - 1, fe - 1),
                Padding::Same => (fe / 2, (fe - 1) / 2),
                Padding::SameTf => {
                    let out = n.div_ceil(stride[a]);
                    // (out − 1)·stride < n: only adding the extent may overflow (then the
                    // padded length does, refused below).
                    let total = ((out.max(1) - 1) * stride[a])
                        .saturating_add(fe)
                        .saturating_sub(n);
                    (total / 2, total - total / 2)
                }
                Padding::Uniform(b, e) => (*b, *e),
                Padding::Explicit(v) => {
                    if v.len() != rank {
                        return Err(invalid(
                            "padding",
                            v,
                            format!(
                                "expected {rank} (before, after) pairs, one per convolved axis"
                            ),
                        ));
                    }
                    v[a - (SPATIAL - rank)]
                }
            };
        }
        if input.contains(&0) {
            return Err(shape_error("x", x_shape, "spatial axes must be non-empty"));
        }
        for a in SPATIAL - rank..SPATIAL {
            let (b, e) = padding[a];
            if input[a]
                .checked_add(b)
                .and_then(|v| v.checked_add(e))
                .is_none()
            {
                return Err(invalid(
                    "padding",
                    (b, e),
                    format!(
                        "too large: the padded x would be longer than {} along convolved axis {}",
                        usize::MAX,
                        a - (SPATIAL - rank)
                    ),
                ));
            }
        }
        let spec = ConvSpec {
            rank,
            batch,
            groups,
            in_channels,
            out_channels,
            input,
            kernel,
            stride,
            dilation,
            padding,
            pad_mode: opts.pad_mode,
            cval: opts.cval,
            op: opts.op,
            layout,
            x_shape: x_shape.to_vec(),
            k_shape: k_shape.to_vec(),
        };
        for a in SPATIAL - rank..SPATIAL {
            let padded = spec.padded_len(a);
            let fe = extent(kernel[a], dilation[a]);
            if fe > padded {
                return Err(Error::KernelTooLarge {
                    axis: a - (SPATIAL - rank),
                    kernel_extent: fe,
                    padded_len: padded,
                });
            }
        }
        // The output, and the padded copy of one image that some methods make, must be
        // addressable in the widest element computed with (16 bytes: i128, complex128).
        // Whether the memory can be had is found when it is allocated (`Plan::execute`).
        const WIDEST: usize = 16;
        let addressable = |dims: &[usize]| {
            dims.iter()
                .try_fold(1usize, |a, &n| a.checked_mul(n))
                .is_some_and(|n| n <= isize::MAX as usize / WIDEST)
        };
        let out_shape = spec.out_shape();
        let mut out_dims = out_shape.clone();
        if matches!(spec.layout, Layout::Signal { .. }) {
            out_dims.extend([spec.batch, spec.out_channels]);
        }
        if !addressable(&out_dims) {
            return Err(too_large(
                "output",
                &out_shape,
                WIDEST,
                "more than memory can address",
            ));
        }
        let padded_image = spec.padded_image_shape();
        if !addressable(&padded_image) {
            return Err(too_large(
                "padded copy of the input",
                &padded_image,
                WIDEST,
                "more than memory can address",
            ));
        }
        Ok(spec)
    }

    /// `n + before + after` along canonical axis `a`.
    #[inline]
    pub fn padded_len(&self, a: usize) -> usize {
        self.input[a] + self.padding[a].0 + self.padding[a].1
    }

    /// One image of the padded input in canonical order: (1, channels, depth, height, width).
    pub(crate) fn padded_image_shape(&self) -> Vec<usize> {
        let mut shape = vec![1, self.in_channels];
        shape.extend((0..SPATIAL).map(|a| self.padded_len(a)));
        shape
    }

    /// Canonical output spatial lengths.
    pub fn out_spatial(&self) -> [usize; SPATIAL] {
        std::array::from_fn(|a| {
            (self.padded_len(a) - extent(self.kernel[a], self.dilation[a])) / self.stride[a] + 1
        })
    }

    /// True when some axis is padded.
    pub fn is_padded(&self) -> bool {
        self.padding.iter().any(|&(b, e)| b > 0 || e > 0)
    }

    /// Output shape as the user sees it (in the user's layout).
    pub fn out_shape(&self) -> Vec<usize> {
        let sp = &self.out_spatial()[SPATIAL - self.rank..];
        match &self.layout {
            Layout::Signal { .. } => sp.to_vec(),
            Layout::Batched {
                channels_last: false,
            } => {
                let mut v = vec![self.batch, self.out_channels];
                v.extend_from_slice(sp);
                v
            }
            Layout::Batched {
                channels_last: true,
            } => {
                let mut v = vec![self.batch];
                v.extend_from_slice(sp);
                v.push(self.out_channels);
                v
            }
        }
    }

    /// Number of multiply-adds the direct definition needs.
    pub fn macs(&self) -> f64 {
        let out: usize = self.out_spatial().iter().product();
        let taps: usize = self.kernel.iter().product();
        self.batch as f64
            * self.out_channels as f64
            * (self.in_channels / self.groups) as f64
            * out as f64
            * taps as f64
    }

    /// Number of kernel taps per output summed over channels (the reduction length).
    pub fn reduction_len(&self) -> usize {
        self.kernel.iter().product::<usize>() * (self.in_channels / self.groups)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn np_pad_index(mode: PadMode, n: usize, before: usize, len: usize) -> Vec<Option<usize>> {
        (0..len).map(|i| mode.source_index(i, before, n)).collect()
    }

    #[test]
    fn pad_indices_match_numpy_examples() {
        // np.pad(np.arange(3), 4, mode)
        let some = |v: &[usize]| v.iter().map(|&i| Some(i)).collect::<Vec<_>>();
        assert_eq!(
            np_pad_index(PadMode::Reflect, 3, 4, 11),
            some(&[0, 1, 2, 1, 0, 1, 2, 1, 0, 1, 2])
        );
        assert_eq!(
            np_pad_index(PadMode::Symmetric, 3, 4, 11),
            some(&[2, 2, 1, 0, 0, 1, 2, 2, 1, 0, 0])
        );
        assert_eq!(
            np_pad_index(PadMode::Wrap, 3, 4, 11),
            some(&[2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
        );
        assert_eq!(
            np_pad_index(PadMode::Edge, 3, 4, 11),
            some(&[0, 0, 0, 0, 0, 1, 2, 2, 2, 2, 2])
        );
    }

    #[test]
    fn same_padding_centres_even_kernels_like_scipy() {
        let layout = Layout::Signal {
            channel_axis: None,
            kernel_broadcast: false,
        };
        let opts = Options {
            padding: Padding::Same,
            ..Options::default()
        };
        let spec = ConvSpec::new(&[10], &[4], layout, &opts).unwrap();
        assert_eq!(spec.padding[2], (2, 1));
        assert_eq!(spec.out_shape(), vec![10]);
    }

    #[test]
    fn bad_requests_are_rejected() {
        let layout = Layout::Signal {
            channel_axis: None,
            kernel_broadcast: false,
        };
        let e = ConvSpec::new(&[7, 7], &[3, 3], layout.clone(), &Options::strided(0)).unwrap_err();
        assert!(matches!(e, Error::InvalidValue { arg: "stride", .. }));
        let e = ConvSpec::new(&[2, 7], &[3, 3], layout.clone(), &Options::default()).unwrap_err();
        assert!(matches!(
            e,
            Error::KernelTooLarge {
                axis: 0,
                kernel_extent: 3,
                padded_len: 2
            }
        ));
        let e = ConvSpec::new(&[7, 7], &[3], layout, &Options::default()).unwrap_err();
        assert!(matches!(e, Error::Shape { arg: "k", .. }));
    }
}
