//! PERFORMANCE.md target 5: on an 8192×8192 float64 input, every method needs at most the
//! output plus 64 MiB beyond the input (plus the kernel's spectra where an FFT is used).
//! Measured with a counting global allocator. Also checks the banded (overlap-save) FFT,
//! which only large inputs reach, against `direct`.

use ndarray::{ArrayD, IxDyn};
use strideconv::memory::{current_bytes, peak_bytes, reset_peak, CountingAllocator};
use strideconv::{ConvSpec, Layout, Method, Options, Plan};

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator::new();

const MIB: usize = 1 << 20;

fn data(shape: &[usize], seed: u64) -> ArrayD<f64> {
    let mut s = seed;
    ArrayD::from_shape_simple_fn(IxDyn(shape), || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 40) % 17) as f64 - 8.0
    })
}

/// Extra bytes (beyond inputs and output) at the peak of one run, and the result.
fn run(plan: &Plan<f64>, x: &ArrayD<f64>, k: &ArrayD<f64>) -> (usize, ArrayD<f64>) {
    let out_bytes = plan.spec().out_shape().iter().product::<usize>() * 8;
    let before = current_bytes();
    reset_peak();
    let y = plan.execute(x.view(), k.view()).unwrap();
    let extra = peak_bytes().saturating_sub(before + out_bytes);
    (extra, y)
}

#[test]
fn every_method_stays_within_64_mib_beyond_input_and_output_on_8192_squared() {
    let n = 8192;
    let x = data(&[n, n], 1);
    let layout = Layout::Signal {
        channel_axis: None,
        kernel_broadcast: false,
    };
    for (f, stride, methods) in [
        (
            3,
            2,
            vec![
                Method::Direct,
                Method::ShiftAdd,
                Method::Im2col,
                Method::Naive,
                Method::Fft,
                Method::FftFull,
            ],
        ),
        (31, 2, vec![Method::Direct, Method::Fft, Method::FftFull]),
        // Winograd computes stride 1 only (checked against direct at the same stride).
        (3, 1, vec![Method::Direct, Method::Winograd]),
    ] {
        let k = data(&[f, f], 2);
        let spec =
            ConvSpec::new(&[n, n], &[f, f], layout.clone(), &Options::strided(stride)).unwrap();
        let mut reference: Option<ArrayD<f64>> = None;
        for m in methods {
            let plan = Plan::<f64>::new(spec.clone(), m, Some(2)).unwrap();
            let (extra, y) = run(&plan, &x, &k);
            // Kernel spectra are allowed on top: bounded by the band transform size here.
            let allowance = 64 * MIB
                + if matches!(m, Method::Fft | Method::FftFull) {
                    4 * 16 * MIB
                } else {
                    0
                };
            assert!(
                extra <= allowance,
                "{m} with a {f}x{f} kernel used {} MiB beyond input and output",
                extra / MIB
            );
            eprintln!(
                "{m:>9} f={f:<3} extra {:>5.1} MiB",
                extra as f64 / MIB as f64
            );
            match &reference {
                None => reference = Some(y),
                Some(r) => {
                    let err = r
                        .iter()
                        .zip(&y)
                        .map(|(a, b)| (a - b).abs())
                        .fold(0.0, f64::max);
                    assert!(
                        err < 1e-6 * (f * f) as f64 * 64.0,
                        "{m} differs from the first method by {err}"
                    );
                }
            }
        }
    }
}
