//! Time RustFFT/RealFFT per transform length, to see which lengths `fast_len` should prefer.
//! `cargo run --release -p strideconv --example fft_sizes -- lo hi [f32]`
//! Prints, per length, ns per complex and per real transform and ns / (n log2 n).
use std::time::Instant;

use num_complex::Complex;
use realfft::RealFftPlanner;
use rustfft::{FftNum, FftPlanner};

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let lo: usize = a.first().map_or(96, |v| v.parse().unwrap());
    let hi: usize = a.get(1).map_or(128, |v| v.parse().unwrap());
    if a.get(2).is_some_and(|v| v == "f32") {
        run::<f32>(lo, hi);
    } else {
        run::<f64>(lo, hi);
    }
}

fn run<F: FftNum>(lo: usize, hi: usize) {
    let mut cp = FftPlanner::<F>::new();
    let mut rp = RealFftPlanner::<F>::new();
    for n in lo..=hi {
        let rows = (1 << 20) / n;
        let f = cp.plan_fft_forward(n);
        let mut buf = vec![Complex::new(F::one(), F::zero()); rows * n];
        let mut scratch = vec![Complex::new(F::zero(), F::zero()); f.get_inplace_scratch_len()];
        let mut best_c = f64::INFINITY;
        for _ in 0..5 {
            let t = Instant::now();
            f.process_with_scratch(&mut buf, &mut scratch);
            best_c = best_c.min(t.elapsed().as_secs_f64());
        }
        let r = rp.plan_fft_forward(n);
        let mut input = vec![F::one(); rows * n];
        let mut out = vec![Complex::new(F::zero(), F::zero()); rows * (n / 2 + 1)];
        let mut rs = r.make_scratch_vec();
        let mut best_r = f64::INFINITY;
        for _ in 0..5 {
            let t = Instant::now();
            for (i, o) in input
                .chunks_exact_mut(n)
                .zip(out.chunks_exact_mut(n / 2 + 1))
            {
                r.process_with_scratch(i, o, &mut rs).unwrap();
            }
            best_r = best_r.min(t.elapsed().as_secs_f64());
        }
        let per = |t: f64| t / rows as f64 * 1e9;
        let nlog = n as f64 * (n as f64).log2();
        println!(
            "{n:5} complex {:8.1} ns ({:.2} ns/nlogn)  real {:8.1} ns ({:.2})",
            per(best_c),
            per(best_c) / nlog,
            per(best_r),
            per(best_r) / nlog
        );
    }
}
