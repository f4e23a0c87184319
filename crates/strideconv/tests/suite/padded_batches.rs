//! Problems cut into pieces that must add up: padded inputs of large batches are padded a few
//! images at a time (plan.rs), depthwise problems are cut into runs of whole channels
//! (method/mod.rs), and few outputs with long sums split the sum across threads (direct.rs).

use ndarray::{s, ArrayD, Axis};
use strideconv::{compute, Layout, Method, Options, PadMode, Padding};

use crate::common::{on, worst};

/// Values in [-1, 1) from `seed`, in float32.
fn data(shape: &[usize], seed: u64) -> ArrayD<f32> {
    crate::common::values(shape, seed).mapv(|v| v as f32)
}

#[test]
fn batches_padded_in_pieces_match_image_by_image() {
    // Each padded image is about 5.9 MB, so a batch of 3 is padded one image at a time.
    let (n, c, hw) = (3, 1, 1210);
    let x = data(&[n, c, hw, hw], 7);
    let k = data(&[2, c, 3, 3], 11);
    let batched = Layout::Batched {
        channels_last: false,
    };
    for (mode, method) in [
        (PadMode::Constant, Method::Direct),
        (PadMode::Reflect, Method::Im2col),
        (PadMode::Wrap, Method::Auto),
    ] {
        let opts = Options {
            stride: vec![2],
            padding: Padding::Uniform(2, 1),
            pad_mode: mode,
            cval: 0.5,
            ..Options::default()
        };
        let whole = compute(x.view(), k.view(), batched.clone(), &opts, on(method, 2)).unwrap();
        for b in 0..n {
            let one = x.slice(s![b..b + 1, .., .., ..]).into_dyn();
            let alone = compute(one, k.view(), batched.clone(), &opts, on(Method::Naive, 1));
            let got = whole.index_axis(Axis(0), b).to_owned();
            let want = alone.unwrap().index_axis_move(Axis(0), 0);
            let off = worst(&got.into_dyn(), &want.into_dyn());
            assert!(off < 1e-4, "{mode:?} {method}: image {b} off by {off}");
        }
    }
}

#[test]
fn depthwise_blocks_match_the_naive_loop() {
    // groups == channels, so drive hands whole runs of channels to each block.
    for (channels_last, stride, hw) in [(false, 2, 19), (true, 1, 12), (false, 3, 40)] {
        let (n, c) = (2, 16);
        let xs = if channels_last {
            [n, hw, hw, c]
        } else {
            [n, c, hw, hw]
        };
        let x = data(&xs, 3);
        let k = data(&[c, 1, 3, 3], 5);
        let opts = Options {
            stride: vec![stride],
            padding: Padding::Uniform(1, 1),
            groups: c,
            ..Options::default()
        };
        let layout = Layout::Batched { channels_last };
        let solve = |run| compute(x.view(), k.view(), layout.clone(), &opts, run).unwrap();
        let want = solve(on(Method::Naive, 1));
        for method in [
            Method::Direct,
            Method::Im2col,
            Method::ShiftAdd,
            Method::Auto,
        ] {
            for threads in [1, 2] {
                let off = worst(&solve(on(method, threads)), &want);
                assert!(off < 1e-5, "{method} on {threads} threads: off by {off}");
            }
        }
    }
}

#[test]
fn few_outputs_with_long_sums_are_summed_across_threads() {
    // A kernel nearly as large as the input: direct cuts the sum over kernel rows among the
    // threads and adds the partial outputs (method/direct.rs).
    let cases = [
        (vec![700, 700], vec![690, 690], None),
        (vec![300, 300, 3], vec![280, 280, 3], Some(2)),
    ];
    for (xs, ks, channel_axis) in cases {
        let x = data(&xs, 21).mapv(f64::from);
        let k = data(&ks, 23).mapv(f64::from);
        // One output row, so the whole problem is one block that may use both threads.
        let opts = Options {
            stride: vec![40, 3],
            ..Options::default()
        };
        let layout = Layout::Signal {
            channel_axis,
            kernel_broadcast: false,
        };
        let solve = |run| compute(x.view(), k.view(), layout.clone(), &opts, run).unwrap();
        let off = worst(&solve(on(Method::Direct, 2)), &solve(on(Method::Naive, 1)));
        assert!(off < 1e-8, "{xs:?} * {ks:?}: off by {off}");
    }
}

