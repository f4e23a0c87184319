//! Compare `auto` with the method it picks, forced, on a few shapes (overhead of auto).
use std::time::Instant;

use ndarray::{ArrayD, IxDyn};
use strideconv::{ConvSpec, Layout, Method, Options, Plan};

/// Input shape, kernel shape, channel axis, stride.
type Case = (&'static [usize], &'static [usize], Option<usize>, usize);

fn main() {
    let cases: &[Case] = &[
        (&[512, 512, 5], &[64, 64, 5], Some(2), 2),
        (&[256, 256, 10], &[3, 3, 10], Some(2), 5),
        (&[512, 512], &[65, 65], None, 2),
        (&[128, 128], &[9, 9], None, 2),
        (&[256, 256], &[4, 4], None, 2),
    ];
    for &(xs, ks, ca, s) in cases {
        let layout = Layout::Signal {
            channel_axis: ca,
            kernel_broadcast: false,
        };
        let spec = ConvSpec::new(xs, ks, layout, &Options::strided(s)).unwrap();
        let x = ArrayD::from_shape_fn(IxDyn(xs), |i| (i[0] * 3 + i[1] * 7) as f64 % 5.0);
        let k = ArrayD::from_shape_fn(IxDyn(ks), |i| (i[0] + i[1]) as f64 % 3.0);
        let auto = Plan::<f64>::new(spec.clone(), Method::Auto, None).unwrap();
        let forced = Plan::<f64>::new(spec.clone(), auto.method(), None).unwrap();
        let mut t = [f64::INFINITY; 2];
        for _ in 0..200 {
            for (i, p) in [&auto, &forced].iter().enumerate() {
                let t0 = Instant::now();
                std::hint::black_box(p.execute(x.view(), k.view()).unwrap());
                t[i] = t[i].min(t0.elapsed().as_secs_f64());
            }
        }
        println!(
            "{xs:?} {ks:?} s{s}: auto({}) {:.3} ms, forced {:.3} ms",
            auto.method(),
            t[0] * 1e3,
            t[1] * 1e3
        );
    }
}
