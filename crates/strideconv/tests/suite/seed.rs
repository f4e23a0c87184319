//! The seed's worked example, exact, through every method that accepts integers, the plan
//! API, and every element type that can hold it.

use ndarray::{array, Array2};
use strideconv::{compute, correlate, ConvSpec, Layout, Method, Options, Plan, Run};

fn seed() -> (Array2<i64>, Array2<i64>, Array2<i64>) {
    let x = array![
        [2, 3, 7, 4, 6, 2, 9],
        [6, 6, 9, 8, 7, 4, 3],
        [3, 4, 8, 3, 8, 9, 7],
        [7, 8, 3, 6, 6, 3, 4],
        [4, 2, 1, 8, 3, 4, 6],
        [3, 2, 4, 1, 9, 8, 3],
        [0, 1, 3, 9, 2, 1, 4]
    ];
    let k = array![[3, 4, 4], [1, 0, 2], [-1, 0, 3]];
    let want = array![[91, 100, 88], [69, 91, 117], [44, 72, 74]];
    (x, k, want)
}

const SIGNAL: Layout = Layout::Signal {
    channel_axis: None,
    kernel_broadcast: false,
};

#[test]
fn seed_example_auto() {
    let (x, k, want) = seed();
    assert_eq!(
        correlate(x.view(), k.view(), &Options::strided(2)).unwrap(),
        want.into_dyn()
    );
}

#[test]
fn seed_example_every_exact_method_and_thread_count() {
    let (x, k, want) = seed();
    for m in Method::ALL.into_iter().filter(|m| m.is_exact()) {
        for threads in [Some(1), Some(2), None] {
            let got = compute(
                x.view().into_dyn(),
                k.view().into_dyn(),
                SIGNAL,
                &Options::strided(2),
                Run { method: m, threads },
            )
            .unwrap();
            assert_eq!(got, want.clone().into_dyn(), "method {m}");
        }
    }
}

#[test]
fn seed_example_floats_every_method() {
    let (x, k, want) = seed();
    let (xf, kf) = (x.mapv(|v| v as f64), k.mapv(|v| v as f64));
    let (xs, ks) = (x.mapv(|v| v as f32), k.mapv(|v| v as f32));
    for m in Method::ALL.into_iter().filter(|m| *m != Method::Winograd) {
        let run = Run {
            method: m,
            threads: Some(1),
        };
        let got = compute(
            xf.view().into_dyn(),
            kf.view().into_dyn(),
            SIGNAL,
            &Options::strided(2),
            run,
        )
        .unwrap();
        let got32 = compute(
            xs.view().into_dyn(),
            ks.view().into_dyn(),
            SIGNAL,
            &Options::strided(2),
            run,
        )
        .unwrap();
        for ((g, g32), w) in got.iter().zip(&got32).zip(&want) {
            assert!((g - *w as f64).abs() < 1e-9, "method {m}: {g} vs {w}");
            assert!(
                (g32 - *w as f32).abs() < 1e-3,
                "method {m} f32: {g32} vs {w}"
            );
        }
    }
}

#[test]
fn seed_example_through_a_plan_used_twice() {
    let (x, k, want) = seed();
    let spec = ConvSpec::new(x.shape(), k.shape(), SIGNAL, &Options::strided(2)).unwrap();
    let plan = Plan::<i128>::new(spec, Method::Auto, None).unwrap();
    assert!(plan.method().is_exact());
    for _ in 0..2 {
        assert_eq!(
            plan.execute(x.view().into_dyn(), k.view().into_dyn())
                .unwrap(),
            want.clone().into_dyn()
        );
    }
    assert!(plan.explain().contains("chosen"));
}

#[test]
fn fft_methods_refuse_integers_and_winograd_refuses() {
    let (x, k, _) = seed();
    for m in [Method::Fft, Method::FftFull, Method::Winograd] {
        let err = compute(
            x.view().into_dyn(),
            k.view().into_dyn(),
            SIGNAL,
            &Options::strided(2),
            Run {
                method: m,
                threads: None,
            },
        )
        .unwrap_err();
        assert!(
            matches!(err, strideconv::Error::MethodRefused { .. }),
            "{m}: {err}"
        );
    }
}
