//! `winograd` (method/winograd.rs) against the naive loop: random layers and arrays with
//! stride-1 3×3 kernels (padding of every mode, odd and even output sizes, channels first
//! and last, groups, batches, 3-D volumes with one-deep kernels, rows longer than a panel,
//! output channels cut for the threads), on 1 and 2 threads, float64 (F(4×4, 3×3)) and
//! float32 (F(2×2, 3×3)), each output held to the documented bound (128 and 16 ε · Σ|x||k|
//! over its window); its refusals; and
//! non-finite values under winograd and under `auto` when it chose winograd.

use ndarray::ArrayD;
use strideconv::{compute, wisdom, ConvSpec, Layout, Method, Op, Options, PadMode, Padding, Plan};

use crate::common::{batched_shape, on, values, Rng};

/// The documented bounds, in units of ε · Σ|x||k| over an output's window: F(4×4, 3×3)
/// (float64; its largest error seen in these tests was 47) and F(2×2, 3×3) (float32).
const BOUND64: f64 = 128.0;
const BOUND32: f64 = 16.0;

/// Checks `winograd` on one problem: float64 and float32, 1 and 2 threads, each output
/// within [`BOUND64`] or [`BOUND32`] ε · `Σ|x||k|` over its window of the naive loop's
/// float64 result.
fn agree(x: &ArrayD<f64>, k: &ArrayD<f64>, layout: &Layout, opts: &Options, case: &str) {
    let naive = |x: &ArrayD<f64>, k: &ArrayD<f64>| {
        compute(
            x.view(),
            k.view(),
            layout.clone(),
            opts,
            on(Method::Naive, 1),
        )
        .unwrap()
    };
    let want = naive(x, k);
    let size = naive(&x.mapv(f64::abs), &k.mapv(f64::abs));
    let (x32, k32) = (x.mapv(|v| v as f32), k.mapv(|v| v as f32));
    // The float32 operands are rounded copies: compare with the exact result on them.
    let want32 = naive(&x32.mapv(f64::from), &k32.mapv(f64::from));
    for threads in [1, 2] {
        let got = compute(
            x.view(),
            k.view(),
            layout.clone(),
            opts,
            on(Method::Winograd, threads),
        )
        .unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_eq!(got.shape(), want.shape(), "{case}");
        for ((g, w), s) in got.iter().zip(want.iter()).zip(size.iter()) {
            let bound = BOUND64 * f64::EPSILON * s + 1e-300;
            assert!(
                (g - w).abs() <= bound,
                "{case}, {threads} threads: {g} against {w} (bound {bound})"
            );
        }
        let got32 = compute(
            x32.view(),
            k32.view(),
            layout.clone(),
            opts,
            on(Method::Winograd, threads),
        )
        .unwrap();
        for ((&g, w), s) in got32.iter().zip(want32.iter()).zip(size.iter()) {
            let bound = BOUND32 * f32::EPSILON as f64 * s * 1.0001 + 1e-30;
            assert!(
                (g as f64 - w).abs() <= bound,
                "{case}, float32, {threads} threads: {g} against {w} (bound {bound})"
            );
        }
    }
}

#[test]
fn random_layers_match_the_naive_loop() {
    let mut rng = Rng(0x3a11);
    let modes = [
        PadMode::Constant,
        PadMode::Reflect,
        PadMode::Symmetric,
        PadMode::Edge,
        PadMode::Wrap,
    ];
    for case in 0..60 {
        let batch = rng.range(1, 3);
        let groups = if rng.below(5) == 0 { 2 } else { 1 };
        let cin = groups * rng.range(1, 12);
        let cout = groups * rng.range(1, 13);
        let (h, w) = (rng.range(3, 21), rng.range(3, 25));
        let channels_last = rng.below(3) == 0;
        let pad = rng.below(3);
        let mode = modes[rng.below(modes.len())];
        // Reflection needs more input than padding.
        let pad = if mode == PadMode::Reflect {
            pad.min(1)
        } else {
            pad
        };
        let op = if rng.below(2) == 0 {
            Op::Correlate
        } else {
            Op::Convolve
        };
        let opts = Options {
            op,
            padding: Padding::Explicit(vec![(pad, rng.below(2)), (rng.below(2), pad)]),
            pad_mode: mode,
            cval: 0.5,
            groups,
            ..Options::strided(1)
        };
        let xs = batched_shape(batch, cin, &[h, w], channels_last);
        let x = values(&xs, 100 + case);
        let k = values(&[cout, cin / groups, 3, 3], 200 + case);
        let layout = Layout::Batched { channels_last };
        let name = format!(
            "case {case}: x {xs:?}, {cout} out, groups {groups}, pad {pad} {mode:?}, {op:?}"
        );
        agree(&x, &k, &layout, &opts, &name);
    }
}

