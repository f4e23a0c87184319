//! Reading keyword arguments from Python objects, with errors that name them.

use std::sync::OnceLock;

use pyo3::exceptions::PyOverflowError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyComplex, PySequence, PyString};
use strideconv::{Error as CoreError, Method, PadMode, Padding};

use crate::errors::{core_error, type_error, value_error, Names};

/// An integer (Python `int` or anything with `__index__`, such as numpy integers), not `bool`.
/// `None` when `obj` is not an integer; an error when it is one too large for `i64`.
fn int_of(obj: &Bound<'_, PyAny>) -> Option<PyResult<i64>> {
    if obj.is_instance_of::<PyBool>() {
        return None;
    }
    match obj.extract::<i64>() {
        Ok(v) => Some(Ok(v)),
        Err(e) if e.is_instance_of::<PyOverflowError>(obj.py()) => Some(Err(e)),
        Err(_) => None,
    }
}

/// A sequence that is not a string.
fn sequence<'py>(obj: &Bound<'py, PyAny>) -> Option<Bound<'py, PySequence>> {
    if obj.is_instance_of::<PyString>() || obj.is_instance_of::<PyBytes>() {
        return None;
    }
    obj.cast::<PySequence>().ok().cloned()
}

fn items<'py>(seq: &Bound<'py, PySequence>) -> PyResult<Vec<Bound<'py, PyAny>>> {
    seq.try_iter()?.collect()
}

/// An integer `>= min` read from `item`; errors show `whole`, the argument as given.
fn bounded(
    item: &Bound<'_, PyAny>,
    name: &str,
    whole: &Bound<'_, PyAny>,
    min: i64,
    expected: &str,
) -> PyResult<usize> {
    match int_of(item) {
        None => Err(type_error(name, whole, expected)),
        Some(Err(_)) => Err(value_error(name, whole, "too large")),
        Some(Ok(v)) if v < min => Err(value_error(
            name,
            whole,
            if min > 0 {
                "values must be positive"
            } else {
                "values must be non-negative"
            },
        )),
        Some(Ok(v)) => usize::try_from(v).map_err(|_| value_error(name, whole, "too large")),
    }
}

/// A positive integer (`groups`).
pub(crate) fn positive(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<usize> {
    bounded(obj, name, obj, 1, "expected a positive integer")
}

/// Every core the process may use, asked once: `available_parallelism` reads cgroup files,
/// which costs tens of microseconds, more than a small convolution.
pub(crate) fn all_cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// `threads`: `None` (every core) or a positive integer.
pub(crate) fn threads(obj: &Bound<'_, PyAny>) -> PyResult<usize> {
    if obj.is_none() {
        return Ok(all_cores());
    }
    bounded(
        obj,
        "threads",
        obj,
        1,
        "expected None (all cores) or a positive integer",
    )
}

/// An int for every axis, or one int per convolved axis (`stride`, `dilation`): positive.
pub(crate) fn per_axis(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Vec<usize>> {
    const EXPECTED: &str = "expected a positive int, or one positive int per convolved axis";
    if int_of(obj).is_some() {
        return Ok(vec![bounded(obj, name, obj, 1, EXPECTED)?]);
    }
    let seq = sequence(obj).ok_or_else(|| type_error(name, obj, EXPECTED))?;
    let values = items(&seq)?
        .iter()
        .map(|it| bounded(it, name, obj, 1, EXPECTED))
        .collect::<PyResult<Vec<_>>>()?;
    if values.is_empty() {
        return Err(value_error(name, obj, EXPECTED));
    }
    Ok(values)
}

/// A shape: a non-negative int or a sequence of them (`x_shape`, `k_shape` of `plan`).
pub(crate) fn shape(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Vec<usize>> {
    const EXPECTED: &str = "expected a shape: a tuple of non-negative ints";
    if int_of(obj).is_some() {
        return Ok(vec![bounded(obj, name, obj, 0, EXPECTED)?]);
    }
    let seq = sequence(obj).ok_or_else(|| type_error(name, obj, EXPECTED))?;
    items(&seq)?
        .iter()
        .map(|it| bounded(it, name, obj, 0, EXPECTED))
        .collect()
}

/// Padding as the user wrote it, before the number of convolved axes is known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PadArg {
    Valid,
    Same,
    Full,
    Uniform(usize),
    PerAxis(Vec<(usize, usize)>),
}

/// `padding`: an int, one entry per axis (an int or a `(before, after)` pair), or a name.
pub(crate) fn padding(obj: &Bound<'_, PyAny>, names: &[&str]) -> PyResult<PadArg> {
    // Built only for an error: formatting on every call would cost more than parsing.
    let expected = || {
        format!(
            "expected a non-negative int, one entry per convolved axis (an int or a (before, after) \
             pair), or one of {}",
            names.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", ")
        )
    };
    if let Ok(s) = obj.cast::<PyString>() {
        let s = s.to_cow()?;
        return match &*s {
            "valid" if names.contains(&"valid") => Ok(PadArg::Valid),
            "same" if names.contains(&"same") => Ok(PadArg::Same),
            "full" if names.contains(&"full") => Ok(PadArg::Full),
            _ => Err(value_error("padding", obj, expected())),
        };
    }
    let entry = |item: &Bound<'_, PyAny>| -> PyResult<usize> {
        match int_of(item) {
            Some(Ok(v)) if v >= 0 => Ok(v as usize),
            Some(Ok(_)) => Err(value_error("padding", obj, "values must be non-negative")),
            Some(Err(_)) => Err(value_error("padding", obj, "too large")),
            None => Err(type_error("padding", obj, expected())),
        }
    };
    if int_of(obj).is_some() {
        return Ok(PadArg::Uniform(entry(obj)?));
    }
    let seq = sequence(obj).ok_or_else(|| type_error("padding", obj, expected()))?;
    let mut pairs = Vec::new();
    for item in items(&seq)? {
        if int_of(&item).is_some() {
            let p = entry(&item)?;
            pairs.push((p, p));
            continue;
        }
        let pair = sequence(&item)
            .map(|s| items(&s))
            .transpose()?
            .unwrap_or_default();
        if pair.len() != 2 {
            return Err(type_error("padding", obj, expected()));
        }
        pairs.push((entry(&pair[0])?, entry(&pair[1])?));
    }
    if pairs.is_empty() {
        return Err(value_error("padding", obj, expected()));
    }
    Ok(PadArg::PerAxis(pairs))
}

