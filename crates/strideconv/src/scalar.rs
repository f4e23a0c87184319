//! Element types: what the methods compute with, and what users pass in.
//!
//! Methods are generic over [`Scalar`], the *compute* type: `f32`, `f64`, `Complex32`,
//! `Complex64`, or `i128` for exact integer arithmetic. User-facing element types
//! ([`Element`]) convert into a compute type: every integer type and `bool` computes in
//! `i128` and returns `i64` (checked), floats and complex numbers compute in themselves.

use std::fmt::Debug;
use std::ops::{Add, AddAssign, Mul, Sub};

use ndarray::{ArrayD, ArrayView, Dimension};
use num_complex::{Complex, Complex32, Complex64};
use num_traits::Zero;

use crate::error::{overflow, Result};

/// The three families of element, which decide which methods are allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `f32`, `f64`.
    Real,
    /// `Complex32`, `Complex64`.
    Complex,
    /// Exact integers (computed in `i128`).
    Integer,
}

/// A type the convolution methods compute with.
///
/// Integer arithmetic is done in `i128`; before computing, the library checks that no partial
/// sum can leave the `i128` range (see [`crate::plan`]), so plain `+` and `*` are exact.
pub trait Scalar:
    Element<Compute = Self>
    + Copy
    + Send
    + Sync
    + Debug
    + PartialEq
    + Zero
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + AddAssign
    + 'static
{
    /// Which family this type belongs to.
    const KIND: Kind;
    /// Short name, as numpy spells it (`"float64"`, `"complex64"`, `"int128"`).
    const NAME: &'static str;
    /// Complex conjugate (identity for real and integer types).
    fn conj(self) -> Self;
    /// False for NaN and infinities (always true for integers).
    fn is_finite(self) -> bool;
    /// Magnitude as `f64`, for tolerances and overflow bounds.
    fn magnitude(self) -> f64;
    /// Magnitude as a whole number: exact for integers (the overflow bound adds these
    /// without a float conversion per element); floats round toward zero and saturate.
    #[inline(always)]
    fn whole_magnitude(self) -> u128 {
        self.magnitude() as u128
    }
    /// The constant padding value from its `f64` spelling.
    fn from_f64(v: f64) -> Self;
    /// `self + a·b`, fused (one rounding) for real floats. Only called by kernels compiled
    /// for CPUs with FMA, where it is one instruction.
    #[inline(always)]
    fn fused_mul_add(self, a: Self, b: Self) -> Self {
        self + a * b
    }
    /// The crate's compiled methods for this type ([`crate::plan::Engine`]): internal
    /// wiring that keeps the kernels compiled once, in this crate.
    #[doc(hidden)]
    fn engine() -> &'static crate::plan::Engine<Self>;
}

macro_rules! real_scalar {
    ($t:ty, $name:literal) => {
        impl Scalar for $t {
            const KIND: Kind = Kind::Real;
            const NAME: &'static str = $name;
            #[inline(always)]
            fn conj(self) -> Self {
                self
            }
            #[inline(always)]
            fn is_finite(self) -> bool {
                <$t>::is_finite(self)
            }
            #[inline(always)]
            fn magnitude(self) -> f64 {
                (self as f64).abs()
            }
            #[inline(always)]
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            #[inline(always)]
            fn fused_mul_add(self, a: Self, b: Self) -> Self {
                a.mul_add(b, self)
            }
            #[inline(never)]
            fn engine() -> &'static crate::plan::Engine<Self> {
                static ENGINE: crate::plan::Engine<$t> = crate::plan::Engine::NEW;
                &ENGINE
            }
        }
    };
}
real_scalar!(f32, "float32");
real_scalar!(f64, "float64");

macro_rules! complex_scalar {
    ($t:ty, $f:ty, $name:literal) => {
        impl Scalar for $t {
            const KIND: Kind = Kind::Complex;
            const NAME: &'static str = $name;
            #[inline(always)]
            fn conj(self) -> Self {
                Complex::conj(&self)
            }
            #[inline(always)]
            fn is_finite(self) -> bool {
                self.re.is_finite() && self.im.is_finite()
            }
            #[inline(always)]
            fn magnitude(self) -> f64 {
                (self.re as f64).hypot(self.im as f64)
            }
            #[inline(always)]
            fn from_f64(v: f64) -> Self {
                Complex::new(v as $f, 0.0)
            }
            #[inline(never)]
            fn engine() -> &'static crate::plan::Engine<Self> {
                static ENGINE: crate::plan::Engine<$t> = crate::plan::Engine::NEW;
                &ENGINE
            }
        }
    };
}
complex_scalar!(Complex32, f32, "complex64");
complex_scalar!(Complex64, f64, "complex128");

