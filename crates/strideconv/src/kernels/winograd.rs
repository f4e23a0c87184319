//! The transforms of `winograd` (method/winograd.rs) for one row of tiles: element-wise
//! arithmetic over contiguous runs, one pass per row of tiles, compiled for the detected
//! instruction set (the crate's default target has 128-bit vectors only; these loops were a
//! third of a 128→128 @28 layer's time that way).

use super::{isa, Isa};
use crate::Scalar;

/// `Bᵀ d B` for `pw` tiles side by side: `evens[i]` and `odds[i]` are the even and odd
/// columns of the tile row's input row `i` (`pw + 1` each); point `p` (`4ξ + ν`) of tile `t`
/// goes to `dst[p·spacing + t]`, with `Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1]`.
/// Tiles are computed [`BLOCK`] at a time, so the rows must hold `pw` rounded up to a
/// multiple of `BLOCK`, plus one, elements (those past `pw + 1` are read, not used), and
/// `dst`'s runs are written that far (`spacing` must leave room).
pub(crate) fn input_tiles<T: Scalar>(
    evens: [&[T]; 4],
    odds: [&[T]; 4],
    dst: &mut [T],
    spacing: usize,
    pw: usize,
) {
    match isa() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `isa()` returns Avx512 only when avx512f, avx512vl and fma were detected.
        Isa::Avx512 => unsafe { wide::input512(evens, odds, dst, spacing, pw) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `isa()` returns Avx2 only when avx2 and fma were detected.
        Isa::Avx2 => unsafe { wide::input2(evens, odds, dst, spacing, pw) },
        _ => input_body(evens, odds, dst, spacing, pw),
    }
}

/// `Aᵀ M A` for `pw` tiles side by side: point `p` of tile `t` is `src[p·spacing + t]`;
/// the tiles' two output rows go to `top` and `bottom` (`2·pw` each, tile `t` at columns
/// `2t` and `2t + 1`), with `Aᵀ = [1 1 1 0; 0 1 −1 −1]`. As for [`input_tiles`], runs of
/// `src` are read and rows written to `pw` rounded up to a multiple of [`BLOCK`].
pub(crate) fn output_tiles<T: Scalar>(
    src: &[T],
    spacing: usize,
    pw: usize,
    top: &mut [T],
    bottom: &mut [T],
) {
    match isa() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Isa::Avx512 => unsafe { wide::output512(src, spacing, pw, top, bottom) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Isa::Avx2 => unsafe { wide::output2(src, spacing, pw, top, bottom) },
        _ => output_body(src, spacing, pw, top, bottom),
    }
}

/// F(4×4, 3×3): `Bᵀ d B` for `pw` tiles side by side, 6×6 points each (points 0, ±1, ±2,
/// ∞). `phases[i][p]` holds the columns `4u + p` of the tile row's input row `i`
/// (`pw + 1` each, and room to `pw` rounded up to [`BLOCK`], plus one); point `p` (`6ξ + ν`)
/// of tile `t` goes to `dst[p·spacing + t]`, runs written as far as [`input_tiles`] writes.
pub(crate) fn input_tiles4<T: Scalar>(
    phases: [[&[T]; 4]; 6],
    dst: &mut [T],
    spacing: usize,
    pw: usize,
) {
    match isa() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Isa::Avx512 => unsafe { wide::input4_512(phases, dst, spacing, pw) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Isa::Avx2 => unsafe { wide::input4_2(phases, dst, spacing, pw) },
        _ => input4_body(phases, dst, spacing, pw),
    }
}

/// F(4×4, 3×3): `Aᵀ M A` for `pw` tiles side by side, from 36 points (`src[p·spacing + t]`)
/// to four output rows (`4·pw` each, rounded up as for [`output_tiles`]), tile `t` at
/// columns `4t .. 4t + 3`.
pub(crate) fn output_tiles4<T: Scalar>(src: &[T], spacing: usize, pw: usize, rows: [&mut [T]; 4]) {
    match isa() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Isa::Avx512 => unsafe { wide::output4_512(src, spacing, pw, rows) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Isa::Avx2 => unsafe { wide::output4_2(src, spacing, pw, rows) },
        _ => output4_body(src, spacing, pw, rows),
    }
}

/// F(4×4, 3×3): `G g Gᵀ` of one output channel's kernels, 36 points, laid out as
/// [`kernel_points`] lays out 16.
pub(crate) fn kernel_points4<T: Scalar>(src: &[T], dst: &mut [T]) {
    match isa() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Isa::Avx512 => unsafe { wide::kernel4_512(src, dst) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Isa::Avx2 => unsafe { wide::kernel4_2(src, dst) },
        _ => kernel4_body(src, dst),
    }
}

