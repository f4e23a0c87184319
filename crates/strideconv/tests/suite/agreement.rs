//! Every method against an independent reference, over random problems.
//!
//! The reference here works on the user's arrays directly (its own padding loop, its own
//! index arithmetic per layout), so it checks the library's canonical views, padding, kernel
//! flips, conjugation, groups and channel handling, not only the methods' inner loops.

use ndarray::{ArrayD, ArrayViewD, Axis, Dimension, IxDyn, Slice};
use num_complex::Complex64;
use proptest::prelude::*;
use strideconv::{
    compute, ConvSpec, Element, Layout, Method, Op, Options, PadMode, Padding, Run, Scalar,
};

// Cases are derived from one seed proptest draws.
use crate::common::Rng;

#[derive(Debug, Clone)]
struct Case {
    layout: Layout,
    x_shape: Vec<usize>,
    k_shape: Vec<usize>,
    opts: Options,
    /// View x through a reversed axis / a step-2 slice of a larger array.
    reverse_axis: Option<usize>,
    step_two: bool,
}

fn random_case(rng: &mut Rng, long_rows: bool) -> Case {
    let rank = if long_rows {
        rng.range(1, 2)
    } else {
        rng.range(1, 3)
    };
    let batched = rng.below(3) == 0;
    let small = |rng: &mut Rng| {
        if rank == 3 {
            rng.range(1, 7)
        } else {
            rng.range(1, 13)
        }
    };
    let mut n: Vec<usize> = (0..rank).map(|_| small(rng)).collect();
    if long_rows {
        // Rows longer than the kernels' register chunks, so chunk tails are exercised.
        n[rank - 1] = rng.range(100, 700);
    }
    let stride: Vec<usize> = (0..rank).map(|_| rng.range(1, 5)).collect();
    let dilation: Vec<usize> = (0..rank)
        .map(|_| {
            if rng.below(3) == 0 {
                rng.range(2, 3)
            } else {
                1
            }
        })
        .collect();
    let pad_mode = [
        PadMode::Constant,
        PadMode::Reflect,
        PadMode::Symmetric,
        PadMode::Edge,
        PadMode::Wrap,
    ][rng.below(5)];
    let mut pads: Vec<(usize, usize)> = (0..rank)
        .map(|_| (rng.range(0, 3), rng.range(0, 3)))
        .collect();
    if pad_mode == PadMode::Reflect {
        // numpy cannot reflect-pad a length-1 axis by a positive amount? It can: it repeats the
        // value. Keep it, the reference does the same.
    }
    if rng.below(4) == 0 {
        pads.iter_mut().for_each(|p| *p = (0, 0));
    }
    // Kernel no longer than the padded input (dilated), sometimes exactly as long.
    let f: Vec<usize> = (0..rank)
        .map(|a| {
            let padded = n[a] + pads[a].0 + pads[a].1;
            let max_f = (padded - 1) / dilation[a] + 1;
            if rng.below(5) == 0 {
                max_f
            } else {
                rng.range(1, max_f.min(if long_rows { 40 } else { 5 }))
            }
        })
        .collect();
    let opts = Options {
        op: if rng.below(2) == 0 {
            Op::Correlate
        } else {
            Op::Convolve
        },
        stride,
        dilation,
        padding: Padding::Explicit(pads),
        pad_mode,
        cval: rng.value() as f64,
        groups: 1,
    };
    let (layout, x_shape, k_shape, opts) = if batched {
        let groups = rng.range(1, 2);
        let cin = groups * rng.range(1, 2);
        let cout = groups * rng.range(1, 3);
        let batch = rng.range(1, 2);
        let channels_last = rng.below(2) == 0;
        let xs = crate::common::batched_shape(batch, cin, &n, channels_last);
        let mut ks = vec![cout, cin / groups];
        ks.extend(&f);
        (
            Layout::Batched { channels_last },
            xs,
            ks,
            Options {
                groups,
                op: Op::Correlate,
                ..opts
            },
        )
    } else if rng.below(3) == 0 {
        let c = rng.range(1, 3);
        let ca = rng.below(rank + 1);
        let broadcast = rng.below(2) == 0;
        let mut xs = n.clone();
        xs.insert(ca, c);
        let ks = if broadcast {
            f.clone()
        } else {
            let mut ks = f.clone();
            ks.insert(ca, c);
            ks
        };
        (
            Layout::Signal {
                channel_axis: Some(ca),
                kernel_broadcast: broadcast,
            },
            xs,
            ks,
            opts,
        )
    } else {
        (
            Layout::Signal {
                channel_axis: None,
                kernel_broadcast: false,
            },
            n.clone(),
            f.clone(),
            opts,
        )
    };
    let reverse_axis = (rng.below(3) == 0).then(|| rng.below(x_shape.len()));
    Case {
        layout,
        x_shape,
        k_shape,
        opts,
        reverse_axis,
        step_two: rng.below(3) == 0,
    }
}

