//! `.npy` files in and out, for every dtype the library computes with.

use std::path::Path;

use ndarray::ArrayD;
use ndarray_npy::{read_npy, write_npy, ReadNpyError};
use strideconv::{Element, Layout, Options, Run};

/// An array read from a `.npy` file, in one of the supported dtypes.
pub enum AnyArray {
    F64(ArrayD<f64>),
    F32(ArrayD<f32>),
    I64(ArrayD<i64>),
    I32(ArrayD<i32>),
    I16(ArrayD<i16>),
    I8(ArrayD<i8>),
    U64(ArrayD<u64>),
    U32(ArrayD<u32>),
    U16(ArrayD<u16>),
    U8(ArrayD<u8>),
    Bool(ArrayD<bool>),
}

macro_rules! try_read {
    ($path:expr, $($variant:ident : $t:ty),*) => {{
        $(
            match read_npy::<_, ArrayD<$t>>($path) {
                Ok(a) => return Ok(AnyArray::$variant(a)),
                Err(ReadNpyError::WrongDescriptor(_)) => {}
                Err(e) => return Err(format!("cannot read {}: {e}", $path.display())),
            }
        )*
        Err(format!(
            "cannot read {}: unsupported dtype (supported: float64, float32, int8-64, uint8-64, bool)",
            $path.display()
        ))
    }};
}

/// Read a `.npy` file of any supported dtype.
pub fn read(path: &Path) -> Result<AnyArray, String> {
    if !path.exists() {
        return Err(format!("cannot read {}: no such file", path.display()));
    }
    try_read!(path, F64: f64, F32: f32, I64: i64, I32: i32, I16: i16, I8: i8, U64: u64, U32: u32, U16: u16, U8: u8, Bool: bool)
}

impl AnyArray {
    /// numpy's name of the dtype.
    pub fn dtype(&self) -> &'static str {
        match self {
            AnyArray::F64(_) => "float64",
            AnyArray::F32(_) => "float32",
            AnyArray::I64(_) => "int64",
            AnyArray::I32(_) => "int32",
            AnyArray::I16(_) => "int16",
            AnyArray::I8(_) => "int8",
            AnyArray::U64(_) => "uint64",
            AnyArray::U32(_) => "uint32",
            AnyArray::U16(_) => "uint16",
            AnyArray::U8(_) => "uint8",
            AnyArray::Bool(_) => "bool",
        }
    }
}

fn run_typed<E: Element>(
    x: &ArrayD<E>,
    k: &ArrayD<E>,
    opts: &Options,
    run: Run,
    out: &Path,
) -> Result<Vec<usize>, String>
where
    E::Output: ndarray_npy::WritableElement,
{
    let layout = Layout::Signal {
        channel_axis: None,
        kernel_broadcast: false,
    };
    let y =
        strideconv::compute(x.view(), k.view(), layout, opts, run).map_err(|e| e.to_string())?;
    write_npy(out, &y).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    Ok(y.shape().to_vec())
}

/// Correlate (or convolve) two arrays of the same dtype and write the result.
pub fn conv(
    x: &AnyArray,
    k: &AnyArray,
    opts: &Options,
    run: Run,
    out: &Path,
) -> Result<Vec<usize>, String> {
    use AnyArray::*;
    match (x, k) {
        (F64(x), F64(k)) => run_typed(x, k, opts, run, out),
        (F32(x), F32(k)) => run_typed(x, k, opts, run, out),
        (I64(x), I64(k)) => run_typed(x, k, opts, run, out),
        (I32(x), I32(k)) => run_typed(x, k, opts, run, out),
        (I16(x), I16(k)) => run_typed(x, k, opts, run, out),
        (I8(x), I8(k)) => run_typed(x, k, opts, run, out),
        (U64(x), U64(k)) => run_typed(x, k, opts, run, out),
        (U32(x), U32(k)) => run_typed(x, k, opts, run, out),
        (U16(x), U16(k)) => run_typed(x, k, opts, run, out),
        (U8(x), U8(k)) => run_typed(x, k, opts, run, out),
        (Bool(x), Bool(k)) => run_typed(x, k, opts, run, out),
        _ => Err(format!(
            "X is {} and K is {}: give both files the same dtype (numpy's astype)",
            x.dtype(),
            k.dtype()
        )),
    }
}
