//! The SIMD kernels: the only place with `unsafe`.
//!
//! One generic kernel body (`rows_body`) is compiled three times: plain, with AVX2+FMA and
//! with AVX-512. The instruction set is detected once at run time; the environment variable
//! `STRIDECONV_ISA` (`scalar`, `avx2`, `avx512`) can only narrow what was detected, so every
//! path can be tested on a machine that has the widest one.
//!
//! Written by hand because this loop is the heart of the library: the accumulators of one
//! chunk of an output row stay in registers across every kernel tap, so each tap costs one
//! load and one fused multiply-add per vector, for any stride (the caller phase-splits rows).
#![allow(unsafe_code)]

use std::sync::OnceLock;

use crate::Scalar;

mod broadcast;
mod depthwise;
mod dots;
mod fill;
mod gemm;
mod lanes;
mod masked;
mod matmul;
mod pages;
mod spectra;
mod split;
mod winograd;
pub(crate) use depthwise::prefetch_l2;
pub(crate) use depthwise::{interior as depthwise, Interior, Rows};
pub(crate) use dots::dots;
pub(crate) use fill::{planes as fill_planes, Filler};
pub(crate) use gemm::{gemm, supported as gemm_supported};
pub(crate) use masked::{masked, shared_gain, shares, supported as masked_supported, Masked};
pub(crate) use matmul::{
    available as own_product, gathered, gathered_strided, lead_columns, prefers_channels, Packed,
    Walk,
};
pub(crate) use pages::{advise_huge_capacity, keep_freed_memory, output, try_output_aligned};
pub(crate) use spectra::multiply_add as complex_multiply_add;
pub(crate) use split::{deinterleave, pick, split_phases};
pub(crate) use winograd::{
    input_tiles as winograd_input, input_tiles4 as winograd_input4,
    kernel_points as winograd_kernel, kernel_points4 as winograd_kernel4,
    output_tiles as winograd_output, output_tiles4 as winograd_output4, BLOCK as WINOGRAD_BLOCK,
};

/// Whether the hand-written AVX-512 kernels ([`masked`], [`matmul`]) run `T`: `f32` or
/// `f64`, on a CPU where [`isa`] is AVX-512.
fn avx512_float<T: Scalar>() -> bool {
    use std::any::TypeId;
    let ty = TypeId::of::<T>();
    isa() == Isa::Avx512 && (ty == TypeId::of::<f32>() || ty == TypeId::of::<f64>())
}

/// The instruction sets the kernels are compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Isa {
    /// Whatever the compiler targets by default.
    Scalar,
    /// AVX2 with FMA.
    Avx2,
    /// AVX-512 F/VL with FMA.
    Avx512,
}

impl Isa {
    /// Lower-case name, as `STRIDECONV_ISA` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }
}

fn detect() -> Isa {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512vl")
            && is_x86_feature_detected!("fma")
        {
            return Isa::Avx512;
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            return Isa::Avx2;
        }
    }
    Isa::Scalar
}

/// The instruction set in use: detected once, narrowed by `STRIDECONV_ISA` if set.
pub fn isa() -> Isa {
    static ISA: OnceLock<Isa> = OnceLock::new();
    *ISA.get_or_init(|| {
        let detected = detect();
        let asked = match std::env::var("STRIDECONV_ISA").as_deref() {
            Ok("scalar") => Isa::Scalar,
            Ok("avx2") => Isa::Avx2,
            _ => Isa::Avx512,
        };
        detected.min(asked)
    })
}

