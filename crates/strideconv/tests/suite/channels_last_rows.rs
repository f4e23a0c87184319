//! Channels-last inputs whose rows `direct` reads as one long row of interleaved values
//! (method/direct.rs, `run_flat`): the split by stride × channels phases
//! (`kernels::split_phases`) and the row kernel against the naive loop, on shapes where that
//! path is taken (short kernel rows, every phase used) and around it.

use ndarray::ArrayD;
use strideconv::{compute, Layout, Method, Options, Padding};

use crate::common::{on, values as data, worst};

/// `direct` on 1 and 2 threads, float64 and float32, against the naive loop in float64.
fn agree(x: &ArrayD<f64>, k: &ArrayD<f64>, layout: Layout, opts: &Options, case: &str) {
    let want = compute(
        x.view(),
        k.view(),
        layout.clone(),
        opts,
        on(Method::Naive, 1),
    )
    .unwrap();
    let (x32, k32) = (x.mapv(|v| v as f32), k.mapv(|v| v as f32));
    let want32 = want.mapv(|v| v as f32);
    let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    for threads in [1, 2] {
        let got = compute(
            x.view(),
            k.view(),
            layout.clone(),
            opts,
            on(Method::Direct, threads),
        );
        let off = worst(&got.unwrap(), &want);
        assert!(
            off < 1e-12 * scale,
            "{case}, {threads} threads: off by {off}"
        );
        let got32 = compute(
            x32.view(),
            k32.view(),
            layout.clone(),
            opts,
            on(Method::Direct, threads),
        );
        let off32 = worst(&got32.unwrap(), &want32);
        assert!(
            off32 < 1e-5 * scale,
            "{case}, float32, {threads} threads: off by {off32}"
        );
    }
}

#[test]
fn seed_arrays_with_few_channels_match_the_naive_loop() {
    // n×n×C with an f×f×C kernel (the channel axis summed): channel counts and strides on
    // both sides of the split's limits, kernels from the stride up, widths giving whole
    // gathered blocks and tails.
    let layout = Layout::Signal {
        channel_axis: Some(2),
        kernel_broadcast: false,
    };
    let mut seed = 1;
    for c in [2, 3, 5, 6, 8, 16] {
        for s in [1, 2, 3] {
            for f in [s, s + 1, s + 3] {
                for n in [37, 70] {
                    seed += 2;
                    let x = data(&[n, n, c], seed);
                    let k = data(&[f, f, c], seed + 1);
                    let opts = Options::strided(s);
                    agree(
                        &x,
                        &k,
                        layout.clone(),
                        &opts,
                        &format!("{n}²×{c} ⋆ {f}², stride {s}"),
                    );
                }
            }
        }
    }
}

#[test]
fn channels_last_layers_padded_strided_and_in_three_dimensions_match() {
    // NHWC batches with several output channels and padding (the padded copy is
    // channels-last too), strides differing per axis, and an NDHWC volume.
    let nhwc = Layout::Batched {
        channels_last: true,
    };
    for (xs, ks, stride, pad) in [
        (vec![2, 29, 41, 3], vec![4, 3, 3, 3], vec![1, 1], 1),
        (vec![1, 33, 50, 5], vec![3, 5, 3, 4], vec![2, 2], 2),
        (vec![2, 20, 64, 2], vec![2, 2, 2, 5], vec![1, 3], 0),
        (
            vec![1, 12, 14, 40, 4],
            vec![2, 4, 2, 3, 2],
            vec![1, 2, 2],
            1,
        ),
    ] {
        let x = data(&xs, 5);
        let k = data(&ks, 6);
        let opts = Options {
            stride: stride.clone(),
            padding: Padding::Uniform(pad, pad),
            ..Options::default()
        };
        let case = format!("{xs:?} ⋆ {ks:?}, stride {stride:?}, padding {pad}");
        agree(&x, &k, nhwc.clone(), &opts, &case);
    }
}

#[test]
fn rows_shared_by_consecutive_chunks_are_kept_not_copied_again() {
    // Rows long enough that `direct` takes a chunk of 8 output rows at a time (its buffer
    // holds about 2^16 elements), so a chunk's first input rows are the ones the chunk
    // before read last, moved to the buffer's front: one channel, channels-last read as
    // one row, several input and output channels (a block each), a shorter last chunk, a
    // vertical stride of 1, a dilation, and a stride taller than the kernel (nothing kept).
    let signal = |channel_axis| Layout::Signal {
        channel_axis,
        kernel_broadcast: false,
    };
    let nchw = Layout::Batched {
        channels_last: false,
    };
    // Input and kernel shapes, layout, stride, dilation.
    type Case = (Vec<usize>, Vec<usize>, Layout, Vec<usize>, Vec<usize>);
    let cases: [Case; 6] = [
        (
            vec![40, 3000],
            vec![9, 5],
            signal(None),
            vec![2, 2],
            vec![1, 1],
        ),
        (
            vec![60, 1100, 5],
            vec![17, 17, 5],
            signal(Some(2)),
            vec![2, 2],
            vec![1, 1],
        ),
        (
            vec![1, 3, 30, 2000],
            vec![2, 3, 5, 5],
            nchw.clone(),
            vec![1, 2],
            vec![1, 1],
        ),
        (
            vec![1, 2, 70, 2500],
            vec![2, 2, 3, 3],
            nchw.clone(),
            vec![4, 2],
            vec![1, 1],
        ),
        (
            vec![1, 1, 61, 3000],
            vec![1, 1, 4, 3],
            nchw,
            vec![3, 2],
            vec![2, 1],
        ),
        (
            vec![45, 1200, 3],
            vec![7, 6, 3],
            signal(Some(2)),
            vec![1, 3],
            vec![1, 1],
        ),
    ];
    for (i, (xs, ks, layout, stride, dilation)) in cases.into_iter().enumerate() {
        let x = data(&xs, 40 + i as u64);
        let k = data(&ks, 50 + i as u64);
        let opts = Options {
            stride: stride.clone(),
            dilation: dilation.clone(),
            ..Options::default()
        };
        let case = format!("{xs:?} ⋆ {ks:?}, stride {stride:?}, dilation {dilation:?}");
        agree(&x, &k, layout, &opts, &case);
    }
}
