//! Quick side-by-side table of the CNN layers: best-of-N time per method and thread count,
//! GFLOP/s, and seconds per multiply-add (what the planner's cost model is calibrated with).
//!
//! `cargo bench -p strideconv --bench layers [-- REPEATS [FILTER [METHOD|all [THREADS]]]]`, where
//! FILTER matches "dtype name", e.g. `"float32 128x"`. Best-of-N rather than
//! criterion's statistics: on a shared machine the fastest run is the least disturbed one.

use std::time::Instant;

use ndarray::{ArrayD, IxDyn};
use strideconv::{ConvSpec, Element, Layout, Method, Options, Padding, Plan, Scalar};

/// (name, cin, cout, size, kernel, stride, pad, channels_last), batch 1 unless the name says.
const LAYERS: [(&str, usize, usize, usize, usize, usize, usize, usize, bool); 12] = [
    ("64x64_3x3_s1_56", 1, 64, 64, 56, 3, 1, 1, false),
    ("128x128_3x3_s2_28", 1, 128, 128, 28, 3, 2, 1, false),
    ("256x256_1x1_14", 1, 256, 256, 14, 1, 1, 0, false),
    ("stem_3x64_7x7_s2_224", 1, 3, 64, 224, 7, 2, 3, false),
    ("256x256_3x3_s1_14", 1, 256, 256, 14, 3, 1, 1, false),
    ("512x512_3x3_s1_7", 1, 512, 512, 7, 3, 1, 1, false),
    ("64x64_3x3_s1_56_b8", 8, 64, 64, 56, 3, 1, 1, false),
    ("64x64_3x3_s1_56_nhwc", 1, 64, 64, 56, 3, 1, 1, true),
    ("1024_cubed_1x1_32", 1, 1024, 1024, 32, 1, 1, 0, false),
    // Kernel == stride: a ViT patch embedding and a 2×2 downsampling, both layouts.
    (
        "patch_3x768_16x16_s16_224",
        1,
        3,
        768,
        224,
        16,
        16,
        0,
        false,
    ),
    ("down_64x128_2x2_s2_56", 1, 64, 128, 56, 2, 2, 0, false),
    ("down_64x128_2x2_s2_56_nhwc", 1, 64, 128, 56, 2, 2, 0, true),
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

fn layers<T: Scalar + Element<Compute = T, Output = T>>(
    repeats: usize,
    filter: &str,
    only: Option<Method>,
    thread_counts: &[usize],
) {
    for &(name, batch, cin, cout, size, kernel, stride, pad, nhwc) in &LAYERS {
        if !format!("{} {name}", T::NAME).contains(filter) {
            continue;
        }
        let xs = if nhwc {
            [batch, size, size, cin]
        } else {
            [batch, cin, size, size]
        };
        let x = data::<T>(&xs, 1);
        let k = data::<T>(&[cout, cin, kernel, kernel], 2);
        let opts = Options {
            stride: vec![stride],
            padding: Padding::Uniform(pad, pad),
            ..Options::default()
        };
        let spec = ConvSpec::new(
            x.shape(),
            k.shape(),
            Layout::Batched {
                channels_last: nhwc,
            },
            &opts,
        )
        .unwrap();
        let macs = spec.macs();
        let mut line = format!("{:8} {name:22}", T::NAME);
        for &threads in thread_counts {
            for method in [Method::Direct, Method::Im2col] {
                if only.is_some_and(|m| m != method) {
                    continue;
                }
                let plan = Plan::<T>::new(spec.clone(), method, Some(threads)).unwrap();
                let secs = best_of(repeats, || {
                    std::hint::black_box(plan.execute(x.view(), k.view()).unwrap());
                });
                line += &format!(
                    " | {method:>6} t{threads} {:8.3} ms {:6.1} GF/s {:.2e} s/MAC",
                    secs * 1e3,
                    2.0 * macs / secs / 1e9,
                    secs * threads as f64 / macs
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
    layers::<f32>(repeats, filter, only, &threads);
    layers::<f64>(repeats, filter, only, &threads);
}
