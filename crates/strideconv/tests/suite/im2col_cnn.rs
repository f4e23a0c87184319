//! `im2col` on CNN-shaped problems (many channels, batches, groups, 1×1, kernel == stride,
//! channels-last, 3-D, long reductions) against the naive reference.
//!
//! The random agreement suite uses few channels; these shapes reach the paths that only
//! channel-heavy layers take: the in-place 1×1 product, tiles cut inside rows, reductions
//! cut into accumulated pieces, and the splits across threads.

use ndarray::{ArrayD, ArrayViewD, Axis, IxDyn, Slice};
use num_complex::Complex64;
use strideconv::{compute, Element, Layout, Method, Op, Options, PadMode, Padding, Run, Scalar};

use crate::common::Rng;

fn random<T: Scalar>(shape: &[usize], rng: &mut Rng) -> ArrayD<T> {
    ArrayD::from_shape_simple_fn(IxDyn(shape), || T::from_f64(rng.unit()))
}

/// One problem: the batched layout, its shapes and options.
#[derive(Clone, Debug)]
struct Layer {
    channels_last: bool,
    batch: usize,
    cin: usize,
    cout: usize,
    input: Vec<usize>,
    kernel: Vec<usize>,
    opts: Options,
}

impl Layer {
    fn new(
        cin: usize,
        cout: usize,
        input: &[usize],
        kernel: &[usize],
        stride: usize,
        pad: usize,
    ) -> Layer {
        Layer {
            channels_last: false,
            batch: 1,
            cin,
            cout,
            input: input.to_vec(),
            kernel: kernel.to_vec(),
            opts: Options {
                stride: vec![stride],
                padding: Padding::Uniform(pad, pad),
                ..Options::default()
            },
        }
    }
    fn nhwc(mut self) -> Layer {
        self.channels_last = true;
        self
    }
    fn batch(mut self, n: usize) -> Layer {
        self.batch = n;
        self
    }
    fn groups(mut self, g: usize) -> Layer {
        self.opts.groups = g;
        self
    }
    fn dilation(mut self, d: usize) -> Layer {
        self.opts.dilation = vec![d];
        self
    }
    fn x_shape(&self) -> Vec<usize> {
        let mut s = vec![self.batch];
        if self.channels_last {
            s.extend(&self.input);
            s.push(self.cin);
        } else {
            s.push(self.cin);
            s.extend(&self.input);
        }
        s
    }
    fn k_shape(&self) -> Vec<usize> {
        let mut s = vec![self.cout, self.cin / self.opts.groups];
        s.extend(&self.kernel);
        s
    }
    fn reduction(&self) -> usize {
        self.cin / self.opts.groups * self.kernel.iter().product::<usize>()
    }
}

fn run<E: Element>(
    layer: &Layer,
    x: ArrayViewD<'_, E>,
    k: ArrayViewD<'_, E>,
    method: Method,
    threads: usize,
) -> ArrayD<E::Output> {
    let layout = Layout::Batched {
        channels_last: layer.channels_last,
    };
    compute(
        x,
        k,
        layout,
        &layer.opts,
        Run {
            method,
            threads: Some(threads),
        },
    )
    .unwrap()
}

/// im2col on 1 and 2 threads against naive, within `4·eps·reduction` (inputs are in [-1, 1]).
fn check_view<T: Scalar + Element<Compute = T, Output = T>>(
    layer: &Layer,
    x: ArrayViewD<'_, T>,
    k: ArrayViewD<'_, T>,
    eps: f64,
) {
    let want = run(layer, x.view(), k.view(), Method::Naive, 1);
    let tol = 4.0 * eps * layer.reduction() as f64;
    for threads in [1, 2] {
        let got = run(layer, x.view(), k.view(), Method::Im2col, threads);
        assert_eq!(got.shape(), want.shape(), "{layer:?}");
        let worst = got
            .iter()
            .zip(want.iter())
            .map(|(&a, &b)| (a - b).magnitude())
            .fold(0.0, f64::max);
        assert!(
            worst <= tol,
            "{layer:?}, threads {threads}: error {worst:e} > {tol:e}"
        );
    }
}

fn check<T: Scalar + Element<Compute = T, Output = T>>(layer: &Layer, eps: f64, seed: u64) {
    let mut rng = Rng(seed);
    let x = random::<T>(&layer.x_shape(), &mut rng);
    let k = random::<T>(&layer.k_shape(), &mut rng);
    check_view(layer, x.view(), k.view(), eps);
}

/// Both float types, both layouts.
fn check_floats(layer: Layer, seed: u64) {
    for l in [layer.clone(), layer.nhwc()] {
        check::<f32>(&l, f32::EPSILON as f64, seed);
        check::<f64>(&l, f64::EPSILON, seed);
    }
}

