//! `direct` on depthwise problems reads the unpadded input plane by plane
//! (method/depthwise.rs): padded rows through the pad mode's row map, edge columns one sum
//! at a time, the last rows of a block copied so the row kernel may read past a row's end.
//! Every case here is checked against the naive method on the same problem.

use ndarray::{s, ArrayD, Axis, IxDyn};
use num_complex::Complex64;
use strideconv::{compute, Element, Layout, Method, Op, Options, PadMode, Padding, Run};

use crate::common::Rng;

fn run(method: Method, threads: usize) -> Run {
    Run {
        method,
        threads: Some(threads),
    }
}

const MODES: [PadMode; 5] = [
    PadMode::Constant,
    PadMode::Reflect,
    PadMode::Symmetric,
    PadMode::Edge,
    PadMode::Wrap,
];

/// One random depthwise problem: (input shape, kernel shape, layout, options).
fn problem(rng: &mut Rng) -> (Vec<usize>, Vec<usize>, Layout, Options) {
    let rank = rng.range(1, 2);
    let (batch, c) = (rng.range(1, 3), rng.range(2, 12));
    let n: Vec<usize> = (0..rank).map(|_| rng.range(1, 40)).collect();
    let f: Vec<usize> = (0..rank).map(|_| rng.range(1, 7)).collect();
    let stride: Vec<usize> = (0..rank).map(|_| rng.range(1, 4)).collect();
    let dilation: Vec<usize> = (0..rank)
        .map(|_| {
            if rng.range(0, 3) == 0 {
                rng.range(2, 3)
            } else {
                1
            }
        })
        .collect();
    let mode = MODES[rng.range(0, 4)];
    // Reflect needs pads shorter than the axis; the others take any.
    let pads: Vec<(usize, usize)> = n
        .iter()
        .map(|&len| {
            let most = if mode == PadMode::Reflect { len - 1 } else { 6 };
            (rng.range(0, most.min(6)), rng.range(0, most.min(6)))
        })
        .collect();
    let channels_last = rng.range(0, 1) == 0;
    let xs = crate::common::batched_shape(batch, c, &n, channels_last);
    let mut ks = vec![c, 1];
    ks.extend(&f);
    let opts = Options {
        op: if rng.range(0, 1) == 0 {
            Op::Correlate
        } else {
            Op::Convolve
        },
        stride,
        dilation,
        padding: Padding::Explicit(pads),
        pad_mode: mode,
        cval: (rng.unit() * 4.0).round() / 2.0,
        groups: c,
    };
    (xs, ks, Layout::Batched { channels_last }, opts)
}

/// Largest difference between direct (1 and 2 threads) and naive, relative to the largest
/// naive magnitude; `None` when the problem is refused (no outputs).
fn compare<E, F>(x: ArrayD<E>, k: ArrayD<E>, layout: &Layout, opts: &Options, mag: F) -> Option<f64>
where
    E: Element,
    F: Fn(&E::Output) -> f64 + Copy,
    E::Output: std::ops::Sub<Output = E::Output> + Copy,
{
    let want = compute(
        x.view(),
        k.view(),
        layout.clone(),
        opts,
        run(Method::Naive, 1),
    )
    .ok()?;
    let scale = want.iter().map(mag).fold(1.0, f64::max);
    let mut worst: f64 = 0.0;
    for threads in [1, 2] {
        let got = compute(
            x.view(),
            k.view(),
            layout.clone(),
            opts,
            run(Method::Direct, threads),
        )
        .expect("direct solves what naive solves");
        assert_eq!(got.shape(), want.shape());
        let off = got
            .iter()
            .zip(want.iter())
            .map(|(&a, &b)| mag(&(a - b)))
            .fold(0.0, f64::max);
        worst = worst.max(off / scale);
    }
    Some(worst)
}

fn random<T>(shape: &[usize], rng: &mut Rng, f: impl Fn(f64, f64) -> T) -> ArrayD<T> {
    ArrayD::from_shape_simple_fn(IxDyn(shape), || f(rng.unit(), rng.unit()))
}

#[test]
fn depthwise_direct_matches_naive_on_random_problems() {
    let mut rng = Rng(2026);
    let mut solved = 0;
    for case in 0..400 {
        let (xs, ks, layout, opts) = problem(&mut rng);
        let off = match case % 3 {
            0 => {
                let (x, k) = (
                    random(&xs, &mut rng, |a, _| a),
                    random(&ks, &mut rng, |a, _| a),
                );
                compare::<f64, _>(x, k, &layout, &opts, |v: &f64| v.abs())
            }
            1 => {
                let x = random(&xs, &mut rng, |a, _| a as f32);
                let k = random(&ks, &mut rng, |a, _| a as f32);
                compare::<f32, _>(x, k, &layout, &opts, |v: &f32| v.abs() as f64)
            }
            _ => {
                let x = random(&xs, &mut rng, Complex64::new);
                let k = random(&ks, &mut rng, Complex64::new);
                compare::<Complex64, _>(x, k, &layout, &opts, |v: &Complex64| v.norm())
            }
        };
        let Some(off) = off else { continue };
        solved += 1;
        let tol = if case % 3 == 1 { 1e-5 } else { 1e-12 };
        assert!(
            off < tol,
            "case {case}: x {xs:?} k {ks:?} {layout:?} {opts:?}: off by {off}"
        );
    }
    assert!(solved > 300, "only {solved} of 400 problems had outputs");
}

