//! Wisdom, as FFTW calls it: what this machine has learned about itself.
//!
//! Two things are kept: calibration scale factors for the cost model ([`calibrate`]), and the
//! methods that measured planning found fastest for exact problems. Wisdom lives in memory
//! for the process; [`save`] writes it as JSON keyed by the library version and the CPU's
//! instruction set and core count, and [`load`] reads it back (refusing wisdom of another
//! machine or version). If `STRIDECONV_WISDOM` names a file, it is loaded on first use.

use std::sync::{OnceLock, RwLock};
use std::time::Instant;

use ndarray::{ArrayD, IxDyn};
use serde::{Deserialize, Serialize};

use crate::cost::Scales;
use crate::error::{Error, Result};
use crate::plan::{Method, Plan};
use crate::scalar::{Kind, Scalar};
use crate::spec::{ConvSpec, Layout, Options};

/// One calibration factor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScaleEntry {
    /// Method name.
    pub method: String,
    /// Element kind: `real`, `complex` or `integer`.
    pub kind: String,
    /// Measured seconds ÷ the model's estimate.
    pub scale: f64,
}

/// One measured choice.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    /// The problem (see [`problem_key`]).
    pub key: String,
    /// The fastest method measured.
    pub method: String,
    /// Its time, in seconds.
    pub seconds: f64,
}

/// Everything learned, as saved.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Wisdom {
    /// Library version that wrote it.
    pub version: String,
    /// CPU it was measured on.
    pub cpu: String,
    /// Cost-model scale factors.
    pub scales: Vec<ScaleEntry>,
    /// Measured choices.
    pub choices: Vec<Choice>,
}

/// The machine, as wisdom is keyed: instruction set and core count.
pub fn cpu_key() -> String {
    format!(
        "{}-{}cores",
        crate::kernels::isa().name(),
        crate::method::default_threads()
    )
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Real => "real",
        Kind::Complex => "complex",
        Kind::Integer => "integer",
    }
}

fn store() -> &'static RwLock<Wisdom> {
    static WISDOM: OnceLock<RwLock<Wisdom>> = OnceLock::new();
    WISDOM.get_or_init(|| {
        let mut w = Wisdom {
            version: env!("CARGO_PKG_VERSION").into(),
            cpu: cpu_key(),
            ..Wisdom::default()
        };
        if let Ok(path) = std::env::var("STRIDECONV_WISDOM") {
            if let Ok(loaded) = read(&path) {
                w = loaded;
            }
        }
        RwLock::new(w)
    })
}

fn read(path: &str) -> Result<Wisdom> {
    let io = |detail: String| Error::InvalidValue {
        arg: "wisdom",
        value: path.into(),
        expected: detail,
    };
    let text = std::fs::read_to_string(path).map_err(|e| io(format!("cannot read: {e}")))?;
    let w: Wisdom =
        serde_json::from_str(&text).map_err(|e| io(format!("not strideconv wisdom: {e}")))?;
    if w.version != env!("CARGO_PKG_VERSION") || w.cpu != cpu_key() {
        return Err(io(format!(
            "made by version {} on {}, this is version {} on {}",
            w.version,
            w.cpu,
            env!("CARGO_PKG_VERSION"),
            cpu_key()
        )));
    }
    Ok(w)
}

/// Replace the in-memory wisdom with the file's.
pub fn load(path: &str) -> Result<()> {
    let w = read(path)?;
    *store().write().unwrap_or_else(|e| e.into_inner()) = w;
    Ok(())
}

/// Write the in-memory wisdom as JSON.
pub fn save(path: &str) -> Result<()> {
    let w = current();
    let text = serde_json::to_string_pretty(&w).expect("wisdom serialises");
    std::fs::write(path, text).map_err(|e| Error::InvalidValue {
        arg: "wisdom",
        value: path.into(),
        expected: format!("cannot write: {e}"),
    })
}