#[test]
fn resnet_3x3_stride_1_and_2() {
    check_floats(Layer::new(16, 24, &[12, 12], &[3, 3], 1, 1).batch(2), 1);
    check_floats(Layer::new(32, 16, &[15, 15], &[3, 3], 2, 1), 2);
    // Many channels, few positions: the product is split by channels across threads.
    check_floats(Layer::new(64, 64, &[8, 8], &[3, 3], 1, 1), 3);
    // Enough positions for tiles on both threads.
    check_floats(Layer::new(8, 12, &[22, 21], &[3, 3], 1, 1), 4);
}

#[test]
fn pointwise_in_place_and_strided() {
    check_floats(Layer::new(40, 24, &[9, 11], &[1, 1], 1, 0).batch(3), 5);
    // Large enough to split across threads by positions, and by channels.
    check_floats(Layer::new(64, 64, &[20, 20], &[1, 1], 1, 0), 6);
    check_floats(Layer::new(64, 80, &[8, 8], &[1, 1], 1, 0), 7);
    // The downsampling shortcut: 1×1, stride 2 (gathered).
    check_floats(Layer::new(24, 48, &[14, 13], &[1, 1], 2, 0), 8);
    // Padding makes the 1×1 input a padded copy; still in place.
    check_floats(Layer::new(8, 8, &[5, 6], &[1, 1], 1, 1), 9);
}

#[test]
fn pointwise_outputs_past_the_caches() {
    // Whole outputs of 8 MiB and more are written with non-temporal stores where a vector
    // fills a cache line: rows that start on one (128² positions) and rows that mostly do
    // not (121×123), two images on two threads or one after the other.
    for (layer, seed) in [
        (Layer::new(16, 64, &[128, 128], &[1, 1], 1, 0).batch(2), 40),
        (Layer::new(8, 72, &[121, 123], &[1, 1], 1, 0).batch(2), 41),
    ] {
        check::<f32>(&layer, f32::EPSILON as f64, seed);
        check::<f64>(&layer, f64::EPSILON, seed);
    }
}

#[test]
fn pointwise_from_views_that_do_not_merge() {
    // Every other column of a wider array: positions are not one stride, so 1×1 gathers.
    let layer = Layer::new(12, 10, &[7, 9], &[1, 1], 1, 0);
    for l in [layer.clone(), layer.nhwc()] {
        let mut rng = Rng(10);
        let mut wide = l.x_shape();
        let w_axis = if l.channels_last { 2 } else { 3 };
        wide[w_axis] *= 2;
        let xb = random::<f64>(&wide, &mut rng);
        let mut x = xb.view();
        x.slice_axis_inplace(Axis(w_axis), Slice::new(0, None, 2));
        let k = random::<f64>(&l.k_shape(), &mut rng);
        check_view(&l, x, k.view(), f64::EPSILON);
    }
}

#[test]
fn kernel_equals_stride() {
    check_floats(Layer::new(6, 16, &[16, 16], &[2, 2], 2, 0).batch(2), 11);
    check_floats(Layer::new(3, 32, &[32, 32], &[4, 4], 4, 0), 12);
    check_floats(Layer::new(5, 7, &[9, 10], &[3, 3], 3, 0), 13);
    // A ViT-style patch embedding: steps beyond the specialised ones.
    check_floats(Layer::new(3, 8, &[32, 48], &[16, 16], 16, 0), 28);
}

#[test]
fn stem_7x7_stride_2() {
    check_floats(Layer::new(3, 16, &[40, 38], &[7, 7], 2, 3), 14);
}

#[test]
fn groups_and_depthwise() {
    check_floats(Layer::new(16, 8, &[10, 10], &[3, 3], 1, 1).groups(4), 15);
    check_floats(
        Layer::new(12, 12, &[11, 11], &[3, 3], 2, 1)
            .groups(12)
            .batch(2),
        16,
    );
    check_floats(Layer::new(8, 16, &[9, 9], &[3, 3], 1, 1).groups(8), 17);
}

#[test]
fn dilated_and_mixed_strides() {
    check_floats(Layer::new(8, 8, &[14, 14], &[3, 3], 1, 2).dilation(2), 18);
    let mut l = Layer::new(6, 5, &[13, 17], &[3, 2], 1, 1).dilation(2);
    l.opts.stride = vec![2, 3];
    check_floats(l, 19);
}

