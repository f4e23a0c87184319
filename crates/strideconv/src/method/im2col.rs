//! `im2col` (the seed's "stride-view conv"): gather each strided window into a row of a
//! matrix and multiply by the kernel. Unlike `as_strided` + `tensordot`, windows are gathered
//! a tile at a time, so memory stays bounded by the tile, never the whole window matrix.

use ndarray::{s, ArrayView5, ArrayViewMut5};

use super::{Algorithm, Geom, Tiling};
use crate::Scalar;

pub(crate) struct Im2col;

/// Elements of the gathered tile (rows × reduction length), unless a single window is longer.
const TILE_ELEMS: usize = 1 << 15;

impl<T: Scalar> Algorithm<T> for Im2col {
    fn tiling(&self) -> Tiling {
        Tiling { split_channels: false, split_rows: true }
    }

    fn run(&self, x: ArrayView5<'_, T>, k: ArrayView5<'_, T>, mut out: ArrayViewMut5<'_, T>, g: &Geom) {
        let [nb, cout, od, oh, ow] = *out.shape() else { unreachable!() };
        let (cin, kd, kh, kw) = (k.shape()[1], k.shape()[2], k.shape()[3], k.shape()[4]);
        let red = cin * kd * kh * kw;
        let k_std = k.as_standard_layout();
        let kmat = k_std.as_slice().expect("standard layout");
        let positions = od * oh * ow;
        let tile = (TILE_ELEMS / red).clamp(1, positions);
        let mut col = vec![T::zero(); tile * red];
        for n in 0..nb {
            let mut p0 = 0;
            while p0 < positions {
                let rows = tile.min(positions - p0);
                for (r, win) in col.chunks_exact_mut(red).take(rows).enumerate() {
                    let p = p0 + r;
                    let (d, h, w) = (p / (oh * ow), (p / ow) % oh, p % ow);
                    let mut i = 0;
                    for c in 0..cin {
                        for td in 0..kd {
                            for th in 0..kh {
                                let row = x.slice(s![
                                    n,
                                    c,
                                    d * g.stride[0] + td * g.dilation[0],
                                    h * g.stride[1] + th * g.dilation[1],
                                    w * g.stride[2]..;g.dilation[2] as isize
                                ]);
                                for (dst, &v) in win[i..i + kw].iter_mut().zip(row.iter()) {
                                    *dst = v;
                                }
                                i += kw;
                            }
                        }
                    }
                }
                for o in 0..cout {
                    let kr = &kmat[o * red..(o + 1) * red];
                    for (r, win) in col.chunks_exact(red).take(rows).enumerate() {
                        let p = p0 + r;
                        let mut acc = T::zero();
                        for (&a, &b) in win.iter().zip(kr) {
                            acc += a * b;
                        }
                        out[(n, o, p / (oh * ow), (p / ow) % oh, p % ow)] = acc;
                    }
                }
                p0 += rows;
            }
        }
    }
}
