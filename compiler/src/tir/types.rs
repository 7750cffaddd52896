//! Element types and tensor types of TIR.

use super::dim::Dim;
use std::fmt;

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    F64,
    I64,
    Bool,
    C64,
}

impl DType {
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F64 => "f64",
            DType::I64 => "i64",
            DType::Bool => "bool",
            DType::C64 => "c64",
        }
    }

    pub fn from_name(s: &str) -> Option<DType> {
        Some(match s {
            "f32" => DType::F32,
            "f64" => DType::F64,
            "i64" => DType::I64,
            "bool" => DType::Bool,
            "c64" => DType::C64,
            _ => return None,
        })
    }

    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64)
    }

    /// Real floats and complex: the dtypes that carry gradients.
    pub fn is_inexact(self) -> bool {
        matches!(self, DType::F32 | DType::F64 | DType::C64)
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The highest rank a tensor may have (PyTorch allows 64 as well).
pub const MAX_RANK: usize = 64;

/// The most elements a tensor may have: 2^53, where sizes stop being exact in `f64` and
/// any real allocation has long failed.
pub const MAX_ELEMENTS: u64 = 1 << 53;

/// A tensor type: `f32[B, 64]`. Rank-0 tensors are `f32[]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TensorType {
    pub dtype: DType,
    pub shape: Vec<Dim>,
}

impl TensorType {
    pub fn new(dtype: DType, shape: Vec<Dim>) -> Self {
        TensorType { dtype, shape }
    }

    pub fn scalar(dtype: DType) -> Self {
        TensorType { dtype, shape: Vec::new() }
    }

    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    pub fn with_dtype(&self, dtype: DType) -> Self {
        TensorType { dtype, shape: self.shape.clone() }
    }

    /// Why a tensor of this type can never exist, if it cannot: a rank above
    /// [`MAX_RANK`], or more than [`MAX_ELEMENTS`] elements counting every symbolic dim
    /// as its constant part (at least 1). Computed in checked arithmetic, so a product
    /// that would wrap (`f32[65536, 65536, 65536, 65536]`) is caught.
    pub fn size_error(&self) -> Option<String> {
        if self.rank() > MAX_RANK {
            return Some(format!("a tensor of rank {} is above the limit of {MAX_RANK}", self.rank()));
        }
        let mut n: u64 = 1;
        for d in &self.shape {
            let least = d.as_const().map_or(1, |c| c.max(1) as u64);
            match n.checked_mul(least) {
                Some(m) if m <= MAX_ELEMENTS => n = m,
                _ => {
                    return Some(format!(
                        "{self} has more than {MAX_ELEMENTS} elements (2^53), more than any tensor can hold"
                    ))
                }
            }
        }
        None
    }

    /// The number of elements, as a dim.
    pub fn numel(&self) -> Dim {
        self.shape.iter().fold(Dim::constant(1), |acc, d| acc.mul(d))
    }

    /// Concrete sizes when no dim is symbolic.
    pub fn const_shape(&self) -> Option<Vec<usize>> {
        self.shape.iter().map(|d| d.as_const().map(|c| c as usize)).collect()
    }
}

impl fmt::Display for TensorType {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}[", self.dtype)?;
        for (i, d) in self.shape.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{d}")?;
        }
        write!(f, "]")
    }
}