#[test]
fn depthwise_direct_reads_any_input_layout() {
    // Planes that are not in standard order: a strided view (every other row and column),
    // and negative strides (reversed rows).
    let mut rng = Rng(7);
    let x = random(&[2, 6, 30, 34], &mut rng, |a, _| a);
    let k = random(&[6, 1, 3, 3], &mut rng, |a, _| a);
    let opts = Options {
        stride: vec![2],
        padding: Padding::Uniform(1, 1),
        groups: 6,
        ..Options::default()
    };
    let layout = Layout::Batched {
        channels_last: false,
    };
    let mut reversed = x.clone();
    reversed.invert_axis(Axis(2));
    for view in [x.slice(s![.., .., ..;2, ..;2]).into_dyn(), reversed.view()] {
        let want = compute(
            view.clone(),
            k.view(),
            layout.clone(),
            &opts,
            run(Method::Naive, 1),
        )
        .unwrap();
        for threads in [1, 2] {
            let got = compute(
                view.clone(),
                k.view(),
                layout.clone(),
                &opts,
                run(Method::Direct, threads),
            )
            .unwrap();
            let off = got
                .iter()
                .zip(want.iter())
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            assert!(
                off < 1e-12,
                "{:?} on {threads} threads: off by {off}",
                view.strides()
            );
        }
    }
}

#[test]
fn depthwise_direct_on_planes_smaller_than_a_vector_block() {
    // 1×1 to 3×3 planes: every row is shorter than one kernel block's reads, so the rows
    // near the end of the block are copied (the plane is a few elements of a large block).
    let mut rng = Rng(11);
    for (hw, f, pad, stride) in [
        (1, 1, 0, 1),
        (2, 3, 1, 1),
        (3, 3, 1, 2),
        (3, 2, 2, 1),
        (1, 5, 2, 3),
    ] {
        let x = random(&[3, 40, hw, hw], &mut rng, |a, _| a as f32);
        let k = random(&[40, 1, f, f], &mut rng, |a, _| a as f32);
        let opts = Options {
            stride: vec![stride],
            padding: Padding::Uniform(pad, pad),
            groups: 40,
            ..Options::default()
        };
        let layout = Layout::Batched {
            channels_last: false,
        };
        let off = compare::<f32, _>(x, k, &layout, &opts, |v: &f32| v.abs() as f64)
            .expect("these problems have outputs");
        assert!(off < 1e-5, "{hw}² plane, {f}×{f} kernel: off by {off}");
    }
}

#[test]
fn depthwise_constant_padding_on_every_row_width() {
    // Constant padding takes the masked AVX-512 kernel where the CPU has it (float32 and
    // float64, column stride 1 or 2): rows of 1 to 70 columns span zero to five vector
    // blocks and every partial block, and a non-zero constant tests the masked lanes' fill.
    let mut rng = Rng(31);
    for w in (1..=70).step_by(3) {
        for (f, stride, dil) in [
            (3, 2, 1),
            (3, 1, 1),
            (5, 1, 1),
            (5, 2, 1),
            (2, 2, 1),
            (5, 2, 2),
            (4, 1, 1),
            (1, 2, 1),
        ] {
            let h = rng.range(1, 20);
            let pad = rng.range(0, 3);
            let cval = if w % 2 == 0 { 0.0 } else { 1.5 };
            let opts = Options {
                stride: vec![stride],
                dilation: vec![dil],
                padding: Padding::Uniform(pad, pad),
                cval,
                groups: 5,
                ..Options::default()
            };
            let layout = Layout::Batched {
                channels_last: false,
            };
            let xs = [2, 5, h, w];
            let off32 = compare::<f32, _>(
                random(&xs, &mut rng, |a, _| a as f32),
                random(&[5, 1, f, f], &mut rng, |a, _| a as f32),
                &layout,
                &opts,
                |v: &f32| v.abs() as f64,
            );
            let off64 = compare::<f64, _>(
                random(&xs, &mut rng, |a, _| a),
                random(&[5, 1, f, f], &mut rng, |a, _| a),
                &layout,
                &opts,
                |v: &f64| v.abs(),
            );
            for (off, tol) in [(off32, 1e-5), (off64, 1e-12)] {
                if let Some(off) = off {
                    assert!(
                        off < tol,
                        "{h}×{w}, {f}×{f}/{stride} dil {dil} pad {pad}: off by {off}"
                    );
                }
            }
        }
    }
}
