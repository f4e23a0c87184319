//! A resolved request: the core's plan plus what the binding adds around it (the user's
//! shapes, the bias of `conv*d`, unbatched input, the output dtype). One-shot calls build one
//! and run it once; `strideconv.Plan` keeps one.

use std::sync::Arc;

use ndarray::{ArrayD, ArrayViewD, Axis};
use num_complex::{Complex32, Complex64};
use numpy::{PyArray, PyArrayDescr, PyArrayDescrMethods};
use pyo3::prelude::*;
use strideconv::{
    ConvSpec, Element as CoreElement, Layout, Method, Op, Options, Padding, Plan, Planning, Scalar,
};

use crate::errors::{catch, internal, plan_error, shape_error, type_error, Failure, Names};
use crate::operands::{Elem, Family, Operand};
use crate::{args, cache};

/// The core plan, for each compute type.
pub(crate) enum AnyPlan {
    F32(Plan<f32>),
    F64(Plan<f64>),
    C64(Plan<Complex32>),
    C128(Plan<Complex64>),
    Int(Plan<i128>),
}

macro_rules! on_plan {
    ($plan:expr, $p:ident => $body:expr) => {
        match $plan {
            AnyPlan::F32($p) => $body,
            AnyPlan::F64($p) => $body,
            AnyPlan::C64($p) => $body,
            AnyPlan::C128($p) => $body,
            AnyPlan::Int($p) => $body,
        }
    };
}

/// Run `$body` with `$T` bound to the Rust type of an integer `Elem`.
macro_rules! with_int_elem {
    ($elem:expr, $T:ident => $body:expr) => {
        match $elem {
            Elem::Bool => {
                type $T = bool;
                $body
            }
            Elem::I8 => {
                type $T = i8;
                $body
            }
            Elem::I16 => {
                type $T = i16;
                $body
            }
            Elem::I32 => {
                type $T = i32;
                $body
            }
            Elem::I64 => {
                type $T = i64;
                $body
            }
            Elem::U8 => {
                type $T = u8;
                $body
            }
            Elem::U16 => {
                type $T = u16;
                $body
            }
            Elem::U32 => {
                type $T = u32;
                $body
            }
            Elem::U64 => {
                type $T = u64;
                $body
            }
            other => Err(internal(format!("{other:?} is not an integer type"))),
        }
    };
}

impl AnyPlan {
    pub(crate) fn new(
        spec: ConvSpec,
        family: Family,
        method: Method,
        threads: usize,
    ) -> strideconv::Result<AnyPlan> {
        Ok(match family {
            Family::F32 => AnyPlan::F32(Plan::new(spec, method, Some(threads))?),
            Family::F64 => AnyPlan::F64(Plan::new(spec, method, Some(threads))?),
            Family::C64 => AnyPlan::C64(Plan::new(spec, method, Some(threads))?),
            Family::C128 => AnyPlan::C128(Plan::new(spec, method, Some(threads))?),
            Family::Int => AnyPlan::Int(Plan::new(spec, method, Some(threads))?),
        })
    }

    /// The same request planned by timing the cheapest candidates (`planning="measure"`).
    pub(crate) fn measured(&self) -> strideconv::Result<AnyPlan> {
        macro_rules! again {
            ($v:ident, $p:ident) => {
                AnyPlan::$v(Plan::with_planning(
                    $p.spec().clone(),
                    $p.requested(),
                    Some($p.threads()),
                    Planning::Measure,
                )?)
            };
        }
        Ok(match self {
            AnyPlan::F32(p) => again!(F32, p),
            AnyPlan::F64(p) => again!(F64, p),
            AnyPlan::C64(p) => again!(C64, p),
            AnyPlan::C128(p) => again!(C128, p),
            AnyPlan::Int(p) => again!(Int, p),
        })
    }

    pub(crate) fn method(&self) -> Method {
        on_plan!(self, p => p.method())
    }

    pub(crate) fn requested(&self) -> Method {
        on_plan!(self, p => p.requested())
    }

    pub(crate) fn explain(&self) -> String {
        on_plan!(self, p => p.explain())
    }

    pub(crate) fn spec(&self) -> &ConvSpec {
        on_plan!(self, p => p.spec())
    }
}

/// An integer output dtype.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IntOut {
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
}

