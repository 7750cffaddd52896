//! The CUDA driver API, loaded at run time from `libcuda.so.1` (or `libcuda.so`).
//!
//! `Driver` owns the opened library and one function pointer per entry point we use, each
//! typed exactly as its prototype in `cuda.h`. Where `cuda.h` `#define`s a name to a
//! versioned symbol (`cuMemAlloc` -> `cuMemAlloc_v2`), the versioned symbol is loaded.
//! Nothing here links against CUDA: building needs no toolkit, and `Driver::load` fails
//! with one readable line on a machine without the NVIDIA driver.
//!
//! `Driver::check` turns a `CUresult` into a [`CudaError::Driver`] (or
//! [`CudaError::OutOfMemory`]) reading `CUDA error NAME (text) in cuXxx`.

use std::ffi::{c_char, c_int, c_uint, c_void, CStr};

use libloading::Library;

use crate::CudaError;

/// `CUresult`: 0 is `CUDA_SUCCESS`.
pub type CUresult = c_int;
/// `CUdevice`: a device ordinal.
pub type CUdevice = c_int;
/// `CUcontext`, an opaque handle.
pub type CUcontext = *mut c_void;
/// `CUmodule`, an opaque handle.
pub type CUmodule = *mut c_void;
/// `CUfunction`, an opaque handle.
pub type CUfunction = *mut c_void;
/// `CUstream`, an opaque handle; null is the legacy default stream.
pub type CUstream = *mut c_void;
/// `CUgraph`, an opaque handle (a captured graph).
pub type CUgraph = *mut c_void;
/// `CUgraphExec`, an opaque handle (an instantiated graph).
pub type CUgraphExec = *mut c_void;
pub type CUevent = *mut c_void;
/// `CUdeviceptr`: a device address (unified with host addresses on 64-bit Linux).
pub type CUdeviceptr = u64;
/// `CUjit_option`, a C enum.
pub type CUjitOption = c_int;

pub const CUDA_SUCCESS: CUresult = 0;
pub const CUDA_ERROR_OUT_OF_MEMORY: CUresult = 2;
/// `cuInit`'s result on a machine whose driver finds no device.
pub const CUDA_ERROR_NO_DEVICE: CUresult = 100;
/// A driver older than the CUDA runtime it is asked to serve.
pub const CUDA_ERROR_INSUFFICIENT_DRIVER: CUresult = 35;
pub const CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED: CUresult = 712;
pub const CU_MEM_ATTACH_GLOBAL: c_uint = 1;
pub const CU_MEMHOSTREGISTER_PORTABLE: c_uint = 1;
pub const CU_MEMHOSTREGISTER_DEVICEMAP: c_uint = 2;
pub const CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR: c_int = 75;
pub const CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR: c_int = 76;
pub const CU_JIT_ERROR_LOG_BUFFER: CUjitOption = 5;
pub const CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES: CUjitOption = 6;
pub const CU_JIT_OPTIMIZATION_LEVEL: CUjitOption = 7;
/// `CUmemorytype` `CU_MEMORYTYPE_UNIFIED`: an address in the unified address space.
pub const CU_MEMORYTYPE_UNIFIED: c_uint = 4;
/// `CUmemorytype` `CU_MEMORYTYPE_HOST`: page-locked or registered host memory.
pub const CU_MEMORYTYPE_HOST: c_uint = 1;
/// `CUpointer_attribute` `CU_POINTER_ATTRIBUTE_MEMORY_TYPE` (a `CUmemorytype`, 32 bits).
pub const CU_POINTER_ATTRIBUTE_MEMORY_TYPE: c_int = 2;
/// `CUpointer_attribute` `CU_POINTER_ATTRIBUTE_IS_MANAGED` (a 32-bit boolean).
pub const CU_POINTER_ATTRIBUTE_IS_MANAGED: c_int = 8;
/// `CUstreamCaptureMode` `CU_STREAM_CAPTURE_MODE_RELAXED`: other threads' CUDA calls are
/// not restricted while a stream captures.
pub const CU_STREAM_CAPTURE_MODE_RELAXED: c_int = 2;

/// `CUDA_MEMCPY2D` (`CUDA_MEMCPY2D_v2`, the layout `cuMemcpy2DAsync_v2` takes): `size_t`s,
/// `CUmemorytype` (a 32-bit C enum, padded to the following pointer), pointers and
/// `CUdeviceptr`s, in the order of `cuda.h`; 128 bytes on 64-bit Linux.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct CudaMemcpy2D {
    pub src_x_in_bytes: usize,
    pub src_y: usize,
    pub src_memory_type: c_uint,
    pub src_host: *const c_void,
    pub src_device: CUdeviceptr,
    pub src_array: *mut c_void,
    pub src_pitch: usize,
    pub dst_x_in_bytes: usize,
    pub dst_y: usize,
    pub dst_memory_type: c_uint,
    pub dst_host: *mut c_void,
    pub dst_device: CUdeviceptr,
    pub dst_array: *mut c_void,
    pub dst_pitch: usize,
    pub width_in_bytes: usize,
    pub height: usize,
}

