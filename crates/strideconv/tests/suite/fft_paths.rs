//! The FFT engine's special paths against the naive method, on shapes the random agreement
//! test reaches only by chance: channel-last inputs read a whole phase at a time (many
//! channels, strides up to 5), outputs split into bands, kernels much shorter than the
//! transform (rows skipped as zero), plans reused with new and repeated kernels, and the
//! transform lengths chosen by radix cost.

use ndarray::{ArrayD, IxDyn};
use strideconv::{compute, ConvSpec, Layout, Method, Options, Plan, Run};

use crate::common::Rng;

fn random(shape: &[usize], rng: &mut Rng) -> ArrayD<f64> {
    ArrayD::from_shape_fn(IxDyn(shape), |_| rng.unit() - 0.5)
}

/// Largest absolute difference, and the largest reference magnitude.
fn compare(got: &ArrayD<f64>, want: &ArrayD<f64>) -> (f64, f64) {
    assert_eq!(got.shape(), want.shape());
    let diff = (got - want).iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    (diff, scale)
}

fn check(x: &ArrayD<f64>, k: &ArrayD<f64>, layout: Layout, opts: &Options, what: &str) {
    let naive = Run {
        method: Method::Naive,
        threads: Some(1),
    };
    let want = compute(x.view(), k.view(), layout.clone(), opts, naive).unwrap();
    for method in [Method::Fft, Method::FftFull] {
        for threads in [1, 2] {
            let run = Run {
                method,
                threads: Some(threads),
            };
            let got = compute(x.view(), k.view(), layout.clone(), opts, run).unwrap();
            let (diff, scale) = compare(&got, &want);
            assert!(
                diff <= 1e-11 * scale * k.len() as f64,
                "{what}: {method} on {threads} threads is off by {diff} (scale {scale})"
            );
        }
    }
}

#[test]
fn channel_last_arrays_by_phase() {
    let mut rng = Rng(11);
    // (n, c, f, stride): the seed's n×n×c presets, scaled down, and odd sizes.
    for (n, c, f, s) in [
        (64, 5, 9, 2),
        (60, 10, 33, 5),
        (61, 10, 60, 5),
        (47, 3, 12, 3),
        (50, 2, 5, 1),
        (33, 7, 32, 4),
    ] {
        let x = random(&[n, n, c], &mut rng);
        let k = random(&[f, f, c], &mut rng);
        let layout = Layout::Signal {
            channel_axis: Some(2),
            kernel_broadcast: false,
        };
        check(
            &x,
            &k,
            layout,
            &Options::strided(s),
            &format!("{n}²×{c} ⋆ {f}²/{s}"),
        );
        // The same data channel-first: one (phase, channel) pair at a time.
        let xf = x.view().permuted_axes(IxDyn(&[2, 0, 1])).to_owned();
        let kf = k.view().permuted_axes(IxDyn(&[2, 0, 1])).to_owned();
        let layout = Layout::Signal {
            channel_axis: Some(0),
            kernel_broadcast: false,
        };
        check(
            &xf,
            &kf,
            layout,
            &Options::strided(s),
            &format!("{c}×{n}² ⋆ {f}²/{s}"),
        );
    }
}

#[test]
fn batched_channel_last_layers() {
    let mut rng = Rng(12);
    // Two images (kernel spectra kept for the second), and one (each kernel transformed
    // where it is multiplied, with several output channels; dilated).
    for (batch, n, cin, cout, f, s, d) in [
        (2, 40, 4, 3, 7, 2, 1),
        (2, 31, 6, 2, 15, 3, 1),
        (1, 45, 3, 4, 6, 2, 2),
        (1, 38, 2, 3, 9, 3, 1),
    ] {
        let x = random(&[batch, n, n, cin], &mut rng);
        let k = random(&[cout, cin, f, f], &mut rng);
        let layout = Layout::Batched {
            channels_last: true,
        };
        let opts = Options {
            dilation: vec![d],
            ..Options::strided(s)
        };
        check(
            &x,
            &k,
            layout,
            &opts,
            &format!("NHWC {batch}×{n}² {cin}→{cout} {f}²/{s} dilated {d}"),
        );
    }
}

#[test]
fn outputs_in_bands_and_short_kernels() {
    let mut rng = Rng(13);
    // Transforms past the band budget (several bands), and kernels far shorter than them.
    for (n, f, s) in [(420, 9, 1), (400, 3, 2), (300, 40, 3), (257, 2, 1)] {
        let x = random(&[n, n], &mut rng);
        let k = random(&[f, f], &mut rng);
        let layout = Layout::Signal {
            channel_axis: None,
            kernel_broadcast: false,
        };
        check(
            &x,
            &k,
            layout,
            &Options::strided(s),
            &format!("{n}² ⋆ {f}²/{s}"),
        );
    }
}

