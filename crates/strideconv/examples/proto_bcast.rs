#![allow(unsafe_code)]
//! Prototype: channels-in-lanes micro-kernel for NCHW 3×3 layers (not committed).
use std::arch::x86_64::*;
use std::time::Instant;

const X: usize = 14;

#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
unsafe fn tile<const S: usize>(
    k: usize,
    wpk: *const f32,
    base: *const f32,
    taps: *const usize,
    acc_out: &mut [[f32; 32]; X],
) {
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); 2]; X];
        for kk in 0..k {
            let w0 = _mm512_loadu_ps(wpk.add(kk * 32));
            let w1 = _mm512_loadu_ps(wpk.add(kk * 32 + 16));
            let b = base.add(*taps.add(kk));
            for x in 0..X {
                let v = _mm512_set1_ps(*b.add(x * S));
                acc[x][0] = _mm512_fmadd_ps(w0, v, acc[x][0]);
                acc[x][1] = _mm512_fmadd_ps(w1, v, acc[x][1]);
            }
        }
        for x in 0..X {
            _mm512_storeu_ps(acc_out[x].as_mut_ptr(), acc[x][0]);
            _mm512_storeu_ps(acc_out[x].as_mut_ptr().add(16), acc[x][1]);
        }
    }
}

fn run<const S: usize>(
    cin: usize,
    cout: usize,
    n: usize,
    x: &[f32],
    w: &[f32],
    out: &mut [f32],
    wpk: &mut Vec<f32>,
    xp: &mut Vec<f32>,
) {
    let pitch = n + 2;
    let plane = pitch * (n + 2);
    xp.clear();
    xp.resize(cin * plane, 0.0);
    for c in 0..cin {
        for y in 0..n {
            xp[c * plane + (y + 1) * pitch + 1..][..n].copy_from_slice(&x[(c * n + y) * n..][..n]);
        }
    }
    let k = cin * 9;
    let taps: Vec<usize> = (0..k)
        .map(|kk| (kk / 9) * plane + (kk % 9 / 3) * pitch + kk % 3)
        .collect();
    let on = (n - 1) / S + 1;
    wpk.resize(k * 32, 0.0);
    let mut buf = [[0f32; 32]; X];
    for s in 0..cout / 32 {
        if std::env::var_os("NOPACK").is_none() {
            for kk in 0..k {
                for j in 0..32 {
                    wpk[kk * 32 + j] = w[(s * 32 + j) * k + kk];
                }
            }
        }
        for y in 0..on {
            for x0 in (0..on).step_by(X) {
                let base = unsafe { xp.as_ptr().add(y * S * pitch + x0 * S) };
                unsafe { tile::<S>(k, wpk.as_ptr(), base, taps.as_ptr(), &mut buf) };
                for xx in 0..X.min(on - x0) {
                    for j in 0..32 {
                        out[((s * 32 + j) * on + y) * on + x0 + xx] = buf[xx][j];
                    }
                }
            }
        }
    }
}

fn main() {
    let a: Vec<usize> = std::env::args()
        .skip(1)
        .map(|s| s.parse().unwrap())
        .collect();
    let (cin, cout, n, s, reps) = (a[0], a[1], a[2], a[3], a[4]);
    let x: Vec<f32> = (0..cin * n * n)
        .map(|i| ((i * 7) % 13) as f32 - 6.0)
        .collect();
    let w: Vec<f32> = (0..cout * cin * 9)
        .map(|i| ((i * 5) % 11) as f32 - 5.0)
        .collect();
    let on = (n - 1) / s + 1;
    let mut out = vec![0f32; cout * on * on];
    let (mut wpk, mut xp) = (Vec::new(), Vec::new());
    // check one output
    let go = |out: &mut Vec<f32>, wpk: &mut Vec<f32>, xp: &mut Vec<f32>| {
        if s == 1 {
            run::<1>(cin, cout, n, &x, &w, out, wpk, xp)
        } else {
            run::<2>(cin, cout, n, &x, &w, out, wpk, xp)
        }
    };
    go(&mut out, &mut wpk, &mut xp);
    for &(o, y, xx) in &[
        (0usize, 0usize, 0usize),
        (cout - 1, on - 1, on - 1),
        (cout / 2, on / 2, 3),
    ] {
        let mut sum = 0f64;
        for c in 0..cin {
            for ky in 0..3 {
                for kx in 0..3 {
                    let (iy, ix) = ((y * s + ky) as isize - 1, (xx * s + kx) as isize - 1);
                    if iy < 0 || ix < 0 || iy >= n as isize || ix >= n as isize {
                        continue;
                    }
                    sum += (x[(c * n + iy as usize) * n + ix as usize]
                        * w[((o * cin + c) * 3 + ky) * 3 + kx]) as f64;
                }
            }
        }
        assert_eq!(sum as f32, out[(o * on + y) * on + xx], "at {o} {y} {xx}");
    }
    let mut best = f64::MAX;
    let t0 = Instant::now();
    for _ in 0..reps {
        let t = Instant::now();
        go(&mut out, &mut wpk, &mut xp);
        best = best.min(t.elapsed().as_secs_f64());
    }
    let mean = t0.elapsed().as_secs_f64() / reps as f64;
    let flops = 2.0 * (cin * cout * 9 * on * on) as f64;
    println!(
        "mean {:.1} µs best {:.1} µs  {:.1} GF/s",
        mean * 1e6,
        best * 1e6,
        flops / best / 1e9
    );
}