impl PadArg {
    /// The core's padding for `rank` convolved axes; `same` is the core's `Same` or `SameTf`.
    pub(crate) fn resolve(
        &self,
        obj: &Bound<'_, PyAny>,
        rank: usize,
        same: Padding,
    ) -> PyResult<Padding> {
        Ok(match self {
            PadArg::Valid => Padding::Valid,
            PadArg::Same => same,
            PadArg::Full => Padding::Full,
            PadArg::Uniform(p) => Padding::Uniform(*p, *p),
            PadArg::PerAxis(pairs) => {
                // An impossible rank is reported by the core, as a shape error, first.
                if (1..=3).contains(&rank) && pairs.len() != rank {
                    return Err(value_error(
                        "padding",
                        obj,
                        format!("expected {rank} entries, one per convolved axis"),
                    ));
                }
                Padding::Explicit(pairs.clone())
            }
        })
    }
}

/// Parse a string argument with the core's `FromStr`, keeping its explanation.
fn parse_name<T: std::str::FromStr<Err = CoreError>>(
    obj: &Bound<'_, PyAny>,
    name: &str,
    what: &str,
) -> PyResult<T> {
    let s = obj
        .cast::<PyString>()
        .map_err(|_| type_error(name, obj, format!("expected a string naming {what}")))?;
    s.to_cow()?.parse::<T>().map_err(|e| match e {
        CoreError::InvalidValue { expected, .. } => value_error(name, obj, expected),
        other => core_error(other, Names::Signal),
    })
}