/// Tiles computed together: fixed-size blocks the compiler keeps in vector registers.
pub(crate) const BLOCK: usize = 16;

/// A block of `src` from `at`: a copy of constant length, which compiles to vector moves.
#[inline(always)]
fn load<T: Copy>(src: &[T], at: usize) -> [T; BLOCK] {
    *<&[T; BLOCK]>::try_from(&src[at..at + BLOCK]).expect("a block")
}

#[inline(always)]
fn input_body<T: Scalar>(
    evens: [&[T]; 4],
    odds: [&[T]; 4],
    dst: &mut [T],
    spacing: usize,
    pw: usize,
) {
    let whole = pw.next_multiple_of(BLOCK);
    assert!(
        spacing >= whole && dst.len() >= 15 * spacing + whole,
        "winograd: tiles out of bounds"
    );
    let z = T::zero();
    let mut t0 = 0;
    while t0 < pw {
        // Bᵀ d down the columns, at columns 2t (j = 0), 2t+1, 2t+2, 2t+3 of the four rows.
        let mut cols = [[[z; BLOCK]; 4]; 4];
        for (j, col) in cols.iter_mut().enumerate() {
            let (src, at) = match j {
                0 => (&evens, t0),
                1 => (&odds, t0),
                2 => (&evens, t0 + 1),
                _ => (&odds, t0 + 1),
            };
            let r: [[T; BLOCK]; 4] = [
                load(src[0], at),
                load(src[1], at),
                load(src[2], at),
                load(src[3], at),
            ];
            for l in 0..BLOCK {
                col[0][l] = r[0][l] - r[2][l];
                col[1][l] = r[1][l] + r[2][l];
                col[2][l] = r[2][l] - r[1][l];
                col[3][l] = r[1][l] - r[3][l];
            }
        }
        // Then B along the row, for each row ξ: points 4ξ .. 4ξ + 3.
        for xi in 0..4 {
            let (a, b, c, d) = (&cols[0][xi], &cols[1][xi], &cols[2][xi], &cols[3][xi]);
            let mut pts = [[z; BLOCK]; 4];
            for l in 0..BLOCK {
                pts[0][l] = a[l] - c[l];
                pts[1][l] = b[l] + c[l];
                pts[2][l] = c[l] - b[l];
                pts[3][l] = b[l] - d[l];
            }
            for (nu, pt) in pts.iter().enumerate() {
                let at = (4 * xi + nu) * spacing + t0;
                dst[at..at + BLOCK].copy_from_slice(pt);
            }
        }
        t0 += BLOCK;
    }
}

#[inline(always)]
fn output_body<T: Scalar>(src: &[T], spacing: usize, pw: usize, top: &mut [T], bottom: &mut [T]) {
    let whole = pw.next_multiple_of(BLOCK);
    assert!(
        spacing >= whole && src.len() >= 15 * spacing + whole,
        "winograd: tiles out of bounds"
    );
    assert!(
        top.len() >= 2 * whole && bottom.len() >= 2 * whole,
        "winograd: rows too short"
    );
    let z = T::zero();
    let mut t0 = 0;
    while t0 < pw {
        // Aᵀ M down the columns (s0, s1), then A along the rows; tile t's two outputs of a
        // row are interleaved at columns 2t and 2t + 1.
        let mut s = [[[z; BLOCK]; 4]; 2];
        for nu in 0..4 {
            let m0 = load(src, nu * spacing + t0);
            let m1 = load(src, (4 + nu) * spacing + t0);
            let m2 = load(src, (8 + nu) * spacing + t0);
            let m3 = load(src, (12 + nu) * spacing + t0);
            for l in 0..BLOCK {
                s[0][nu][l] = m0[l] + m1[l] + m2[l];
                s[1][nu][l] = m1[l] - m2[l] - m3[l];
            }
        }
        for (sa, row) in s.iter().zip([&mut *top, &mut *bottom]) {
            let mut pair = [z; 2 * BLOCK];
            for l in 0..BLOCK {
                pair[2 * l] = sa[0][l] + sa[1][l] + sa[2][l];
                pair[2 * l + 1] = sa[1][l] - sa[2][l] - sa[3][l];
            }
            row[2 * t0..2 * t0 + 2 * BLOCK].copy_from_slice(&pair);
        }
        t0 += BLOCK;
    }
}

