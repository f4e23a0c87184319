//! Quick per-method timings on a few seed-like shapes, for kernel development:
//! `cargo run --release -p strideconv --example quick_timing [threads]`.
//! The side-by-side comparison with peers lives in bench/ and `strideconv compare`.

use std::time::Instant;

use ndarray::{ArrayD, IxDyn};
use strideconv::{ConvSpec, Layout, Method, Options, Plan};

fn data(shape: &[usize], seed: u64) -> ArrayD<f64> {
    let mut s = seed;
    ArrayD::from_shape_simple_fn(IxDyn(shape), || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (s >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    })
}

/// Input shape, kernel shape, channel axis, stride.
type Case = (&'static [usize], &'static [usize], Option<usize>, usize);

fn main() {
    let threads = std::env::args().nth(1).and_then(|a| a.parse().ok());
    let cases: &[Case] = &[
        (&[512, 512], &[3, 3], None, 2),
        (&[512, 512], &[9, 9], None, 2),
        (&[512, 512], &[33, 33], None, 2),
        (&[512, 512], &[129, 129], None, 2),
        (&[512, 512], &[480, 480], None, 2),
        (&[512, 512, 5], &[5, 5, 5], Some(2), 2),
        (&[512, 512, 10], &[17, 17, 10], Some(2), 5),
    ];
    for &(xs, ks, ca, s) in cases {
        let layout = Layout::Signal {
            channel_axis: ca,
            kernel_broadcast: false,
        };
        let spec = ConvSpec::new(xs, ks, layout, &Options::strided(s)).unwrap();
        let (x, k) = (data(xs, 1), data(ks, 2));
        let auto = Plan::<f64>::new(spec.clone(), Method::Auto, threads)
            .unwrap()
            .method();
        print!("x {xs:?} k {ks:?} s {s} (auto: {auto}):");
        for m in Method::ALL
            .into_iter()
            .filter(|m| !matches!(m, Method::Naive | Method::Winograd))
        {
            let plan = Plan::<f64>::new(spec.clone(), m, threads).unwrap();
            let est = spec.macs();
            if matches!(m, Method::ShiftAdd | Method::Im2col) && est > 2e9 {
                print!("  {m} -");
                continue;
            }
            let t0 = Instant::now();
            let mut reps = 0;
            while reps < 3 || (t0.elapsed().as_secs_f64() < 0.3 && reps < 50) {
                std::hint::black_box(plan.execute(x.view(), k.view()).unwrap());
                reps += 1;
            }
            print!(
                "  {m} {:.2}ms",
                t0.elapsed().as_secs_f64() / reps as f64 * 1e3
            );
        }
        println!();
    }
}
