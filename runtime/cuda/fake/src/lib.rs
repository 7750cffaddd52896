//! A stand-in for `libcuda.so.1` and `libcublas.so` on machines without a GPU, so that
//! the host side of archc's GPU runtime (memories, uploads, graph capture and replay, the
//! fallbacks) runs in tests. Named `libcuda.so.1` and `libcublas.so` on the loader's path
//! (`LD_LIBRARY_PATH`), it exports the driver and cuBLAS functions archc calls.
//!
//! Contract:
//! - One device ("archc fake GPU", compute capability 9.0, 1 GiB), one context. Kernels
//!   are loaded and launched but do nothing: results are not meaningful, only the
//!   orchestration is. While `ARCHC_FAKE_CUDA_REJECT_PTX` is set, every module load fails
//!   as the driver's PTX JIT does (`CUDA_ERROR_INVALID_PTX`, a message in the error log).
//! - Device memory (`cuMemAlloc`) is mapped without access rights (`PROT_NONE`): a host
//!   read or write of it is a segmentation fault, as on a GPU it is wrong. This library's
//!   own copies, fills and products open the blocks they touch for the time they run.
//!   Managed memory and page-locked host memory are plain host memory.
//! - `cuPointerGetAttribute` knows the blocks this library made or registered: memory type
//!   (device for device and managed memory, host for page-locked and registered memory)
//!   and whether memory is managed; any other address is an error, as for the driver.
//! - Work queued on a stream runs at once, in order (there is one queue). While a stream
//!   captures, copies, fills, launches and products are recorded instead; waiting (a
//!   stream or context synchronisation, a synchronous copy, freeing device memory) is an
//!   error that invalidates the capture, as in CUDA. `cuStreamEndCapture` returns the
//!   recorded graph; launching an instantiated graph runs its work again.

#![allow(non_snake_case, clippy::missing_safety_doc, clippy::too_many_arguments)]

use std::collections::BTreeMap;
use std::ffi::{c_char, c_int, c_uint, c_void};
use std::sync::{Mutex, MutexGuard};

type CUresult = c_int;
const SUCCESS: CUresult = 0;
const INVALID_VALUE: CUresult = 1;
const OUT_OF_MEMORY: CUresult = 2;
const INVALID_PTX: CUresult = 218;
const HOST_MEMORY_ALREADY_REGISTERED: CUresult = 712;
const CAPTURE_UNSUPPORTED: CUresult = 900;
const CAPTURE_INVALIDATED: CUresult = 901;

const PAGE: usize = 4096;
const PROT_NONE: c_int = 0;
const PROT_READ_WRITE: c_int = 3;
const MAP_PRIVATE_ANONYMOUS: c_int = 0x02 | 0x20;

extern "C" {
    fn mmap(addr: *mut c_void, len: usize, prot: c_int, flags: c_int, fd: c_int, offset: i64) -> *mut c_void;
    fn munmap(addr: *mut c_void, len: usize) -> c_int;
    fn mprotect(addr: *mut c_void, len: usize, prot: c_int) -> c_int;
    fn posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> c_int;
    fn free(p: *mut c_void);
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Device,
    Managed,
    Pinned,
    Registered,
}

#[derive(Clone, Copy, Debug)]
struct Block {
    len: usize,
    kind: Kind,
}

/// `CUDA_MEMCPY2D` as `cuda.h` lays it out.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Memcpy2D {
    src_x_in_bytes: usize,
    src_y: usize,
    src_memory_type: c_uint,
    src_host: *const c_void,
    src_device: u64,
    src_array: *mut c_void,
    src_pitch: usize,
    dst_x_in_bytes: usize,
    dst_y: usize,
    dst_memory_type: c_uint,
    dst_host: *mut c_void,
    dst_device: u64,
    dst_array: *mut c_void,
    dst_pitch: usize,
    width_in_bytes: usize,
    height: usize,
}

