//! `strideconv._core`: the PyO3 glue between numpy arrays and the strideconv crate.
//!
//! Only glue lives here: reading arguments, viewing numpy arrays without copying them,
//! dispatching on dtype, adding the bias of `conv*d`, narrowing exact integers to the output
//! dtype, and mapping errors to Python exceptions. The public, documented API is the Python
//! package `strideconv` (python/strideconv/__init__.py), whose functions call the ones here
//! with every argument in order.

mod args;
mod cache;
mod errors;
mod operands;
mod plan;
mod request;

use std::sync::OnceLock;

use pyo3::prelude::*;
use pyo3::types::PyDict;
use strideconv::{ConvSpec, Layout, Method, Options, Plan};

use crate::errors::guard;
use crate::operands::gather;
use crate::plan::{plan_dtype, PyPlan};
use crate::request::{BatchedArgs, Request, SignalArgs};

/// Large outputs freed by numpy are kept for the next call of the same shape instead of
/// being returned to the system (see `KeepingAllocator`).
#[global_allocator]
static ALLOC: strideconv::memory::KeepingAllocator = strideconv::memory::KeepingAllocator::new();

/// `correlate` / `convolve`: every argument, in the order of the Python signature.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn signal<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    k: &Bound<'py, PyAny>,
    convolve: bool,
    stride: &Bound<'py, PyAny>,
    padding: &Bound<'py, PyAny>,
    pad_mode: &Bound<'py, PyAny>,
    cval: &Bound<'py, PyAny>,
    dilation: &Bound<'py, PyAny>,
    channel_axis: &Bound<'py, PyAny>,
    method: &Bound<'py, PyAny>,
    out_dtype: &Bound<'py, PyAny>,
    threads: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    guard(|| {
        let ops = gather(py, &[Some(x), Some(k)], &["x", "k"], None)?;
        let (x, k) = (ops.get(0)?, ops.get(1)?);
        let a = SignalArgs {
            convolve,
            stride,
            padding,
            pad_mode,
            cval,
            dilation,
            channel_axis,
            method,
            out_dtype,
            threads,
        };
        let request = Request::signal(
            py,
            x.shape(),
            k.shape(),
            ops.family(),
            ops.default_out.as_ref(),
            &a,
        )?;
        request.run(py, x, k, None)
    })
}

/// `conv1d` / `conv2d` / `conv3d`: the rank, then every argument in the order of the signature.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn batched<'py>(
    py: Python<'py>,
    rank: usize,
    input: &Bound<'py, PyAny>,
    weight: &Bound<'py, PyAny>,
    bias: &Bound<'py, PyAny>,
    stride: &Bound<'py, PyAny>,
    padding: &Bound<'py, PyAny>,
    dilation: &Bound<'py, PyAny>,
    groups: &Bound<'py, PyAny>,
    padding_mode: &Bound<'py, PyAny>,
    layout: &Bound<'py, PyAny>,
    method: &Bound<'py, PyAny>,
    threads: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    guard(|| {
        let bias = (!bias.is_none()).then_some(bias);
        let ops = gather(
            py,
            &[Some(input), Some(weight), bias],
            &["input", "weight", "bias"],
            None,
        )?;
        let (x, k) = (ops.get(0)?, ops.get(1)?);
        let a = BatchedArgs {
            rank,
            stride,
            padding,
            dilation,
            groups,
            padding_mode,
            layout,
            method,
            threads,
        };
        let request = Request::batched(
            py,
            x.shape(),
            k.shape(),
            ops.family(),
            ops.default_out.as_ref(),
            &a,
        )?;
        request.run(py, x, k, ops.items.get(2).and_then(Option::as_ref))
    })
}

/// `plan(..., op="correlate" | "convolve")`.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn plan_signal<'py>(
    py: Python<'py>,
    x_shape: &Bound<'py, PyAny>,
    k_shape: &Bound<'py, PyAny>,
    dtype: &Bound<'py, PyAny>,
    convolve: bool,
    stride: &Bound<'py, PyAny>,
    padding: &Bound<'py, PyAny>,
    pad_mode: &Bound<'py, PyAny>,
    cval: &Bound<'py, PyAny>,
    dilation: &Bound<'py, PyAny>,
    channel_axis: &Bound<'py, PyAny>,
    method: &Bound<'py, PyAny>,
    out_dtype: &Bound<'py, PyAny>,
    threads: &Bound<'py, PyAny>,
    planning: &Bound<'py, PyAny>,
) -> PyResult<PyPlan> {
    guard(|| {
        let (xs, ks) = (
            args::shape(x_shape, "x_shape")?,
            args::shape(k_shape, "k_shape")?,
        );
        let d = plan_dtype(py, dtype)?;
        let a = SignalArgs {
            convolve,
            stride,
            padding,
            pad_mode,
            cval,
            dilation,
            channel_axis,
            method,
            out_dtype,
            threads,
        };
        let measure = args::planning(planning)?;
        let mut request = Request::signal(py, &xs, &ks, d.family, d.default_out.as_ref(), &a)?;
        request.replan(measure, &xs, &ks)?;
        Ok(PyPlan::new(
            request,
            if convolve { "convolve" } else { "correlate" },
            d,
        ))
    })
}