/// The result, computed and converted to its output type, before it becomes a numpy array.
enum Computed {
    F32(ArrayD<f32>),
    F64(ArrayD<f64>),
    C64(ArrayD<Complex32>),
    C128(ArrayD<Complex64>),
    I8(ArrayD<i8>),
    I16(ArrayD<i16>),
    I32(ArrayD<i32>),
    I64(ArrayD<i64>),
    U8(ArrayD<u8>),
    U16(ArrayD<u16>),
    U32(ArrayD<u32>),
    U64(ArrayD<u64>),
}

impl Computed {
    fn into_py(self, py: Python<'_>) -> Bound<'_, PyAny> {
        match self {
            Computed::F32(a) => PyArray::from_owned_array(py, a).into_any(),
            Computed::F64(a) => PyArray::from_owned_array(py, a).into_any(),
            Computed::C64(a) => PyArray::from_owned_array(py, a).into_any(),
            Computed::C128(a) => PyArray::from_owned_array(py, a).into_any(),
            Computed::I8(a) => PyArray::from_owned_array(py, a).into_any(),
            Computed::I16(a) => PyArray::from_owned_array(py, a).into_any(),
            Computed::I32(a) => PyArray::from_owned_array(py, a).into_any(),
            Computed::I64(a) => PyArray::from_owned_array(py, a).into_any(),
            Computed::U8(a) => PyArray::from_owned_array(py, a).into_any(),
            Computed::U16(a) => PyArray::from_owned_array(py, a).into_any(),
            Computed::U32(a) => PyArray::from_owned_array(py, a).into_any(),
            Computed::U64(a) => PyArray::from_owned_array(py, a).into_any(),
        }
    }
}

/// Exact results narrowed to `I`, or the first value that does not fit.
fn narrow_to<I>(wide: ArrayD<i128>, dtype: &'static str) -> Result<ArrayD<I>, Failure>
where
    I: TryFrom<i128> + Default + Copy + Into<i128> + num_bounds::Bounded,
{
    let mut bad = None;
    let mut fit = |&v: &i128| {
        I::try_from(v).unwrap_or_else(|_| {
            bad.get_or_insert(v);
            I::default()
        })
    };
    // The core's results are in standard layout: narrowed as a plain slice (ndarray's `mapv`
    // first sorts the strides to find a memory order).
    let out = match wide.as_slice() {
        Some(values) => {
            ArrayD::from_shape_vec(wide.raw_dim(), values.iter().map(&mut fit).collect())
                .expect("one value per element")
        }
        None => wide.map(fit),
    };
    match bad {
        None => Ok(out),
        Some(value) => Err(Failure::Narrow {
            value,
            dtype,
            min: I::MIN_VALUE.into(),
            max: I::MAX_VALUE.into(),
        }),
    }
}

/// The range of each integer output type.
mod num_bounds {
    pub trait Bounded: Sized {
        const MIN_VALUE: Self;
        const MAX_VALUE: Self;
    }
    macro_rules! bounded {
        ($($t:ty),*) => {$(
            impl Bounded for $t {
                const MIN_VALUE: $t = <$t>::MIN;
                const MAX_VALUE: $t = <$t>::MAX;
            }
        )*};
    }
    bounded!(i8, i16, i32, i64, u8, u16, u32, u64);
}

impl IntOut {
    fn of(dtype: &Bound<'_, PyArrayDescr>) -> Option<IntOut> {
        Some(match (dtype.kind(), dtype.itemsize()) {
            (b'i', 1) => IntOut::I8,
            (b'i', 2) => IntOut::I16,
            (b'i', 4) => IntOut::I32,
            (b'i', 8) => IntOut::I64,
            (b'u', 1) => IntOut::U8,
            (b'u', 2) => IntOut::U16,
            (b'u', 4) => IntOut::U32,
            (b'u', 8) => IntOut::U64,
            _ => return None,
        })
    }

    fn narrow(self, wide: ArrayD<i128>) -> Result<Computed, Failure> {
        Ok(match self {
            IntOut::I8 => Computed::I8(narrow_to(wide, "int8")?),
            IntOut::I16 => Computed::I16(narrow_to(wide, "int16")?),
            IntOut::I32 => Computed::I32(narrow_to(wide, "int32")?),
            IntOut::I64 => Computed::I64(narrow_to(wide, "int64")?),
            IntOut::U8 => Computed::U8(narrow_to(wide, "uint8")?),
            IntOut::U16 => Computed::U16(narrow_to(wide, "uint16")?),
            IntOut::U32 => Computed::U32(narrow_to(wide, "uint32")?),
            IntOut::U64 => Computed::U64(narrow_to(wide, "uint64")?),
        })
    }
}

/// An integer of any input type, widened; used when `x` and `k` have different integer
/// types, so that both reach the core as one element type.
#[derive(Clone, Copy, Debug)]
struct Wide(i128);

impl CoreElement for Wide {
    type Compute = i128;
    type Output = i64;
    fn to_compute(self) -> i128 {
        self.0
    }
    fn to_output(c: i128) -> strideconv::Result<i64> {
        strideconv::narrow_i128(c)
    }
    fn view_compute<D: ndarray::Dimension>(
        _: ndarray::ArrayView<'_, Self, D>,
    ) -> Option<ndarray::ArrayView<'_, i128, D>> {
        None
    }
}

fn widen<E: numpy::Element + CoreElement<Compute = i128>>(
    op: &Operand<'_>,
) -> PyResult<ArrayD<Wide>> {
    Ok(op.view::<E>()?.mapv(|v| Wide(v.to_compute())))
}

fn compute_values<E: numpy::Element + CoreElement>(op: &Operand<'_>) -> PyResult<Vec<E::Compute>> {
    Ok(op.view::<E>()?.iter().map(|v| v.to_compute()).collect())
}

/// Multiply-adds below which a call keeps the GIL: a few microseconds of work at most.
const KEEP_GIL_MACS: f64 = 4096.0;

/// How user arrays relate to the core's view of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Style {
    /// `correlate` / `convolve`.
    Signal,
    /// `conv{rank}d`. `unbatched`: the user's input has no batch axis (PyTorch accepts
    /// `(C, H, W)` for `conv2d`); the binding adds it as a view and drops it from the result.
    Batched {
        rank: usize,
        channels_last: bool,
        unbatched: bool,
    },
}