/// One product of `cublas?gemm*`: column-major, `batch` matrices `stride` elements apart.
#[derive(Clone, Copy)]
struct Gemm {
    double: bool,
    trans_a: bool,
    trans_b: bool,
    m: usize,
    n: usize,
    k: usize,
    alpha: f64,
    a: usize,
    lda: usize,
    stride_a: i64,
    b: usize,
    ldb: usize,
    stride_b: i64,
    beta: f64,
    c: usize,
    ldc: usize,
    stride_c: i64,
    batch: usize,
}

/// Queued work.
#[derive(Clone, Copy)]
enum Work {
    Copy { dst: usize, src: usize, bytes: usize },
    Copy2D { dst: usize, dst_pitch: usize, src: usize, src_pitch: usize, width: usize, height: usize },
    Fill { dst: usize, pitch: usize, value: u32, width: usize, height: usize },
    Launch,
    Gemm(Gemm),
}

struct Capture {
    work: Vec<Work>,
    invalidated: bool,
}

struct State {
    blocks: BTreeMap<usize, Block>,
    capture: Option<Capture>,
    next_handle: usize,
}

static STATE: Mutex<State> = Mutex::new(State { blocks: BTreeMap::new(), capture: None, next_handle: 0x1000 });

fn state() -> MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(|p| p.into_inner())
}

impl State {
    fn handle(&mut self) -> *mut c_void {
        self.next_handle += 16;
        self.next_handle as *mut c_void
    }

    /// The block holding `address`: its start and description.
    fn block_of(&self, address: usize) -> Option<(usize, Block)> {
        let (&start, &block) = self.blocks.range(..=address).next_back()?;
        (address < start + block.len.max(1)).then_some((start, block))
    }

    /// Queues `work`: recorded while capturing, else run now.
    fn queue(&mut self, work: Work) {
        match &mut self.capture {
            Some(capture) => capture.work.push(work),
            None => self.run(&work),
        }
    }

    /// A wait: an error (and the end of the capture's validity) while capturing.
    fn wait(&mut self) -> CUresult {
        match &mut self.capture {
            Some(capture) => {
                capture.invalidated = true;
                CAPTURE_UNSUPPORTED
            }
            None => SUCCESS,
        }
    }

    fn run(&mut self, work: &Work) {
        let touched: Vec<usize> = match *work {
            Work::Copy { dst, src, .. } | Work::Copy2D { dst, src, .. } => vec![dst, src],
            Work::Fill { dst, .. } => vec![dst],
            Work::Launch => vec![],
            Work::Gemm(g) => vec![g.a, g.b, g.c],
        };
        let opened = self.open(&touched);
        match *work {
            Work::Copy { dst, src, bytes } => {
                // SAFETY: the caller's ranges (the driver's contract), opened above.
                unsafe { std::ptr::copy(src as *const u8, dst as *mut u8, bytes) }
            }
            Work::Copy2D { dst, dst_pitch, src, src_pitch, width, height } => {
                for row in 0..height {
                    // SAFETY: as above, row by row.
                    unsafe {
                        std::ptr::copy((src + row * src_pitch) as *const u8, (dst + row * dst_pitch) as *mut u8, width)
                    }
                }
            }
            Work::Fill { dst, pitch, value, width, height } => {
                for row in 0..height {
                    // SAFETY: as above.
                    unsafe { std::slice::from_raw_parts_mut((dst + row * pitch) as *mut u32, width).fill(value) }
                }
            }
            Work::Launch => {}
            Work::Gemm(g) => {
                // SAFETY: as above (cuBLAS's contract for the operands).
                unsafe {
                    if g.double {
                        gemm::<f64>(&g)
                    } else {
                        gemm::<f32>(&g)
                    }
                }
            }
        }
        self.close(&opened);
    }