/// `G g Gᵀ` of one output channel's kernels: `src` holds `cin` 3×3 kernels (9 values each,
/// row by row), point `p` of channel `c` goes to `dst[p·cin + c]`, with
/// `G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1]`.
pub(crate) fn kernel_points<T: Scalar>(src: &[T], dst: &mut [T]) {
    match isa() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Isa::Avx512 => unsafe { wide::kernel512(src, dst) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Isa::Avx2 => unsafe { wide::kernel2(src, dst) },
        _ => kernel_body(src, dst),
    }
}

/// The 3×3 kernels of channels `c0 .. c0 + b` (`b ≤ BLOCK`, 9 values each in `src`), tap
/// by tap with the channels side by side. A whole block is one contiguous run: one copy of
/// constant length, then a transpose at constant indices.
#[inline(always)]
fn taps<T: Scalar>(src: &[T], c0: usize, b: usize) -> [[T; BLOCK]; 9] {
    let mut g = [[T::zero(); BLOCK]; 9];
    if b == BLOCK {
        let run: &[T; 9 * BLOCK] = src[c0 * 9..(c0 + BLOCK) * 9].try_into().expect("a block");
        for (tap, gt) in g.iter_mut().enumerate() {
            for (j, v) in gt.iter_mut().enumerate() {
                *v = run[j * 9 + tap];
            }
        }
    } else {
        for (tap, gt) in g.iter_mut().enumerate() {
            for (j, v) in gt.iter_mut().enumerate().take(b) {
                *v = src[(c0 + j) * 9 + tap];
            }
        }
    }
    g
}

/// The first `b ≤ BLOCK` values of `vals` to `dst` from `at` (a whole block as one copy of
/// constant length).
#[inline(always)]
fn put<T: Copy>(dst: &mut [T], at: usize, vals: &[T; BLOCK], b: usize) {
    if b == BLOCK {
        dst[at..at + BLOCK].copy_from_slice(vals);
    } else {
        for (d, &v) in dst[at..at + b].iter_mut().zip(vals) {
            *d = v;
        }
    }
}

#[inline(always)]
fn kernel_body<T: Scalar>(src: &[T], dst: &mut [T]) {
    let cin = src.len() / 9;
    assert!(
        src.len() == 9 * cin && dst.len() == 16 * cin,
        "winograd: kernel sizes"
    );
    let half = T::from_f64(0.5);
    let mut c0 = 0;
    while c0 < cin {
        let b = BLOCK.min(cin - c0);
        let g = taps(src, c0, b);
        // G g: four rows of three taps; then (G g) Gᵀ, four points per row.
        let mut t = [[[T::zero(); BLOCK]; 3]; 4];
        for j in 0..3 {
            for l in 0..BLOCK {
                let (g0, g1, g2) = (g[j][l], g[3 + j][l], g[6 + j][l]);
                t[0][j][l] = g0;
                t[1][j][l] = (g0 + g1 + g2) * half;
                t[2][j][l] = (g0 - g1 + g2) * half;
                t[3][j][l] = g2;
            }
        }
        for (xi, r) in t.iter().enumerate() {
            let mut row = [[T::zero(); BLOCK]; 4];
            for l in 0..BLOCK {
                row[0][l] = r[0][l];
                row[1][l] = (r[0][l] + r[1][l] + r[2][l]) * half;
                row[2][l] = (r[0][l] - r[1][l] + r[2][l]) * half;
                row[3][l] = r[2][l];
            }
            for (nu, vals) in row.iter().enumerate() {
                put(dst, (4 * xi + nu) * cin + c0, vals, b);
            }
        }
        c0 += b;
    }
}

type Lanes<T> = [T; BLOCK];

/// `Bᵀ d` for F(4, 3), lane by lane, into `r`: `Bᵀ` rows `[4 0 −5 0 1 0]`,
/// `[0 −4 −4 1 1 0]`, `[0 4 −4 −1 1 0]`, `[0 −2 −1 2 1 0]`, `[0 2 −1 −2 1 0]`, `[0 4 0 −5 0 1]`.
#[inline(always)]
fn bt6<T: Scalar>(d: &[Lanes<T>; 6], r: &mut [Lanes<T>; 6]) {
    let (four, five, two) = (T::from_f64(4.0), T::from_f64(5.0), T::from_f64(2.0));
    for l in 0..BLOCK {
        let [d0, d1, d2, d3, d4, d5] = [d[0][l], d[1][l], d[2][l], d[3][l], d[4][l], d[5][l]];
        r[0][l] = four * d0 - five * d2 + d4;
        r[1][l] = d3 + d4 - four * (d1 + d2);
        r[2][l] = four * (d1 - d2) + d4 - d3;
        r[3][l] = two * (d3 - d1) + d4 - d2;
        r[4][l] = two * (d1 - d3) + d4 - d2;
        r[5][l] = four * d1 - five * d3 + d5;
    }
}