/// What the output is made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OutKind {
    /// The compute type (floats and complex numbers).
    Natural,
    /// Exact integers narrowed to this type.
    Int(IntOut),
}

/// The keyword arguments of `correlate` / `convolve`, as Python objects.
pub(crate) struct SignalArgs<'a, 'py> {
    pub convolve: bool,
    pub stride: &'a Bound<'py, PyAny>,
    pub padding: &'a Bound<'py, PyAny>,
    pub pad_mode: &'a Bound<'py, PyAny>,
    pub cval: &'a Bound<'py, PyAny>,
    pub dilation: &'a Bound<'py, PyAny>,
    pub channel_axis: &'a Bound<'py, PyAny>,
    pub method: &'a Bound<'py, PyAny>,
    pub out_dtype: &'a Bound<'py, PyAny>,
    pub threads: &'a Bound<'py, PyAny>,
}

/// The keyword arguments of `conv1d/2d/3d`, as Python objects.
pub(crate) struct BatchedArgs<'a, 'py> {
    pub rank: usize,
    pub stride: &'a Bound<'py, PyAny>,
    pub padding: &'a Bound<'py, PyAny>,
    pub dilation: &'a Bound<'py, PyAny>,
    pub groups: &'a Bound<'py, PyAny>,
    pub padding_mode: &'a Bound<'py, PyAny>,
    pub layout: &'a Bound<'py, PyAny>,
    pub method: &'a Bound<'py, PyAny>,
    pub threads: &'a Bound<'py, PyAny>,
}

/// A request ready to run on arrays of the shapes it was made for.
pub(crate) struct Request {
    pub names: Names,
    pub style: Style,
    pub plan: Arc<AnyPlan>,
    out: OutKind,
    /// A final `astype`, when the output dtype is not what the core produces.
    cast: Option<Py<PyArrayDescr>>,
    /// The shapes of the user's arrays.
    pub x_shape: Vec<usize>,
    pub k_shape: Vec<usize>,
}