    /// Makes the device blocks holding `addresses` accessible; returns their starts.
    fn open(&self, addresses: &[usize]) -> Vec<(usize, usize)> {
        let mut opened: Vec<(usize, usize)> = Vec::new();
        for &address in addresses {
            if let Some((start, block)) = self.block_of(address).filter(|(_, b)| b.kind == Kind::Device) {
                if opened.iter().all(|&(s, _)| s != start) {
                    // SAFETY: a mapping this library made, of this length.
                    unsafe { mprotect(start as *mut c_void, pages(block.len), PROT_READ_WRITE) };
                    opened.push((start, block.len));
                }
            }
        }
        opened
    }

    fn close(&self, opened: &[(usize, usize)]) {
        for &(start, len) in opened {
            // SAFETY: as in `open`.
            unsafe { mprotect(start as *mut c_void, pages(len), PROT_NONE) };
        }
    }
}

fn pages(len: usize) -> usize {
    len.max(1).div_ceil(PAGE) * PAGE
}

trait Real: Copy {
    fn get(self) -> f64;
    fn put(v: f64) -> Self;
}
impl Real for f32 {
    fn get(self) -> f64 {
        self as f64
    }
    fn put(v: f64) -> Self {
        v as f32
    }
}
impl Real for f64 {
    fn get(self) -> f64 {
        self
    }
    fn put(v: f64) -> Self {
        v
    }
}

/// `C = alpha op(A) op(B) + beta C`, column-major, as cuBLAS computes it.
unsafe fn gemm<T: Real>(g: &Gemm) {
    for t in 0..g.batch as i64 {
        let (a, b, c) = (
            (g.a as *const T).wrapping_offset((t * g.stride_a) as isize),
            (g.b as *const T).wrapping_offset((t * g.stride_b) as isize),
            (g.c as *mut T).wrapping_offset((t * g.stride_c) as isize),
        );
        for j in 0..g.n {
            for i in 0..g.m {
                let mut sum = 0.0;
                for p in 0..g.k {
                    let x = if g.trans_a { *a.add(p + i * g.lda) } else { *a.add(i + p * g.lda) };
                    let y = if g.trans_b { *b.add(j + p * g.ldb) } else { *b.add(p + j * g.ldb) };
                    sum += x.get() * y.get();
                }
                let out = c.add(i + j * g.ldc);
                let old = if g.beta == 0.0 { 0.0 } else { g.beta * (*out).get() };
                *out = T::put(g.alpha * sum + old);
            }
        }
    }
}

// ------------------------------------------------------------------ the driver

#[no_mangle]
pub extern "C" fn cuInit(_flags: c_uint) -> CUresult {
    SUCCESS
}

#[no_mangle]
pub unsafe extern "C" fn cuDriverGetVersion(version: *mut c_int) -> CUresult {
    *version = 13000;
    SUCCESS
}

static NAMES: [(&str, &str); 6] = [
    ("CUDA_SUCCESS\0", "no error\0"),
    ("CUDA_ERROR_INVALID_VALUE\0", "invalid argument\0"),
    ("CUDA_ERROR_OUT_OF_MEMORY\0", "out of memory\0"),
    ("CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED\0", "part or all of the requested memory range is already mapped\0"),
    ("CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED\0", "operation not permitted when stream is capturing\0"),
    ("CUDA_ERROR_STREAM_CAPTURE_INVALIDATED\0", "operation failed due to a previous error during capture\0"),
];

fn describe(result: CUresult) -> Option<(&'static str, &'static str)> {
    let i = match result {
        SUCCESS => 0,
        INVALID_VALUE => 1,
        OUT_OF_MEMORY => 2,
        HOST_MEMORY_ALREADY_REGISTERED => 3,
        CAPTURE_UNSUPPORTED => 4,
        CAPTURE_INVALIDATED => 5,
        _ => return None,
    };
    Some(NAMES[i])
}

#[no_mangle]
pub unsafe extern "C" fn cuGetErrorName(result: CUresult, out: *mut *const c_char) -> CUresult {
    match describe(result) {
        Some((name, _)) => {
            *out = name.as_ptr().cast();
            SUCCESS
        }
        None => INVALID_VALUE,
    }
}