#[test]
fn volumes_arrays_long_rows_and_channel_strips() {
    let batched = Layout::Batched {
        channels_last: false,
    };
    let same = Options {
        padding: Padding::Uniform(1, 1),
        ..Options::strided(1)
    };
    // 3-D: a one-deep 3×3 kernel over every depth slice.
    let x = values(&[2, 3, 4, 9, 10], 1);
    let k = values(&[5, 3, 1, 3, 3], 2);
    agree(&x, &k, &batched, &same, "3-D volume");
    // Rows longer than a panel: pieces (a float64 panel of 96 + 96 channels holds 85
    // tiles, cut to 72; a row here has 135).
    let x = values(&[1, 96, 2, 270], 3);
    let k = values(&[96, 96, 3, 3], 4);
    agree(&x, &k, &batched, &same, "long rows");
    // One image with many output channels: cut into strips for two threads, with a
    // last strip shorter than the rest.
    let x = values(&[1, 16, 6, 6], 5);
    let k = values(&[72, 16, 3, 3], 6);
    agree(&x, &k, &batched, &same, "channel strips");
    // The numpy-style layouts: a plain 2-D array, and n×n×c with the channel axis summed.
    let plain = Layout::Signal {
        channel_axis: None,
        kernel_broadcast: false,
    };
    for (n, m) in [(3, 3), (4, 7), (17, 16), (40, 33)] {
        let x = values(&[n, m], 7 + n as u64);
        let k = values(&[3, 3], 8);
        agree(
            &x,
            &k,
            &plain,
            &Options::strided(1),
            &format!("{n}×{m} array"),
        );
        let full = Options {
            padding: Padding::Full,
            ..Options::strided(1)
        };
        agree(&x, &k, &plain, &full, &format!("{n}×{m} array, full"));
    }
    let seed = Layout::Signal {
        channel_axis: Some(2),
        kernel_broadcast: false,
    };
    let x = values(&[31, 28, 5], 9);
    let k = values(&[3, 3, 5], 10);
    agree(&x, &k, &seed, &Options::strided(1), "n×n×5 array");
}

#[test]
fn winograd_refuses_what_it_cannot_compute() {
    let batched = Layout::Batched {
        channels_last: false,
    };
    let refusal = |xs: &[usize], ks: &[usize], opts: Options| -> String {
        let spec = ConvSpec::new(xs, ks, batched.clone(), &opts).unwrap();
        match Plan::<f64>::new(spec, Method::Winograd, Some(1)) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("winograd accepted {xs:?} ⋆ {ks:?}"),
        }
    };
    let msg = refusal(&[1, 2, 9, 9], &[2, 2, 3, 3], Options::strided(2));
    assert!(msg.contains("winograd") && msg.contains("stride"), "{msg}");
    let msg = refusal(&[1, 2, 9, 9], &[2, 2, 5, 5], Options::strided(1));
    assert!(msg.contains("3×3") && msg.contains("[5, 5]"), "{msg}");
    let dilated = Options {
        dilation: vec![2],
        ..Options::strided(1)
    };
    let msg = refusal(&[1, 2, 9, 9], &[2, 2, 3, 3], dilated);
    assert!(msg.contains("dilation"), "{msg}");
    let msg = refusal(&[1, 2, 9, 9, 9], &[2, 2, 3, 3, 3], Options::strided(1));
    assert!(msg.contains("3×3"), "{msg}");
    let spec = ConvSpec::new(&[1, 2, 9, 9], &[2, 2, 3, 3], batched, &Options::strided(1)).unwrap();
    let msg = match Plan::<i128>::new(spec, Method::Winograd, Some(1)) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("winograd accepted integers"),
    };
    assert!(msg.contains("integers"), "{msg}");
}