impl Scalar for i128 {
    const KIND: Kind = Kind::Integer;
    const NAME: &'static str = "int128";
    #[inline(always)]
    fn conj(self) -> Self {
        self
    }
    #[inline(always)]
    fn is_finite(self) -> bool {
        true
    }
    #[inline(always)]
    fn magnitude(self) -> f64 {
        self.unsigned_abs() as f64
    }
    #[inline(always)]
    fn whole_magnitude(self) -> u128 {
        self.unsigned_abs()
    }
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v as i128
    }
    #[inline(never)]
    fn engine() -> &'static crate::plan::Engine<Self> {
        static ENGINE: crate::plan::Engine<i128> = crate::plan::Engine::NEW;
        &ENGINE
    }
}

/// A user-facing element type: what arrays passed to [`crate::correlate`] hold.
pub trait Element: Copy + Send + Sync + 'static {
    /// The type the methods compute in.
    type Compute: Scalar;
    /// The type results are returned in (`i64` for every integer type, else the type itself).
    type Output: Copy + Send + Sync + 'static;
    /// Widen into the compute type (exact).
    fn to_compute(self) -> Self::Compute;
    /// Narrow a computed result into the output type; integers that do not fit are an error.
    fn to_output(c: Self::Compute) -> Result<Self::Output>;
    /// Narrow a whole computed array (moved, not copied, when the types are the same).
    fn to_output_array(a: ArrayD<Self::Compute>) -> Result<ArrayD<Self::Output>> {
        let mut out = Vec::with_capacity(a.len());
        for &v in a.iter() {
            out.push(Self::to_output(v)?);
        }
        Ok(ArrayD::from_shape_vec(a.raw_dim(), out).expect("same number of elements"))
    }
    /// The same array seen as the compute type, when no conversion is needed.
    fn view_compute<D: Dimension>(
        v: ArrayView<'_, Self, D>,
    ) -> Option<ArrayView<'_, Self::Compute, D>>;
}

macro_rules! identity_element {
    ($($t:ty),*) => {$(
        impl Element for $t {
            type Compute = $t;
            type Output = $t;
            #[inline(always)]
            fn to_compute(self) -> $t { self }
            #[inline(always)]
            fn to_output(c: $t) -> Result<$t> { Ok(c) }
            fn to_output_array(a: ArrayD<$t>) -> Result<ArrayD<$t>> { Ok(a) }
            fn view_compute<D: Dimension>(v: ArrayView<'_, $t, D>) -> Option<ArrayView<'_, $t, D>> { Some(v) }
        }
    )*};
}
identity_element!(f32, f64, Complex32, Complex64, i128);

macro_rules! integer_element {
    ($($t:ty),*) => {$(
        impl Element for $t {
            type Compute = i128;
            type Output = i64;
            #[inline(always)]
            fn to_compute(self) -> i128 { self as i128 }
            #[inline(always)]
            fn to_output(c: i128) -> Result<i64> { narrow_i128::<i64>(c) }
            fn view_compute<D: Dimension>(_: ArrayView<'_, $t, D>) -> Option<ArrayView<'_, i128, D>> { None }
        }
    )*};
}
integer_element!(i8, i16, i32, i64, u8, u16, u32, u64);

impl Element for bool {
    type Compute = i128;
    type Output = i64;
    #[inline(always)]
    fn to_compute(self) -> i128 {
        self as i128
    }
    #[inline(always)]
    fn to_output(c: i128) -> Result<i64> {
        narrow_i128::<i64>(c)
    }
    fn view_compute<D: Dimension>(_: ArrayView<'_, bool, D>) -> Option<ArrayView<'_, i128, D>> {
        None
    }
}

/// Convert an exact result to a narrower integer type, or report that it does not fit.
pub fn narrow_i128<I: TryFrom<i128>>(v: i128) -> Result<I> {
    I::try_from(v).map_err(|_| {
        overflow(format!(
            "result {v} does not fit the output type {}",
            std::any::type_name::<I>()
        ))
    })
}
