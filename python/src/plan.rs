//! `strideconv.Plan`: a request planned once for fixed shapes and dtype, called many times,
//! from many threads at once (it is immutable; the GIL is released while it computes).

use numpy::{PyArrayDescr, PyArrayDescrMethods};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::errors::{guard, type_error};
use crate::operands::{gather, Elem, Family};
use crate::request::{Request, Style};

/// A planned convolution for one pair of shapes and one dtype; call it like the function it
/// was made for: ``p(x, k)``, or ``p(input, weight, bias)`` for ``conv1d/2d/3d`` plans.
///
/// Make one with :func:`strideconv.plan`. A plan is immutable and may be called from several
/// threads at once.
#[pyclass(module = "strideconv", name = "Plan", frozen)]
pub(crate) struct PyPlan {
    request: Request,
    op: &'static str,
    dtype: Py<PyArrayDescr>,
    /// The dtype operands are converted to, and the family it computes in.
    compute: Py<PyArrayDescr>,
    family: Family,
}

/// A plan's `dtype` as the binding needs it.
pub(crate) struct PlanDtype<'py> {
    /// What the core computes in.
    pub family: Family,
    /// The dtype as the user gave it.
    pub dtype: Bound<'py, PyArrayDescr>,
    /// The dtype operands are converted to.
    pub compute: Bound<'py, PyArrayDescr>,
    /// The output dtype when it is not the compute type (float16 computes in float32).
    pub default_out: Option<Bound<'py, PyArrayDescr>>,
}

/// Read a plan's `dtype` argument.
pub(crate) fn plan_dtype<'py>(
    py: Python<'py>,
    obj: &Bound<'py, PyAny>,
) -> PyResult<PlanDtype<'py>> {
    const EXPECTED: &str = "expected a bool, integer, float16/32/64 or complex64/128 dtype";
    let dtype = PyArrayDescr::new(py, obj).map_err(|_| type_error("dtype", obj, EXPECTED))?;
    let (family, compute, default_out) = match Elem::of(&dtype) {
        Some(e) => {
            let compute = match e.family() {
                Family::F32 => numpy::dtype::<f32>(py),
                Family::F64 => numpy::dtype::<f64>(py),
                Family::C64 => numpy::dtype::<num_complex::Complex32>(py),
                Family::C128 => numpy::dtype::<num_complex::Complex64>(py),
                Family::Int => numpy::dtype::<i64>(py),
            };
            (e.family(), compute, None)
        }
        None if dtype.kind() == b'f' && dtype.itemsize() == 2 => {
            (Family::F32, numpy::dtype::<f32>(py), Some(dtype.clone()))
        }
        None => return Err(type_error("dtype", obj, EXPECTED)),
    };
    Ok(PlanDtype {
        family,
        dtype,
        compute,
        default_out,
    })
}

impl PyPlan {
    pub(crate) fn new(request: Request, op: &'static str, d: PlanDtype<'_>) -> PyPlan {
        PyPlan {
            request,
            op,
            dtype: d.dtype.unbind(),
            compute: d.compute.unbind(),
            family: d.family,
        }
    }
}

fn shape_tuple<'py>(py: Python<'py>, shape: &[usize]) -> PyResult<Bound<'py, PyTuple>> {
    PyTuple::new(py, shape)
}

#[pymethods]
impl PyPlan {
    /// Compute with the arrays the plan was made for.
    #[pyo3(signature = (x, k, bias=None))]
    fn __call__<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        k: &Bound<'py, PyAny>,
        bias: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        guard(|| {
            let bias = bias.filter(|b| !b.is_none());
            let names: &[&str] = match self.request.style {
                Style::Signal if bias.is_some() => {
                    return Err(PyTypeError::new_err(format!(
                        "a bias applies to conv1d/conv2d/conv3d plans only; this plan is for {}",
                        self.op
                    )))
                }
                Style::Signal => &["x", "k"],
                Style::Batched { .. } => &["input", "weight", "bias"],
            };
            let objs = [Some(x), Some(k), bias];
            let target = self.compute.bind(py);
            let ops = gather(py, &objs[..names.len()], names, Some((target, self.family)))?;
            self.request.run(
                py,
                ops.get(0)?,
                ops.get(1)?,
                ops.items.get(2).and_then(Option::as_ref),
            )
        })
    }

    /// The method that runs (never ``"auto"``).
    #[getter]
    fn method(&self) -> &'static str {
        self.request.plan.method().name()
    }

    /// The operation: ``"correlate"``, ``"convolve"``, ``"conv1d"``, ``"conv2d"`` or ``"conv3d"``.
    #[getter]
    fn op(&self) -> &'static str {
        self.op
    }

    /// The dtype the plan was made for.
    #[getter]
    fn dtype<'py>(&self, py: Python<'py>) -> Bound<'py, PyArrayDescr> {
        self.dtype.bind(py).clone()
    }

    /// The shape of ``x`` (or ``input``) the plan accepts.
    #[getter]
    fn x_shape<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        shape_tuple(py, &self.request.x_shape)
    }

    /// The shape of ``k`` (or ``weight``) the plan accepts.
    #[getter]
    fn k_shape<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        shape_tuple(py, &self.request.k_shape)
    }

    /// The shape of the result.
    #[getter]
    fn out_shape<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        shape_tuple(py, &self.request.out_shape())
    }

    /// A human-readable account of the problem, the cost of every method and the choice.
    fn explain(&self) -> String {
        self.request.plan.explain()
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "<strideconv.Plan {}: x {} * k {} -> {}, dtype {}, method '{}'>",
            self.op,
            crate::errors::shape_str(&self.request.x_shape),
            crate::errors::shape_str(&self.request.k_shape),
            crate::errors::shape_str(&self.request.out_shape()),
            self.dtype.bind(py),
            self.method()
        )
    }
}
