//! The one error type of the crate.

use std::fmt;

/// Everything that can go wrong, with the offending values.
///
/// Each variant maps to one Python exception class in the bindings:
/// [`Error::Type`] to `TypeError`, [`Error::Overflow`] to `OverflowError`, all others to
/// `ValueError`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An argument has a value outside its domain (stride 0, unknown mode, ...).
    #[error("invalid {arg} = {value}: {expected}")]
    InvalidValue {
        /// Name of the argument, as the user spelled it.
        arg: &'static str,
        /// The value received, formatted.
        value: String,
        /// What would have been accepted.
        expected: String,
    },
    /// Shapes do not fit together (ranks, channels, groups).
    #[error("invalid {arg} shape {shape:?}: {reason}")]
    Shape {
        /// Which array: `x`, `k`, `input`, `weight`, `bias`, `out`.
        arg: &'static str,
        /// Its shape.
        shape: Vec<usize>,
        /// Why it does not fit.
        reason: String,
    },
    /// The (dilated) kernel is longer than the padded input along some axis.
    #[error(
        "kernel extent {kernel_extent} along axis {axis} is larger than the padded input length {padded_len}"
    )]
    KernelTooLarge {
        /// Spatial axis (0-based, among the convolved axes).
        axis: usize,
        /// `dilation * (k - 1) + 1`.
        kernel_extent: usize,
        /// `n + pad_before + pad_after`.
        padded_len: usize,
    },
    /// A method was named that cannot compute this problem.
    #[error("method '{method}' cannot compute this problem: {reason}")]
    MethodRefused {
        /// The method's name.
        method: &'static str,
        /// Why not.
        reason: String,
    },
    /// An element type that the library does not compute with.
    #[error("unsupported dtype for {arg}: {dtype}")]
    Type {
        /// Which argument.
        arg: &'static str,
        /// The dtype's name.
        dtype: String,
    },
    /// An exact integer result does not fit the output type.
    #[error("integer overflow: {detail}")]
    Overflow {
        /// What overflowed, with the value or the bound.
        detail: String,
    },
}

/// Shorthand for `Result<T, strideconv::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cold]
pub(crate) fn invalid(
    arg: &'static str,
    value: impl fmt::Debug,
    expected: impl Into<String>,
) -> Error {
    Error::InvalidValue {
        arg,
        value: format!("{value:?}"),
        expected: expected.into(),
    }
}

#[cold]
pub(crate) fn shape_error(arg: &'static str, shape: &[usize], reason: impl Into<String>) -> Error {
    Error::Shape {
        arg,
        shape: shape.to_vec(),
        reason: reason.into(),
    }
}

#[cold]
pub(crate) fn refused(method: &'static str, reason: impl Into<String>) -> Error {
    Error::MethodRefused {
        method,
        reason: reason.into(),
    }
}

#[cold]
pub(crate) fn overflow(detail: impl Into<String>) -> Error {
    Error::Overflow {
        detail: detail.into(),
    }
}
