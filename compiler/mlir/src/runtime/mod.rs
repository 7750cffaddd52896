//! What compiled CPU code calls at run time, in the process that runs it (the JIT's and
//! artifacts' alike): [`rt`] (matrix products by OpenBLAS or the `gemm` crate, long FFTs
//! and sorts, the interpreter's random streams, copies and recorded failures), [`alloc`]
//! (`malloc`/`free` caching large blocks), [`dft`] (DFT tables, computed once per
//! process and shape) and [`omp`] (the `__kmpc_*` entry points of
//! parallel loops, over archc's own helper threads). Nothing here compiles anything.

pub mod alloc;
pub mod dft;
pub mod omp;
pub mod rt;