#[test]
fn three_dimensional() {
    check_floats(Layer::new(4, 5, &[6, 7, 6], &[3, 3, 3], 1, 1), 20);
    check_floats(Layer::new(4, 6, &[7, 6, 8], &[2, 3, 3], 2, 0).batch(2), 21);
    // Small slices: tiles span several depth slices.
    check_floats(Layer::new(8, 8, &[20, 3, 3], &[1, 3, 3], 1, 1), 22);
}

#[test]
fn long_rows_are_cut_into_pieces() {
    // Reduction 64·65 = 4160: a tile holds 64 positions, fewer than one output row.
    check_floats(Layer::new(64, 3, &[500], &[65], 1, 0), 23);
    check_floats(Layer::new(64, 3, &[700], &[65], 3, 0), 24);
}

#[test]
fn long_reductions_are_cut_and_accumulated() {
    // One window (4·300000 float64 = 9.6 MB) exceeds the panel ceiling: the reduction is
    // gathered and multiplied in pieces that accumulate.
    let layer = Layer::new(4, 2, &[300_010], &[300_000], 1, 0);
    for l in [layer.clone(), layer.nhwc()] {
        check::<f64>(&l, f64::EPSILON, 25);
    }
}

#[test]
fn integers_stay_exact() {
    // Products near 2^54, sums near 2^61: beyond float64's 53-bit significand, within i64.
    let layer = Layer::new(16, 8, &[9, 9], &[3, 3], 2, 1);
    for l in [layer.clone(), layer.nhwc()] {
        let mut rng = Rng(26);
        let big = |rng: &mut Rng| (rng.unit() * (1u64 << 40) as f64) as i64;
        let x = ArrayD::from_shape_simple_fn(IxDyn(&l.x_shape()), || big(&mut rng));
        let k = ArrayD::from_shape_simple_fn(IxDyn(&l.k_shape()), || big(&mut rng) >> 26);
        let want = run(&l, x.view(), k.view(), Method::Naive, 1);
        for threads in [1, 2] {
            assert_eq!(
                run(&l, x.view(), k.view(), Method::Im2col, threads),
                want,
                "{l:?}"
            );
        }
    }
}

#[test]
fn complex_layers() {
    let layer = Layer::new(8, 6, &[10, 9], &[3, 3], 2, 1).batch(2);
    for l in [layer.clone(), layer.nhwc()] {
        check::<Complex64>(&l, f64::EPSILON * 2.0, 27);
    }
}

#[test]
fn implicit_products_on_grids() {
    // Inputs at least one vector wide take the implicit product (no panel): in place at
    // stride 1, from phase-split copies otherwise. Widths on both sides of a vector (8 and
    // 16 lanes), so grid rows end inside and at the edge of vectors; batches; few and many
    // output channels (threads split positions, or channels when positions are few).
    for (w, seed) in [(15, 40), (16, 41), (17, 42), (31, 43), (33, 44)] {
        check_floats(Layer::new(5, 11, &[9, w], &[3, 3], 1, 1), seed);
        check_floats(
            Layer::new(6, 9, &[13, w], &[3, 3], 2, 1).batch(2),
            seed + 100,
        );
    }
    check_floats(Layer::new(3, 20, &[47, 45], &[7, 7], 2, 3), 45);
    check_floats(Layer::new(48, 40, &[18, 18], &[3, 3], 1, 1), 46);
    check_floats(Layer::new(24, 72, &[16, 20], &[3, 3], 1, 0).batch(3), 47);
    check_floats(Layer::new(4, 9, &[20, 40], &[5, 3], 3, 2).dilation(2), 48);
    // Stride 2 with 32 output channels: the channels-in-lanes product, positions two apart,
    // on the unpadded input in place (and, padded, on its plain padded copy).
    check_floats(Layer::new(8, 32, &[17, 33], &[3, 3], 2, 0).batch(2), 53);
    check_floats(Layer::new(8, 32, &[15, 31], &[3, 3], 2, 1), 54);
    // Stride 2 down the rows only (positions one apart along them), odd heights.
    for (h, seed) in [(17, 55), (18, 56)] {
        let mut rows = Layer::new(8, 32, &[h, 29], &[3, 3], 1, 1);
        rows.opts.stride = vec![2, 1];
        check_floats(rows.clone(), seed);
        rows.opts.padding = Padding::Uniform(0, 0);
        check_floats(rows, seed + 10);
    }
    let mut mixed = Layer::new(5, 6, &[19, 37], &[4, 2], 1, 1);
    mixed.opts.stride = vec![1, 2];
    check_floats(mixed, 49);
    // 3-D: grid rows past the output's height within each depth slice are dropped too.
    check_floats(Layer::new(3, 10, &[5, 6, 20], &[3, 2, 3], 1, 1), 50);
    check_floats(Layer::new(4, 7, &[7, 9, 34], &[3, 3, 3], 2, 1).batch(2), 51);
}

