//! `strideconv demo`, `conv` and `plan`: the seed's example through the command line, exact;
//! bad files and arguments give a one-line error and a non-zero exit.

use std::path::PathBuf;
use std::process::{Command, Output};

use ndarray::{array, Array2, ArrayD};
use ndarray_npy::{read_npy, write_npy};

fn strideconv(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_strideconv"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli-tests");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn seed() -> (Array2<i64>, Array2<i64>) {
    let x = array![
        [2, 3, 7, 4, 6, 2, 9],
        [6, 6, 9, 8, 7, 4, 3],
        [3, 4, 8, 3, 8, 9, 7],
        [7, 8, 3, 6, 6, 3, 4],
        [4, 2, 1, 8, 3, 4, 6],
        [3, 2, 4, 1, 9, 8, 3],
        [0, 1, 3, 9, 2, 1, 4]
    ];
    (x, array![[3, 4, 4], [1, 0, 2], [-1, 0, 3]])
}

#[test]
fn demo_shows_every_method_agreeing() {
    let out = strideconv(&["demo"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for m in [
        "naive",
        "im2col",
        "shift_add",
        "fft_full",
        "fft",
        "direct",
        "auto",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(m) && l.contains(" ok ")),
            "{m} missing in:\n{text}"
        );
    }
    assert!(text.contains("Every method that ran agrees"));
}

#[test]
fn conv_reproduces_the_seed_exactly_by_every_exact_method() {
    let (x, k) = seed();
    let (xp, kp) = (scratch("seed_x.npy"), scratch("seed_k.npy"));
    write_npy(&xp, &x).unwrap();
    write_npy(&kp, &k).unwrap();
    for m in ["auto", "naive", "direct", "im2col", "shift_add"] {
        let op = scratch(&format!("seed_y_{m}.npy"));
        let out = strideconv(&[
            "conv",
            xp.to_str().unwrap(),
            kp.to_str().unwrap(),
            "-o",
            op.to_str().unwrap(),
            "--stride",
            "2",
            "--method",
            m,
        ]);
        assert!(
            out.status.success(),
            "{m}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let y: ArrayD<i64> = read_npy(&op).unwrap();
        assert_eq!(
            y,
            array![[91i64, 100, 88], [69, 91, 117], [44, 72, 74]].into_dyn(),
            "{m}"
        );
    }
}

#[test]
fn conv_float_with_padding_and_convolve() {
    let x = ArrayD::from_shape_fn(ndarray::IxDyn(&[9, 8]), |i| (i[0] * 8 + i[1]) as f64);
    let k = array![[1.0, 2.0], [0.0, -1.0]].into_dyn();
    let (xp, kp, op) = (scratch("f_x.npy"), scratch("f_k.npy"), scratch("f_y.npy"));
    write_npy(&xp, &x).unwrap();
    write_npy(&kp, &k).unwrap();
    let out = strideconv(&[
        "conv",
        xp.to_str().unwrap(),
        kp.to_str().unwrap(),
        "-o",
        op.to_str().unwrap(),
        "--stride",
        "2,3",
        "--padding",
        "1:0,0:2",
        "--pad-mode",
        "reflect",
        "--convolve",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let y: ArrayD<f64> = read_npy(&op).unwrap();
    let opts = strideconv::Options {
        op: strideconv::Op::Convolve,
        stride: vec![2, 3],
        padding: strideconv::Padding::Explicit(vec![(1, 0), (0, 2)]),
        pad_mode: strideconv::PadMode::Reflect,
        ..strideconv::Options::default()
    };
    assert_eq!(y, strideconv::convolve(x.view(), k.view(), &opts).unwrap());
}

fn assert_one_line_error(out: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected failure, got success");
    assert!(err.contains(needle), "stderr {err:?} lacks {needle:?}");
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err:?}");
}

#[test]
fn bad_inputs_give_one_line_errors() {
    let (x, k) = seed();
    let (xp, kp, op) = (scratch("e_x.npy"), scratch("e_k.npy"), scratch("e_y.npy"));
    write_npy(&xp, &x).unwrap();
    write_npy(&kp, &k).unwrap();
    let (xs, ks, os) = (
        xp.to_str().unwrap(),
        kp.to_str().unwrap(),
        op.to_str().unwrap(),
    );
    assert_one_line_error(
        &strideconv(&["conv", "/nonexistent.npy", ks, "-o", os]),
        "no such file",
    );
    assert_one_line_error(
        &strideconv(&["conv", xs, ks, "-o", os, "--stride", "0"]),
        "stride",
    );
    assert_one_line_error(
        &strideconv(&["conv", xs, ks, "-o", os, "--pad-mode", "nearest"]),
        "pad_mode",
    );
    assert_one_line_error(
        &strideconv(&["conv", xs, ks, "-o", os, "--method", "fft"]),
        "FFT rounds",
    );
    assert_one_line_error(&strideconv(&["conv", ks, xs, "-o", os]), "kernel extent");
    let kf = scratch("e_kf.npy");
    write_npy(&kf, &k.mapv(|v| v as f64)).unwrap();
    assert_one_line_error(
        &strideconv(&["conv", xs, kf.to_str().unwrap(), "-o", os]),
        "same dtype",
    );
    let kc = scratch("e_kc.npy");
    write_npy(&kc, &k.mapv(|v| num_complex::Complex64::new(v as f64, 0.0))).unwrap();
    assert_one_line_error(
        &strideconv(&["conv", xs, kc.to_str().unwrap(), "-o", os]),
        "unsupported dtype",
    );
}

#[test]
fn plan_prints_the_choice_and_every_estimate() {
    let out = strideconv(&[
        "plan",
        "--x-shape",
        "512,512",
        "--k-shape",
        "9,9",
        "--stride",
        "2",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("chosen:"));
    assert!(text.contains("<-"));
    for m in ["naive", "im2col", "shift_add", "fft_full", "fft", "direct"] {
        assert!(text.contains(m), "{m} missing:\n{text}");
    }
    let out = strideconv(&[
        "plan",
        "--x-shape",
        "64,64",
        "--k-shape",
        "5,5",
        "--dtype",
        "int64",
        "--method",
        "fft",
    ]);
    assert!(!out.status.success());
}