/// `Aᵀ m` for F(4, 3), lane by lane, into `y`: `Aᵀ` rows `[1 1 1 1 1 0]`, `[0 1 −1 2 −2 0]`,
/// `[0 1 1 4 4 0]`, `[0 1 −1 8 −8 1]`.
#[inline(always)]
fn at6<T: Scalar>(m: &[Lanes<T>; 6], y: &mut [Lanes<T>; 4]) {
    let (two, four, eight) = (T::from_f64(2.0), T::from_f64(4.0), T::from_f64(8.0));
    for l in 0..BLOCK {
        let [m0, m1, m2, m3, m4, m5] = [m[0][l], m[1][l], m[2][l], m[3][l], m[4][l], m[5][l]];
        let (a, b) = (m1 + m2, m1 - m2);
        let (c, d) = (m3 + m4, m3 - m4);
        y[0][l] = m0 + a + c;
        y[1][l] = b + two * d;
        y[2][l] = a + four * c;
        y[3][l] = b + eight * d + m5;
    }
}

/// A block of `src` from `at`, into `block` (a copy of constant length: vector moves).
#[inline(always)]
fn fetch<T: Copy>(block: &mut Lanes<T>, src: &[T], at: usize) {
    block.copy_from_slice(&src[at..at + BLOCK]);
}

#[inline(always)]
fn input4_body<T: Scalar>(phases: [[&[T]; 4]; 6], dst: &mut [T], spacing: usize, pw: usize) {
    let whole = pw.next_multiple_of(BLOCK);
    assert!(
        spacing >= whole && dst.len() >= 35 * spacing + whole,
        "winograd: tiles out of bounds"
    );
    let z = T::zero();
    let (mut rows, mut line, mut pts) = ([[z; BLOCK]; 6], [[z; BLOCK]; 6], [[z; BLOCK]; 6]);
    let mut cols = [[[z; BLOCK]; 6]; 6];
    let mut t0 = 0;
    while t0 < pw {
        // Column j of every tile: phase j % 4, one tile further on for j ≥ 4; Bᵀ d down the
        // columns gives cols[j][ξ].
        for (j, col) in cols.iter_mut().enumerate() {
            for (i, r) in rows.iter_mut().enumerate() {
                fetch(r, phases[i][j % 4], t0 + j / 4);
            }
            bt6(&rows, col);
        }
        // Then B along each row ξ.
        for xi in 0..6 {
            for (j, l) in line.iter_mut().enumerate() {
                *l = cols[j][xi];
            }
            bt6(&line, &mut pts);
            for (nu, pt) in pts.iter().enumerate() {
                let at = (6 * xi + nu) * spacing + t0;
                dst[at..at + BLOCK].copy_from_slice(pt);
            }
        }
        t0 += BLOCK;
    }
}

#[inline(always)]
fn output4_body<T: Scalar>(src: &[T], spacing: usize, pw: usize, mut rows: [&mut [T]; 4]) {
    let whole = pw.next_multiple_of(BLOCK);
    assert!(
        spacing >= whole && src.len() >= 35 * spacing + whole,
        "winograd: tiles out of bounds"
    );
    assert!(
        rows.iter().all(|r| r.len() >= 4 * whole),
        "winograd: rows too short"
    );
    let z = T::zero();
    let (mut col, mut line) = ([[z; BLOCK]; 6], [[z; BLOCK]; 6]);
    let (mut s, mut y) = ([[[z; BLOCK]; 4]; 6], [[z; BLOCK]; 4]);
    let mut t0 = 0;
    while t0 < pw {
        // Aᵀ M down the columns: s[ν][a].
        for (nu, sn) in s.iter_mut().enumerate() {
            for (xi, c) in col.iter_mut().enumerate() {
                fetch(c, src, (6 * xi + nu) * spacing + t0);
            }
            at6(&col, sn);
        }
        // Then A along each row a; tile t's four outputs go to columns 4t .. 4t + 3.
        for (a, row) in rows.iter_mut().enumerate() {
            for (nu, l) in line.iter_mut().enumerate() {
                *l = s[nu][a];
            }
            at6(&line, &mut y);
            let out = &mut row[4 * t0..4 * t0 + 4 * BLOCK];
            for l in 0..BLOCK {
                for b in 0..4 {
                    out[4 * l + b] = y[b][l];
                }
            }
        }
        t0 += BLOCK;
    }
}