/// Index of spatial axis `a` (0-based among convolved axes) in x, for each layout.
fn spatial_axes(case: &Case, rank: usize) -> Vec<usize> {
    match &case.layout {
        Layout::Signal {
            channel_axis: None, ..
        } => (0..rank).collect(),
        Layout::Signal {
            channel_axis: Some(ca),
            ..
        } => (0..rank + 1).filter(|a| a != ca).collect(),
        Layout::Batched {
            channels_last: false,
        } => (2..rank + 2).collect(),
        Layout::Batched {
            channels_last: true,
        } => (1..rank + 1).collect(),
    }
}

/// The definition, written out on the user's layout.
fn reference<T: Scalar>(case: &Case, x: &ArrayD<T>, k: &ArrayD<T>) -> ArrayD<T> {
    let spec = ConvSpec::new(
        &case.x_shape,
        &case.k_shape,
        case.layout.clone(),
        &case.opts,
    )
    .unwrap();
    let rank = spec.rank;
    let axes = spatial_axes(case, rank);
    let pads = match &case.opts.padding {
        Padding::Explicit(p) => p.clone(),
        _ => unreachable!(),
    };
    let out_shape = spec.out_shape();
    let stride = if case.opts.stride.len() == 1 {
        vec![case.opts.stride[0]; rank]
    } else {
        case.opts.stride.clone()
    };
    let dil = if case.opts.dilation.len() == 1 {
        vec![case.opts.dilation[0]; rank]
    } else {
        case.opts.dilation.clone()
    };
    let ks: Vec<usize> = match &case.layout {
        Layout::Batched { .. } => case.k_shape[2..].to_vec(),
        Layout::Signal {
            channel_axis: Some(ca),
            kernel_broadcast: false,
        } => case
            .k_shape
            .iter()
            .enumerate()
            .filter(|(i, _)| i != ca)
            .map(|(_, &v)| v)
            .collect(),
        _ => case.k_shape.clone(),
    };
    let flip = case.opts.op == Op::Convolve;
    let conj = case.opts.op == Op::Correlate
        && T::KIND == strideconv::Kind::Complex
        && matches!(case.layout, Layout::Signal { .. });
    let cval = T::from_f64(case.opts.cval);
    // x value at padded spatial position p (per convolved axis), fixed other indices.
    let xval = |idx: &mut Vec<usize>, p: &[usize]| -> T {
        for a in 0..rank {
            let n = x.shape()[axes[a]];
            match case.opts.pad_mode.source_index(p[a], pads[a].0, n) {
                Some(i) => idx[axes[a]] = i,
                None => return cval,
            }
        }
        x[IxDyn(idx)]
    };
    let taps: Vec<Vec<usize>> = {
        let mut v = vec![vec![]];
        for &f in &ks {
            v = v
                .into_iter()
                .flat_map(|t| (0..f).map(move |i| [t.clone(), vec![i]].concat()))
                .collect();
        }
        v
    };
    let kval = |ch: &[usize], t: &[usize]| -> T {
        let t: Vec<usize> = if flip {
            t.iter().zip(&ks).map(|(&i, &f)| f - 1 - i).collect()
        } else {
            t.to_vec()
        };
        let mut idx = Vec::new();
        match &case.layout {
            Layout::Batched { .. } => {
                idx.extend_from_slice(ch);
                idx.extend(&t);
            }
            Layout::Signal {
                channel_axis: Some(ca),
                kernel_broadcast: false,
            } => {
                idx.extend(&t);
                idx.insert(*ca, ch[0]);
            }
            _ => idx.extend(&t),
        }
        let v = k[IxDyn(&idx)];
        if conj {
            v.conj()
        } else {
            v
        }
    };
    ArrayD::from_shape_fn(IxDyn(&out_shape), |o| {
        let o = o.slice().to_vec();
        let (out_sp, fixed): (Vec<usize>, Vec<(usize, usize)>) = match &case.layout {
            Layout::Signal { .. } => (o.clone(), vec![]),
            Layout::Batched {
                channels_last: false,
            } => (o[2..].to_vec(), vec![(0, o[0]), (1, o[1])]),
            Layout::Batched {
                channels_last: true,
            } => (
                o[1..=rank].to_vec(),
                vec![(0, o[0]), (rank + 1, o[rank + 1])],
            ),
        };
        let mut acc = T::zero();
        let mut idx = vec![0usize; x.ndim()];
        let (chans, cout_of): (Vec<usize>, Option<(usize, usize)>) = match &case.layout {
            Layout::Signal {
                channel_axis: Some(ca),
                ..
            } => ((0..x.shape()[*ca]).collect(), None),
            Layout::Signal { .. } => (vec![0], None),
            Layout::Batched { channels_last } => {
                let cin = x.shape()[if *channels_last { rank + 1 } else { 1 }];
                let g = case.opts.groups;
                let cout = fixed[1].1;
                let per_in = cin / g;
                let per_out = spec.out_channels / g;
                let grp = cout / per_out;
                (
                    (grp * per_in..(grp + 1) * per_in).collect(),
                    Some((cout, grp * per_in)),
                )
            }
        };
        for &c in &chans {
            for t in &taps {
                let p: Vec<usize> = (0..rank)
                    .map(|a| out_sp[a] * stride[a] + t[a] * dil[a])
                    .collect();
                match &case.layout {
                    Layout::Signal {
                        channel_axis: Some(ca),
                        ..
                    } => idx[*ca] = c,
                    Layout::Batched { channels_last } => {
                        idx[0] = fixed[0].1;
                        idx[if *channels_last { rank + 1 } else { 1 }] = c;
                    }
                    _ => {}
                }
                let xv = xval(&mut idx, &p);
                let kv = match cout_of {
                    Some((co, c0)) => kval(&[co, c - c0], t),
                    None => kval(&[c], t),
                };
                acc += xv * kv;
            }
        }
        acc
    })
}