impl Request {
    /// With `measure`, plan again by timing the cheapest candidates (auto only); the timed
    /// plan is the request's own, not shared through the plan cache.
    pub(crate) fn replan(
        &mut self,
        measure: bool,
        x_shape: &[usize],
        k_shape: &[usize],
    ) -> PyResult<()> {
        if measure && self.plan.requested() == Method::Auto {
            let plan = self
                .plan
                .measured()
                .map_err(|e| plan_error(e, self.names, x_shape, k_shape))?;
            self.plan = Arc::new(plan);
        }
        Ok(())
    }
}

/// The output rule for `family`, from the user's `out_dtype` (or `default_out`).
fn out_rule(
    py: Python<'_>,
    family: Family,
    out_dtype: Option<&Bound<'_, PyAny>>,
    default_out: Option<&Bound<'_, PyArrayDescr>>,
) -> PyResult<(OutKind, Option<Py<PyArrayDescr>>)> {
    let Some(obj) = out_dtype.filter(|o| !o.is_none()) else {
        return Ok(match family {
            Family::Int => (OutKind::Int(IntOut::I64), None),
            _ => (OutKind::Natural, default_out.map(|d| d.clone().unbind())),
        });
    };
    let dtype = PyArrayDescr::new(py, obj)
        .map_err(|e| type_error("out_dtype", obj, format!("not a numpy dtype ({e})")))?;
    let native = dtype.is_native_byteorder().unwrap_or(true);
    if family == Family::Int {
        let int = IntOut::of(&dtype).ok_or_else(|| {
            type_error(
                "out_dtype",
                obj,
                "integer and bool inputs give exact integer results: out_dtype must be an integer dtype",
            )
        })?;
        return Ok((OutKind::Int(int), (!native).then(|| dtype.unbind())));
    }
    let natural = match family {
        Family::F32 => numpy::dtype::<f32>(py),
        Family::F64 => numpy::dtype::<f64>(py),
        Family::C64 => numpy::dtype::<Complex32>(py),
        _ => numpy::dtype::<Complex64>(py),
    };
    let complex_result = matches!(family, Family::C64 | Family::C128);
    match dtype.kind() {
        b'c' => {}
        b'f' if !complex_result => {}
        _ => {
            return Err(type_error(
                "out_dtype",
                obj,
                format!(
                "the result is {}; out_dtype must be a float or complex dtype it can be cast to",
                natural
            ),
            ))
        }
    }
    Ok((
        OutKind::Natural,
        (!dtype.is_equiv_to(&natural)).then(|| dtype.unbind()),
    ))
}

impl Request {
    /// `correlate` / `convolve` (and their plans).
    pub(crate) fn signal(
        py: Python<'_>,
        x_shape: &[usize],
        k_shape: &[usize],
        family: Family,
        default_out: Option<&Bound<'_, PyArrayDescr>>,
        a: &SignalArgs<'_, '_>,
    ) -> PyResult<Request> {
        let names = Names::Signal;
        let channel_axis = args::channel_axis(a.channel_axis, x_shape.len())?;
        let kernel_broadcast = channel_axis.is_some() && k_shape.len() + 1 == x_shape.len();
        let rank = x_shape.len() - usize::from(channel_axis.is_some());
        let padding = args::padding(a.padding, &["valid", "same", "full"])?.resolve(
            a.padding,
            rank,
            Padding::Same,
        )?;
        let opts = Options {
            op: if a.convolve {
                Op::Convolve
            } else {
                Op::Correlate
            },
            stride: args::per_axis(a.stride, "stride")?,
            dilation: args::per_axis(a.dilation, "dilation")?,
            padding,
            pad_mode: args::pad_mode(a.pad_mode, "pad_mode")?,
            cval: args::cval_for(a.cval, a.pad_mode, family == Family::Int)?,
            groups: 1,
        };
        let method = args::method(a.method)?;
        let threads = args::threads(a.threads)?;
        let (out, cast) = out_rule(py, family, Some(a.out_dtype), default_out)?;
        let layout = Layout::Signal {
            channel_axis,
            kernel_broadcast,
        };
        let plan = cache::plan(family, x_shape, k_shape, layout, &opts, method, threads)
            .map_err(|e| plan_error(e, names, x_shape, k_shape))?;
        Ok(Request {
            names,
            style: Style::Signal,
            plan,
            out,
            cast,
            x_shape: x_shape.to_vec(),
            k_shape: k_shape.to_vec(),
        })
    }