#[inline(always)]
fn kernel4_body<T: Scalar>(src: &[T], dst: &mut [T]) {
    let cin = src.len() / 9;
    assert!(
        src.len() == 9 * cin && dst.len() == 36 * cin,
        "winograd: kernel sizes"
    );
    // G rows: [¼ 0 0], [−⅙ −⅙ −⅙], [−⅙ ⅙ −⅙], [1/24 1/12 ⅙], [1/24 −1/12 ⅙], [0 0 1].
    let g6 = |g: [Lanes<T>; 3]| -> [Lanes<T>; 6] {
        let (q, s, t, w) = (
            T::from_f64(0.25),
            T::from_f64(1.0 / 6.0),
            T::from_f64(1.0 / 12.0),
            T::from_f64(1.0 / 24.0),
        );
        let mut r = [[T::zero(); BLOCK]; 6];
        for l in 0..BLOCK {
            let (g0, g1, g2) = (g[0][l], g[1][l], g[2][l]);
            r[0][l] = q * g0;
            r[1][l] = T::zero() - s * (g0 + g1 + g2);
            r[2][l] = T::zero() - s * (g0 - g1 + g2);
            r[3][l] = w * g0 + t * g1 + s * g2;
            r[4][l] = w * g0 - t * g1 + s * g2;
            r[5][l] = g2;
        }
        r
    };
    let mut c0 = 0;
    while c0 < cin {
        let b = BLOCK.min(cin - c0);
        let g = taps(src, c0, b);
        // G g: column j of the kernel (taps j, 3 + j, 6 + j) to six rows; then each row ξ
        // (three values) to six points.
        let cols: [[Lanes<T>; 6]; 3] = std::array::from_fn(|j| g6([g[j], g[3 + j], g[6 + j]]));
        for xi in 0..6 {
            let pts = g6([cols[0][xi], cols[1][xi], cols[2][xi]]);
            for (nu, vals) in pts.iter().enumerate() {
                put(dst, (6 * xi + nu) * cin + c0, vals, b);
            }
        }
        c0 += b;
    }
}

#[cfg(target_arch = "x86_64")]
mod wide {
    use super::{input4_body, input_body, kernel4_body, kernel_body, output4_body, output_body};
    use crate::Scalar;

    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    pub(super) unsafe fn input512<T: Scalar>(
        evens: [&[T]; 4],
        odds: [&[T]; 4],
        dst: &mut [T],
        spacing: usize,
        pw: usize,
    ) {
        input_body(evens, odds, dst, spacing, pw)
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn input2<T: Scalar>(
        evens: [&[T]; 4],
        odds: [&[T]; 4],
        dst: &mut [T],
        spacing: usize,
        pw: usize,
    ) {
        input_body(evens, odds, dst, spacing, pw)
    }

    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    pub(super) unsafe fn kernel512<T: Scalar>(src: &[T], dst: &mut [T]) {
        kernel_body(src, dst)
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn kernel2<T: Scalar>(src: &[T], dst: &mut [T]) {
        kernel_body(src, dst)
    }

    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    pub(super) unsafe fn output512<T: Scalar>(
        src: &[T],
        spacing: usize,
        pw: usize,
        top: &mut [T],
        bottom: &mut [T],
    ) {
        output_body(src, spacing, pw, top, bottom)
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn output2<T: Scalar>(
        src: &[T],
        spacing: usize,
        pw: usize,
        top: &mut [T],
        bottom: &mut [T],
    ) {
        output_body(src, spacing, pw, top, bottom)
    }
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    pub(super) unsafe fn input4_512<T: Scalar>(
        phases: [[&[T]; 4]; 6],
        dst: &mut [T],
        spacing: usize,
        pw: usize,
    ) {
        input4_body(phases, dst, spacing, pw)
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn input4_2<T: Scalar>(
        phases: [[&[T]; 4]; 6],
        dst: &mut [T],
        spacing: usize,
        pw: usize,
    ) {
        input4_body(phases, dst, spacing, pw)
    }

    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    pub(super) unsafe fn output4_512<T: Scalar>(
        src: &[T],
        spacing: usize,
        pw: usize,
        rows: [&mut [T]; 4],
    ) {
        output4_body(src, spacing, pw, rows)
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn output4_2<T: Scalar>(
        src: &[T],
        spacing: usize,
        pw: usize,
        rows: [&mut [T]; 4],
    ) {
        output4_body(src, spacing, pw, rows)
    }

    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    pub(super) unsafe fn kernel4_512<T: Scalar>(src: &[T], dst: &mut [T]) {
        kernel4_body(src, dst)
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn kernel4_2<T: Scalar>(src: &[T], dst: &mut [T]) {
        kernel4_body(src, dst)
    }
}