/// A random backing array for `shape`: twice as long per axis when the case views it with
/// step 2.
fn backing<T: Copy>(
    case: &Case,
    shape: &[usize],
    rng: &mut Rng,
    conv: impl Fn(i64, i64) -> T,
) -> ArrayD<T> {
    let big: Vec<usize> = shape
        .iter()
        .map(|&n| if case.step_two { 2 * n } else { n })
        .collect();
    ArrayD::from_shape_simple_fn(IxDyn(&big), || conv(rng.value(), rng.value()))
}

/// The view the library is given: every other element, and one axis reversed, as the case
/// asks (so strides are non-unit and negative).
fn strided_view<'a, T>(case: &Case, b: &'a ArrayD<T>) -> ArrayViewD<'a, T> {
    let mut v = b.view();
    if case.step_two {
        for a in 0..v.ndim() {
            v.slice_axis_inplace(Axis(a), Slice::new(1, None, 2));
        }
    }
    if let Some(a) = case.reverse_axis.filter(|&a| a < v.ndim()) {
        v.invert_axis(Axis(a));
    }
    v
}

fn check_all<E: Element, W: Scalar + Into<Complex64Like>>(
    case: &Case,
    x: ArrayViewD<'_, E>,
    k: ArrayViewD<'_, E>,
    want: &ArrayD<W>,
    tol: f64,
) where
    E::Output: Into<Complex64Like>,
{
    for m in Method::ALL {
        for threads in [Some(1), Some(2)] {
            let got = compute(
                x.clone(),
                k.clone(),
                case.layout.clone(),
                &case.opts,
                Run { method: m, threads },
            );
            let got = match got {
                Ok(g) => g,
                Err(strideconv::Error::MethodRefused { .. }) => continue,
                Err(e) => panic!("{m}: unexpected error {e} for {case:?}"),
            };
            assert_eq!(got.shape(), want.shape(), "{m}: shape for {case:?}");
            for (g, w) in got.iter().zip(want.iter()) {
                let g: Complex64Like = (*g).into();
                let w: Complex64Like = (*w).into();
                assert!(
                    g.dist(&w) <= tol,
                    "{m} (threads {threads:?}): {g:?} vs {w:?} for {case:?}"
                );
            }
        }
    }
}