#[test]
fn non_finite_values_under_winograd_and_auto() {
    // A layer `auto` gives to winograd. Under F(2×2, 3×3) (float32) a NaN reaches exactly
    // the outputs whose windows hold it (its transforms skip their zero coefficients);
    // F(4×4, 3×3) (float64) spreads it over the outputs of its 4×4 tiles; and two
    // infinities can meet in a transform as Inf − Inf where the direct sum has Inf + Inf.
    // `auto` checks the result and recomputes with an exact method where it is not finite.
    // Whether the cost model picks winograd for this layer depends on the processor (see
    // `INTEL_WINOGRAD_REAL`), so wisdom names it for these two problems, as a measured
    // choice would: `auto` then takes it as it takes its own pick, with the same check.
    let layout = Layout::Batched {
        channels_last: false,
    };
    let opts = Options {
        padding: Padding::Uniform(1, 1),
        ..Options::strided(1)
    };
    let (xs, ks) = ([1, 64, 28, 28], [64, 64, 3, 3]);
    let spec = ConvSpec::new(&xs, &ks, layout.clone(), &opts).unwrap();
    let choices: Vec<String> = [
        wisdom::problem_key::<f64>(&spec, 2),
        wisdom::problem_key::<f32>(&spec, 2),
    ]
    .iter()
    .map(|key| format!("{{\"key\": {key:?}, \"method\": \"winograd\", \"seconds\": 0.001}}"))
    .collect();
    let text = format!(
        "{{\"version\": {:?}, \"cpu\": {:?}, \"scales\": [], \"choices\": [{}]}}",
        wisdom::current().version,
        wisdom::cpu_key(),
        choices.join(", ")
    );
    let path = std::env::temp_dir().join(format!("strideconv-wino-{}.json", std::process::id()));
    std::fs::write(&path, text).unwrap();
    let loaded = wisdom::load(path.to_str().unwrap());
    std::fs::remove_file(&path).unwrap();
    loaded.unwrap();
    let plan = Plan::<f64>::new(spec.clone(), Method::Auto, Some(2)).unwrap();
    assert_eq!(plan.method(), Method::Winograd, "{}", plan.explain());
    let plan32 = Plan::<f32>::new(spec, Method::Auto, Some(2)).unwrap();
    assert_eq!(plan32.method(), Method::Winograd, "{}", plan32.explain());
    let k = values(&ks, 12).mapv(f64::abs);
    // NaN where the naive loop has NaN, the same infinity where it has one, close elsewhere.
    let same_kinds = |got: &ArrayD<f64>, want: &ArrayD<f64>| {
        got.iter().zip(want.iter()).all(|(g, w)| {
            if w.is_nan() {
                g.is_nan()
            } else if w.is_infinite() {
                g == w
            } else {
                (g - w).abs() < 1e-9
            }
        })
    };
    let naive = |x: &ArrayD<f64>| {
        compute(
            x.view(),
            k.view(),
            layout.clone(),
            &opts,
            on(Method::Naive, 1),
        )
        .unwrap()
    };
    // One thread: F(4×4, 3×3) then has panels enough (on two, this one image would go to
    // F(2×2, 3×3)).
    let forced = |x: &ArrayD<f64>| {
        compute(
            x.view(),
            k.view(),
            layout.clone(),
            &opts,
            on(Method::Winograd, 1),
        )
        .unwrap()
    };
    let nan = |a: &ArrayD<f64>| a.iter().map(|v| v.is_nan()).collect::<Vec<_>>();
    let mut x = values(&xs, 11);
    x[[0, 5, 10, 13]] = f64::NAN;
    let want = naive(&x);
    assert!(same_kinds(
        &plan.execute(x.view(), k.view()).unwrap(),
        &want
    ));
    let spread = forced(&x);
    assert!(
        nan(&spread).iter().filter(|&&v| v).count() > nan(&want).iter().filter(|&&v| v).count()
    );
    let (x32, k32) = (x.mapv(|v| v as f32), k.mapv(|v| v as f32));
    let got32 = plan32
        .execute(x32.view(), k32.view())
        .unwrap()
        .mapv(f64::from);
    assert_eq!(nan(&got32), nan(&want));
    let forced32 = compute(
        x32.view(),
        k32.view(),
        layout.clone(),
        &opts,
        on(Method::Winograd, 2),
    )
    .unwrap()
    .mapv(f64::from);
    assert_eq!(
        nan(&forced32),
        nan(&want),
        "a NaN left its windows under F(2×2, 3×3)"
    );
    // Input columns 14 and 16 are an F(2×2, 3×3) tile's columns 1 and 3 (padded 15 and 17),
    // which its transform subtracts.
    let mut x = values(&xs, 13);
    x[[0, 5, 10, 14]] = f64::INFINITY;
    x[[0, 5, 10, 16]] = f64::INFINITY;
    let want = naive(&x);
    assert!(want.iter().any(|v| v.is_infinite()) && !want.iter().any(|v| v.is_nan()));
    let x32 = x.mapv(|v| v as f32);
    let raw32 = compute(
        x32.view(),
        k32.view(),
        layout.clone(),
        &opts,
        on(Method::Winograd, 2),
    )
    .unwrap();
    assert!(
        raw32.iter().any(|v| v.is_nan()),
        "no Inf − Inf: the check below is idle"
    );
    let got32 = plan32
        .execute(x32.view(), k32.view())
        .unwrap()
        .mapv(f64::from);
    assert!(got32
        .iter()
        .zip(want.iter())
        .all(|(g, w)| if w.is_finite() { g.is_finite() } else { g == w }));
    assert!(same_kinds(
        &plan.execute(x.view(), k.view()).unwrap(),
        &want
    ));
}

