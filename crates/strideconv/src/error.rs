//! The one error type of the crate.

use std::fmt;

/// Everything that can go wrong, with the offending values.
///
/// Each variant maps to one Python exception class in the bindings:
/// [`Error::Type`] to `TypeError`, [`Error::Overflow`] to `OverflowError`,
/// [`Error::TooLarge`] to `MemoryError`, all others to `ValueError`.
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
    /// The output, or a padded copy of the input that the method makes, does not fit in
    /// memory: more bytes than can be addressed, or an allocation the system refused (huge
    /// padding, mostly). Nothing was computed.
    #[error("the {what} would have shape {shape:?} ({}): {reason}", human_bytes(*bytes))]
    TooLarge {
        /// `output` or `padded copy of the input`.
        what: &'static str,
        /// Its shape (canonical for the padded copy: batch, channels, depth, height, width).
        shape: Vec<usize>,
        /// Its size in bytes: in the element type computed with, or in the widest one (16
        /// bytes) when a `ConvSpec`, which knows no element type, finds it unaddressable.
        bytes: u128,
        /// Why it cannot be had.
        reason: String,
    },
}

/// Bytes as people read them: `512 B`, `1.5 KiB`, `29.1 TiB`; past 1024 EiB, `6.8e25 B`.
pub fn human_bytes(bytes: u128) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes >= 1 << 70 {
        return format!("{:.1e} B", bytes as f64);
    }
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
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

/// Bytes of an array of `shape` with elements of `elem_bytes` (saturating, never wrapping).
fn bytes_of(shape: &[usize], elem_bytes: usize) -> u128 {
    (shape.iter()).fold(elem_bytes as u128, |a, &n| a.saturating_mul(n as u128))
}

#[cold]
pub(crate) fn too_large(
    what: &'static str,
    shape: &[usize],
    elem_bytes: usize,
    reason: impl Into<String>,
) -> Error {
    Error::TooLarge {
        what,
        shape: shape.to_vec(),
        bytes: bytes_of(shape, elem_bytes),
        reason: reason.into(),
    }
}

/// [`too_large`] for memory the system refused (the allocation failed).
#[cold]
pub(crate) fn memory_refused(what: &'static str, shape: &[usize], elem_bytes: usize) -> Error {
    let bytes = human_bytes(bytes_of(shape, elem_bytes));
    too_large(
        what,
        shape,
        elem_bytes,
        format!("the system refused {bytes} for it"),
    )
}

#[cfg(test)]
mod tests {
    use super::human_bytes;

    #[test]
    fn bytes_read_well() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(32 << 40), "32.0 TiB");
        assert_eq!(human_bytes((1 << 70) - (1 << 60)), "1023.0 EiB");
        assert_eq!(human_bytes(u128::MAX), "3.4e38 B");
    }
}
