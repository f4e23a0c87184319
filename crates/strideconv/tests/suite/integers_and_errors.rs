//! Exact integers beyond 2^53, overflow reported, and bad requests rejected with the error
//! that names the argument.

use ndarray::{array, Array1, ArrayD, Dimension, IxDyn};
use strideconv::{
    compute, correlate, ConvSpec, Error, Layout, Method, Options, Padding, Plan, Run,
};

const SIGNAL: Layout = Layout::Signal {
    channel_axis: None,
    kernel_broadcast: false,
};

fn exact_methods() -> impl Iterator<Item = Method> {
    Method::ALL.into_iter().filter(|m| m.is_exact())
}

#[test]
fn integers_beyond_2_pow_53_are_exact() {
    // 2^53 + 1 is not a float64; sums of such products must still be exact.
    let big = (1i64 << 53) + 1;
    let x = Array1::from(vec![big, -big, big, 3, big]);
    let k = array![1i64, 1];
    let want = array![0i64, 0, big + 3, big + 3];
    for m in exact_methods() {
        let got = compute(
            x.view().into_dyn(),
            k.view().into_dyn(),
            SIGNAL,
            &Options::default(),
            Run {
                method: m,
                threads: Some(1),
            },
        );
        assert_eq!(got.unwrap(), want.clone().into_dyn(), "{m}");
    }
}

#[test]
fn a_result_beyond_int64_is_an_overflow_error() {
    let x = array![i64::MAX, i64::MAX];
    let k = array![1i64, 1];
    for m in exact_methods() {
        let err = compute(
            x.view().into_dyn(),
            k.view().into_dyn(),
            SIGNAL,
            &Options::default(),
            Run {
                method: m,
                threads: None,
            },
        )
        .unwrap_err();
        assert!(matches!(err, Error::Overflow { .. }), "{m}: {err}");
    }
    // Intermediate sums that leave int64 but a final result that fits are fine.
    let x = array![i64::MAX, i64::MAX, i64::MIN];
    let k = array![1i64, 1, 1];
    assert_eq!(
        correlate(x.view(), k.view(), &Options::default()).unwrap(),
        array![i64::MAX - 1].into_dyn()
    );
}

#[test]
fn uint64_and_bool_inputs() {
    let x = array![u64::MAX, 1];
    let k = array![1u64];
    let err = correlate(x.view(), k.view(), &Options::default()).unwrap_err();
    assert!(matches!(err, Error::Overflow { .. }));
    let b = array![true, false, true, true];
    assert_eq!(
        correlate(b.view(), array![true, true].view(), &Options::default()).unwrap(),
        array![1i64, 1, 2].into_dyn()
    );
}

#[test]
fn products_that_could_leave_128_bits_are_refused() {
    let x = ArrayD::from_elem(IxDyn(&[300]), u64::MAX);
    let k = ArrayD::from_elem(IxDyn(&[200]), u64::MAX);
    let err = correlate(x.view(), k.view(), &Options::default()).unwrap_err();
    assert!(matches!(err, Error::Overflow { .. }), "{err}");
}

#[test]
fn the_accumulator_bound_is_exact_at_its_edge() {
    // max|x| · Σ|k| just below 2^125 is computed exactly in the 128-bit accumulator; at 2^125
    // it is refused, by every exact method. Negative values count by their magnitude.
    let p = 1i64 << 62;
    let x = array![p, -p, p];
    let spec = |k: &[usize]| ConvSpec::new(&[3], k, SIGNAL, &Options::default()).unwrap();
    for m in exact_methods() {
        let below = array![-p, p - 1];
        let plan = Plan::<i128>::new(spec(&[2]), m, Some(1)).unwrap();
        let got = plan
            .execute_compute(x.view().into_dyn(), below.view().into_dyn())
            .unwrap();
        let (p, q) = (i128::from(p), i128::from(p - 1));
        assert_eq!(
            got.into_raw_vec_and_offset().0,
            vec![-p * p - p * q, p * p + p * q],
            "{m}"
        );
        let at = array![-(1i64 << 62), 1i64 << 62];
        let err = plan
            .execute_compute(x.view().into_dyn(), at.view().into_dyn())
            .unwrap_err();
        assert!(err.to_string().contains("128-bit"), "{m}: {err}");
    }
}

fn spec_err(x: &[usize], k: &[usize], layout: Layout, o: Options) -> Error {
    ConvSpec::new(x, k, layout, &o).unwrap_err()
}