#[test]
fn fft_transforms_spread_over_threads_add_up() {
    // Enough (phase, channel) transforms for every thread: each thread adds its own spectra,
    // summed at the end (method/fft.rs).
    let cases = [
        (
            vec![100, 100, 3],
            vec![31, 31, 3],
            Layout::Signal {
                channel_axis: Some(2),
                kernel_broadcast: false,
            },
        ),
        (
            vec![2, 2, 60, 60],
            vec![3, 2, 25, 25],
            Layout::Batched {
                channels_last: false,
            },
        ),
    ];
    for (xs, ks, layout) in cases {
        let x = data(&xs, 31).mapv(f64::from);
        let k = data(&ks, 37).mapv(f64::from);
        let opts = Options {
            stride: vec![2],
            ..Options::default()
        };
        let solve = |run| compute(x.view(), k.view(), layout.clone(), &opts, run).unwrap();
        let want = solve(on(Method::Naive, 1));
        for method in [Method::Fft, Method::FftFull] {
            let off = worst(&solve(on(method, 2)), &want);
            assert!(off < 1e-9, "{method} {xs:?} * {ks:?}: off by {off}");
        }
    }
}

#[test]
fn direct_buffers_kept_between_calls_do_not_leak_into_results() {
    // Each thread keeps direct's row buffers from one call to the next (method/direct.rs):
    // a large problem leaves a long buffer of its values behind, the smaller ones after it
    // must read only their own.
    let layout = Layout::Signal {
        channel_axis: None,
        kernel_broadcast: false,
    };
    for (i, (n, f, s)) in [(300, 9, 2), (40, 3, 1), (97, 5, 3), (300, 4, 2), (23, 7, 2)]
        .into_iter()
        .enumerate()
    {
        let x = data(&[n, n + 3], 20 + i as u64);
        let k = data(&[f, f], 40 + i as u64);
        let opts = Options::strided(s);
        let solve = |run| compute(x.view(), k.view(), layout.clone(), &opts, run).unwrap();
        let want = solve(on(Method::Naive, 1));
        for _ in 0..2 {
            let off = worst(&solve(on(Method::Direct, 1)), &want);
            assert!(off < 1e-4, "{n}² {f}×{f}/{s}: off by {off}");
        }
    }
}

#[test]
fn fft_plans_transform_every_new_kernel() {
    // An FFT plan remembers the spectra of the last kernel it saw (method/fft.rs). Another
    // kernel of the same shape, the first one again, and groups whose kernels alternate
    // within one call must each be transformed anew.
    use strideconv::{ConvSpec, Plan};
    let layout = Layout::Signal {
        channel_axis: None,
        kernel_broadcast: false,
    };
    let x = data(&[90, 70], 1);
    let (k1, k2) = (data(&[21, 17], 2), data(&[21, 17], 3));
    let opts = Options::strided(2);
    for method in [Method::Fft, Method::FftFull] {
        let spec = ConvSpec::new(x.shape(), k1.shape(), layout.clone(), &opts).unwrap();
        let plan = Plan::<f32>::new(spec, method, Some(1)).unwrap();
        for k in [&k1, &k2, &k1, &k2] {
            let want = compute(
                x.view(),
                k.view(),
                layout.clone(),
                &opts,
                on(Method::Naive, 1),
            )
            .unwrap();
            let off = worst(&plan.execute(x.view(), k.view()).unwrap(), &want);
            assert!(off < 1e-3, "{method}: off by {off}");
        }
    }
    // Two groups of a batch of three: the blocks alternate between two kernels.
    let xb = data(&[3, 2, 40, 36], 4);
    let kb = data(&[2, 1, 9, 7], 5);
    let opts = Options {
        stride: vec![2],
        groups: 2,
        ..Options::default()
    };
    let layout = Layout::Batched {
        channels_last: false,
    };
    let solve = |run| compute(xb.view(), kb.view(), layout.clone(), &opts, run).unwrap();
    let want = solve(on(Method::Naive, 1));
    for threads in [1, 2] {
        let off = worst(&solve(on(Method::Fft, threads)), &want);
        assert!(off < 1e-3, "groups on {threads} threads: off by {off}");
    }
}