#[no_mangle]
pub unsafe extern "C" fn cuGetErrorString(result: CUresult, out: *mut *const c_char) -> CUresult {
    match describe(result) {
        Some((_, text)) => {
            *out = text.as_ptr().cast();
            SUCCESS
        }
        None => INVALID_VALUE,
    }
}

#[no_mangle]
pub unsafe extern "C" fn cuDeviceGet(device: *mut c_int, ordinal: c_int) -> CUresult {
    if ordinal != 0 {
        return INVALID_VALUE;
    }
    *device = 0;
    SUCCESS
}

#[no_mangle]
pub unsafe extern "C" fn cuDeviceGetCount(count: *mut c_int) -> CUresult {
    *count = 1;
    SUCCESS
}

#[no_mangle]
pub unsafe extern "C" fn cuDeviceGetName(name: *mut c_char, len: c_int, _device: c_int) -> CUresult {
    let text = b"archc fake GPU\0";
    if (len as usize) < text.len() {
        return INVALID_VALUE;
    }
    std::ptr::copy_nonoverlapping(text.as_ptr().cast(), name, text.len());
    SUCCESS
}

#[no_mangle]
pub unsafe extern "C" fn cuDeviceGetAttribute(value: *mut c_int, attribute: c_int, _device: c_int) -> CUresult {
    *value = match attribute {
        75 => 9,
        76 => 0,
        _ => return INVALID_VALUE,
    };
    SUCCESS
}

#[no_mangle]
pub unsafe extern "C" fn cuDeviceTotalMem_v2(bytes: *mut usize, _device: c_int) -> CUresult {
    *bytes = 1 << 30;
    SUCCESS
}

#[no_mangle]
pub unsafe extern "C" fn cuDevicePrimaryCtxRetain(context: *mut *mut c_void, _device: c_int) -> CUresult {
    *context = state().handle();
    SUCCESS
}

#[no_mangle]
pub extern "C" fn cuCtxSetCurrent(_context: *mut c_void) -> CUresult {
    SUCCESS
}

#[no_mangle]
pub extern "C" fn cuCtxSynchronize() -> CUresult {
    state().wait()
}

unsafe fn host_block(out: *mut *mut c_void, bytes: usize, kind: Kind) -> CUresult {
    let mut p = std::ptr::null_mut();
    if posix_memalign(&mut p, 256, bytes.max(1)) != 0 {
        return OUT_OF_MEMORY;
    }
    state().blocks.insert(p as usize, Block { len: bytes.max(1), kind });
    *out = p;
    SUCCESS
}

#[no_mangle]
pub unsafe extern "C" fn cuMemAllocManaged(out: *mut u64, bytes: usize, _flags: c_uint) -> CUresult {
    host_block(out.cast(), bytes, Kind::Managed)
}

#[no_mangle]
pub unsafe extern "C" fn cuMemAllocHost_v2(out: *mut *mut c_void, bytes: usize) -> CUresult {
    host_block(out, bytes, Kind::Pinned)
}

#[no_mangle]
pub unsafe extern "C" fn cuMemAlloc_v2(out: *mut u64, bytes: usize) -> CUresult {
    let len = pages(bytes);
    let p = mmap(std::ptr::null_mut(), len, PROT_NONE, MAP_PRIVATE_ANONYMOUS, -1, 0);
    if p as isize == -1 {
        return OUT_OF_MEMORY;
    }
    state().blocks.insert(p as usize, Block { len: bytes.max(1), kind: Kind::Device });
    *out = p as u64;
    SUCCESS
}

unsafe fn release(address: usize, kinds: &[Kind]) -> CUresult {
    let mut st = state();
    match st.blocks.get(&address).copied() {
        Some(block) if kinds.contains(&block.kind) => {
            st.blocks.remove(&address);
            if block.kind == Kind::Device {
                munmap(address as *mut c_void, pages(block.len));
            } else {
                free(address as *mut c_void);
            }
            SUCCESS
        }
        _ => INVALID_VALUE,
    }
}

