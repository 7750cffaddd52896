//! Resident state of the GPU backend: named tensors in device memory (see
//! `archc_runtime::resident`).
//!
//! Contract:
//! - Each tensor has two device buffers of its size: `home`, which bound arguments read,
//!   and `staging`, which bound results are written to. After the entry (inside a captured
//!   graph too) each written staging buffer is copied to its home on the stream, so an
//!   argument and a result never share a buffer (compiled code assumes distinct buffers),
//!   and the state is updated before the stream runs anything else.
//! - [`DeviceState::put`] uploads, allocating when the name is new or its size changed;
//!   an allocation bumps [`DeviceState::generation`] (captured graphs bake addresses in,
//!   so slots of an older generation are rebuilt). [`DeviceState::read`] downloads. Both
//!   wait for the runtime's stream first.
//! - [`DeviceState::non_finite`] looks for NaN and infinity on the device: each float
//!   tensor, seen as rows of at most [`CHUNK`] elements, is multiplied by a vector of
//!   zeros (cuBLAS), which gives NaN exactly for the rows holding a NaN or an infinity;
//!   all the products' results come back in one download. Integer and bool tensors are
//!   finite. Where the products cannot run on the device, the tensors are downloaded and
//!   scanned on the host.

use archc_compiler::tir::DType;
use archc_cuda::{Cuda, CudaError, MemRef};
use archc_runtime::tensor::Tensor;
use std::collections::HashMap;

use super::{no_such_state, take_error, tensor_bytes};
use crate::abi::data_ptr;
use crate::error::{Error, Result};

/// Elements per row of the finiteness products.
pub const CHUNK: usize = 1 << 16;

/// One state tensor's buffers (see the module docs).
pub struct DeviceTensor {
    pub dtype: DType,
    pub shape: Vec<usize>,
    pub bytes: usize,
    pub home: *mut u8,
    pub staging: *mut u8,
}

/// Named tensors in device memory (see the module docs).
#[derive(Default)]
pub struct DeviceState {
    cuda: Option<&'static Cuda>,
    tensors: HashMap<String, DeviceTensor>,
    generation: u64,
    /// Zeros for the finiteness products (`CHUNK` f64s) and their results' buffer.
    check: Option<Check>,
}

struct Check {
    zeros: *mut u8,
    results: *mut u8,
    results_bytes: usize,
}

