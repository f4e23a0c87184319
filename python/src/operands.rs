//! The arrays of a call: accepted as they are when the core can read them in place, otherwise
//! handed once to the Python helper `strideconv._operands.normalize` (conversion, dtype
//! promotion with `numpy.result_type`, byte order, alignment) and accepted after that.

use ndarray::ArrayViewD;
use numpy::{
    PyArrayDescr, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyUntypedArray,
    PyUntypedArrayMethods,
};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyTuple;

use crate::errors::internal;

/// The element types the core reads directly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Elem {
    Bool,
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
    F32,
    F64,
    C64,
    C128,
}

/// What the core computes in: one float or complex type, or exact integers (`i128`) for every
/// integer type and `bool`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Family {
    F32,
    F64,
    C64,
    C128,
    Int,
}

impl Elem {
    /// The element type of a dtype, by kind and size; `None` for everything else.
    pub(crate) fn of(dtype: &Bound<'_, PyArrayDescr>) -> Option<Elem> {
        Some(match (dtype.kind(), dtype.itemsize()) {
            (b'b', 1) => Elem::Bool,
            (b'i', 1) => Elem::I8,
            (b'i', 2) => Elem::I16,
            (b'i', 4) => Elem::I32,
            (b'i', 8) => Elem::I64,
            (b'u', 1) => Elem::U8,
            (b'u', 2) => Elem::U16,
            (b'u', 4) => Elem::U32,
            (b'u', 8) => Elem::U64,
            (b'f', 4) => Elem::F32,
            (b'f', 8) => Elem::F64,
            (b'c', 8) => Elem::C64,
            (b'c', 16) => Elem::C128,
            _ => return None,
        })
    }

    pub(crate) fn family(self) -> Family {
        match self {
            Elem::F32 => Family::F32,
            Elem::F64 => Family::F64,
            Elem::C64 => Family::C64,
            Elem::C128 => Family::C128,
            _ => Family::Int,
        }
    }
}

/// One array the core can read in place.
pub(crate) struct Operand<'py> {
    pub array: Bound<'py, PyUntypedArray>,
    pub elem: Elem,
}

impl<'py> Operand<'py> {
    /// `obj` as an operand when it is a numpy array of a supported dtype in native byte
    /// order, aligned, with strides that are whole elements; `None` otherwise.
    fn ready(obj: &Bound<'py, PyAny>) -> Option<Operand<'py>> {
        let array = obj.cast::<PyUntypedArray>().ok()?;
        let dtype = array.dtype();
        let elem = Elem::of(&dtype)?;
        let itemsize = dtype.itemsize() as isize;
        let native = dtype.is_native_byteorder().unwrap_or(true);
        (native && array.is_aligned() && array.strides().iter().all(|s| s % itemsize == 0)).then(
            || Operand {
                array: array.clone(),
                elem,
            },
        )
    }

    pub(crate) fn shape(&self) -> &[usize] {
        self.array.shape()
    }

    /// A read-only typed view (no copy); `E` must match `self.elem`.
    #[allow(unsafe_code)]
    pub(crate) fn view<E: numpy::Element>(&self) -> PyResult<ArrayViewD<'_, E>> {
        let typed = self
            .array
            .cast::<PyArrayDyn<E>>()
            .map_err(|e| internal(format!("{e}")))?;
        // SAFETY: `as_array` requires that no exclusive Rust reference to the array's data
        // exists while the view lives. This module never makes a mutable view of an operand
        // (outputs are new arrays made from owned results), so no such reference comes from
        // here; rust-numpy's dynamic borrow flags, which `try_readonly` would take, track only
        // Rust borrows too (Python code may write an array whoever reads it), and taking and
        // releasing them cost a tenth of the seed's 7×7 call (two hash maps allocated).
        Ok(unsafe { typed.as_array() })
    }
}

/// The operands of one call, ready for the core.
pub(crate) struct Operands<'py> {
    pub items: Vec<Option<Operand<'py>>>,
    /// The output dtype when it is not the compute type (float16 computes in float32).
    pub default_out: Option<Bound<'py, PyArrayDescr>>,
}

impl<'py> Operands<'py> {
    /// The compute family: `Int` when every operand is an integer or bool, else the one
    /// floating type they share.
    pub(crate) fn family(&self) -> Family {
        self.items
            .iter()
            .flatten()
            .next()
            .map_or(Family::F64, |o| o.elem.family())
    }

    pub(crate) fn get(&self, i: usize) -> PyResult<&Operand<'py>> {
        self.items
            .get(i)
            .and_then(Option::as_ref)
            .ok_or_else(|| internal("missing operand"))
    }
}

/// Do these operands need no conversion, for a call computing in `want` (`None`: any)?
fn consistent(items: &[Option<Operand<'_>>], want: Option<Family>) -> bool {
    let mut present = items.iter().flatten();
    let Some(first) = present.next() else {
        return true;
    };
    let family = first.elem.family();
    if want.is_some_and(|w| w != family) {
        return false;
    }
    // Integers of different types meet in the exact i128 accumulator; floats must agree.
    present.all(|o| {
        if family == Family::Int {
            o.elem.family() == Family::Int
        } else {
            o.elem == first.elem
        }
    })
}

/// Gather the operands `objs` (named `names` in errors). `target` is a plan's compute dtype
/// (`None`: promote as numpy does); `want` its family.
pub(crate) fn gather<'py>(
    py: Python<'py>,
    objs: &[Option<&Bound<'py, PyAny>>],
    names: &[&str],
    target: Option<(&Bound<'py, PyArrayDescr>, Family)>,
) -> PyResult<Operands<'py>> {
    let fast: Option<Vec<Option<Operand<'py>>>> = objs
        .iter()
        .map(|o| o.map_or(Some(None), |o| Operand::ready(o).map(Some)))
        .collect();
    if let Some(items) = fast {
        if consistent(&items, target.map(|t| t.1)) {
            return Ok(Operands {
                items,
                default_out: None,
            });
        }
    }
    static NORMALIZE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let normalize = NORMALIZE.import(py, "strideconv._operands", "normalize")?;
    let arrays = PyTuple::new(
        py,
        objs.iter()
            .map(|o| o.map_or_else(|| py.None().into_bound(py), |o| o.clone())),
    )?;
    let target_dtype = target.map_or_else(|| py.None().into_bound(py), |t| t.0.clone().into_any());
    let result = normalize.call1((arrays, PyTuple::new(py, names)?, target_dtype))?;
    let (arrays, default_out): (Bound<'py, PyTuple>, Option<Bound<'py, PyArrayDescr>>) =
        result.extract()?;
    let mut items = Vec::with_capacity(objs.len());
    for a in arrays.iter() {
        if a.is_none() {
            items.push(None);
        } else {
            let op = Operand::ready(&a)
                .ok_or_else(|| internal(format!("normalize returned an unusable array {a}")))?;
            items.push(Some(op));
        }
    }
    if !consistent(&items, target.map(|t| t.1)) {
        return Err(internal("normalize returned operands of mixed types"));
    }
    Ok(Operands { items, default_out })
}