#[no_mangle]
pub unsafe extern "C" fn cuMemFree_v2(address: u64) -> CUresult {
    // Freeing synchronises the device: not while a stream captures.
    let waited = state().wait();
    if waited != SUCCESS {
        return waited;
    }
    release(address as usize, &[Kind::Device, Kind::Managed])
}

#[no_mangle]
pub unsafe extern "C" fn cuMemFreeHost(p: *mut c_void) -> CUresult {
    release(p as usize, &[Kind::Pinned])
}

#[no_mangle]
pub unsafe extern "C" fn cuMemHostRegister_v2(p: *mut c_void, bytes: usize, _flags: c_uint) -> CUresult {
    let mut st = state();
    let start = p as usize;
    if st.block_of(start).is_some() || st.blocks.range(start..start + bytes).next().is_some() {
        return HOST_MEMORY_ALREADY_REGISTERED;
    }
    st.blocks.insert(start, Block { len: bytes, kind: Kind::Registered });
    SUCCESS
}

#[no_mangle]
pub unsafe extern "C" fn cuMemHostUnregister(p: *mut c_void) -> CUresult {
    let mut st = state();
    match st.blocks.get(&(p as usize)) {
        Some(b) if b.kind == Kind::Registered => {
            st.blocks.remove(&(p as usize));
            SUCCESS
        }
        _ => INVALID_VALUE,
    }
}

#[no_mangle]
pub unsafe extern "C" fn cuPointerGetAttribute(out: *mut c_void, attribute: c_int, address: u64) -> CUresult {
    let Some((_, block)) = state().block_of(address as usize) else {
        return INVALID_VALUE;
    };
    let value: c_uint = match attribute {
        2 => match block.kind {
            Kind::Device | Kind::Managed => 2,
            Kind::Pinned | Kind::Registered => 1,
        },
        8 => c_uint::from(block.kind == Kind::Managed),
        _ => return INVALID_VALUE,
    };
    *out.cast::<c_uint>() = value;
    SUCCESS
}

#[no_mangle]
pub extern "C" fn cuMemcpy(dst: u64, src: u64, bytes: usize) -> CUresult {
    let mut st = state();
    let waited = st.wait();
    if waited == SUCCESS {
        st.run(&Work::Copy { dst: dst as usize, src: src as usize, bytes });
    }
    waited
}

#[no_mangle]
pub extern "C" fn cuMemcpyAsync(dst: u64, src: u64, bytes: usize, _stream: *mut c_void) -> CUresult {
    state().queue(Work::Copy { dst: dst as usize, src: src as usize, bytes });
    SUCCESS
}

#[no_mangle]
pub extern "C" fn cuMemcpyHtoDAsync_v2(dst: u64, src: *const c_void, bytes: usize, _stream: *mut c_void) -> CUresult {
    state().queue(Work::Copy { dst: dst as usize, src: src as usize, bytes });
    SUCCESS
}

#[no_mangle]
pub extern "C" fn cuMemcpyDtoHAsync_v2(dst: *mut c_void, src: u64, bytes: usize, _stream: *mut c_void) -> CUresult {
    state().queue(Work::Copy { dst: dst as usize, src: src as usize, bytes });
    SUCCESS
}

#[no_mangle]
pub unsafe extern "C" fn cuMemcpy2DAsync_v2(copy: *const Memcpy2D, _stream: *mut c_void) -> CUresult {
    let c = *copy;
    // Unified addressing: every operand is a device address (archc's only use).
    if c.src_memory_type != 4 || c.dst_memory_type != 4 {
        return INVALID_VALUE;
    }
    let src = c.src_device as usize + c.src_x_in_bytes + c.src_y * c.src_pitch;
    let dst = c.dst_device as usize + c.dst_x_in_bytes + c.dst_y * c.dst_pitch;
    let work = Work::Copy2D {
        dst,
        dst_pitch: c.dst_pitch,
        src,
        src_pitch: c.src_pitch,
        width: c.width_in_bytes,
        height: c.height,
    };
    state().queue(work);
    SUCCESS
}