const _: () = assert!(std::mem::size_of::<CudaMemcpy2D>() == 128);
const _: () = assert!(std::mem::offset_of!(CudaMemcpy2D, src_host) == 24);
const _: () = assert!(std::mem::offset_of!(CudaMemcpy2D, dst_memory_type) == 72);
const _: () = assert!(std::mem::offset_of!(CudaMemcpy2D, width_in_bytes) == 112);

/// The file names tried, in order.
const LIBRARY_NAMES: [&str; 2] = ["libcuda.so.1", "libcuda.so"];

/// Declares `Driver` with one field per entry point and the loader that fills them.
macro_rules! driver_api {
    ($($field:ident = $symbol:literal fn($($arg:ty),*);)*) => {
        /// The opened driver library and its entry points (see the module doc).
        pub struct Driver {
            $(pub $field: unsafe extern "C" fn($($arg),*) -> CUresult,)*
            /// Kept open for as long as the pointers above are used.
            _library: Library,
        }

        impl Driver {
            fn from_library(library: Library) -> Result<Driver, CudaError> {
                $(
                    // SAFETY: the type is the prototype of this symbol in cuda.h, and the
                    // pointer copied out lives no longer than `library`, stored beside it.
                    let $field = unsafe {
                        *library
                            .get::<unsafe extern "C" fn($($arg),*) -> CUresult>(
                                concat!($symbol, "\0").as_bytes(),
                            )
                            .map_err(|e| CudaError::DriverTooOld { symbol: $symbol, reason: e.to_string() })?
                    };
                )*
                Ok(Driver { $($field,)* _library: library })
            }
        }
    };
}

driver_api! {
    cu_init = "cuInit" fn(c_uint);
    cu_driver_get_version = "cuDriverGetVersion" fn(*mut c_int);
    cu_get_error_name = "cuGetErrorName" fn(CUresult, *mut *const c_char);
    cu_get_error_string = "cuGetErrorString" fn(CUresult, *mut *const c_char);
    cu_device_get = "cuDeviceGet" fn(*mut CUdevice, c_int);
    cu_device_get_count = "cuDeviceGetCount" fn(*mut c_int);
    cu_device_get_name = "cuDeviceGetName" fn(*mut c_char, c_int, CUdevice);
    cu_device_get_attribute = "cuDeviceGetAttribute" fn(*mut c_int, c_int, CUdevice);
    cu_device_total_mem = "cuDeviceTotalMem_v2" fn(*mut usize, CUdevice);
    cu_device_primary_ctx_retain = "cuDevicePrimaryCtxRetain" fn(*mut CUcontext, CUdevice);
    cu_ctx_set_current = "cuCtxSetCurrent" fn(CUcontext);
    cu_ctx_synchronize = "cuCtxSynchronize" fn();
    cu_mem_alloc_managed = "cuMemAllocManaged" fn(*mut CUdeviceptr, usize, c_uint);
    cu_mem_alloc = "cuMemAlloc_v2" fn(*mut CUdeviceptr, usize);
    cu_mem_free = "cuMemFree_v2" fn(CUdeviceptr);
    cu_memcpy = "cuMemcpy" fn(CUdeviceptr, CUdeviceptr, usize);
    cu_memcpy_async = "cuMemcpyAsync" fn(CUdeviceptr, CUdeviceptr, usize, CUstream);
    cu_memset_d32_async = "cuMemsetD32Async" fn(CUdeviceptr, c_uint, usize, CUstream);
    cu_memcpy_2d_async = "cuMemcpy2DAsync_v2" fn(*const CudaMemcpy2D, CUstream);
    cu_memset_d2d32_async = "cuMemsetD2D32Async" fn(CUdeviceptr, usize, c_uint, usize, usize, CUstream);
    cu_pointer_get_attribute = "cuPointerGetAttribute" fn(*mut c_void, c_int, CUdeviceptr);
    cu_mem_host_register = "cuMemHostRegister_v2" fn(*mut c_void, usize, c_uint);
    cu_mem_host_unregister = "cuMemHostUnregister" fn(*mut c_void);
    cu_module_load_data_ex = "cuModuleLoadDataEx"
        fn(*mut CUmodule, *const c_void, c_uint, *mut CUjitOption, *mut *mut c_void);
    cu_module_unload = "cuModuleUnload" fn(CUmodule);
    cu_module_get_function = "cuModuleGetFunction" fn(*mut CUfunction, CUmodule, *const c_char);
    cu_launch_kernel = "cuLaunchKernel" fn(
        CUfunction, c_uint, c_uint, c_uint, c_uint, c_uint, c_uint, c_uint, CUstream,
        *mut *mut c_void, *mut *mut c_void
    );
    cu_stream_create = "cuStreamCreate" fn(*mut CUstream, c_uint);
    cu_stream_synchronize = "cuStreamSynchronize" fn(CUstream);
    cu_stream_destroy = "cuStreamDestroy_v2" fn(CUstream);
    cu_mem_alloc_host = "cuMemAllocHost_v2" fn(*mut *mut c_void, usize);
    cu_mem_free_host = "cuMemFreeHost" fn(*mut c_void);
    cu_memcpy_htod_async = "cuMemcpyHtoDAsync_v2" fn(CUdeviceptr, *const c_void, usize, CUstream);
    cu_memcpy_dtoh_async = "cuMemcpyDtoHAsync_v2" fn(*mut c_void, CUdeviceptr, usize, CUstream);
    cu_stream_begin_capture = "cuStreamBeginCapture_v2" fn(CUstream, c_int);
    cu_stream_end_capture = "cuStreamEndCapture" fn(CUstream, *mut CUgraph);
    cu_graph_instantiate = "cuGraphInstantiateWithFlags" fn(*mut CUgraphExec, CUgraph, u64);
    cu_graph_launch = "cuGraphLaunch" fn(CUgraphExec, CUstream);
    cu_graph_exec_destroy = "cuGraphExecDestroy" fn(CUgraphExec);
    cu_graph_destroy = "cuGraphDestroy" fn(CUgraph);
    cu_event_create = "cuEventCreate" fn(*mut CUevent, c_uint);
    cu_event_record = "cuEventRecord" fn(CUevent, CUstream);
    cu_event_synchronize = "cuEventSynchronize" fn(CUevent);
    cu_event_elapsed_time = "cuEventElapsedTime" fn(*mut f32, CUevent, CUevent);
    cu_event_destroy = "cuEventDestroy_v2" fn(CUevent);
}

