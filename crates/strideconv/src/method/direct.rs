//! `direct`: the definition reordered for speed. One output row at a time is accumulated in
//! a buffer; for each input channel and kernel row, every kernel column adds a (strided)
//! input row segment, so the innermost loop runs along contiguous output and vectorises.
//! Stride-native: no output is computed that the stride drops.

use ndarray::{s, ArrayView5, ArrayViewMut5};

use super::{Algorithm, Geom, Tiling};
use crate::Scalar;

pub(crate) struct Direct;

/// `acc[j] += w · row[off + j·stride]` for every `j`; the stride-1 case is split out so the
/// compiler sees a plain zip and vectorises it.
#[inline(always)]
pub(crate) fn axpy_strided<T: Scalar>(acc: &mut [T], w: T, row: &[T], off: usize, stride: usize) {
    let len = acc.len();
    if stride == 1 {
        for (a, &v) in acc.iter_mut().zip(&row[off..off + len]) {
            *a += w * v;
        }
    } else {
        for (a, &v) in acc.iter_mut().zip(row[off..].iter().step_by(stride)) {
            *a += w * v;
        }
    }
}

impl<T: Scalar> Algorithm<T> for Direct {
    fn tiling(&self) -> Tiling {
        Tiling { split_channels: true, split_rows: true }
    }

    fn run(&self, x: ArrayView5<'_, T>, k: ArrayView5<'_, T>, mut out: ArrayViewMut5<'_, T>, g: &Geom) {
        let [nb, cout, od, oh, ow] = *out.shape() else { unreachable!() };
        let (cin, kd, kh, kw) = (k.shape()[1], k.shape()[2], k.shape()[3], k.shape()[4]);
        let xw = g.input_len(2, ow, kw);
        let mut acc = vec![T::zero(); ow];
        let mut row_buf = vec![T::zero(); xw];
        for n in 0..nb {
            for o in 0..cout {
                for d in 0..od {
                    for h in 0..oh {
                        acc.fill(T::zero());
                        for c in 0..cin {
                            for td in 0..kd {
                                let xd = d * g.stride[0] + td * g.dilation[0];
                                for th in 0..kh {
                                    let xh = h * g.stride[1] + th * g.dilation[1];
                                    let row_view = x.slice(s![n, c, xd, xh, ..xw]);
                                    let row: &[T] = match row_view.as_slice() {
                                        Some(r) => r,
                                        None => {
                                            for (b, &v) in row_buf.iter_mut().zip(row_view.iter()) {
                                                *b = v;
                                            }
                                            &row_buf
                                        }
                                    };
                                    for tw in 0..kw {
                                        let w = k[(o, c, td, th, tw)];
                                        axpy_strided(&mut acc, w, row, tw * g.dilation[2], g.stride[2]);
                                    }
                                }
                            }
                        }
                        for (y, &a) in out.slice_mut(s![n, o, d, h, ..]).iter_mut().zip(&acc) {
                            *y = a;
                        }
                    }
                }
            }
        }
    }
}