#[no_mangle]
pub extern "C" fn cuMemsetD32Async(dst: u64, value: c_uint, count: usize, _stream: *mut c_void) -> CUresult {
    state().queue(Work::Fill { dst: dst as usize, pitch: 4 * count, value, width: count, height: 1 });
    SUCCESS
}

#[no_mangle]
pub extern "C" fn cuMemsetD2D32Async(
    dst: u64,
    pitch: usize,
    value: c_uint,
    width: usize,
    height: usize,
    _stream: *mut c_void,
) -> CUresult {
    state().queue(Work::Fill { dst: dst as usize, pitch, value, width, height });
    SUCCESS
}

#[no_mangle]
pub unsafe extern "C" fn cuModuleLoadDataEx(
    module: *mut *mut c_void,
    image: *const c_void,
    count: c_uint,
    keys: *mut c_int,
    values: *mut *mut c_void,
) -> CUresult {
    if image.is_null() {
        return INVALID_VALUE;
    }
    if std::env::var_os("ARCHC_FAKE_CUDA_REJECT_PTX").is_some() {
        write_error_log(count, keys, values, b"ptxas fatal   : rejected by the stand-in (ARCHC_FAKE_CUDA_REJECT_PTX)");
        return INVALID_PTX;
    }
    *module = state().handle();
    SUCCESS
}

/// Writes `message` (NUL-terminated, cut to fit) into the JIT error log buffer that the
/// options `keys`/`values` name, if they name one.
unsafe fn write_error_log(count: c_uint, keys: *mut c_int, values: *mut *mut c_void, message: &[u8]) {
    const ERROR_LOG_BUFFER: c_int = 5;
    const ERROR_LOG_BUFFER_SIZE_BYTES: c_int = 6;
    if keys.is_null() || values.is_null() {
        return;
    }
    let keys = std::slice::from_raw_parts(keys, count as usize);
    let values = std::slice::from_raw_parts(values, count as usize);
    let find = |key| keys.iter().position(|&k| k == key).map(|i| values[i]);
    let (Some(buffer), Some(size)) = (find(ERROR_LOG_BUFFER), find(ERROR_LOG_BUFFER_SIZE_BYTES)) else { return };
    let n = message.len().min((size as usize).saturating_sub(1));
    std::ptr::copy_nonoverlapping(message.as_ptr(), buffer.cast::<u8>(), n);
    *buffer.cast::<u8>().add(n) = 0;
}

#[no_mangle]
pub extern "C" fn cuModuleUnload(_module: *mut c_void) -> CUresult {
    SUCCESS
}

#[no_mangle]
pub unsafe extern "C" fn cuModuleGetFunction(
    function: *mut *mut c_void,
    _module: *mut c_void,
    name: *const c_char,
) -> CUresult {
    if name.is_null() {
        return INVALID_VALUE;
    }
    *function = state().handle();
    SUCCESS
}

#[no_mangle]
pub extern "C" fn cuLaunchKernel(
    function: *mut c_void,
    grid_x: c_uint,
    grid_y: c_uint,
    grid_z: c_uint,
    block_x: c_uint,
    block_y: c_uint,
    block_z: c_uint,
    _shared: c_uint,
    _stream: *mut c_void,
    params: *mut *mut c_void,
    extra: *mut *mut c_void,
) -> CUresult {
    let dims = [grid_x, grid_y, grid_z, block_x, block_y, block_z];
    if function.is_null() || dims.contains(&0) || block_x * block_y * block_z > 1024 {
        return INVALID_VALUE;
    }
    if params.is_null() && extra.is_null() {
        return INVALID_VALUE;
    }
    state().queue(Work::Launch);
    SUCCESS
}

