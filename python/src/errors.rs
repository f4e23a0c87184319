//! Python exceptions: the core's errors mapped one way, and the binding's own argument errors.
//!
//! Every message names the argument and the value it had (SPEC §5). `TypeError` is for values
//! of the wrong kind (a float stride, an object array), `ValueError` for values of the right
//! kind outside their domain, `OverflowError` for integer results that do not fit,
//! `MemoryError` for an output (or padded copy) too large for memory.

use std::fmt::Display;

use pyo3::exceptions::{PyMemoryError, PyOverflowError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use strideconv::Error as CoreError;

/// The names the user sees for the operands and the padding mode: `correlate`/`convolve` say
/// `x`, `k`, `pad_mode`; `conv1d/2d/3d` say `input`, `weight`, `padding_mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Names {
    Signal,
    Batched,
}

impl Names {
    /// The user's name for an argument the core calls `arg`.
    pub(crate) fn rename(self, arg: &str) -> &str {
        match (self, arg) {
            (Names::Batched, "x") => "input",
            (Names::Batched, "k") => "weight",
            (Names::Batched, "pad_mode") => "padding_mode",
            _ => arg,
        }
    }
}

/// A shape as Python prints it: `(3,)`, `(2, 3)`.
pub(crate) fn shape_str(shape: &[usize]) -> String {
    match shape {
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// `repr(obj)`, never failing.
pub(crate) fn repr(obj: &Bound<'_, PyAny>) -> String {
    obj.repr()
        .map(|s| s.to_string())
        .unwrap_or_else(|_| "<unprintable object>".to_owned())
}

/// `ValueError: invalid name=value: expected`.
#[cold]
pub(crate) fn value_error(name: &str, obj: &Bound<'_, PyAny>, expected: impl Display) -> PyErr {
    PyValueError::new_err(format!("invalid {name}={}: {expected}", repr(obj)))
}

/// `TypeError: invalid name=value: expected`.
#[cold]
pub(crate) fn type_error(name: &str, obj: &Bound<'_, PyAny>, expected: impl Display) -> PyErr {
    PyTypeError::new_err(format!("invalid {name}={}: {expected}", repr(obj)))
}

/// `ValueError` about an array's shape.
#[cold]
pub(crate) fn shape_error(name: &str, shape: &[usize], reason: impl Display) -> PyErr {
    PyValueError::new_err(format!(
        "invalid {name} shape {}: {reason}",
        shape_str(shape)
    ))
}

/// Something the binding believed impossible happened; say so rather than guess.
#[cold]
pub(crate) fn internal(what: impl Display) -> PyErr {
    PyRuntimeError::new_err(format!(
        "strideconv internal error (please report it): {what}"
    ))
}

/// The one conversion of core errors into Python exceptions.
#[cold]
pub(crate) fn core_error(e: CoreError, names: Names) -> PyErr {
    match e {
        CoreError::Type { arg, dtype } => PyTypeError::new_err(format!(
            "invalid {} dtype {dtype}: not supported",
            names.rename(arg)
        )),
        CoreError::Overflow { detail } => {
            PyOverflowError::new_err(format!("integer overflow: {detail}"))
        }
        CoreError::InvalidValue {
            arg,
            value,
            expected,
        } => PyValueError::new_err(format!("invalid {}={value}: {expected}", names.rename(arg))),
        CoreError::Shape { arg, shape, reason } => shape_error(names.rename(arg), &shape, reason),
        CoreError::KernelTooLarge {
            axis,
            kernel_extent,
            padded_len,
        } => PyValueError::new_err(format!(
            "invalid {k} shape: along convolved axis {axis} the {k} spans {kernel_extent} elements \
             (dilation included), more than the padded {x} length {padded_len}",
            k = names.rename("k"),
            x = names.rename("x"),
        )),
        CoreError::MethodRefused { method, reason } => PyValueError::new_err(format!(
            "invalid method='{method}': it cannot compute this problem: {reason}"
        )),
        CoreError::TooLarge {
            what,
            shape,
            bytes,
            reason,
        } => PyMemoryError::new_err(format!(
            "cannot compute: the {what} would have shape {} ({}): {reason}",
            shape_str(&shape),
            strideconv::error::human_bytes(bytes)
        )),
        other => PyValueError::new_err(other.to_string()),
    }
}

/// A core error from planning `x_shape` with `k_shape`: a kernel too large is reported with
/// both shapes, the rest as [`core_error`] reports them.
#[cold]
pub(crate) fn plan_error(
    e: CoreError,
    names: Names,
    x_shape: &[usize],
    k_shape: &[usize],
) -> PyErr {
    match e {
        CoreError::KernelTooLarge {
            axis,
            kernel_extent,
            padded_len,
        } => PyValueError::new_err(format!(
            "invalid {k} shape {}: along convolved axis {axis} the {k} spans {kernel_extent} \
             elements (dilation included), more than the padded {x} (shape {}) is long: {padded_len}",
            shape_str(k_shape),
            shape_str(x_shape),
            k = names.rename("k"),
            x = names.rename("x"),
        )),
        other => core_error(other, names),
    }
}

/// What can go wrong while computing with the GIL released; turned into a `PyErr` after.
#[derive(Debug)]
pub(crate) enum Failure {
    Core(CoreError),
    /// An exact integer result that does not fit the output dtype.
    Narrow {
        value: i128,
        dtype: &'static str,
        min: i128,
        max: i128,
    },
    Panic(String),
}

impl Failure {
    pub(crate) fn into_py(self, names: Names) -> PyErr {
        match self {
            Failure::Core(e) => core_error(e, names),
            Failure::Narrow {
                value,
                dtype,
                min,
                max,
            } => PyOverflowError::new_err(format!(
                "integer result {value} does not fit out_dtype={dtype} (range {min} to {max}); \
                 results are exact, never wrapped"
            )),
            Failure::Panic(msg) => internal(format!("panic: {msg}")),
        }
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(payload) => payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .unwrap_or_else(|| "unknown".to_owned()),
    }
}

/// Run `f`, turning a panic into a `Failure` so that no panic crosses into Python.
pub(crate) fn catch<T>(f: impl FnOnce() -> Result<T, Failure>) -> Result<T, Failure> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|p| Err(Failure::Panic(panic_message(p))))
}

/// Run the body of a Python entry point, turning a panic into `RuntimeError`.
pub(crate) fn guard<T>(f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|p| Err(internal(format!("panic: {}", panic_message(p)))))
}
