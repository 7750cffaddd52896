//! The calling convention of compiled modules, shared by the JIT backends and
//! ahead-of-time artifacts: ranked memref descriptors over tensors' buffers, the packed
//! argument array (`args[i]` points at argument `i`; a memref argument is a pointer to
//! its descriptor), and output allocation from a module's signature. Values that do not
//! fit the signature are [`Error::Input`].

use crate::emit::{Module as Emitted, Shape};
use crate::error::{Error, Result};
use archc_runtime::tensor::{Data, Tensor};

/// Checks `inputs` against the entry's types and allocates its outputs (zeros).
pub fn output_tensors(sig: &Emitted, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
    let shapes: Vec<Shape> = inputs.iter().map(|t| (t.dtype(), t.shape().to_vec())).collect();
    Ok(output_shapes(sig, &shapes)?.iter().map(|(d, s)| Tensor::zeros(*d, s)).collect())
}

/// The output types of the entry on inputs of these types, which must fit its inputs.
pub fn output_shapes(sig: &Emitted, inputs: &[Shape]) -> Result<Vec<Shape>> {
    sig.output_shapes(inputs).map_err(|e| Error::Input(e.to_string()))
}

/// Descriptors of a module's parameter values, checked against its parameters (count,
/// dtype and shape, in `sig.params` order): the arguments of `archc_set_params`.
pub fn param_descriptors(sig: &Emitted, values: &[&Tensor]) -> Result<Descriptors> {
    if values.len() != sig.params.len() {
        return Err(Error::Input(format!("{} parameter values for {} parameters", values.len(), sig.params.len())));
    }
    let mut descs = Descriptors::default();
    for ((name, shape), t) in sig.params.iter().zip(values) {
        check(t, shape).map_err(|e| Error::Input(format!("parameter @{name}: {e}")))?;
        descs.push(t);
    }
    Ok(descs)
}

/// Checks a tensor against a concrete type (`is f32[2], expected f32[3]`).
pub fn check(t: &Tensor, (dtype, shape): &Shape) -> Result<()> {
    if t.dtype() != *dtype || t.shape() != shape.as_slice() {
        let expected = archc_runtime::tensor::type_string(*dtype, shape);
        return Err(Error::Input(format!("is {}, expected {expected}", t.type_string())));
    }
    Ok(())
}

/// Ranked memref descriptors `{allocated, aligned, offset, sizes[r], strides[r]}`, and
/// the packed argument array (a pointer to a pointer to each descriptor).
#[derive(Default)]
pub struct Descriptors {
    descs: Vec<Box<[i64]>>,
    ptrs: Vec<Box<*mut i64>>,
}

impl Descriptors {
    pub fn push(&mut self, t: &Tensor) {
        self.push_raw(data_ptr(t), t.shape());
    }

    /// A descriptor of a dense row-major buffer at `ptr`.
    pub fn push_raw(&mut self, ptr: *mut u8, shape: &[usize]) {
        let ptr = ptr as i64;
        let mut d = vec![ptr, ptr, 0];
        d.extend(shape.iter().map(|&s| s as i64));
        let mut stride = 1i64;
        let mut strides = vec![0i64; shape.len()];
        for (i, &s) in shape.iter().enumerate().rev() {
            strides[i] = stride;
            stride *= s.max(1) as i64;
        }
        d.extend(strides);
        self.descs.push(d.into_boxed_slice());
    }

    pub fn packed(&mut self) -> Vec<*mut ()> {
        self.ptrs = self.descs.iter_mut().map(|d| Box::new(d.as_mut_ptr())).collect();
        self.ptrs.iter_mut().map(|p| &mut **p as *mut *mut i64 as *mut ()).collect()
    }
}

/// The address of a tensor's first element (compiled code may write through it).
pub fn data_ptr(t: &Tensor) -> *mut u8 {
    match &t.data {
        Data::F32(v) => v.as_ptr() as *mut u8,
        Data::F64(v) => v.as_ptr() as *mut u8,
        Data::I64(v) => v.as_ptr() as *mut u8,
        Data::Bool(v) => v.as_ptr() as *mut u8,
        Data::C64(v) => v.as_ptr() as *mut u8,
    }
}
