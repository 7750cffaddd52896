//! MLIR spellings of TIR types. A size is a constant or, for dims left dynamic, a
//! polynomial in run-time symbols ([`Ext`]), spelled `?`.

use archc_compiler::tir::{DType, Dim};

/// One size of a tensor type: a known constant, or unknown until run time.
pub trait Ext {
    /// The size when it is a compile-time constant.
    fn lit(&self) -> Option<usize>;
}

impl Ext for usize {
    fn lit(&self) -> Option<usize> {
        Some(*self)
    }
}

impl Ext for Dim {
    fn lit(&self) -> Option<usize> {
        self.as_const().and_then(|c| usize::try_from(c).ok())
    }
}

/// The MLIR element type of a dtype: `bool` is `i1`, `c64` is `complex<f32>`.
pub fn elem(dtype: DType) -> &'static str {
    match dtype {
        DType::F32 => "f32",
        DType::F64 => "f64",
        DType::I64 => "i64",
        DType::Bool => "i1",
        DType::C64 => "complex<f32>",
    }
}

/// `tensor<2x?xf32>`; rank 0 is `tensor<f32>`.
pub fn tensor(dtype: DType, shape: &[impl Ext]) -> String {
    format!("tensor<{}>", shaped(dtype, shape))
}

/// `memref<2x3xf32>`.
pub fn memref(dtype: DType, shape: &[impl Ext]) -> String {
    format!("memref<{}>", shaped(dtype, shape))
}

fn shaped(dtype: DType, shape: &[impl Ext]) -> String {
    let mut s = String::new();
    for d in shape {
        match d.lit() {
            Some(n) => s.push_str(&format!("{n}x")),
            None => s.push_str("?x"),
        }
    }
    s.push_str(elem(dtype));
    s
}

/// `affine_map<(d0, d1) -> (d1, 0)>` from dim count and result expressions.
pub fn affine_map(n_dims: usize, results: &[String]) -> String {
    let dims: Vec<String> = (0..n_dims).map(|i| format!("d{i}")).collect();
    format!("affine_map<({}) -> ({})>", dims.join(", "), results.join(", "))
}

/// The identity map of rank `n`.
pub fn identity_map(n: usize) -> String {
    affine_map(n, &(0..n).map(|i| format!("d{i}")).collect::<Vec<_>>())
}

/// An MLIR float literal that round-trips (`0x7FC00000` forms for non-finite values).
pub fn float_lit(v: f64, dtype: DType) -> String {
    if v.is_finite() {
        // `{:e}` round-trips; MLIR wants a decimal point in the mantissa.
        let s = format!("{v:e}");
        return match s.contains('.') {
            true => s,
            false => s.replacen('e', ".0e", 1),
        };
    }
    match dtype {
        DType::F32 => format!("0x{:08X}", (v as f32).to_bits()),
        _ => format!("0x{:016X}", v.to_bits()),
    }
}

/// Bytes per element in memory (`i1` is stored as one byte).
pub fn elem_bytes(dtype: DType) -> usize {
    match dtype {
        DType::F32 => 4,
        DType::F64 | DType::I64 | DType::C64 => 8,
        DType::Bool => 1,
    }
}