impl Driver {
    /// Opens the driver library; the error says that no NVIDIA driver is installed.
    pub fn load() -> Result<Driver, CudaError> {
        Driver::from_library(open_library()?)
    }

    /// `Ok(())` for `CUDA_SUCCESS`, else the error `CUDA error NAME (text) in {call}`:
    /// [`CudaError::OutOfMemory`] for `CUDA_ERROR_OUT_OF_MEMORY`, else [`CudaError::Driver`].
    pub fn check(&self, result: CUresult, call: &'static str) -> Result<(), CudaError> {
        if result == CUDA_SUCCESS {
            return Ok(());
        }
        let (name, text, detail) = (self.error_name(result), self.error_text(result), String::new());
        Err(match result {
            CUDA_ERROR_OUT_OF_MEMORY => CudaError::OutOfMemory { call, name, text, detail },
            code => CudaError::Driver { call, code, name, text, detail },
        })
    }

    /// `CUDA_ERROR_...` for a result code, or `CUresult N` if the driver does not know it.
    pub fn error_name(&self, result: CUresult) -> String {
        self.describe(self.cu_get_error_name, result)
    }

    /// The driver's sentence for a result code.
    pub fn error_text(&self, result: CUresult) -> String {
        self.describe(self.cu_get_error_string, result)
    }

    fn describe(
        &self,
        get: unsafe extern "C" fn(CUresult, *mut *const c_char) -> CUresult,
        result: CUresult,
    ) -> String {
        let mut text: *const c_char = std::ptr::null();
        // SAFETY: `get` is cuGetErrorName or cuGetErrorString, which store a pointer to a
        // static NUL-terminated string, or leave null (and fail) for an unknown code.
        let status = unsafe { get(result, &mut text) };
        if status != CUDA_SUCCESS || text.is_null() {
            return format!("CUresult {result}");
        }
        // SAFETY: non-null and NUL-terminated, owned by the driver for the process's life.
        unsafe { CStr::from_ptr(text) }.to_string_lossy().into_owned()
    }
}

fn open_library() -> Result<Library, CudaError> {
    let mut first = None;
    for name in LIBRARY_NAMES {
        // SAFETY: opening libcuda runs only the driver's own initialisers.
        match unsafe { Library::new(name) } {
            Ok(library) => return Ok(library),
            Err(e) => first = first.or(Some(e.to_string())),
        }
    }
    // dlerror's text starts with the file name: "libcuda.so.1: cannot open shared object file".
    let why = first.unwrap_or_default();
    Err(CudaError::NoDriver(why))
}