#[test]
fn implicit_products_of_strided_inputs() {
    // Every other column of a wider input: not contiguous, so stride 1 copies its planes.
    let layer = Layer::new(6, 10, &[11, 24], &[3, 3], 1, 1);
    check_every_other_column::<f32>(&layer, f32::EPSILON as f64, 52);
}

/// `layer` on every other column of a twice-as-wide random input (not contiguous).
fn check_every_other_column<T: Scalar + Element<Compute = T, Output = T>>(
    layer: &Layer,
    eps: f64,
    seed: u64,
) {
    let mut rng = Rng(seed);
    let mut wide = layer.x_shape();
    wide[3] *= 2;
    let xb = random::<T>(&wide, &mut rng);
    let mut x = xb.view();
    x.slice_axis_inplace(Axis(3), Slice::new(1, None, 2));
    let k = random::<T>(&layer.k_shape(), &mut rng);
    check_view(layer, x, k.view(), eps);
}

#[test]
fn implicit_products_pad_as_they_split() {
    // Padded float layers give the implicit product the unpadded input, and its phase split
    // pads each row as it copies: every pad mode, a non-zero constant, padding wider than
    // the kernel (rows and columns made of padding only), uneven and per-axis amounts,
    // stride 1 (one phase) and 2 and 3, dilation, 3-D, batches, convolution (flipped
    // kernel) and inputs that are not contiguous.
    let modes = [
        PadMode::Constant,
        PadMode::Reflect,
        PadMode::Symmetric,
        PadMode::Edge,
        PadMode::Wrap,
    ];
    for (i, &mode) in modes.iter().enumerate() {
        let seed = 60 + 10 * i as u64;
        let with = |mut l: Layer| {
            l.opts.pad_mode = mode;
            l.opts.cval = 0.5;
            l
        };
        check_floats(with(Layer::new(6, 9, &[13, 33], &[3, 3], 2, 1)), seed);
        check_floats(
            with(Layer::new(5, 7, &[9, 17], &[3, 3], 1, 2).batch(3)),
            seed + 1,
        );
        let mut wide = Layer::new(4, 6, &[8, 19], &[3, 3], 2, 0);
        wide.opts.padding = Padding::Explicit(vec![(4, 0), (1, 5)]);
        check_floats(with(wide), seed + 2);
        let mut uneven = Layer::new(3, 8, &[21, 40], &[5, 4], 3, 0).dilation(2);
        uneven.opts.padding = Padding::Uniform(2, 3);
        uneven.opts.op = Op::Convolve;
        check_floats(with(uneven), seed + 3);
        check_floats(
            with(Layer::new(3, 5, &[6, 7, 20], &[3, 3, 3], 2, 1)),
            seed + 4,
        );
        let mut same = Layer::new(4, 6, &[15, 35], &[4, 4], 2, 0);
        same.opts.padding = Padding::SameTf;
        check_floats(with(same), seed + 5);
    }
    // Every other column of a wider input, padded: rows are copied before they are padded.
    let layer = Layer::new(6, 10, &[11, 34], &[3, 3], 2, 1);
    check_every_other_column::<f64>(&layer, f64::EPSILON, 120);
}

#[test]
fn random_layers_on_every_route() {
    // Random 2-D layers with channel counts around the products' strip widths (8, 16, 32)
    // and per-axis strides, dilations and uneven padding: every product (positions in
    // lanes, channels in lanes, at steps 1 and 2, in place or from a copy) and every gather
    // gets shapes no hand-picked case names (stride (2, 1) at an odd height was one).
    let mut rng = Rng(900);
    for case in 0..40 {
        let cout = [1, 7, 16, 31, 32, 33, 48, 64][rng.below(8)];
        let cin = rng.range(1, 12);
        let kernel = [rng.range(1, 5), rng.range(1, 5)];
        let stride = vec![rng.range(1, 3), rng.range(1, 3)];
        let dilation = vec![rng.range(1, 2), rng.range(1, 2)];
        let pads: Vec<(usize, usize)> =
            (0..2).map(|_| (rng.range(0, 2), rng.range(0, 2))).collect();
        let input: Vec<usize> = (0..2)
            .map(|a| (kernel[a] - 1) * dilation[a] + rng.range(1, 40))
            .collect();
        let mut layer = Layer::new(cin, cout, &input, &kernel, 1, 0).batch(rng.range(1, 2));
        layer.opts.stride = stride;
        layer.opts.dilation = dilation;
        layer.opts.padding = Padding::Explicit(pads);
        check_floats(layer, 1000 + case);
    }
}