/// Whether the processor is Intel's (CPUID vendor "GenuineIntel"): the cost model's built-in
/// scales were measured on an AMD processor, and one of them differs on Intel's (see
/// `wisdom::scales`).
pub(crate) fn intel() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static INTEL: OnceLock<bool> = OnceLock::new();
        *INTEL.get_or_init(|| {
            // A plain instruction; `unsafe` only for the toolchains that still mark it so.
            #[allow(unused_unsafe)]
            let r = unsafe { std::arch::x86_64::__cpuid(0) };
            [r.ebx, r.edx, r.ecx]
                .iter()
                .flat_map(|w| w.to_le_bytes())
                .eq(*b"GenuineIntel")
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `$go!(B)` for the chunk size `B` (a literal) that covers `$chunk` elements.
macro_rules! by_chunk {
    ($chunk:expr, $go:ident) => {
        match $chunk {
            0..=4 => $go!(4),
            5..=8 => $go!(8),
            9..=16 => $go!(16),
            17..=32 => $go!(32),
            33..=64 => $go!(64),
            _ => $go!(128),
        }
    };
}

/// `out[j] = Σ_t weights[t] · buf[starts[t] + j]` for `j < out.len()`.
///
/// `buf` must hold `starts[t] + round_up(out.len(), CHUNK)` elements for every `t`, where
/// CHUNK is at most 128 elements: callers pad their row buffers by [`PAD`].
pub(crate) fn rows<T: Scalar>(buf: &[T], starts: &[usize], weights: &[T], out: &mut [T]) {
    assert_eq!(starts.len(), weights.len());
    let need = starts
        .iter()
        .max()
        .map_or(0, |&s| s + out.len().next_multiple_of(PAD));
    assert!(
        need <= buf.len(),
        "row buffer too short: {} < {need}",
        buf.len()
    );
    // Accumulator chunk: 512 bytes (8 AVX-512 registers), 256 bytes for AVX2.
    let isa = isa();
    let chunk = chunk_for::<T>(out.len(), if isa == Isa::Avx512 { 512 } else { 256 });
    macro_rules! go {
        ($b:literal) => {
            match isa {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `isa()` returns Avx512 only when avx512f, avx512vl and fma were
                // detected on this CPU.
                Isa::Avx512 => unsafe { avx512::rows::<T, $b>(buf, starts, weights, out) },
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `isa()` returns Avx2 only when avx2 and fma were detected.
                Isa::Avx2 => unsafe { avx2::rows::<T, $b>(buf, starts, weights, out) },
                _ => rows_body::<T, $b, false>(buf, starts, weights, out),
            }
        };
    }
    by_chunk!(chunk, go)
}

/// The taps of two output rows computed together by [`rows2`], for a kernel whose rows the
/// second output row reads `q` kernel rows lower in the same buffer rows: the buffer
/// positions only the first row reads (`only_a`, with its weights `wa`), those both read
/// (`shared`, relative to the first row, with the first row's weight `shared_a` and the
/// second's `shared_b`), and those only the second reads (`only_b`, `wb`).
pub(crate) struct PairTaps<'a, T> {
    pub only_a: &'a [usize],
    pub wa: &'a [T],
    pub shared: &'a [usize],
    pub shared_a: &'a [T],
    pub shared_b: &'a [T],
    pub only_b: &'a [usize],
    pub wb: &'a [T],
}

/// Two output rows at once: `a[j] = Σ wa·buf[base + only_a + j] + Σ shared_a·buf[base +
/// shared + j]` and `b[j] = Σ shared_b·buf[base + shared + j] + Σ wb·buf[base + only_b +
/// j]`, for `j < a.len()` (`b` as long). A buffer position both rows read is loaded once
/// for both: with a tall kernel (stride 2, 17 rows) nearly every load then feeds two
/// multiply-adds instead of one, where [`rows`] was bound by its loads (unaligned vectors,
/// most crossing a cache line). Each output accumulates its taps in the order [`rows`]
/// does for a kernel of one channel and depth: only-a then shared for the first row, shared
/// then only-b for the second, so the sums are the same to the bit there.
///
/// `buf` must hold `base + s + round_up(a.len(), PAD)` elements for every position `s`.
pub(crate) fn rows2<T: Scalar>(
    buf: &[T],
    base: usize,
    taps: &PairTaps<'_, T>,
    a: &mut [T],
    b: &mut [T],
) {
    assert_eq!(taps.only_a.len(), taps.wa.len());
    assert_eq!(taps.only_b.len(), taps.wb.len());
    assert!(taps.shared.len() == taps.shared_a.len() && taps.shared.len() == taps.shared_b.len());
    assert_eq!(a.len(), b.len(), "rows2: rows of unequal length");
    let far = [taps.only_a, taps.shared, taps.only_b]
        .iter()
        .flat_map(|s| s.iter())
        .max()
        .map_or(0, |&s| base + s + a.len().next_multiple_of(PAD));
    assert!(
        far <= buf.len(),
        "row buffer too short: {} < {far}",
        buf.len()
    );
    // Accumulators: 512 bytes a row with AVX-512 (16 of its 32 registers for both rows),
    // 128 bytes with AVX2 (8 of 16).
    let isa = isa();
    let chunk = chunk_for::<T>(a.len(), if isa == Isa::Avx512 { 512 } else { 128 });
    macro_rules! go {
        ($b:literal) => {
            match isa {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `isa()` returns Avx512 only when avx512f, avx512vl and fma were
                // detected on this CPU.
                Isa::Avx512 => unsafe { avx512::rows2::<T, $b>(buf, base, taps, a, b) },
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `isa()` returns Avx2 only when avx2 and fma were detected.
                Isa::Avx2 => unsafe { avx2::rows2::<T, $b>(buf, base, taps, a, b) },
                _ => rows2_body::<T, $b, false>(buf, base, taps, a, b),
            }
        };
    }
    by_chunk!(chunk, go)
}

/// The accumulator chunk, in elements, of a row kernel with `bytes` of accumulators a row:
/// smaller when the row (`len`) is short, so little work is wasted on the tail.
pub(crate) fn chunk_for<T>(len: usize, bytes: usize) -> usize {
    let elems = (bytes / std::mem::size_of::<T>()).max(1);
    if len * 2 <= elems {
        (len.next_power_of_two()).max(4).min(elems)
    } else {
        elems
    }
}

/// Whether `s` holds a NaN or an infinity (never, for integers: `v − v` is then zero).
///
/// The scan `auto` makes of every input before an FFT plan runs; compiled for the detected
/// instruction set, as it was a tenth of a small FFT call's time at the baseline width
/// (128² float64 with a 32² kernel: 2.5 of 38 µs).
pub(crate) fn has_non_finite<T: Scalar>(s: &[T]) -> bool {
    match isa() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `isa()` returns Avx512 only when avx512f, avx512vl and fma were detected.
        Isa::Avx512 => unsafe { avx512::non_finite(s) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `isa()` returns Avx2 only when avx2 and fma were detected.
        Isa::Avx2 => unsafe { avx2::non_finite(s) },
        _ => non_finite_body(s),
    }
}

/// The body of [`has_non_finite`]: sums of `v − v` in 16 independent lanes.
#[inline(always)]
fn non_finite_body<T: Scalar>(s: &[T]) -> bool {
    let mut acc = [T::zero(); 16];
    let chunks = s.chunks_exact(16);
    let tail = chunks.remainder();
    for c in chunks {
        for i in 0..16 {
            // Deliberately `v − v`: zero unless v is NaN or infinite.
            #[allow(clippy::eq_op)]
            let probe = c[i] - c[i];
            acc[i] += probe;
        }
    }
    !(acc.iter().chain(tail).all(|v| v.is_finite()))
}

/// Row padding (in elements) callers leave after every row buffer: the widest chunk.
pub(crate) const PAD: usize = 128;

/// `acc + a·b`, fused (one rounding) when `FMA`: only in code compiled for CPUs with FMA,
/// where it is one instruction. Every kernel body accumulates through it.
#[inline(always)]
fn mac<T: Scalar, const FMA: bool>(acc: T, a: T, b: T) -> T {
    if FMA {
        acc.fused_mul_add(a, b)
    } else {
        acc + a * b
    }
}

/// The kernel body; `FMA` selects fused multiply-add for floats (only where the CPU has it).
#[inline(always)]
fn rows_body<T: Scalar, const B: usize, const FMA: bool>(
    buf: &[T],
    starts: &[usize],
    weights: &[T],
    out: &mut [T],
) {
    let n = out.len();
    let mut j0 = 0;
    while j0 < n {
        let mut acc = [T::zero(); B];
        for (&s, &w) in starts.iter().zip(weights) {
            let src: &[T; B] = buf[s + j0..s + j0 + B].try_into().expect("B elements");
            for j in 0..B {
                acc[j] = mac::<T, FMA>(acc[j], w, src[j]);
            }
        }
        let m = B.min(n - j0);
        out[j0..j0 + m].copy_from_slice(&acc[..m]);
        j0 += B;
    }
}

/// [`rows2`]'s body; `FMA` as for [`rows_body`].
#[inline(always)]
fn rows2_body<T: Scalar, const B: usize, const FMA: bool>(
    buf: &[T],
    base: usize,
    taps: &PairTaps<'_, T>,
    a: &mut [T],
    b: &mut [T],
) {
    let n = a.len();
    let block = |s: usize, j0: usize| -> &[T; B] {
        buf[base + s + j0..base + s + j0 + B]
            .try_into()
            .expect("B elements")
    };
    let mut j0 = 0;
    while j0 < n {
        let mut acc_a = [T::zero(); B];
        let mut acc_b = [T::zero(); B];
        for (&s, &w) in taps.only_a.iter().zip(taps.wa) {
            let src = block(s, j0);
            for j in 0..B {
                acc_a[j] = mac::<T, FMA>(acc_a[j], w, src[j]);
            }
        }
        for ((&s, &wa), &wb) in taps.shared.iter().zip(taps.shared_a).zip(taps.shared_b) {
            let src = block(s, j0);
            for j in 0..B {
                acc_a[j] = mac::<T, FMA>(acc_a[j], wa, src[j]);
                acc_b[j] = mac::<T, FMA>(acc_b[j], wb, src[j]);
            }
        }
        for (&s, &w) in taps.only_b.iter().zip(taps.wb) {
            let src = block(s, j0);
            for j in 0..B {
                acc_b[j] = mac::<T, FMA>(acc_b[j], w, src[j]);
            }
        }
        let m = B.min(n - j0);
        a[j0..j0 + m].copy_from_slice(&acc_a[..m]);
        b[j0..j0 + m].copy_from_slice(&acc_b[..m]);
        j0 += B;
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{non_finite_body, rows2_body, rows_body, PairTaps};
    use crate::Scalar;

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn non_finite<T: Scalar>(s: &[T]) -> bool {
        non_finite_body(s)
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn rows<T: Scalar, const B: usize>(
        buf: &[T],
        starts: &[usize],
        weights: &[T],
        out: &mut [T],
    ) {
        rows_body::<T, B, true>(buf, starts, weights, out)
    }

    /// # Safety
    /// As for `rows`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn rows2<T: Scalar, const B: usize>(
        buf: &[T],
        base: usize,
        taps: &PairTaps<'_, T>,
        a: &mut [T],
        b: &mut [T],
    ) {
        rows2_body::<T, B, true>(buf, base, taps, a, b)
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{non_finite_body, rows2_body, rows_body, PairTaps};
    use crate::Scalar;

    /// # Safety
    /// The CPU must support AVX-512 F and VL, and FMA.
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    pub(super) unsafe fn non_finite<T: Scalar>(s: &[T]) -> bool {
        non_finite_body(s)
    }

    /// # Safety
    /// The CPU must support AVX-512 F and VL, and FMA.
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    pub(super) unsafe fn rows<T: Scalar, const B: usize>(
        buf: &[T],
        starts: &[usize],
        weights: &[T],
        out: &mut [T],
    ) {
        rows_body::<T, B, true>(buf, starts, weights, out)
    }

    /// # Safety
    /// As for `rows`.
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    pub(super) unsafe fn rows2<T: Scalar, const B: usize>(
        buf: &[T],
        base: usize,
        taps: &PairTaps<'_, T>,
        a: &mut [T],
        b: &mut [T],
    ) {
        rows2_body::<T, B, true>(buf, base, taps, a, b)
    }
}

#[cfg(test)]
mod tests {
    use super::has_non_finite;

    #[test]
    fn non_finite_found_at_every_position() {
        // Whole 16-element chunks and the tail, each special value at each position.
        for len in 0..50 {
            let finite: Vec<f64> = (0..len).map(|i| i as f64 * 1e300 - 3.0).collect();
            assert!(!has_non_finite(&finite), "{len} finite values");
            let single: Vec<f32> = finite.iter().map(|&v| (v * 1e-300) as f32).collect();
            assert!(!has_non_finite(&single));
            for at in 0..len {
                for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
                    let mut x = finite.clone();
                    x[at] = bad;
                    assert!(has_non_finite(&x), "{bad} at {at} of {len}");
                    let mut y = single.clone();
                    y[at] = bad as f32;
                    assert!(has_non_finite(&y), "{bad} at {at} of {len} (f32)");
                }
            }
        }
        assert!(!has_non_finite(&[1i128, -5, 7]));
    }

    /// The vendor read from CPUID is the one the kernel reports (Linux on x86-64).
    #[test]
    fn intel_is_the_vendor_the_system_names() {
        let Ok(info) = std::fs::read_to_string("/proc/cpuinfo") else {
            return;
        };
        let Some(vendor) = info.lines().find_map(|l| {
            l.strip_prefix("vendor_id")
                .map(|r| r.trim_start_matches([' ', '\t', ':']))
        }) else {
            return;
        };
        assert_eq!(
            super::intel(),
            vendor == "GenuineIntel",
            "vendor_id {vendor}"
        );
    }
}