impl DeviceState {
    fn cuda(&mut self) -> Result<&'static Cuda, CudaError> {
        match self.cuda {
            Some(c) => Ok(c),
            None => {
                let c = archc_cuda::cuda()?;
                self.cuda = Some(c);
                Ok(c)
            }
        }
    }

    /// Bumped whenever a tensor's buffers are (re)allocated.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The tensor `name`.
    pub fn get(&self, name: &str) -> Option<&DeviceTensor> {
        self.tensors.get(name)
    }

    /// Sets the state `name` to `value` (see the module docs).
    pub fn put(&mut self, name: &str, value: &Tensor) -> Result<()> {
        let cuda = self.cuda()?;
        let bytes = tensor_bytes(value);
        let fits = self.tensors.get(name).is_some_and(|t| t.bytes == bytes);
        if !fits {
            let home = cuda.alloc_device(bytes.max(1))?;
            let staging = cuda.alloc_device(bytes.max(1)).inspect_err(|_| {
                let _ = cuda.free(home);
            })?;
            let fresh = DeviceTensor { dtype: value.dtype(), shape: vec![], bytes, home, staging };
            if let Some(old) = self.tensors.insert(name.to_string(), fresh) {
                free(cuda, &old);
            }
            self.generation += 1;
        }
        let t = self.tensors.get_mut(name).expect("inserted above");
        (t.dtype, t.shape) = (value.dtype(), value.shape().to_vec());
        cuda.stream_synchronize(archc_cuda::runtime_stream()?)?;
        if bytes > 0 {
            cuda.memcpy(t.home, data_ptr(value), bytes)?;
        }
        Ok(())
    }

    /// The value of the state `name`, downloaded.
    pub fn read(&mut self, name: &str) -> Result<Tensor> {
        let cuda = self.cuda()?;
        let t = self.tensors.get(name).ok_or_else(|| Error::State("no such state".into()))?;
        let out = Tensor::zeros(t.dtype, &t.shape);
        cuda.stream_synchronize(archc_cuda::runtime_stream()?)?;
        if t.bytes > 0 {
            cuda.memcpy(data_ptr(&out), t.home, t.bytes)?;
        }
        Ok(out)
    }

    /// The first of `names` (in order) holding a NaN or an infinity (see the module docs).
    pub fn non_finite(&mut self, names: &[String]) -> Result<Option<String>> {
        if let Some(name) = names.iter().find(|n| !self.tensors.contains_key(*n)) {
            return Err(no_such_state(name));
        }
        let flags = match self.products(names) {
            Ok(flags) => flags,
            Err(CudaError::NeedsHostMemory(_)) => return self.scan_on_host(names),
            Err(e) => return Err(e.into()),
        };
        Ok(names.iter().zip(flags).find(|(_, bad)| *bad).map(|(n, _)| n.clone()))
    }

    /// Downloads each of `names` and scans it.
    fn scan_on_host(&mut self, names: &[String]) -> Result<Option<String>> {
        for name in names {
            if !archc_runtime::finite::is_finite(&self.read(name)?) {
                return Ok(Some(name.clone()));
            }
        }
        Ok(None)
    }

    /// Per name, whether its tensor holds a NaN or an infinity, by products on the device.
    fn products(&mut self, names: &[String]) -> Result<Vec<bool>, CudaError> {
        let cuda = self.cuda()?;
        // Each float tensor's rows: (name index, dtype, address, rows, columns, result offset).
        let mut plan = Vec::new();
        let mut end = 0usize;
        for (i, name) in names.iter().enumerate() {
            let t = &self.tensors[name];
            let size = match t.dtype {
                DType::F32 => 4,
                DType::F64 => 8,
                _ => continue,
            };
            let n = t.bytes / size;
            let (full, rest) = (n / CHUNK, n % CHUNK);
            for (rows, cols, skip) in [(full, CHUNK, 0), (usize::from(rest > 0), rest, full * CHUNK)] {
                if rows == 0 {
                    continue;
                }
                end = end.div_ceil(8) * 8;
                plan.push((i, t.dtype, t.home.wrapping_add(skip * size), rows, cols, end));
                end += rows * size;
            }
        }
        if plan.is_empty() {
            return Ok(vec![false; names.len()]);
        }
        let (zeros, results) = self.check_buffers(cuda, end)?;
        archc_cuda::set_device_memory(true);
        archc_cuda::set_sync_launches(false);
        for &(_, dtype, at, rows, cols, offset) in &plan {
            // SAFETY: `at` holds `rows * cols` elements of the tensor, `zeros` at least
            // `cols`, and the results buffer `rows` at `offset` (the plan above).
            unsafe { product(dtype, at, zeros, results.wrapping_add(offset), rows, cols) };
        }
        archc_cuda::set_sync_launches(true);
        archc_cuda::set_device_memory(false);
        take_error()?;
        let mut host = vec![0u8; end];
        let stream = archc_cuda::runtime_stream()?;
        cuda.stream_synchronize(stream)?;
        cuda.memcpy(host.as_mut_ptr(), results, end)?;
        archc_cuda::stats::add(archc_cuda::stats::Counter::Downloaded, end as u64);
        let mut bad = vec![false; names.len()];
        for &(i, dtype, _, rows, _, offset) in &plan {
            let row = |r: usize| -> bool {
                let at = offset + r * if dtype == DType::F32 { 4 } else { 8 };
                match dtype {
                    DType::F32 => f32::from_ne_bytes(host[at..at + 4].try_into().expect("4 bytes")).is_nan(),
                    _ => f64::from_ne_bytes(host[at..at + 8].try_into().expect("8 bytes")).is_nan(),
                }
            };
            bad[i] |= (0..rows).any(row);
        }
        Ok(bad)
    }

    /// The zeros (uploaded once) and a results buffer of at least `bytes`.
    fn check_buffers(&mut self, cuda: &'static Cuda, bytes: usize) -> Result<(*mut u8, *mut u8), CudaError> {
        if self.check.as_ref().is_none_or(|c| c.results_bytes < bytes) {
            if let Some(old) = self.check.take() {
                let _ = cuda.free(old.zeros);
                let _ = cuda.free(old.results);
            }
            let zeros = cuda.alloc_device(CHUNK * 8)?;
            let results = cuda.alloc_device(bytes).inspect_err(|_| {
                let _ = cuda.free(zeros);
            })?;
            self.check = Some(Check { zeros, results, results_bytes: bytes });
            cuda.memcpy(zeros, vec![0u8; CHUNK * 8].as_ptr(), CHUNK * 8)?;
        }
        let c = self.check.as_ref().expect("set above");
        Ok((c.zeros, c.results))
    }
}

/// Queues `results[r] = x[r, :] @ zeros` for a `[rows, cols]` row-major `x` of `dtype`.
///
/// # Safety
/// The buffers are device memory of the sizes described.
unsafe fn product(dtype: DType, x: *mut u8, zeros: *mut u8, results: *mut u8, rows: usize, cols: usize) {
    macro_rules! call {
        ($t:ty, $f:path) => {{
            let m = |p: *mut u8, sizes: [usize; 2], strides: [usize; 2]| MemRef::<$t, 2> {
                allocated: p.cast(),
                aligned: p.cast(),
                offset: 0,
                sizes: sizes.map(|s| s as i64),
                strides: strides.map(|s| s as i64),
            };
            let (a, b, c) = (m(x, [rows, cols], [cols, 1]), m(zeros, [cols, 1], [1, 1]), m(results, [rows, 1], [1, 1]));
            // SAFETY: the descriptors describe the buffers of this function's contract.
            unsafe { $f(&a, &b, &c) }
        }};
    }
    match dtype {
        DType::F32 => call!(f32, archc_cuda::blas::archc_matmul_f32),
        _ => call!(f64, archc_cuda::blas::archc_matmul_f64),
    }
}

/// Frees a tensor's buffers (nothing is left to clean up after a failed free).
fn free(cuda: &Cuda, t: &DeviceTensor) {
    let _ = cuda.free(t.home);
    let _ = cuda.free(t.staging);
}

impl Drop for DeviceState {
    fn drop(&mut self) {
        let Some(cuda) = self.cuda else { return };
        if let Ok(stream) = archc_cuda::runtime_stream() {
            let _ = cuda.stream_synchronize(stream);
        }
        for t in self.tensors.values() {
            free(cuda, t);
        }
        if let Some(c) = self.check.take() {
            let _ = cuda.free(c.zeros);
            let _ = cuda.free(c.results);
        }
    }
}
