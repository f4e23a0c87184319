//! `shift_add` (the seed's "special conv"): for every kernel tap, add tap × the strided,
//! shifted slice of the input to the output. Unlike the seed's version it slices with the
//! stride, so it never computes outputs that are thrown away.

use ndarray::{s, ArrayView5, ArrayViewMut5, Zip};

use super::{Algorithm, Geom, Tiling};
use crate::Scalar;

pub(crate) struct ShiftAdd;

impl<T: Scalar> Algorithm<T> for ShiftAdd {
    fn tiling(&self) -> Tiling {
        Tiling {
            split_channels: true,
            split_rows: true,
            whole_batch: false,
        }
    }

    fn run(
        &self,
        x: ArrayView5<'_, T>,
        k: ArrayView5<'_, T>,
        mut out: ArrayViewMut5<'_, T>,
        g: &Geom,
    ) {
        out.fill(T::zero());
        let [_, cout, od, oh, ow] = *out.shape() else {
            unreachable!()
        };
        let (cin, kd, kh, kw) = (k.shape()[1], k.shape()[2], k.shape()[3], k.shape()[4]);
        let [s0, s1, s2] = g.stride.map(|v| v as isize);
        for o in 0..cout {
            for c in 0..cin {
                for td in 0..kd {
                    for th in 0..kh {
                        for tw in 0..kw {
                            let tap = k[(o, c, td, th, tw)];
                            let start =
                                [td * g.dilation[0], th * g.dilation[1], tw * g.dilation[2]];
                            let src = x.slice(s![
                                ..,
                                c,
                                start[0]..start[0] + (od - 1) * s0 as usize + 1;s0,
                                start[1]..start[1] + (oh - 1) * s1 as usize + 1;s1,
                                start[2]..start[2] + (ow - 1) * s2 as usize + 1;s2
                            ]);
                            Zip::from(out.slice_mut(s![.., o, .., .., ..]))
                                .and(&src)
                                .for_each(|y, &v| *y += tap * v);
                        }
                    }
                }
            }
        }
    }
}