#[test]
fn kept_spectra_serve_an_equal_kernel_only() {
    // A contiguous kernel of 90000 values is compared in parallel pieces; changing its first
    // or its last value must transform it again. The reference is a fresh plan per call.
    let mut rng = Rng(15);
    let (xs, ks) = ([360, 360], [300, 300]);
    let signal = Layout::Signal {
        channel_axis: None,
        kernel_broadcast: false,
    };
    let spec = ConvSpec::new(&xs, &ks, signal, &Options::strided(2)).unwrap();
    let plan = Plan::<f64>::new(spec.clone(), Method::Fft, Some(2)).unwrap();
    let x = random(&xs, &mut rng);
    let a = random(&ks, &mut rng);
    let mut first = a.clone();
    first[[0, 0]] += 1.0;
    let mut last = a.clone();
    last[[299, 299]] -= 1.0;
    for (name, k) in [
        ("a", &a),
        ("last", &last),
        ("a", &a),
        ("first", &first),
        ("a", &a),
    ] {
        let got = plan.execute(x.view(), k.view()).unwrap();
        let fresh = Plan::<f64>::new(spec.clone(), Method::Fft, Some(2)).unwrap();
        let want = fresh.execute(x.view(), k.view()).unwrap();
        let (diff, scale) = compare(&got, &want);
        assert!(diff <= 1e-12 * scale, "kernel {name}: off by {diff}");
    }
}

#[test]
fn one_plan_with_new_and_repeated_kernels() {
    let mut rng = Rng(14);
    let (xs, ks) = ([90, 90, 6], [20, 20, 6]);
    let layout = Layout::Signal {
        channel_axis: Some(2),
        kernel_broadcast: false,
    };
    let spec = ConvSpec::new(&xs, &ks, layout.clone(), &Options::strided(3)).unwrap();
    let plan = Plan::<f64>::new(spec, Method::Fft, Some(2)).unwrap();
    let x = random(&xs, &mut rng);
    let kernels: Vec<ArrayD<f64>> = (0..3).map(|_| random(&ks, &mut rng)).collect();
    let naive = Run {
        method: Method::Naive,
        threads: Some(1),
    };
    // A kernel seen once is remembered, transformed where multiplied; seen again, its
    // spectra are kept; a third time, read. a, b, b, b, a, a, a, c, a: every state, and every
    // change between them.
    for i in [0, 1, 1, 1, 0, 0, 0, 2, 0] {
        let k = &kernels[i];
        let got = plan.execute(x.view(), k.view()).unwrap();
        let want = compute(
            x.view(),
            k.view(),
            layout.clone(),
            &Options::strided(3),
            naive,
        )
        .unwrap();
        let (diff, scale) = compare(&got, &want);
        assert!(diff <= 1e-10 * scale, "kernel {i}: off by {diff}");
    }
    // Kernel a's values in other memory layouts: Fortran order (contiguous, other strides),
    // and a view with gaps (not contiguous); each twice in a row (remembered, then kept),
    // and a again.
    let a = &kernels[0];
    let fortran = {
        let mut f = ArrayD::<f64>::zeros(ndarray::ShapeBuilder::f(IxDyn(&ks)));
        f.assign(a);
        f
    };
    let mut wide = ArrayD::<f64>::zeros(IxDyn(&[ks[0], ks[1], 2 * ks[2]]));
    wide.slice_mut(ndarray::s![.., .., ..;2]).assign(a);
    let gapped = wide.slice(ndarray::s![.., .., ..;2]).into_dyn();
    let want = compute(
        x.view(),
        a.view(),
        layout.clone(),
        &Options::strided(3),
        naive,
    )
    .unwrap();
    for (name, k) in [
        ("fortran", fortran.view()),
        ("fortran", fortran.view()),
        ("gapped", gapped.view()),
        ("gapped", gapped.view()),
        ("a", a.view()),
    ] {
        let got = plan.execute(x.view(), k).unwrap();
        let (diff, scale) = compare(&got, &want);
        assert!(diff <= 1e-10 * scale, "kernel a, {name}: off by {diff}");
    }
    // a's memory, read in Fortran order: other values, the same bytes. After c, then a twice
    // (a's spectra kept), it must not be taken for a.
    let flat: Vec<f64> = a.iter().copied().collect();
    let other = ArrayD::from_shape_vec(ndarray::ShapeBuilder::f(IxDyn(&ks)), flat).unwrap();
    let want = compute(
        x.view(),
        other.view(),
        layout.clone(),
        &Options::strided(3),
        naive,
    )
    .unwrap();
    for k in [&kernels[2], a, a] {
        plan.execute(x.view(), k.view()).unwrap();
    }
    let got = plan.execute(x.view(), other.view()).unwrap();
    let (diff, scale) = compare(&got, &want);
    assert!(
        diff <= 1e-10 * scale,
        "a's bytes in Fortran order: off by {diff}"
    );
}