/// A copy of the in-memory wisdom.
pub fn current() -> Wisdom {
    store().read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Forget everything learned in this process.
pub fn forget() {
    let mut w = store().write().unwrap_or_else(|e| e.into_inner());
    w.scales.clear();
    w.choices.clear();
}

/// Scale factors of one `strideconv calibrate` run on the development machine (AVX-512,
/// 2 cores), used until wisdom with scales of its own is loaded or made. The FFT entries
/// were refitted by hand when the FFT cost model's cache term changed (see `cost::fft`).
const DEFAULT_SCALES: [(Method, Kind, f64); 16] = [
    (Method::Naive, Kind::Real, 0.37),
    (Method::Naive, Kind::Complex, 0.22),
    (Method::Naive, Kind::Integer, 0.30),
    (Method::Im2col, Kind::Real, 0.81),
    (Method::Im2col, Kind::Complex, 0.84),
    (Method::Im2col, Kind::Integer, 0.22),
    (Method::ShiftAdd, Kind::Real, 0.74),
    (Method::ShiftAdd, Kind::Complex, 0.70),
    (Method::ShiftAdd, Kind::Integer, 0.84),
    (Method::FftFull, Kind::Real, 1.1),
    (Method::FftFull, Kind::Complex, 1.15),
    (Method::Fft, Kind::Real, 1.0),
    (Method::Fft, Kind::Complex, 0.98),
    (Method::Direct, Kind::Real, 0.91),
    (Method::Direct, Kind::Complex, 4.10),
    (Method::Direct, Kind::Integer, 2.31),
];

/// The scale of `winograd`'s real estimates on Intel processors, where the built-in one
/// (1, from the AMD machine) is too low. On a Sapphire Rapids class Xeon (2 threads, medians
/// of 7–9 alternating rounds from Python), `winograd`'s time over `im2col`'s, against the
/// model's ratio of their estimates: float32 3×3 64→64 @56 1.0–1.24 (model 0.84), 128→128
/// @28 1.08 (0.69), 256→256 @14 1.30–1.32 (0.67); eight images 64→64 @56 1.16 (0.84),
/// 128→128 @28 0.90–0.96 (0.66), 256→256 @14 1.13 (0.57); float64 64→64 @56 0.67 (0.57),
/// 128→128 @28 1.0 (0.43), 256→256 @14 1.22 (0.61), eight images 64→64 @56 0.83. At 1.6
/// `auto` moves the four float32 one-image layers and 64→64 @56 of eight images to `im2col`
/// (faster there by 8–32%), and 128→128 @28 of eight images too (where it is 4% slower);
/// a larger scale would also move layers where `winograd` wins (float64 64→64 @56 by 33%).
/// complex64 (64→64 @56: 0.61 against 0.79) keeps the built-in scale. Wisdom with scales of
/// its own (`strideconv calibrate`) replaces all of this.
const INTEL_WINOGRAD_REAL: f64 = 1.6;

pub(crate) fn scales() -> Scales {
    let w = store().read().unwrap_or_else(|e| e.into_inner());
    if w.scales.is_empty() {
        let mut scales = DEFAULT_SCALES.to_vec();
        if crate::kernels::intel() {
            scales.push((Method::Winograd, Kind::Real, INTEL_WINOGRAD_REAL));
        }
        return Scales(scales);
    }
    Scales(
        w.scales
            .iter()
            .filter_map(|e| {
                let m: Method = e.method.parse().ok()?;
                let k = [Kind::Real, Kind::Complex, Kind::Integer]
                    .into_iter()
                    .find(|k| kind_name(*k) == e.kind)?;
                Some((m, k, e.scale))
            })
            .collect(),
    )
}

/// The key of a problem for measured choices: everything that affects speed.
pub fn problem_key<T: Scalar>(spec: &ConvSpec, threads: usize) -> String {
    let padded: Vec<usize> = (0..3).map(|a| spec.padded_len(a)).collect();
    format!(
        "{} n{} g{} c{}->{} x{:?} k{:?} s{:?} d{:?} t{}",
        T::NAME,
        spec.batch,
        spec.groups,
        spec.in_channels,
        spec.out_channels,
        padded,
        spec.kernel,
        spec.stride,
        spec.dilation,
        threads
    )
}

pub(crate) fn recall(key: &str) -> Option<Method> {
    let w = store().read().unwrap_or_else(|e| e.into_inner());
    w.choices
        .iter()
        .find(|c| c.key == key)
        .and_then(|c| c.method.parse().ok())
}

pub(crate) fn remember(key: String, method: Method, seconds: f64) {
    let mut w = store().write().unwrap_or_else(|e| e.into_inner());
    w.choices.retain(|c| c.key != key);
    w.choices.push(Choice {
        key,
        method: method.name().into(),
        seconds,
    });
}

/// Seconds of the best of a few runs of `plan` on synthetic data (capped at ~0.3 s).
pub(crate) fn time_plan<T: Scalar>(plan: &Plan<T>) -> Result<f64> {
    let spec = plan.spec();
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut value = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        T::from_f64((state % 9) as f64 - 4.0)
    };
    let x = ArrayD::from_shape_simple_fn(IxDyn(&spec.x_shape), &mut value);
    let k = ArrayD::from_shape_simple_fn(IxDyn(&spec.k_shape), &mut value);
    let mut best = f64::INFINITY;
    let start = Instant::now();
    for rep in 0..5 {
        let t0 = Instant::now();
        std::hint::black_box(plan.execute_compute(x.view(), k.view())?);
        let dt = t0.elapsed().as_secs_f64();
        if rep > 0 || dt > 0.05 {
            best = best.min(dt);
        }
        if start.elapsed().as_secs_f64() > 0.3 && best.is_finite() {
            break;
        }
    }
    Ok(best)
}