#[no_mangle]
pub unsafe extern "C" fn cuStreamCreate(stream: *mut *mut c_void, _flags: c_uint) -> CUresult {
    *stream = state().handle();
    SUCCESS
}

#[no_mangle]
pub extern "C" fn cuStreamSynchronize(_stream: *mut c_void) -> CUresult {
    state().wait()
}

#[no_mangle]
pub extern "C" fn cuStreamDestroy_v2(_stream: *mut c_void) -> CUresult {
    SUCCESS
}

#[no_mangle]
pub extern "C" fn cuStreamBeginCapture_v2(_stream: *mut c_void, _mode: c_int) -> CUresult {
    let mut st = state();
    if st.capture.is_some() {
        return CAPTURE_UNSUPPORTED;
    }
    st.capture = Some(Capture { work: Vec::new(), invalidated: false });
    SUCCESS
}

#[no_mangle]
pub unsafe extern "C" fn cuStreamEndCapture(_stream: *mut c_void, graph: *mut *mut c_void) -> CUresult {
    let Some(capture) = state().capture.take() else {
        return INVALID_VALUE;
    };
    if capture.invalidated {
        *graph = std::ptr::null_mut();
        return CAPTURE_INVALIDATED;
    }
    *graph = Box::into_raw(Box::new(capture.work)).cast();
    SUCCESS
}

#[no_mangle]
pub unsafe extern "C" fn cuGraphInstantiateWithFlags(
    exec: *mut *mut c_void,
    graph: *mut c_void,
    _flags: u64,
) -> CUresult {
    if graph.is_null() {
        return INVALID_VALUE;
    }
    let work = (*graph.cast::<Vec<Work>>()).clone();
    *exec = Box::into_raw(Box::new(work)).cast();
    SUCCESS
}

// Events: the time they were recorded (work runs when queued, so that is when it ended).

#[no_mangle]
pub unsafe extern "C" fn cuEventCreate(event: *mut *mut c_void, _flags: c_uint) -> CUresult {
    *event = Box::into_raw(Box::new(None::<std::time::Instant>)).cast();
    SUCCESS
}

#[no_mangle]
pub unsafe extern "C" fn cuEventRecord(event: *mut c_void, _stream: *mut c_void) -> CUresult {
    if event.is_null() || state().capture.is_some() {
        // archc records no event while capturing; one recorded there is a bug to show.
        return INVALID_VALUE;
    }
    *event.cast::<Option<std::time::Instant>>() = Some(std::time::Instant::now());
    SUCCESS
}

#[no_mangle]
pub unsafe extern "C" fn cuEventSynchronize(event: *mut c_void) -> CUresult {
    match event.cast::<Option<std::time::Instant>>().as_ref() {
        Some(Some(_)) => SUCCESS,
        _ => INVALID_VALUE,
    }
}

#[no_mangle]
pub unsafe extern "C" fn cuEventElapsedTime(ms: *mut f32, start: *mut c_void, end: *mut c_void) -> CUresult {
    let at = |e: *mut c_void| e.cast::<Option<std::time::Instant>>().as_ref().copied().flatten();
    match (at(start), at(end)) {
        (Some(a), Some(b)) => {
            *ms = b.saturating_duration_since(a).as_secs_f32() * 1e3;
            SUCCESS
        }
        _ => INVALID_VALUE,
    }
}

#[no_mangle]
pub unsafe extern "C" fn cuEventDestroy_v2(event: *mut c_void) -> CUresult {
    if !event.is_null() {
        drop(Box::from_raw(event.cast::<Option<std::time::Instant>>()));
    }
    SUCCESS
}

#[no_mangle]
pub unsafe extern "C" fn cuGraphLaunch(exec: *mut c_void, _stream: *mut c_void) -> CUresult {
    if exec.is_null() {
        return INVALID_VALUE;
    }
    let mut st = state();
    for work in &*exec.cast::<Vec<Work>>() {
        st.queue(*work);
    }
    SUCCESS
}

