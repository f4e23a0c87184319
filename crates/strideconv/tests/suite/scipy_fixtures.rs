//! Fixtures computed once by numpy/scipy (tests/fixtures/make_fixtures.py) pin the
//! semantics — padding modes, "same"/"full" centring of even kernels, convolution flips,
//! complex conjugation — to the outside world, for every method.

use std::path::PathBuf;

use ndarray::ArrayD;
use ndarray_npy::read_npy;
use num_complex::Complex64;
use strideconv::{compute, Layout, Method, Op, Options, PadMode, Padding, Run};

const SIGNAL: Layout = Layout::Signal {
    channel_axis: None,
    kernel_broadcast: false,
};

fn path(name: &str, part: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("{name}_{part}.npy"))
}

fn load<T: ndarray_npy::ReadableElement>(name: &str, part: &str) -> ArrayD<T> {
    read_npy(path(name, part)).unwrap_or_else(|e| panic!("{name}_{part}: {e}"))
}

fn opts(stride: &[usize], padding: Padding, mode: PadMode) -> Options {
    Options {
        stride: stride.to_vec(),
        padding,
        pad_mode: mode,
        ..Options::default()
    }
}

fn check(name: &str, o: Options) {
    let (x, k, want): (ArrayD<f64>, ArrayD<f64>, ArrayD<f64>) =
        (load(name, "x"), load(name, "k"), load(name, "y"));
    for m in Method::ALL
        .into_iter()
        .filter(|m| *m != Method::Winograd)
        .chain([Method::Auto])
    {
        let got = compute(
            x.view(),
            k.view(),
            SIGNAL,
            &o,
            Run {
                method: m,
                threads: Some(2),
            },
        )
        .unwrap();
        assert_eq!(got.shape(), want.shape(), "{name} {m}");
        let err = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(err < 1e-9, "{name} {m}: max error {err}");
    }
}

#[test]
fn reflect_2d_even_kernel() {
    check(
        "reflect2d",
        opts(
            &[2, 3],
            Padding::Explicit(vec![(2, 1), (0, 3)]),
            PadMode::Reflect,
        ),
    );
}

#[test]
fn pads_longer_than_the_input() {
    check(
        "symmetric_large_pad",
        opts(&[2], Padding::Uniform(7, 6), PadMode::Symmetric),
    );
    check(
        "reflect_large_pad",
        opts(&[1], Padding::Uniform(9, 8), PadMode::Reflect),
    );
}

#[test]
fn wrap_3d() {
    check(
        "wrap3d",
        opts(
            &[1, 2, 3],
            Padding::Explicit(vec![(1, 2), (3, 0), (2, 7)]),
            PadMode::Wrap,
        ),
    );
}

#[test]
fn edge_with_dilation() {
    let o = Options {
        dilation: vec![2, 3],
        ..opts(
            &[2, 2],
            Padding::Explicit(vec![(1, 1), (2, 2)]),
            PadMode::Edge,
        )
    };
    check("edge_dilated", o);
}

#[test]
fn constant_with_cval() {
    let o = Options {
        cval: 2.5,
        ..opts(
            &[3, 2],
            Padding::Explicit(vec![(2, 2), (1, 0)]),
            PadMode::Constant,
        )
    };
    check("constant_cval", o);
}

#[test]
fn convolve_padded() {
    let o = Options {
        op: Op::Convolve,
        ..opts(
            &[2, 1],
            Padding::Explicit(vec![(1, 2), (2, 1)]),
            PadMode::Symmetric,
        )
    };
    check("convolve_padded", o);
}

#[test]
fn scipy_same_and_full_with_even_kernels() {
    check("same_even", opts(&[2, 3], Padding::Same, PadMode::Constant));
    check("full_even", opts(&[2, 2], Padding::Full, PadMode::Constant));
    check(
        "same_1d_stride3",
        opts(&[3], Padding::Same, PadMode::Constant),
    );
    let o = Options {
        op: Op::Convolve,
        ..opts(&[2, 2], Padding::Same, PadMode::Constant)
    };
    check("convolve_same_even", o);
}

#[test]
fn complex_correlation_conjugates_the_kernel() {
    let name = "complex_correlate";
    let (x, k, want): (ArrayD<Complex64>, ArrayD<Complex64>, ArrayD<Complex64>) =
        (load(name, "x"), load(name, "k"), load(name, "y"));
    for m in [
        Method::Naive,
        Method::Direct,
        Method::Fft,
        Method::FftFull,
        Method::Im2col,
        Method::ShiftAdd,
    ] {
        let got = compute(
            x.view(),
            k.view(),
            SIGNAL,
            &Options::strided(2),
            Run {
                method: m,
                threads: Some(1),
            },
        )
        .unwrap();
        let err = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).norm())
            .fold(0.0, f64::max);
        assert!(err < 1e-9, "{m}: max error {err}");
    }
}