#[test]
fn a_plan_reuses_its_transformed_kernel_only_for_an_equal_kernel() {
    // The plan keeps the transformed kernel of its last call; the next call's kernel is
    // compared with the kept one (in parallel pieces from 65536 values: 96 × 96 × 9 here).
    // A kernel that differs in one value, or in a later piece only, must be transformed
    // again.
    let layout = Layout::Batched {
        channels_last: false,
    };
    let opts = Options {
        padding: Padding::Uniform(1, 1),
        ..Options::strided(1)
    };
    let (xs, ks) = ([2, 96, 9, 10], [96, 96, 3, 3]);
    let x = values(&xs, 21);
    for threads in [1, 2] {
        for ty in ["float64", "float32"] {
            let spec = ConvSpec::new(&xs, &ks, layout.clone(), &opts).unwrap();
            let check = |k: &ArrayD<f64>, case: &str| {
                let want = compute(
                    x.view(),
                    k.view(),
                    layout.clone(),
                    &opts,
                    on(Method::Naive, 1),
                )
                .unwrap();
                let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
                (want, scale, case.to_string())
            };
            let mut k = values(&ks, 22);
            let mut cases = vec![check(&k, "first call")];
            let mut kernels = vec![k.clone()];
            kernels.push(k.clone()); // the same values again: the kept transform
            cases.push(check(&k, "equal kernel"));
            k[[95, 95, 2, 2]] += 0.5; // the last value, in the last piece
            kernels.push(k.clone());
            cases.push(check(&k, "last value changed"));
            k[[0, 0, 0, 0]] -= 0.25; // the first value
            kernels.push(k.clone());
            cases.push(check(&k, "first value changed"));
            if ty == "float64" {
                let plan = Plan::<f64>::new(spec, Method::Winograd, Some(threads)).unwrap();
                for (k, (want, scale, case)) in kernels.iter().zip(&cases) {
                    let got = plan.execute(x.view(), k.view()).unwrap();
                    let off = crate::common::worst(&got, want);
                    assert!(
                        off < 1e-12 * scale,
                        "{case}, {threads} threads: off by {off}"
                    );
                }
            } else {
                let plan = Plan::<f32>::new(spec, Method::Winograd, Some(threads)).unwrap();
                let x32 = x.mapv(|v| v as f32);
                for (k, (want, scale, case)) in kernels.iter().zip(&cases) {
                    let got = plan
                        .execute(x32.view(), k.mapv(|v| v as f32).view())
                        .unwrap();
                    let off = crate::common::worst(&got.mapv(f64::from), want);
                    assert!(
                        off < 1e-4 * scale,
                        "{case}, float32, {threads} threads: off by {off}"
                    );
                }
            }
        }
    }
}