#[test]
fn bad_specs_name_the_argument() {
    let e = spec_err(&[7, 7], &[3, 3], SIGNAL, Options::strided(0));
    assert!(
        matches!(e, Error::InvalidValue { arg: "stride", .. }),
        "{e}"
    );
    let e = spec_err(
        &[7, 7],
        &[3, 3],
        SIGNAL,
        Options {
            dilation: vec![0],
            ..Options::default()
        },
    );
    assert!(
        matches!(
            e,
            Error::InvalidValue {
                arg: "dilation",
                ..
            }
        ),
        "{e}"
    );
    let e = spec_err(
        &[7, 7],
        &[3, 3],
        SIGNAL,
        Options {
            stride: vec![1, 2, 3],
            ..Options::default()
        },
    );
    assert!(
        matches!(e, Error::InvalidValue { arg: "stride", .. }),
        "{e}"
    );
    let e = spec_err(&[7, 7], &[8, 3], SIGNAL, Options::default());
    assert!(
        matches!(
            e,
            Error::KernelTooLarge {
                axis: 0,
                kernel_extent: 8,
                padded_len: 7
            }
        ),
        "{e}"
    );
    let e = spec_err(
        &[7, 7],
        &[3, 3],
        SIGNAL,
        Options {
            dilation: vec![4],
            ..Options::default()
        },
    );
    assert!(
        matches!(
            e,
            Error::KernelTooLarge {
                kernel_extent: 9,
                ..
            }
        ),
        "{e}"
    );
    let e = spec_err(&[7, 7], &[3], SIGNAL, Options::default());
    assert!(matches!(e, Error::Shape { arg: "k", .. }), "{e}");
    let e = spec_err(&[7, 7], &[0, 3], SIGNAL, Options::default());
    assert!(matches!(e, Error::Shape { arg: "k", .. }), "{e}");
    let e = spec_err(
        &[2, 3, 4, 5, 6],
        &[1, 1, 1, 1, 1],
        SIGNAL,
        Options::default(),
    );
    assert!(matches!(e, Error::Shape { arg: "x", .. }), "{e}");
    let e = spec_err(
        &[7, 7],
        &[3, 3],
        SIGNAL,
        Options {
            padding: Padding::Explicit(vec![(1, 1)]),
            ..Options::default()
        },
    );
    assert!(
        matches!(e, Error::InvalidValue { arg: "padding", .. }),
        "{e}"
    );
    let ch = Layout::Signal {
        channel_axis: Some(2),
        kernel_broadcast: false,
    };
    let e = spec_err(&[7, 7, 3], &[3, 3, 2], ch.clone(), Options::default());
    assert!(matches!(e, Error::Shape { arg: "k", .. }), "{e}");
    let e = spec_err(
        &[7, 7, 3],
        &[3, 3, 3],
        Layout::Signal {
            channel_axis: Some(3),
            kernel_broadcast: false,
        },
        Options::default(),
    );
    assert!(
        matches!(
            e,
            Error::InvalidValue {
                arg: "channel_axis",
                ..
            }
        ),
        "{e}"
    );
    let nchw = Layout::Batched {
        channels_last: false,
    };
    let e = spec_err(
        &[1, 4, 8, 8],
        &[6, 2, 3, 3],
        nchw.clone(),
        Options {
            groups: 3,
            ..Options::default()
        },
    );
    assert!(
        matches!(e, Error::InvalidValue { arg: "groups", .. }),
        "{e}"
    );
    let e = spec_err(
        &[1, 4, 8, 8],
        &[6, 3, 3, 3],
        nchw.clone(),
        Options::default(),
    );
    assert!(matches!(e, Error::Shape { arg: "weight", .. }), "{e}");
    let e = spec_err(&[1, 4, 8, 8], &[6, 4, 3], nchw, Options::default());
    assert!(matches!(e, Error::Shape { arg: "weight", .. }), "{e}");
    assert!(matches!(
        "nearest".parse::<strideconv::PadMode>(),
        Err(Error::InvalidValue {
            arg: "pad_mode",
            ..
        })
    ));
    assert!(matches!(
        "bogus".parse::<Method>(),
        Err(Error::InvalidValue { arg: "method", .. })
    ));
    assert!("replicate".parse::<strideconv::PadMode>().is_ok());
}

