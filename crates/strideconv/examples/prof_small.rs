//! Profile target: many calls of one small problem (`perf record` on it).
//! `cargo run --release -p strideconv --example prof_small -- n f s method reps`
//! Env: CONV=cin,cout (NCHW layer), SEEDC=c (n×n×c channel-last seed array), BATCH, F64,
//! ALT (alternate kernels so FFT spectra are never reused), EXPLAIN.
use std::time::Instant;

use ndarray::{ArrayD, Dimension, IxDyn};
use strideconv::{ConvSpec, Layout, Method, Options, Plan};

// The Python extension's allocator: large freed outputs are reused, as from Python.
#[global_allocator]
static ALLOC: strideconv::memory::KeepingAllocator = strideconv::memory::KeepingAllocator::new();

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, d: &str| a.get(i).cloned().unwrap_or_else(|| d.to_string());
    let n: usize = arg(0, "112").parse().unwrap();
    let f: usize = arg(1, "3").parse().unwrap();
    let s: usize = arg(2, "2").parse().unwrap();
    let m: Method = arg(3, "direct").parse().unwrap();
    let reps: usize = arg(4, "20000").parse().unwrap();
    // Depthwise channels (NCHW, groups = channels, padding f/2) when a sixth argument is given.
    let dw: usize = arg(5, "0").parse().unwrap();
    // A dense CNN layer (NCHW, padding f/2) when CONV=cin,cout is set.
    let conv: Option<(usize, usize)> = std::env::var("CONV").ok().map(|v| {
        let (a, b) = v.split_once(',').expect("CONV=cin,cout");
        (a.parse().unwrap(), b.parse().unwrap())
    });
    let (spec, xs, ks) = if let Some((cin, cout)) = conv {
        let opts = Options {
            padding: strideconv::Padding::Uniform(f / 2, f / 2),
            ..Options::strided(s)
        };
        let batch: usize = std::env::var("BATCH").map_or(1, |b| b.parse().unwrap());
        let (xs, ks) = (vec![batch, cin, n, n], vec![cout, cin, f, f]);
        let layout = Layout::Batched {
            channels_last: false,
        };
        (ConvSpec::new(&xs, &ks, layout, &opts).unwrap(), xs, ks)
    } else if dw > 0 {
        let opts = Options {
            groups: dw,
            padding: strideconv::Padding::Uniform(f / 2, f / 2),
            ..Options::strided(s)
        };
        let batch: usize = std::env::var("BATCH").map_or(1, |b| b.parse().unwrap());
        let (xs, ks) = (vec![batch, dw, n, n], vec![dw, 1, f, f]);
        let layout = Layout::Batched {
            channels_last: false,
        };
        (ConvSpec::new(&xs, &ks, layout, &opts).unwrap(), xs, ks)
    } else if let Ok(c) = std::env::var("SEEDC") {
        // The seed's n×n×c channel-last array with an f×f×c kernel (channel axis summed).
        let c: usize = c.parse().unwrap();
        let layout = Layout::Signal {
            channel_axis: Some(2),
            kernel_broadcast: false,
        };
        let (xs, ks) = (vec![n, n, c], vec![f, f, c]);
        (
            ConvSpec::new(&xs, &ks, layout, &Options::strided(s)).unwrap(),
            xs,
            ks,
        )
    } else {
        let layout = Layout::Signal {
            channel_axis: None,
            kernel_broadcast: false,
        };
        let (xs, ks) = (vec![n, n], vec![f, f]);
        (
            ConvSpec::new(&xs, &ks, layout, &Options::strided(s)).unwrap(),
            xs,
            ks,
        )
    };
    let threads: usize = arg(6, "1").parse().unwrap();
    let best = if std::env::var_os("F64").is_some() {
        time::<f64>(spec, m, threads, &xs, &ks, reps)
    } else {
        time::<f32>(spec, m, threads, &xs, &ks, reps)
    };
    println!("{n}² {f}×{f}/s{s} dw{dw} {m}: best {:.2} µs", best * 1e6);
}

/// Best time of `reps` calls of one plan (the mean is printed) (its explanation printed when EXPLAIN is set).
fn time<T>(
    spec: ConvSpec,
    m: Method,
    threads: usize,
    xs: &[usize],
    ks: &[usize],
    reps: usize,
) -> f64
where
    T: strideconv::Scalar + strideconv::Element<Compute = T> + From<u8>,
{
    let x = ArrayD::from_shape_fn(IxDyn(xs), |i| {
        T::from((i.slice().iter().sum::<usize>() % 5) as u8)
    });
    let k = ArrayD::from_shape_fn(IxDyn(ks), |i| {
        T::from((i.slice().iter().sum::<usize>() % 3) as u8)
    });
    // ALT set: calls alternate between k and 2k, so no call reuses the last kernel's spectra.
    let k2 = k.mapv(|v| v + v);
    let alt = std::env::var_os("ALT").is_some();
    let plan = Plan::<T>::new(spec, m, Some(threads)).unwrap();
    let mut best = f64::INFINITY;
    let start = Instant::now();
    for r in 0..reps {
        let kr = if alt && r % 2 == 1 { &k2 } else { &k };
        let t0 = Instant::now();
        std::hint::black_box(plan.execute(x.view(), kr.view()).unwrap());
        best = best.min(t0.elapsed().as_secs_f64());
    }
    let mean = start.elapsed().as_secs_f64() / reps.max(1) as f64;
    println!("mean {:.2} µs", mean * 1e6);
    if std::env::var_os("EXPLAIN").is_some() {
        print!("{}", plan.explain());
    }
    best
}