    /// `conv1d` / `conv2d` / `conv3d` (and their plans).
    pub(crate) fn batched(
        py: Python<'_>,
        x_shape: &[usize],
        k_shape: &[usize],
        family: Family,
        default_out: Option<&Bound<'_, PyArrayDescr>>,
        a: &BatchedArgs<'_, '_>,
    ) -> PyResult<Request> {
        let names = Names::Batched;
        let rank = a.rank;
        if !(1..=3).contains(&rank) {
            return Err(internal(format!("conv{rank}d does not exist")));
        }
        let channels_last = args::layout(a.layout, rank)?;
        let unbatched = match x_shape.len() {
            n if n == rank + 2 => false,
            n if n == rank + 1 => true,
            _ => {
                let (first, last) = args::LAYOUTS[rank - 1];
                let layout = if channels_last { last } else { first };
                return Err(shape_error(
                    "input",
                    x_shape,
                    format!(
                        "conv{rank}d expects {} axes ({layout}) or {} ({}, unbatched)",
                        rank + 2,
                        rank + 1,
                        &layout[1..]
                    ),
                ));
            }
        };
        if k_shape.len() != rank + 2 {
            return Err(shape_error(
                "weight",
                k_shape,
                format!(
                    "conv{rank}d expects {} axes (C_out, C_in/groups, {})",
                    rank + 2,
                    &"kD, kH, kW"[12 - 4 * rank..]
                ),
            ));
        }
        let core_x_shape: Vec<usize> = if unbatched {
            std::iter::once(1).chain(x_shape.iter().copied()).collect()
        } else {
            x_shape.to_vec()
        };
        let padding = args::padding(a.padding, &["valid", "same"])?.resolve(
            a.padding,
            rank,
            Padding::SameTf,
        )?;
        let opts = Options {
            op: Op::Correlate,
            stride: args::per_axis(a.stride, "stride")?,
            dilation: args::per_axis(a.dilation, "dilation")?,
            padding,
            pad_mode: args::pad_mode(a.padding_mode, "padding_mode")?,
            cval: 0.0,
            groups: args::positive(a.groups, "groups")?,
        };
        let method = args::method(a.method)?;
        let threads = args::threads(a.threads)?;
        let (out, cast) = out_rule(py, family, None, default_out)?;
        let layout = Layout::Batched { channels_last };
        let plan = cache::plan(
            family,
            &core_x_shape,
            k_shape,
            layout,
            &opts,
            method,
            threads,
        )
        .map_err(|e| plan_error(e, names, x_shape, k_shape))?;
        Ok(Request {
            names,
            style: Style::Batched {
                rank,
                channels_last,
                unbatched,
            },
            plan,
            out,
            cast,
            x_shape: x_shape.to_vec(),
            k_shape: k_shape.to_vec(),
        })
    }

    /// The output shape the user sees.
    pub(crate) fn out_shape(&self) -> Vec<usize> {
        let mut shape = self.plan.spec().out_shape();
        if matches!(
            self.style,
            Style::Batched {
                unbatched: true,
                ..
            }
        ) {
            shape.remove(0);
        }
        shape
    }

    fn check_shape(&self, arg: &str, got: &[usize], want: &[usize]) -> PyResult<()> {
        if got == want {
            return Ok(());
        }
        Err(shape_error(
            self.names.rename(arg),
            got,
            format!("the plan was made for {}", crate::errors::shape_str(want)),
        ))
    }

