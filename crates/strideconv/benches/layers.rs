//! Quick side-by-side table of CNN layers: best-of-N time per method and thread count,
//! GFLOP/s, and seconds per multiply-add (what the planner's cost model is calibrated with).
//!
//! `cargo bench -p strideconv --bench layers [-- REPEATS [FILTER [METHOD|all [THREADS]]]]`,
//! where FILTER matches "dtype name", e.g. `"float32 128x"`. Best-of-N rather than
//! criterion's statistics: on a shared machine the fastest run is the least disturbed one.
//! Every method's result is checked against `direct`'s before it is timed.

use std::time::Instant;

use ndarray::{ArrayD, IxDyn};
use strideconv::{ConvSpec, Element, Layout, Method, Options, Padding, Plan, Scalar};

/// One layer: square input and kernel.
struct Case {
    name: &'static str,
    batch: usize,
    cin: usize,
    cout: usize,
    size: usize,
    kernel: usize,
    stride: usize,
    pad: usize,
    groups: usize,
    channels_last: bool,
}

/// A batch-1, NCHW, ungrouped layer; the builders below change the rest.
const fn layer(
    name: &'static str,
    cin: usize,
    cout: usize,
    size: usize,
    kernel: usize,
    stride: usize,
    pad: usize,
) -> Case {
    Case {
        name,
        batch: 1,
        cin,
        cout,
        size,
        kernel,
        stride,
        pad,
        groups: 1,
        channels_last: false,
    }
}

impl Case {
    const fn batch(mut self, n: usize) -> Case {
        self.batch = n;
        self
    }
    const fn nhwc(mut self) -> Case {
        self.channels_last = true;
        self
    }
    const fn depthwise(mut self) -> Case {
        self.groups = self.cin;
        self
    }
}

const CASES: [Case; 20] = [
    layer("64x64_3x3_s1_56", 64, 64, 56, 3, 1, 1),
    layer("128x128_3x3_s2_28", 128, 128, 28, 3, 2, 1),
    layer("256x256_1x1_14", 256, 256, 14, 1, 1, 0),
    layer("stem_3x64_7x7_s2_224", 3, 64, 224, 7, 2, 3),
    layer("256x256_3x3_s1_14", 256, 256, 14, 3, 1, 1),
    layer("512x512_3x3_s1_7", 512, 512, 7, 3, 1, 1),
    layer("64x64_3x3_s1_56_b8", 64, 64, 56, 3, 1, 1).batch(8),
    layer("64x64_3x3_s1_56_nhwc", 64, 64, 56, 3, 1, 1).nhwc(),
    layer("1024_cubed_1x1_32", 1024, 1024, 32, 1, 1, 0),
    // Kernel == stride: a ViT patch embedding and a 2×2 downsampling, both layouts.
    layer("patch_3x768_16x16_s16_224", 3, 768, 224, 16, 16, 0),
    layer("down_64x128_2x2_s2_56", 64, 128, 56, 2, 2, 0),
    layer("down_64x128_2x2_s2_56_nhwc", 64, 128, 56, 2, 2, 0).nhwc(),
    // Few output channels: the product degenerates towards a matrix-vector one and the
    // gather dominates (calibration of the per-element cost).
    layer("cal_1x1_9x9_s2_512", 1, 1, 512, 9, 2, 0),
    layer("cal_8x1_3x3_s1_256", 8, 1, 256, 3, 1, 0),
    layer("cal_16x4_3x3_s1_128", 16, 4, 128, 3, 1, 0),
    layer("cal_16x16_3x3_s1_128", 16, 16, 128, 3, 1, 0),
    layer("cal_16x32_3x3_s1_128", 16, 32, 128, 3, 1, 0),
    layer("cal_64x8_3x3_s1_64", 64, 8, 64, 3, 1, 0),
    layer("cal_depthwise_64_3x3_s2_56", 64, 64, 56, 3, 2, 1).depthwise(),
    layer("cal_32x32_5x5_s1_64", 32, 32, 64, 5, 1, 0),
];

fn data<T: Scalar>(shape: &[usize], seed: u64) -> ArrayD<T> {
    let mut s = seed;
    ArrayD::from_shape_simple_fn(IxDyn(shape), || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        T::from_f64(((s >> 33) as f64 / (1u64 << 31) as f64) - 1.0)
    })
}

fn best_of<F: FnMut()>(repeats: usize, mut f: F) -> f64 {
    f();
    (0..repeats)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn run_cases<T: Scalar + Element<Compute = T, Output = T>>(
    repeats: usize,
    filter: &str,
    only: Option<Method>,
    threads: &[usize],
) {
    for case in &CASES {
        let name = case.name;
        if !format!("{} {name}", T::NAME).contains(filter) {
            continue;
        }
        let (n, c, s) = (case.batch, case.cin, case.size);
        let x = data::<T>(
            &if case.channels_last {
                [n, s, s, c]
            } else {
                [n, c, s, s]
            },
            1,
        );
        let k = data::<T>(&[case.cout, c / case.groups, case.kernel, case.kernel], 2);
        let opts = Options {
            stride: vec![case.stride],
            padding: Padding::Uniform(case.pad, case.pad),
            groups: case.groups,
            ..Options::default()
        };
        let layout = Layout::Batched {
            channels_last: case.channels_last,
        };
        let spec = ConvSpec::new(x.shape(), k.shape(), layout, &opts).unwrap();
        let macs = spec.macs();
        let reference = Plan::<T>::new(spec.clone(), Method::Direct, Some(1))
            .unwrap()
            .execute(x.view(), k.view())
            .unwrap();
        let scale = reference
            .iter()
            .fold(0.0f64, |m, v| m.max(v.magnitude()))
            .max(1e-300);
        let mut line = format!("{:8} {name:27}", T::NAME);
        for &t in threads {
            for method in [Method::Direct, Method::Im2col] {
                if only.is_some_and(|m| m != method) {
                    continue;
                }
                let plan = Plan::<T>::new(spec.clone(), method, Some(t)).unwrap();
                let y = plan.execute(x.view(), k.view()).unwrap();
                let err = y
                    .iter()
                    .zip(&reference)
                    .map(|(&a, &b)| (a - b).magnitude())
                    .fold(0.0, f64::max)
                    / scale;
                assert!(
                    err < 1e-4,
                    "{name}: {method} on {t} threads differs from direct by {err:e}"
                );
                let secs = best_of(repeats, || {
                    std::hint::black_box(plan.execute(x.view(), k.view()).unwrap());
                });
                line += &format!(
                    " | {method:>6} t{t} {:8.3} ms {:6.1} GF/s {:.2e} s/MAC",
                    secs * 1e3,
                    2.0 * macs / secs / 1e9,
                    secs * t as f64 / macs
                );
            }
        }
        println!("{line}");
    }
}

fn main() {
    // `cargo bench` passes `--bench`; skip flags.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let repeats = args.first().and_then(|a| a.parse().ok()).unwrap_or(10);
    let filter = args.get(1).map_or("", String::as_str);
    let only = args
        .get(2)
        .filter(|m| *m != "all")
        .map(|m| m.parse::<Method>().expect("a method name"));
    let threads: Vec<usize> = match args.get(3) {
        Some(t) => vec![t.parse().expect("a thread count")],
        None => vec![1, 2],
    };
    run_cases::<f32>(repeats, filter, only, &threads);
    run_cases::<f64>(repeats, filter, only, &threads);
}