/// `pad_mode` / `padding_mode`.
pub(crate) fn pad_mode(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<PadMode> {
    parse_name(obj, name, "a padding mode")
}

/// `method`.
pub(crate) fn method(obj: &Bound<'_, PyAny>) -> PyResult<Method> {
    parse_name(obj, "method", "a method")
}

/// `planning` of `plan()`: "estimate" (false) or "measure" (true).
pub(crate) fn planning(obj: &Bound<'_, PyAny>) -> PyResult<bool> {
    let s = obj
        .cast::<PyString>()
        .map_err(|_| type_error("planning", obj, "expected 'estimate' or 'measure'"))?;
    match &*s.to_cow()? {
        "estimate" => Ok(false),
        "measure" => Ok(true),
        _ => Err(value_error(
            "planning",
            obj,
            "expected 'estimate' or 'measure'",
        )),
    }
}

/// [`cval`] with the padding mode it goes with: PyTorch's name `"zeros"` pads with zeros,
/// so a `cval` other than 0 beside it is refused (it would otherwise be honoured, as by
/// `"constant"`, its alias).
pub(crate) fn cval_for(
    obj: &Bound<'_, PyAny>,
    mode: &Bound<'_, PyAny>,
    integer: bool,
) -> PyResult<f64> {
    let v = cval(obj, integer)?;
    let zeros = || {
        mode.cast::<PyString>()
            .is_ok_and(|s| s.to_cow().is_ok_and(|s| s == "zeros"))
    };
    if v != 0.0 && zeros() {
        return Err(value_error(
            "cval",
            obj,
            "pad_mode='zeros' pads with zeros; pass pad_mode='constant' to pad with another value",
        ));
    }
    Ok(v)
}

/// `cval`, the constant padding value: a real number; for integer data, an exact integer.
pub(crate) fn cval(obj: &Bound<'_, PyAny>, integer: bool) -> PyResult<f64> {
    const EXACT: f64 = 9007199254740992.0; // 2**53: every integer up to it is an exact f64
    let value = if obj.is_instance_of::<PyBool>() {
        f64::from(u8::from(obj.extract::<bool>()?))
    } else if let Some(v) = int_of(obj) {
        let v = v.map_err(|_| value_error("cval", obj, "too large"))?;
        v as f64
    } else if obj.is_instance_of::<PyComplex>() || obj.hasattr("imag")? {
        // Python and numpy numbers: read both parts, so a complex value is never truncated.
        let part = |p: &str| {
            obj.getattr(p)
                .and_then(|v| v.extract::<f64>())
                .map_err(|_| type_error("cval", obj, "expected a real number"))
        };
        if part("imag")? != 0.0 {
            return Err(value_error("cval", obj, "the padding value must be real"));
        }
        part("real")?
    } else if let Ok(v) = obj.extract::<f64>() {
        v
    } else {
        return Err(type_error("cval", obj, "expected a real number"));
    };
    if integer && !(value.is_finite() && value.fract() == 0.0 && value.abs() <= EXACT) {
        return Err(value_error(
            "cval",
            obj,
            "integer data is padded with an exact integer: cval must be a whole number with |cval| <= 2**53",
        ));
    }
    Ok(value)
}

/// `channel_axis`: `None` or an axis of an array with `ndim` axes (negative counts from the end).
pub(crate) fn channel_axis(obj: &Bound<'_, PyAny>, ndim: usize) -> PyResult<Option<usize>> {
    if obj.is_none() {
        return Ok(None);
    }
    let expected = || format!("expected None or an axis of x, which has {ndim} axes");
    let v = match int_of(obj) {
        Some(Ok(v)) => v,
        Some(Err(_)) => return Err(value_error("channel_axis", obj, expected())),
        None => return Err(type_error("channel_axis", obj, expected())),
    };
    let n = ndim as i64;
    let axis = if v < 0 { v + n } else { v };
    if !(0..n).contains(&axis) {
        return Err(value_error("channel_axis", obj, expected()));
    }
    Ok(Some(axis as usize))
}

/// Layout names of `conv1d/2d/3d`, channels first and channels last, by rank.
pub(crate) const LAYOUTS: [(&str, &str); 3] =
    [("NCW", "NWC"), ("NCHW", "NHWC"), ("NCDHW", "NDHWC")];

/// `layout` of `conv{rank}d` (rank 1 to 3): channels first (`NCHW`, also `None`) or last (`NHWC`).
pub(crate) fn layout(obj: &Bound<'_, PyAny>, rank: usize) -> PyResult<bool> {
    let (first, last) = LAYOUTS[rank - 1];
    if obj.is_none() {
        return Ok(false);
    }
    let expected =
        || format!("conv{rank}d expects '{first}' (channels first) or '{last}' (channels last)");
    let s = obj
        .cast::<PyString>()
        .map_err(|_| type_error("layout", obj, expected()))?
        .to_cow()?;
    if *s == *first {
        Ok(false)
    } else if *s == *last {
        Ok(true)
    } else {
        Err(value_error("layout", obj, expected()))
    }
}