/// Lengths near 2⁶³ are refused by name, never wrapped (a dilation of 2⁶² on a 5-tap
/// kernel once wrapped to a 1-tap one and gave a wrong answer); outputs and padded copies
/// that cannot be addressed, or whose memory the system refuses, are `TooLarge` errors, not
/// a panic or an abort.
#[test]
fn huge_lengths_are_errors_not_wrong_answers_or_aborts() {
    let with = |dilation: usize, padding: Padding| Options {
        dilation: vec![dilation],
        padding,
        ..Options::default()
    };
    for padding in [
        Padding::Valid,
        Padding::Full,
        Padding::Same,
        Padding::SameTf,
    ] {
        let e = spec_err(&[5, 10], &[5, 5], SIGNAL, with(1 << 62, padding.clone()));
        assert!(
            matches!(
                e,
                Error::InvalidValue {
                    arg: "dilation",
                    ..
                }
            ),
            "{padding:?}: {e}"
        );
    }
    // 2⁶² + 1 taps fit a word, but `full` padding around them does not.
    let e = spec_err(&[5, 10], &[3, 3], SIGNAL, with(1 << 62, Padding::Full));
    assert!(
        matches!(e, Error::InvalidValue { arg: "padding", .. }),
        "{e}"
    );
    let e = spec_err(
        &[5, 10],
        &[3, 3],
        SIGNAL,
        with(1, Padding::Uniform(1 << 63, 1 << 63)),
    );
    assert!(
        matches!(e, Error::InvalidValue { arg: "padding", .. }),
        "{e}"
    );
    // An output of 2⁸⁰ elements: not addressable.
    let e = spec_err(
        &[5, 10],
        &[3, 3],
        SIGNAL,
        with(1, Padding::Uniform(1 << 40, 1 << 40)),
    );
    assert!(matches!(e, Error::TooLarge { what: "output", .. }), "{e}");
    // A padded copy of 2⁶² elements for a 1-element output (stride as long as the padding).
    let e = spec_err(
        &[5, 10],
        &[3, 3],
        SIGNAL,
        Options {
            padding: Padding::Uniform(1 << 30, 1 << 30),
            stride: vec![1 << 32],
            ..Options::default()
        },
    );
    assert!(
        matches!(
            e,
            Error::TooLarge {
                what: "padded copy of the input",
                ..
            }
        ),
        "{e}"
    );
    // Addressable, but 2⁵² float64 outputs (32 PiB) are more than any machine gives.
    let x = ArrayD::<f64>::ones(IxDyn(&[5, 10]));
    let k = ArrayD::<f64>::ones(IxDyn(&[3, 3]));
    let big = ConvSpec::new(
        &[5, 10],
        &[3, 3],
        SIGNAL,
        &with(1, Padding::Uniform(1 << 25, 1 << 25)),
    );
    let plan = Plan::<f64>::new(big.unwrap(), Method::Auto, Some(1)).unwrap();
    let e = plan.execute(x.view(), k.view()).unwrap_err();
    assert!(matches!(e, Error::TooLarge { what: "output", .. }), "{e}");
    assert!(e.to_string().contains("32.0 PiB"), "{e}");
    // A small output whose padded copy (2⁵² elements) is refused, for a method that copies.
    let opts = Options {
        padding: Padding::Uniform(1 << 25, 1 << 25),
        stride: vec![1 << 24],
        ..Options::default()
    };
    let spec = ConvSpec::new(&[5, 10], &[3, 3], SIGNAL, &opts).unwrap();
    let plan = Plan::<f64>::new(spec, Method::Naive, Some(1)).unwrap();
    let e = plan.execute(x.view(), k.view()).unwrap_err();
    assert!(
        matches!(
            e,
            Error::TooLarge {
                what: "padded copy of the input",
                ..
            }
        ),
        "{e}"
    );
}