/// `plan(..., op="conv1d" | "conv2d" | "conv3d")`.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn plan_batched<'py>(
    py: Python<'py>,
    rank: usize,
    x_shape: &Bound<'py, PyAny>,
    k_shape: &Bound<'py, PyAny>,
    dtype: &Bound<'py, PyAny>,
    stride: &Bound<'py, PyAny>,
    padding: &Bound<'py, PyAny>,
    dilation: &Bound<'py, PyAny>,
    groups: &Bound<'py, PyAny>,
    padding_mode: &Bound<'py, PyAny>,
    layout: &Bound<'py, PyAny>,
    method: &Bound<'py, PyAny>,
    threads: &Bound<'py, PyAny>,
    planning: &Bound<'py, PyAny>,
) -> PyResult<PyPlan> {
    guard(|| {
        let (xs, ks) = (
            args::shape(x_shape, "x_shape")?,
            args::shape(k_shape, "k_shape")?,
        );
        let d = plan_dtype(py, dtype)?;
        let a = BatchedArgs {
            rank,
            stride,
            padding,
            dilation,
            groups,
            padding_mode,
            layout,
            method,
            threads,
        };
        let measure = args::planning(planning)?;
        let mut request = Request::batched(py, &xs, &ks, d.family, d.default_out.as_ref(), &a)?;
        request.replan(measure, &xs, &ks)?;
        let op = ["conv1d", "conv2d", "conv3d"][rank.clamp(1, 3) - 1];
        Ok(PyPlan::new(request, op, d))
    })
}

/// The methods this build can run: those that accept an easy problem (a small float64 image
/// with a 3×3 kernel, stride 1); a method that refuses even that is not built in.
fn available_methods() -> &'static [&'static str] {
    static METHODS: OnceLock<Vec<&'static str>> = OnceLock::new();
    METHODS.get_or_init(|| {
        let layout = Layout::Signal {
            channel_axis: None,
            kernel_broadcast: false,
        };
        Method::ALL
            .iter()
            .filter(|&&m| {
                ConvSpec::new(&[6, 6], &[3, 3], layout.clone(), &Options::default())
                    .and_then(|spec| Plan::<f64>::new(spec, m, Some(1)))
                    .is_ok()
            })
            .map(|m| m.name())
            .collect()
    })
}

/// Names accepted by ``method=`` besides ``"auto"``, in the order reports list them.
#[pyfunction]
fn methods() -> Vec<&'static str> {
    available_methods().to_vec()
}

/// CPU features detected at run time (the ones the kernels may use).
fn cpu_features() -> Vec<&'static str> {
    #[allow(unused_mut)]
    let mut found = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        macro_rules! probe {
            ($($f:tt),*) => {$(
                if std::is_x86_feature_detected!($f) {
                    found.push($f);
                }
            )*};
        }
        probe!(
            "sse2", "sse3", "ssse3", "sse4.1", "sse4.2", "popcnt", "avx", "avx2", "fma", "f16c",
            "avx512f", "avx512bw", "avx512dq", "avx512vl"
        );
    }
    #[cfg(target_arch = "aarch64")]
    {
        macro_rules! probe {
            ($($f:tt),*) => {$(
                if std::arch::is_aarch64_feature_detected!($f) {
                    found.push($f);
                }
            )*};
        }
        probe!("neon", "fp16", "sve", "sve2");
    }
    found
}

/// Facts about this build: version, build profile and link-time optimisation, target, CPU
/// features, the instruction set the kernels use, default threads.
#[pyfunction]
fn build_info(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let info = PyDict::new(py);
    info.set_item("version", env!("CARGO_PKG_VERSION"))?;
    info.set_item(
        "profile",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
    )?;
    // Link-time optimisation as this build was made: the release profile's own setting in
    // Cargo.toml unless the environment overrode it (`.ci/run` builds without it, to compile
    // faster; such a wheel is correct but slower, and the benchmark harness says so).
    info.set_item(
        "lto",
        if cfg!(debug_assertions) {
            "off"
        } else {
            option_env!("CARGO_PROFILE_RELEASE_LTO").unwrap_or("thin")
        },
    )?;
    info.set_item(
        "target",
        format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS),
    )?;
    info.set_item("cpu_features", cpu_features())?;
    info.set_item("kernel_isa", strideconv::kernels::isa().name())?;
    info.set_item("default_threads", args::all_cores())?;
    info.set_item("methods", available_methods().to_vec())?;
    Ok(info)
}

/// The compiled half of the `strideconv` package.
#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<PyPlan>()?;
    m.add_function(wrap_pyfunction!(signal, m)?)?;
    m.add_function(wrap_pyfunction!(batched, m)?)?;
    m.add_function(wrap_pyfunction!(plan_signal, m)?)?;
    m.add_function(wrap_pyfunction!(plan_batched, m)?)?;
    m.add_function(wrap_pyfunction!(methods, m)?)?;
    m.add_function(wrap_pyfunction!(build_info, m)?)?;
    Ok(())
}