/// Results of any type compared as complex numbers in f64 (integers exactly).
#[derive(Clone, Copy, Debug)]
struct Complex64Like(f64, f64, Option<i128>);
impl Complex64Like {
    fn dist(&self, o: &Self) -> f64 {
        match (self.2, o.2) {
            (Some(a), Some(b)) => {
                if a == b {
                    0.0
                } else {
                    f64::INFINITY
                }
            }
            _ => (self.0 - o.0).hypot(self.1 - o.1),
        }
    }
}
impl From<f64> for Complex64Like {
    fn from(v: f64) -> Self {
        Complex64Like(v, 0.0, None)
    }
}
impl From<f32> for Complex64Like {
    fn from(v: f32) -> Self {
        Complex64Like(v as f64, 0.0, None)
    }
}
impl From<i64> for Complex64Like {
    fn from(v: i64) -> Self {
        Complex64Like(v as f64, 0.0, Some(v as i128))
    }
}
impl From<i128> for Complex64Like {
    fn from(v: i128) -> Self {
        Complex64Like(v as f64, 0.0, Some(v))
    }
}
impl From<Complex64> for Complex64Like {
    fn from(v: Complex64) -> Self {
        Complex64Like(v.re, v.im, None)
    }
}

fn run_case(seed: u64, long_rows: bool) {
    let mut rng = Rng(seed);
    let case = random_case(&mut rng, long_rows);
    let spec = ConvSpec::new(
        &case.x_shape,
        &case.k_shape,
        case.layout.clone(),
        &case.opts,
    )
    .unwrap();
    let red = spec.reduction_len() as f64;
    macro_rules! check {
        ($xconv:expr, $kconv:expr, $to_ref:expr, $tol:expr) => {{
            let bx = backing(&case, &case.x_shape, &mut rng, $xconv);
            let bk = backing(&case, &case.k_shape, &mut rng, $kconv);
            let (x, k) = (strided_view(&case, &bx), strided_view(&case, &bk));
            let want = reference(&case, &x.mapv($to_ref), &k.mapv($to_ref));
            check_all(&case, x, k, &want, $tol);
        }};
    }
    match rng.below(4) {
        0 => check!(|a, _| a, |a, _| a, |v: i64| v as i128, 0.0),
        1 => check!(
            |a, _| a as f64 / 3.0,
            |a, _| a as f64 / 7.0,
            |v: f64| v,
            1e-11 * red * 30.0
        ),
        2 => check!(
            |a, _| a as f32 / 3.0,
            |a, _| a as f32 / 7.0,
            |v: f32| v as f64,
            2e-5 * red * 30.0
        ),
        _ => check!(
            |a, b| Complex64::new(a as f64, b as f64),
            |a, b| Complex64::new(a as f64 / 2.0, b as f64),
            |v: Complex64| v,
            1e-10 * red * 100.0
        ),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]
    #[test]
    fn every_method_matches_the_reference(seed in any::<u64>()) {
        run_case(seed, false);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 60, ..ProptestConfig::default() })]
    #[test]
    fn every_method_matches_the_reference_on_long_rows(seed in any::<u64>()) {
        run_case(seed, true);
    }
}

#[test]
fn the_reference_itself_on_the_seed() {
    let x = ndarray::array![
        [2i64, 3, 7, 4, 6, 2, 9],
        [6, 6, 9, 8, 7, 4, 3],
        [3, 4, 8, 3, 8, 9, 7],
        [7, 8, 3, 6, 6, 3, 4],
        [4, 2, 1, 8, 3, 4, 6],
        [3, 2, 4, 1, 9, 8, 3],
        [0, 1, 3, 9, 2, 1, 4]
    ];
    let k = ndarray::array![[3i64, 4, 4], [1, 0, 2], [-1, 0, 3]];
    let case = Case {
        layout: Layout::Signal {
            channel_axis: None,
            kernel_broadcast: false,
        },
        x_shape: vec![7, 7],
        k_shape: vec![3, 3],
        opts: Options {
            padding: Padding::Explicit(vec![(0, 0), (0, 0)]),
            ..Options::strided(2)
        },
        reverse_axis: None,
        step_two: false,
    };
    let want = reference(
        &case,
        &x.mapv(|v| v as i128).into_dyn(),
        &k.mapv(|v| v as i128).into_dyn(),
    );
    assert_eq!(
        want,
        ndarray::array![[91i128, 100, 88], [69, 91, 117], [44, 72, 74]].into_dyn()
    );
}