/// Strides far longer than the input (10¹²), an empty batch, and padding far longer than
/// the outputs need: every method answers, without sizing anything by the stride (the row
/// path's phase buffer and im2col's phase table once took 10¹² elements and aborted; the
/// FFT visited every one of 10¹¹ phases).
#[test]
fn huge_strides_and_empty_batches_are_computed() {
    // Within rounding (the FFT methods round).
    let close = |got: &ArrayD<f64>, want: &[f64], what: &str| {
        let got: Vec<f64> = got.iter().copied().collect();
        assert_eq!(got.len(), want.len(), "{what}");
        for (g, w) in got.iter().zip(want) {
            assert!(
                (g - w).abs() <= 1e-9 * w.abs().max(1.0),
                "{what}: {got:?} != {want:?}"
            );
        }
    };
    let x = ArrayD::from_shape_vec(IxDyn(&[10]), (0..10).map(|v| v as f64).collect()).unwrap();
    let k = ArrayD::from_shape_vec(IxDyn(&[3]), vec![1.0, 10.0, 100.0]).unwrap();
    for m in Method::ALL {
        for stride in [1usize << 40, 100_000_000_000] {
            let spec = ConvSpec::new(&[10], &[3], SIGNAL, &Options::strided(stride)).unwrap();
            let Ok(plan) = Plan::<f64>::new(spec, m, Some(2)) else {
                continue;
            };
            let got = plan.execute(x.view(), k.view()).unwrap();
            close(&got, &[210.0], &format!("{m}, stride {stride}"));
        }
        // Two axes, one of them with a huge stride (rows of 7, columns of 9).
        let x2 = ArrayD::from_shape_fn(IxDyn(&[7, 9]), |i| (i[0] * 9 + i[1]) as f64);
        let k2 = ArrayD::from_shape_fn(IxDyn(&[2, 3]), |i| (1 + i[0] * 3 + i[1]) as f64);
        let opts = Options {
            stride: vec![2, 1 << 40],
            ..Options::default()
        };
        let spec = ConvSpec::new(&[7, 9], &[2, 3], SIGNAL, &opts).unwrap();
        if let Ok(plan) = Plan::<f64>::new(spec, m, Some(2)) {
            let got = plan.execute(x2.view(), k2.view()).unwrap();
            let want: Vec<f64> = (0..3)
                .map(|o| {
                    let r = 2 * o;
                    (0..2)
                        .flat_map(|i| (0..3).map(move |j| (i, j)))
                        .map(|(i, j)| k2[[i, j]] * x2[[r + i, j]])
                        .sum()
                })
                .collect();
            assert_eq!(got.shape(), &[3, 1], "{m}");
            close(&got, &want, &format!("{m}, two axes"));
        }
        // Padding 10⁷ before, stride 10⁷: two outputs.
        let opts = Options {
            padding: Padding::Explicit(vec![(10_000_000, 0)]),
            stride: vec![10_000_000],
            ..Options::default()
        };
        let spec = ConvSpec::new(&[10], &[3], SIGNAL, &opts).unwrap();
        if let Ok(plan) = Plan::<f64>::new(spec, m, Some(2)) {
            let got = plan.execute(x.view(), k.view()).unwrap();
            close(&got, &[0.0, 210.0], &format!("{m}, padded"));
        }
    }
    // An empty batch: an empty output of the layer's shape, from every method.
    let nchw = Layout::Batched {
        channels_last: false,
    };
    let x = ArrayD::<f64>::zeros(IxDyn(&[0, 2, 6, 6]));
    let k = ArrayD::<f64>::ones(IxDyn(&[4, 2, 3, 3]));
    for m in Method::ALL {
        let spec = ConvSpec::new(
            &[0, 2, 6, 6],
            &[4, 2, 3, 3],
            nchw.clone(),
            &Options::default(),
        );
        let plan = Plan::<f64>::new(spec.unwrap(), m, Some(2)).unwrap();
        let got = plan.execute(x.view(), k.view()).unwrap();
        assert_eq!(got.shape(), &[0, 4, 4, 4], "{m}");
    }
}

#[test]
fn plans_check_shapes_and_threads() {
    let spec = ConvSpec::new(&[7, 7], &[3, 3], SIGNAL, &Options::default()).unwrap();
    assert!(matches!(
        Plan::<f64>::new(spec.clone(), Method::Auto, Some(0)),
        Err(Error::InvalidValue { arg: "threads", .. })
    ));
    let plan = Plan::<f64>::new(spec, Method::Direct, Some(1)).unwrap();
    let x = ArrayD::<f64>::zeros(IxDyn(&[7, 8]));
    let k = ArrayD::<f64>::zeros(IxDyn(&[3, 3]));
    assert!(matches!(
        plan.execute(x.view(), k.view()),
        Err(Error::Shape { arg: "x", .. })
    ));
}

#[test]
fn nan_stays_in_its_windows_under_auto() {
    // A large problem where auto would pick an FFT for finite data.
    let n = 256;
    let mut x =
        ArrayD::<f64>::from_shape_fn(IxDyn(&[n, n]), |i| ((i[0] * 7 + i[1] * 3) % 11) as f64);
    let k = ArrayD::<f64>::from_elem(IxDyn(&[101, 101]), 0.5);
    x[[0, 0]] = f64::NAN;
    let spec = ConvSpec::new(x.shape(), k.shape(), SIGNAL, &Options::strided(2)).unwrap();
    let plan = Plan::<f64>::new(spec, Method::Auto, None).unwrap();
    assert!(
        !plan.method().is_exact(),
        "this test needs a problem where auto picks an FFT: {}",
        plan.explain()
    );
    let y = correlate(x.view(), k.view(), &Options::strided(2)).unwrap();
    // Only outputs whose window covers (0, 0) are NaN: the first one.
    let nans: Vec<_> = y
        .indexed_iter()
        .filter(|(_, v)| v.is_nan())
        .map(|(i, _)| i.as_array_view().to_vec())
        .collect();
    assert_eq!(nans, vec![vec![0, 0]]);
}
