//! `naive`: the definition, one output at a time. The reference every other method is
//! checked against; written for obviousness, not speed.

use ndarray::{ArrayView5, ArrayViewMut5};

use super::{Algorithm, Geom, Tiling};
use crate::Scalar;

pub(crate) struct Naive;

impl<T: Scalar> Algorithm<T> for Naive {
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
        let (cin, kd, kh, kw) = (k.shape()[1], k.shape()[2], k.shape()[3], k.shape()[4]);
        let [s0, s1, s2] = g.stride;
        let [d0, d1, d2] = g.dilation;
        for ((n, o, od, oh, ow), y) in out.indexed_iter_mut() {
            let mut acc = T::zero();
            for c in 0..cin {
                for td in 0..kd {
                    for th in 0..kh {
                        for tw in 0..kw {
                            let xv = x[(
                                n,
                                c,
                                od * s0 + td * d0,
                                oh * s1 + th * d1,
                                ow * s2 + tw * d2,
                            )];
                            acc += xv * k[(o, c, td, th, tw)];
                        }
                    }
                }
            }
            *y = acc;
        }
    }
}