/// Measure every method on a fixed set of problems (single-threaded) and set the cost
/// model's scale factors to measured ÷ estimated (geometric mean per method and kind).
/// Takes a few tens of seconds. Returns the new wisdom; [`save`] keeps it.
pub fn calibrate(mut progress: impl FnMut(&str)) -> Result<Wisdom> {
    forget();
    let signal = Layout::Signal {
        channel_axis: None,
        kernel_broadcast: false,
    };
    let chans = Layout::Signal {
        channel_axis: Some(2),
        kernel_broadcast: false,
    };
    let problems: Vec<(Vec<usize>, Vec<usize>, Layout, usize)> = vec![
        (vec![256, 256], vec![3, 3], signal.clone(), 2),
        (vec![512, 512], vec![7, 7], signal.clone(), 2),
        (vec![256, 256], vec![17, 17], signal.clone(), 2),
        (vec![384, 384], vec![33, 33], signal.clone(), 3),
        (vec![256, 256], vec![129, 129], signal.clone(), 2),
        (vec![256, 256], vec![250, 250], signal.clone(), 2),
        (vec![128, 128, 5], vec![5, 5, 5], chans.clone(), 2),
        (vec![200, 200, 10], vec![15, 15, 10], chans, 5),
        (vec![4096], vec![65], signal, 2),
    ];
    let mut ratios: Vec<(Method, Kind, f64)> = Vec::new();
    for (xs, ks, layout, s) in &problems {
        let spec = ConvSpec::new(xs, ks, layout.clone(), &Options::strided(*s))?;
        progress(&format!("x {xs:?} k {ks:?} stride {s}"));
        measure_ratios::<f64>(&spec, &mut ratios)?;
        measure_ratios::<f32>(&spec, &mut ratios)?;
        if xs[0] <= 256 {
            measure_ratios::<i128>(&spec, &mut ratios)?;
            measure_ratios::<num_complex::Complex64>(&spec, &mut ratios)?;
        }
    }
    // Winograd computes stride-1 3×3 kernels only, and competes there with im2col: its scale
    // is im2col's times the ratio of the two on a CNN layer (with 64 channels, like the
    // layers it is chosen for; its model weighs the transforms less than they cost at 32).
    let layer = ConvSpec::new(
        &[1, 64, 28, 28],
        &[64, 64, 3, 3],
        Layout::Batched {
            channels_last: false,
        },
        &Options::strided(1),
    )?;
    progress("x [1, 64, 28, 28] k [64, 64, 3, 3] stride 1");
    let mut cnn = Vec::new();
    measure_ratios::<f64>(&layer, &mut cnn)?;
    measure_ratios::<f32>(&layer, &mut cnn)?;
    measure_ratios::<num_complex::Complex64>(&layer, &mut cnn)?;
    // Geometric mean of the measured ÷ estimated ratios of one method and kind.
    let mean = |rs: &[(Method, Kind, f64)], m: Method, k: Kind| -> Option<f64> {
        let logs: Vec<f64> = (rs.iter())
            .filter(|r| r.0 == m && r.1 == k)
            .map(|r| r.2.ln())
            .collect();
        (!logs.is_empty()).then(|| (logs.iter().sum::<f64>() / logs.len() as f64).exp())
    };
    for k in [Kind::Real, Kind::Complex] {
        if let (Some(i2c), Some(w), Some(i)) = (
            mean(&ratios, Method::Im2col, k),
            mean(&cnn, Method::Winograd, k),
            mean(&cnn, Method::Im2col, k),
        ) {
            ratios.push((Method::Winograd, k, i2c * w / i));
        }
    }
    let mut w = store().write().unwrap_or_else(|e| e.into_inner());
    w.scales.clear();
    for m in Method::ALL {
        for k in [Kind::Real, Kind::Complex, Kind::Integer] {
            if let Some(scale) = mean(&ratios, m, k) {
                w.scales.push(ScaleEntry {
                    method: m.name().into(),
                    kind: kind_name(k).into(),
                    scale,
                });
            }
        }
    }
    Ok(w.clone())
}

fn measure_ratios<T: Scalar>(spec: &ConvSpec, out: &mut Vec<(Method, Kind, f64)>) -> Result<()> {
    let unit = Scales(Vec::new());
    for m in Method::ALL {
        let Ok(est) = crate::cost::estimate::<T>(m, spec, 1, &unit) else {
            continue;
        };
        if est > 0.5 {
            continue; // too slow to be worth measuring (and never the choice)
        }
        let plan = Plan::<T>::new(spec.clone(), m, Some(1))?;
        let secs = time_plan(&plan)?;
        out.push((m, T::KIND, secs / est));
    }
    Ok(())
}