    /// Compute on `x` and `k` (and `bias`, for `conv*d`).
    pub(crate) fn run<'py>(
        &self,
        py: Python<'py>,
        x: &Operand<'py>,
        k: &Operand<'py>,
        bias: Option<&Operand<'py>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.check_shape("x", x.shape(), &self.x_shape)?;
        self.check_shape("k", k.shape(), &self.k_shape)?;
        if let Some(b) = bias {
            let c_out = self.plan.spec().out_channels;
            if b.shape() != [c_out] {
                return Err(shape_error(
                    "bias",
                    b.shape(),
                    format!("expected (C_out,) = ({c_out},)"),
                ));
            }
        }
        let computed = match &*self.plan {
            AnyPlan::F32(p) => self.run_float::<f32>(py, p, x, k, bias, Computed::F32)?,
            AnyPlan::F64(p) => self.run_float::<f64>(py, p, x, k, bias, Computed::F64)?,
            AnyPlan::C64(p) => self.run_float::<Complex32>(py, p, x, k, bias, Computed::C64)?,
            AnyPlan::C128(p) => self.run_float::<Complex64>(py, p, x, k, bias, Computed::C128)?,
            AnyPlan::Int(p) => self.run_int(py, p, x, k, bias)?,
        };
        let out = computed.into_py(py);
        match &self.cast {
            Some(dtype) => out.call_method1("astype", (dtype.bind(py),)),
            None => Ok(out),
        }
    }

    /// Floats and complex numbers: the arrays hold the compute type itself. (`conv*d` does not
    /// conjugate complex weights: the core conjugates only in the signal layout.)
    fn run_float<'py, T>(
        &self,
        py: Python<'py>,
        plan: &Plan<T>,
        x: &Operand<'py>,
        k: &Operand<'py>,
        bias: Option<&Operand<'py>>,
        wrap: fn(ArrayD<T>) -> Computed,
    ) -> PyResult<Computed>
    where
        T: numpy::Element + CoreElement<Compute = T> + Scalar,
    {
        let (xv, kv) = (x.view::<T>()?, k.view::<T>()?);
        let bias = bias.map(compute_values::<T>).transpose()?;
        self.execute(py, plan, xv, kv, bias, |out| Ok(wrap(out)))
    }

    fn run_int<'py>(
        &self,
        py: Python<'py>,
        plan: &Plan<i128>,
        x: &Operand<'py>,
        k: &Operand<'py>,
        bias: Option<&Operand<'py>>,
    ) -> PyResult<Computed> {
        let OutKind::Int(int_out) = self.out else {
            return Err(internal("integer plan with a float output"));
        };
        let bias = match bias {
            Some(b) => Some(with_int_elem!(b.elem, B => compute_values::<B>(b))?),
            None => None,
        };
        let narrow = move |wide: ArrayD<i128>| int_out.narrow(wide);
        if x.elem == k.elem {
            with_int_elem!(x.elem, E => {
                let (xv, kv) = (x.view::<E>()?, k.view::<E>()?);
                self.execute(py, plan, xv, kv, bias, narrow)
            })
        } else {
            let xw = with_int_elem!(x.elem, E => widen::<E>(x))?;
            let kw = with_int_elem!(k.elem, E => widen::<E>(k))?;
            self.execute(py, plan, xw.view(), kw.view(), bias, narrow)
        }
    }

    /// The computation proper, with the GIL released and panics caught.
    fn execute<E, F>(
        &self,
        py: Python<'_>,
        plan: &Plan<E::Compute>,
        x: ArrayViewD<'_, E>,
        k: ArrayViewD<'_, E>,
        bias: Option<Vec<E::Compute>>,
        finish: F,
    ) -> PyResult<Computed>
    where
        E: CoreElement,
        F: FnOnce(ArrayD<E::Compute>) -> Result<Computed, Failure> + Send,
    {
        let style = self.style;
        let compute = move || {
            catch(move || {
                let unbatched = matches!(
                    style,
                    Style::Batched {
                        unbatched: true,
                        ..
                    }
                );
                let x = if unbatched { x.insert_axis(Axis(0)) } else { x };
                let mut out = plan.execute_compute(x, k).map_err(Failure::Core)?;
                if let (Some(bias), Style::Batched { channels_last, .. }) = (bias, style) {
                    let axis = if channels_last { out.ndim() - 1 } else { 1 };
                    for (mut lane, &b) in out.axis_iter_mut(Axis(axis)).zip(&bias) {
                        lane.mapv_inplace(|v| v + b);
                    }
                }
                if unbatched {
                    out = out.index_axis_move(Axis(0), 0);
                }
                finish(out)
            })
        };
        // Other Python threads may run meanwhile, unless the problem is so small that
        // releasing and retaking the GIL would cost more than computing it (as numpy keeps
        // the GIL for small arrays).
        let result = if self.plan.spec().macs() < KEEP_GIL_MACS {
            compute()
        } else {
            py.detach(compute)
        };
        result.map_err(|f| f.into_py(self.names))
    }
}