#[no_mangle]
pub unsafe extern "C" fn cuGraphExecDestroy(exec: *mut c_void) -> CUresult {
    if !exec.is_null() {
        drop(Box::from_raw(exec.cast::<Vec<Work>>()));
    }
    SUCCESS
}

#[no_mangle]
pub unsafe extern "C" fn cuGraphDestroy(graph: *mut c_void) -> CUresult {
    if !graph.is_null() {
        drop(Box::from_raw(graph.cast::<Vec<Work>>()));
    }
    SUCCESS
}

// ------------------------------------------------------------------ cuBLAS

type Status = c_int;

#[no_mangle]
pub unsafe extern "C" fn cublasCreate_v2(handle: *mut *mut c_void) -> Status {
    *handle = state().handle();
    0
}

#[no_mangle]
pub extern "C" fn cublasSetStream_v2(_handle: *mut c_void, _stream: *mut c_void) -> Status {
    0
}

#[no_mangle]
pub extern "C" fn cublasSetMathMode(_handle: *mut c_void, _mode: c_int) -> Status {
    0
}

#[no_mangle]
pub unsafe extern "C" fn cublasGetVersion_v2(_handle: *mut c_void, version: *mut c_int) -> Status {
    *version = 130000;
    0
}

/// Checks cuBLAS's argument rules and queues the product.
fn queue_gemm(g: Gemm) -> Status {
    let rows_a = if g.trans_a { g.k } else { g.m };
    let rows_b = if g.trans_b { g.n } else { g.k };
    if g.lda < rows_a.max(1) || g.ldb < rows_b.max(1) || g.ldc < g.m.max(1) || g.batch == 0 {
        return 7; // CUBLAS_STATUS_INVALID_VALUE
    }
    state().queue(Work::Gemm(g));
    0
}

macro_rules! products {
    ($t:ty, $double:expr, $gemm:ident, $batched:ident) => {
        #[no_mangle]
        pub unsafe extern "C" fn $gemm(
            _handle: *mut c_void,
            ta: c_int,
            tb: c_int,
            m: c_int,
            n: c_int,
            k: c_int,
            alpha: *const $t,
            a: *const $t,
            lda: c_int,
            b: *const $t,
            ldb: c_int,
            beta: *const $t,
            c: *mut $t,
            ldc: c_int,
        ) -> Status {
            $batched(_handle, ta, tb, m, n, k, alpha, a, lda, 0, b, ldb, 0, beta, c, ldc, 0, 1)
        }

        #[no_mangle]
        pub unsafe extern "C" fn $batched(
            _handle: *mut c_void,
            ta: c_int,
            tb: c_int,
            m: c_int,
            n: c_int,
            k: c_int,
            alpha: *const $t,
            a: *const $t,
            lda: c_int,
            stride_a: i64,
            b: *const $t,
            ldb: c_int,
            stride_b: i64,
            beta: *const $t,
            c: *mut $t,
            ldc: c_int,
            stride_c: i64,
            batch: c_int,
        ) -> Status {
            let size = |v: c_int| usize::try_from(v).ok();
            let (Some(m), Some(n), Some(k), Some(lda), Some(ldb), Some(ldc), Some(batch)) =
                (size(m), size(n), size(k), size(lda), size(ldb), size(ldc), size(batch))
            else {
                return 7;
            };
            queue_gemm(Gemm {
                double: $double,
                trans_a: ta != 0,
                trans_b: tb != 0,
                m,
                n,
                k,
                alpha: (*alpha) as f64,
                a: a as usize,
                lda,
                stride_a,
                b: b as usize,
                ldb,
                stride_b,
                beta: (*beta) as f64,
                c: c as usize,
                ldc,
                stride_c,
                batch,
            })
        }
    };
}

products!(f32, false, cublasSgemm_v2, cublasSgemmStridedBatched);
products!(f64, true, cublasDgemm_v2, cublasDgemmStridedBatched);
