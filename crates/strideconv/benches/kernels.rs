//! Criterion benches of the compute methods, in GFLOP/s (2 flops per multiply-add of the
//! direct definition, whatever the method really does).
//!
//! Criterion prints throughput as "elem/s": here one element is one flop, so `Gelem/s` reads
//! as GFLOP/s. Compare with the FMA peak of PERFORMANCE.md (about 260 GFLOP/s float32 per
//! core on the development machine, half for float64) and with the `gemm_ceiling` group: a
//! 1024×1024×1024 product (a 1×1 layer through `im2col`, which multiplies in place), the
//! best the GEMM itself reaches here.
//!
//! `cargo bench -p strideconv --bench kernels -- cnn/` runs one family; each bench is short
//! (10 samples, 2 s) so the whole file takes a few minutes.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ndarray::{ArrayD, IxDyn};
use strideconv::{ConvSpec, Element, Layout, Method, Options, Padding, Plan, Scalar};

/// A ResNet-like layer, batch 1, NCHW.
struct Layer {
    name: &'static str,
    cin: usize,
    cout: usize,
    size: usize,
    kernel: usize,
    stride: usize,
    pad: usize,
}

const LAYERS: [Layer; 4] = [
    Layer {
        name: "64x64_3x3_s1_56",
        cin: 64,
        cout: 64,
        size: 56,
        kernel: 3,
        stride: 1,
        pad: 1,
    },
    Layer {
        name: "128x128_3x3_s2_28",
        cin: 128,
        cout: 128,
        size: 28,
        kernel: 3,
        stride: 2,
        pad: 1,
    },
    Layer {
        name: "256x256_1x1_14",
        cin: 256,
        cout: 256,
        size: 14,
        kernel: 1,
        stride: 1,
        pad: 0,
    },
    Layer {
        name: "stem_3x64_7x7_s2_224",
        cin: 3,
        cout: 64,
        size: 224,
        kernel: 7,
        stride: 2,
        pad: 3,
    },
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

/// Largest difference between two results, relative to the largest magnitude.
fn rel_diff<T: Scalar>(a: &ArrayD<T>, b: &ArrayD<T>) -> f64 {
    let scale = a
        .iter()
        .fold(0.0f64, |m, v| m.max(v.magnitude()))
        .max(1e-300);
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (x - y).magnitude())
        .fold(0.0, f64::max)
        / scale
}

/// Bench every (method, threads) on one problem, after checking each agrees with the first.
fn bench_problem<T: Scalar + Element<Compute = T, Output = T>>(
    c: &mut Criterion,
    group: &str,
    name: &str,
    spec: ConvSpec,
    x: &ArrayD<T>,
    k: &ArrayD<T>,
    runs: &[(Method, usize)],
) {
    let mut g = c.benchmark_group(group);
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    g.throughput(Throughput::Elements((2.0 * spec.macs()) as u64));
    let mut reference: Option<ArrayD<T>> = None;
    for &(method, threads) in runs {
        let plan = Plan::<T>::new(spec.clone(), method, Some(threads)).unwrap();
        let y = plan.execute(x.view(), k.view()).unwrap();
        match &reference {
            None => reference = Some(y),
            Some(r) => {
                let d = rel_diff(r, &y);
                assert!(
                    d < 1e-3,
                    "{group}/{name}: {method} differs from {} by {d:e}",
                    runs[0].0
                );
            }
        }
        let id = BenchmarkId::new(
            format!("{name}/{}/{method}", T::NAME),
            format!("t{threads}"),
        );
        g.bench_function(id, |b| b.iter(|| plan.execute(x.view(), k.view()).unwrap()));
    }
    g.finish();
}

fn cnn_layers<T: Scalar + Element<Compute = T, Output = T>>(c: &mut Criterion) {
    let runs = [
        (Method::Direct, 1),
        (Method::Im2col, 1),
        (Method::Direct, 2),
        (Method::Im2col, 2),
    ];
    for l in &LAYERS {
        let x = data::<T>(&[1, l.cin, l.size, l.size], 1);
        let k = data::<T>(&[l.cout, l.cin, l.kernel, l.kernel], 2);
        let opts = Options {
            stride: vec![l.stride],
            padding: Padding::Uniform(l.pad, l.pad),
            ..Options::default()
        };
        let spec = ConvSpec::new(
            x.shape(),
            k.shape(),
            Layout::Batched {
                channels_last: false,
            },
            &opts,
        )
        .unwrap();
        bench_problem(c, "cnn", l.name, spec, &x, &k, &runs);
    }
}

fn cnn(c: &mut Criterion) {
    cnn_layers::<f32>(c);
    cnn_layers::<f64>(c);
}

/// The seed's world: one 512×512 float64 array, stride 2, small and large kernels.
fn seed(c: &mut Criterion) {
    let x = data::<f64>(&[512, 512], 3);
    for f in [9, 33] {
        let k = data::<f64>(&[f, f], 4);
        let layout = Layout::Signal {
            channel_axis: None,
            kernel_broadcast: false,
        };
        let spec = ConvSpec::new(x.shape(), k.shape(), layout, &Options::strided(2)).unwrap();
        let runs = [(Method::Direct, 1), (Method::Fft, 1)];
        bench_problem(c, "seed", &format!("512_{f}x{f}_s2"), spec, &x, &k, &runs);
    }
}

/// What the GEMM alone reaches: a 1×1 layer of 1024 channels at 32×32 is one in-place
/// 1024×1024×1024 product.
fn gemm_ceiling(c: &mut Criterion) {
    fn one<T: Scalar + Element<Compute = T, Output = T>>(c: &mut Criterion) {
        let x = data::<T>(&[1, 1024, 32, 32], 5);
        let k = data::<T>(&[1024, 1024, 1, 1], 6);
        let spec = ConvSpec::new(
            x.shape(),
            k.shape(),
            Layout::Batched {
                channels_last: false,
            },
            &Options::default(),
        )
        .unwrap();
        bench_problem(
            c,
            "gemm_ceiling",
            "1024_cubed",
            spec,
            &x,
            &k,
            &[(Method::Im2col, 1)],
        );
    }
    one::<f32>(c);
    one::<f64>(c);
}

criterion_group!(benches, gemm_ceiling, cnn, seed);
criterion_main!(benches);
