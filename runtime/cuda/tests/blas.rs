//! The matrix products (`archc_matmul_*`, `archc_bmm_*`) and `memrefCopy` through their C
//! entry points, against naive references.
//!
//! With a CUDA device the operands are managed memory (`Cuda::alloc_managed`), so the
//! products run on cuBLAS and the copies on the driver, as in the JIT; without one they
//! are host `Vec`s and the host fallbacks run (each test says so once on stderr:
//! `no CUDA device (...): testing the host fallback`). `products_and_copies_on_plain_host_memory`
//! always uses host memory, which with a device exercises the fallbacks for memory the
//! driver does not know, and copies between host and managed memory. Products are checked elementwise against an f64 reference within
//! `tol * sum_p |a[i,p] b[p,j]|` (f32: 1e-5, f64: 1e-12); copies exactly; elements of
//! `c`'s and `dst`'s buffers outside the views must be untouched.
//!
//! `ARCHC_GPU_HOST_GEMM=1` / `ARCHC_GPU_HOST_COPY=1` force the host paths on a device too,
//! and `ARCHC_CUBLAS_DIR` says where cuBLAS is: this test reads them into the runtime's
//! options (as the CLI does) before anything starts CUDA. Without the first, a device run
//! requires cuBLAS (`gemm_backend` must be `Ok`). The runtime's error state is
//! process-wide, so the tests take `SERIAL` in turn.

use std::fmt::Debug;
use std::sync::{Mutex, MutexGuard, Once};

use archc_cuda::blas::{archc_bmm_f32, archc_bmm_f64, archc_matmul_f32, archc_matmul_f64};
use archc_cuda::copy::memrefCopy;
use archc_cuda::{cuda, gemm_backend, take_error, CudaOptions, MemRef, UnrankedMemRef};

static SERIAL: Mutex<()> = Mutex::new(());

/// Sets the runtime's options from the environment (see the module doc), once.
fn configure() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let flag = |name: &str| std::env::var_os(name).is_some_and(|v| v == "1");
        let options = CudaOptions {
            device: None,
            cublas_dir: std::env::var_os("ARCHC_CUBLAS_DIR").map(Into::into),
            host_gemm: flag("ARCHC_GPU_HOST_GEMM"),
            host_copy: flag("ARCHC_GPU_HOST_COPY"),
        };
        archc_cuda::configure(options).expect("the options are set before CUDA starts");
    });
}

fn serial() -> MutexGuard<'static, ()> {
    configure();
    let guard = SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    take_error();
    guard
}

/// Whether buffers are managed memory (a device exists); says once why not.
fn managed() -> bool {
    configure();
    match cuda() {
        Ok(_) => true,
        Err(reason) => {
            eprintln!("no CUDA device ({reason}): testing the host fallback on host memory");
            false
        }
    }
}

fn assert_no_error(what: &str) {
    let error = take_error();
    assert!(error.is_none(), "{what}: {error:?}");
}

/// A test buffer: managed memory, or a host `Vec`.
struct Buffer<T> {
    ptr: *mut T,
    len: usize,
    host: Option<Vec<T>>,
}

impl<T: Copy + Default> Buffer<T> {
    fn new(len: usize, managed: bool) -> Buffer<T> {
        if !managed {
            let mut host = vec![T::default(); len.max(1)];
            return Buffer { ptr: host.as_mut_ptr(), len, host: Some(host) };
        }
        let bytes = len.max(1) * std::mem::size_of::<T>();
        let ptr = cuda().expect("device").alloc_managed(bytes).expect("alloc_managed").cast::<T>();
        // SAFETY: `len` elements of fresh managed memory, no kernel running.
        unsafe { std::slice::from_raw_parts_mut(ptr, len).fill(T::default()) };
        Buffer { ptr, len, host: None }
    }

    fn data(&self) -> &[T] {
        // SAFETY: `len` initialised elements; the runtime has synchronised before returning.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    fn data_mut(&mut self) -> &mut [T] {
        // SAFETY: as above.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl<T> Drop for Buffer<T> {
    fn drop(&mut self) {
        if self.host.is_none() {
            cuda().expect("device").free(self.ptr.cast()).expect("free");
        }
    }
}

/// A xorshift generator: values in [-1, 1) and indices.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn value(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The element types of the products.
trait Real: Copy + Default + Debug + PartialEq + 'static {
    const TOLERANCE: f64;
    const SENTINEL: Self;
    fn of(x: f64) -> Self;
    fn f64(self) -> f64;
}

impl Real for f32 {
    const TOLERANCE: f64 = 1e-5;
    const SENTINEL: f32 = 12345.0;
    fn of(x: f64) -> f32 {
        x as f32
    }
    fn f64(self) -> f64 {
        self as f64
    }
}

impl Real for f64 {
    const TOLERANCE: f64 = 1e-12;
    const SENTINEL: f64 = 12345.0;
    fn of(x: f64) -> f64 {
        x
    }
    fn f64(self) -> f64 {
        self
    }
}

/// Layouts of a `[batch, rows, cols]` view in its buffer.
const INPUT_KINDS: [&str; 7] =
    ["rows", "cols", "padded", "offset-cols", "strided", "broadcast-rows", "batch-broadcast"];
const OUTPUT_KINDS: [&str; 5] = ["rows", "cols", "padded", "offset-rows", "strided"];

/// A strided `[batch, rows, cols]` view in a buffer of random values.
struct Matrix<T> {
    buffer: Buffer<T>,
    offset: i64,
    sizes: [i64; 3],
    strides: [i64; 3],
}

impl<T: Real> Matrix<T> {
    fn new(sizes: [i64; 3], kind: &str, managed: bool, rng: &mut Rng) -> Matrix<T> {
        let [batch, rows, cols] = sizes;
        let (offset, mut strides) = match kind {
            "rows" => (0, [rows * cols, cols, 1]),
            "cols" => (0, [rows * cols, 1, rows]),
            "padded" => (0, [rows * (cols + 3) + 5, cols + 3, 1]),
            "offset-cols" => (7, [(rows + 2) * cols + 1, 1, rows + 2]),
            "offset-rows" => (9, [rows * (cols + 1) + 2, cols + 1, 1]),
            "strided" => (3, [2 * rows * cols * 3 + 1, 3 * cols, 2]),
            "broadcast-rows" => (1, [cols + 1, 0, 1]),
            "batch-broadcast" => (2, [0, cols, 1]),
            _ => unreachable!("{kind}"),
        };
        if batch <= 1 {
            strides[0] = strides[0].max(1);
        }
        let span = offset + (0..3).map(|d| (sizes[d] - 1).max(0) * strides[d]).sum::<i64>() + 1;
        let mut buffer = Buffer::new(span as usize, managed);
        buffer.data_mut().iter_mut().for_each(|x| *x = T::of(rng.value()));
        Matrix { buffer, offset, sizes, strides }
    }

    /// Sets every element outside the view to the sentinel.
    fn mark_outside(&mut self) {
        let inside = self.inside();
        for (i, x) in self.buffer.data_mut().iter_mut().enumerate() {
            if !inside[i] {
                *x = T::SENTINEL;
            }
        }
    }

    fn index(&self, t: i64, i: i64, j: i64) -> usize {
        (self.offset + t * self.strides[0] + i * self.strides[1] + j * self.strides[2]) as usize
    }

    fn get(&self, t: i64, i: i64, j: i64) -> T {
        self.buffer.data()[self.index(t, i, j)]
    }

    fn inside(&self) -> Vec<bool> {
        let mut inside = vec![false; self.buffer.len];
        let [batch, rows, cols] = self.sizes;
        for t in 0..batch {
            for i in 0..rows {
                for j in 0..cols {
                    inside[self.index(t, i, j)] = true;
                }
            }
        }
        inside
    }

    fn desc2(&self) -> MemRef<T, 2> {
        MemRef {
            allocated: self.buffer.ptr,
            aligned: self.buffer.ptr,
            offset: self.offset,
            sizes: [self.sizes[1], self.sizes[2]],
            strides: [self.strides[1], self.strides[2]],
        }
    }

    fn desc3(&self) -> MemRef<T, 3> {
        MemRef {
            allocated: self.buffer.ptr,
            aligned: self.buffer.ptr,
            offset: self.offset,
            sizes: self.sizes,
            strides: self.strides,
        }
    }
}

type Matmul<T> = unsafe extern "C" fn(*const MemRef<T, 2>, *const MemRef<T, 2>, *const MemRef<T, 2>);
type Bmm<T> = unsafe extern "C" fn(*const MemRef<T, 3>, *const MemRef<T, 3>, *const MemRef<T, 3>);

/// Runs one product (2-d when `bmm` is `None`) and checks it.
fn check_product<T: Real>(
    what: &str,
    [batch, m, k, n]: [i64; 4],
    kinds: [&str; 3],
    managed: bool,
    functions: (Matmul<T>, Option<Bmm<T>>),
    rng: &mut Rng,
) {
    let a = Matrix::<T>::new([batch, m, k], kinds[0], managed, rng);
    let b = Matrix::<T>::new([batch, k, n], kinds[1], managed, rng);
    let mut c = Matrix::<T>::new([batch, m, n], kinds[2], managed, rng);
    c.mark_outside();
    let what = format!("{what} {kinds:?} [{batch}, {m}, {k}, {n}]");
    // SAFETY: the descriptors describe live views within their buffers; `c` overlaps neither.
    unsafe {
        match functions {
            (_, Some(bmm)) => bmm(&a.desc3(), &b.desc3(), &c.desc3()),
            (matmul, None) => matmul(&a.desc2(), &b.desc2(), &c.desc2()),
        }
    }
    assert_no_error(&what);
    for t in 0..batch {
        for i in 0..m {
            for j in 0..n {
                let terms = (0..k).map(|p| a.get(t, i, p).f64() * b.get(t, p, j).f64());
                let (want, scale) = terms.fold((0.0, 0.0), |(s, l), x| (s + x, l + x.abs()));
                let got = c.get(t, i, j).f64();
                let bound = T::TOLERANCE * scale + 1e-30;
                assert!((got - want).abs() <= bound, "{what}: c[{t}, {i}, {j}] = {got}, want {want} (bound {bound})");
            }
        }
    }
    let inside = c.inside();
    for (index, &x) in c.buffer.data().iter().enumerate() {
        assert!(inside[index] || x == T::SENTINEL, "{what}: element {index} outside the view was written");
    }
}

const DIMS: [i64; 7] = [0, 1, 1, 2, 3, 7, 17];

fn every_layout<T: Real>(what: &str, functions: (Matmul<T>, Option<Bmm<T>>), seed: u64) {
    let _guard = serial();
    let managed = managed();
    let mut rng = Rng(seed);
    let batches: &[i64] = if functions.1.is_some() { &[0, 1, 3] } else { &[1] };
    for kind_a in INPUT_KINDS {
        for kind_b in INPUT_KINDS {
            for kind_c in OUTPUT_KINDS {
                let batch = batches[rng.below(batches.len())];
                let [m, k, n] = [0, 1, 2].map(|_| DIMS[rng.below(DIMS.len())]);
                check_product(what, [batch, m, k, n], [kind_a, kind_b, kind_c], managed, functions, &mut rng);
            }
        }
    }
}

#[test]
fn matmul_f32_in_every_layout() {
    every_layout::<f32>("archc_matmul_f32", (archc_matmul_f32, None), 1);
}

#[test]
fn matmul_f64_in_every_layout() {
    every_layout::<f64>("archc_matmul_f64", (archc_matmul_f64, None), 2);
}

#[test]
fn bmm_f32_in_every_layout() {
    every_layout::<f32>("archc_bmm_f32", (archc_matmul_f32, Some(archc_bmm_f32)), 3);
}

#[test]
fn bmm_f64_in_every_layout() {
    every_layout::<f64>("archc_bmm_f64", (archc_matmul_f64, Some(archc_bmm_f64)), 4);
}

#[test]
fn degenerate_and_large_products() {
    let _guard = serial();
    let managed = managed();
    let mut rng = Rng(5);
    let shapes: [[i64; 4]; 8] = [
        [1, 0, 5, 4],
        [1, 4, 0, 5],
        [1, 5, 4, 0],
        [1, 1, 1, 1],
        [1, 1, 300, 1],
        [1, 64, 129, 100],
        [4, 48, 64, 40],
        [0, 3, 4, 5],
    ];
    let (mm32, mm64) = ((archc_matmul_f32 as Matmul<f32>, None), (archc_matmul_f64 as Matmul<f64>, None));
    let (bmm32, bmm64) = (
        (archc_matmul_f32 as Matmul<f32>, Some(archc_bmm_f32 as Bmm<f32>)),
        (archc_matmul_f64 as Matmul<f64>, Some(archc_bmm_f64 as Bmm<f64>)),
    );
    for shape in shapes {
        for kinds in [["rows", "rows", "rows"], ["cols", "padded", "offset-rows"], ["strided", "cols", "strided"]] {
            if shape[0] == 1 {
                check_product::<f32>("matmul f32", shape, kinds, managed, mm32, &mut rng);
                check_product::<f64>("matmul f64", shape, kinds, managed, mm64, &mut rng);
            }
            check_product::<f32>("bmm f32", shape, kinds, managed, bmm32, &mut rng);
            check_product::<f64>("bmm f64", shape, kinds, managed, bmm64, &mut rng);
        }
        check_product::<f32>("bmm f32", shape, ["batch-broadcast", "rows", "rows"], managed, bmm32, &mut rng);
        check_product::<f64>("bmm f64", shape, ["cols", "batch-broadcast", "padded"], managed, bmm64, &mut rng);
    }
    // One product large enough for cuBLAS's tiled kernels (and f32 rounding over k = 300).
    check_product::<f32>("matmul f32", [1, 256, 300, 128], ["rows", "rows", "rows"], managed, mm32, &mut rng);
    check_product::<f64>("bmm f64", [2, 128, 300, 96], ["rows", "cols", "rows"], managed, bmm64, &mut rng);
}

#[test]
fn products_and_copies_on_plain_host_memory() {
    let _guard = serial();
    let mut rng = Rng(6);
    for kinds in [["rows", "rows", "rows"], ["cols", "strided", "offset-rows"], ["batch-broadcast", "cols", "strided"]]
    {
        check_product::<f32>("host f32", [3, 5, 7, 4], kinds, false, (archc_matmul_f32, Some(archc_bmm_f32)), &mut rng);
        check_product::<f64>("host f64", [1, 9, 2, 6], kinds, false, (archc_matmul_f64, None), &mut rng);
    }
    let mixed = managed();
    for case in copy_cases() {
        check_copy(&case, [false, false], &mut rng);
        // Between host memory and managed memory (a device only): the driver copies.
        check_copy(&case, [mixed, false], &mut rng);
        check_copy(&case, [false, mixed], &mut rng);
    }
}

#[test]
fn mismatched_shapes_are_reported_and_nothing_is_written() {
    let _guard = serial();
    let managed = managed();
    let mut rng = Rng(7);
    let a = Matrix::<f32>::new([1, 3, 4], "rows", managed, &mut rng);
    let b = Matrix::<f32>::new([1, 5, 2], "rows", managed, &mut rng);
    let mut c = Matrix::<f32>::new([1, 3, 2], "rows", managed, &mut rng);
    c.buffer.data_mut().fill(f32::SENTINEL);
    // SAFETY: live descriptors; the shapes are rejected before anything is read.
    unsafe { archc_matmul_f32(&a.desc2(), &b.desc2(), &c.desc2()) };
    let error = take_error().expect("the mismatch is recorded");
    assert!(error.to_string().starts_with("archc_matmul_f32: shapes [3, 4] @ [5, 2] -> [3, 2]"), "{error}");
    assert!(matches!(error.root(), archc_cuda::CudaError::Internal(_)), "{error:?}");
    assert!(c.buffer.data().iter().all(|&x| x == f32::SENTINEL));
    let a = Matrix::<f64>::new([2, 3, 4], "rows", managed, &mut rng);
    let b = Matrix::<f64>::new([3, 4, 2], "rows", managed, &mut rng);
    let c = Matrix::<f64>::new([2, 3, 2], "rows", managed, &mut rng);
    // SAFETY: as above.
    unsafe { archc_bmm_f64(&a.desc3(), &b.desc3(), &c.desc3()) };
    let error = take_error().expect("the mismatch is recorded");
    assert!(error.to_string().starts_with("archc_bmm_f64: shapes [2, 3, 4] @ [3, 4, 2]"), "{error}");
}

#[test]
fn the_gemm_backend_is_cublas_on_a_device() {
    let _guard = serial();
    let backend = gemm_backend();
    eprintln!("gemm backend: {backend:?}");
    match cuda() {
        Err(reason) => assert_eq!(backend, Err(reason)),
        Ok(_) if archc_cuda::options().host_gemm => assert!(backend.is_err()),
        Ok(_) => {
            let backend = backend.expect("cuBLAS loads on a device (set ARCHC_CUBLAS_DIR if it is elsewhere)");
            assert!(backend.starts_with("cuBLAS "), "{backend}");
        }
    }
}

#[test]
fn symbols_include_the_products_and_the_copy() {
    let symbols = archc_cuda::symbols();
    let mut names: Vec<&str> = symbols.iter().map(|(name, _)| *name).collect();
    for name in [
        "_mlir_ciface_archc_matmul_f32",
        "_mlir_ciface_archc_matmul_f64",
        "_mlir_ciface_archc_bmm_f32",
        "_mlir_ciface_archc_bmm_f64",
        "memrefCopy",
        "mgpuLaunchKernel",
    ] {
        assert!(names.contains(&name), "{name}");
    }
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), symbols.len(), "each name once");
}

/// One copy: element size, sizes, and for each side the order of its dimensions from the
/// innermost, the padding of each dimension and the offset.
#[derive(Debug, Clone)]
struct CopyCase {
    elem_size: usize,
    sizes: Vec<i64>,
    src: Layout,
    dst: Layout,
}

#[derive(Debug, Clone)]
struct Layout {
    /// Dimensions from the innermost (fastest) outwards.
    order: Vec<usize>,
    padding: Vec<i64>,
    offset: i64,
    /// A broadcast source: this dimension's stride is 0.
    broadcast: Option<usize>,
}

impl Layout {
    fn dense(rank: usize) -> Layout {
        Layout { order: (0..rank).rev().collect(), padding: vec![0; rank], offset: 0, broadcast: None }
    }

    fn strides(&self, sizes: &[i64]) -> Vec<i64> {
        let mut strides = vec![0; sizes.len()];
        let mut next = 1;
        for &d in &self.order {
            strides[d] = next;
            next *= sizes[d] + self.padding[d];
        }
        if let Some(d) = self.broadcast {
            strides[d] = 0;
        }
        strides
    }

    /// Buffer length in elements.
    fn span(&self, sizes: &[i64]) -> i64 {
        let strides = self.strides(sizes);
        self.offset + sizes.iter().zip(&strides).map(|(n, s)| (n - 1).max(0) * s).sum::<i64>() + 1
    }
}

fn copy_cases() -> Vec<CopyCase> {
    let case =
        |elem_size, sizes: &[i64], src: Layout, dst: Layout| CopyCase { elem_size, sizes: sizes.to_vec(), src, dst };
    let layout = |order: &[usize], padding: &[i64], offset| Layout {
        order: order.to_vec(),
        padding: padding.to_vec(),
        offset,
        broadcast: None,
    };
    let mut cases = vec![
        // Contiguous: one cuMemcpyAsync.
        case(4, &[3, 5], Layout::dense(2), Layout::dense(2)),
        case(8, &[2, 3, 4], layout(&[2, 1, 0], &[0, 0, 0], 5), layout(&[2, 1, 0], &[0, 0, 0], 3)),
        // Rank 0, and zero sizes.
        case(8, &[], Layout::dense(0), layout(&[], &[], 4)),
        case(4, &[3, 0, 2], Layout::dense(3), Layout::dense(3)),
        case(4, &[0], Layout::dense(1), Layout::dense(1)),
        // Padded rows: 2-D copies.
        case(4, &[6, 5], layout(&[1, 0], &[0, 3], 2), Layout::dense(2)),
        case(2, &[3, 4, 5], layout(&[2, 1, 0], &[1, 2, 0], 1), layout(&[2, 1, 0], &[0, 1, 0], 0)),
        // A transposed source, a strided vector, a size-1 dimension.
        case(4, &[4, 6], layout(&[0, 1], &[0, 0], 0), Layout::dense(2)),
        case(8, &[9], layout(&[0], &[0], 0), Layout::dense(1)),
        case(1, &[5, 1, 7], layout(&[2, 1, 0], &[0, 4, 2], 3), layout(&[1, 2, 0], &[0, 0, 0], 0)),
        // Rank 4, permuted: host or 2-D copies.
        case(4, &[2, 3, 4, 5], layout(&[1, 3, 0, 2], &[1, 0, 2, 0], 6), layout(&[3, 2, 1, 0], &[0, 1, 0, 1], 2)),
        // Many outer indices with padded rows: beyond the 2-D copy limit, so the host.
        case(4, &[300, 2, 3], layout(&[2, 1, 0], &[0, 0, 1], 0), Layout::dense(3)),
    ];
    let mut broadcast = layout(&[1, 0], &[0, 0], 1);
    broadcast.broadcast = Some(0);
    cases.push(case(4, &[4, 3], broadcast, Layout::dense(2)));
    let mut random = Rng(99);
    for _ in 0..20 {
        let rank = 1 + random.below(4);
        let sizes: Vec<i64> = (0..rank).map(|_| 1 + random.below(5) as i64).collect();
        let side = |random: &mut Rng| {
            let mut order: Vec<usize> = (0..rank).collect();
            for i in (1..rank).rev() {
                order.swap(i, random.below(i + 1));
            }
            let padding: Vec<i64> = (0..rank).map(|_| random.below(3) as i64 / 2).collect();
            layout(&order, &padding, random.below(4) as i64)
        };
        let (src, dst) = (side(&mut random), side(&mut random));
        cases.push(case([1, 2, 4, 8][random.below(4)], &sizes, src, dst));
    }
    cases
}

/// Runs one `memrefCopy` between byte buffers and checks every element.
fn check_copy(case: &CopyCase, [src_managed, dst_managed]: [bool; 2], rng: &mut Rng) {
    let es = case.elem_size;
    let (src_strides, dst_strides) = (case.src.strides(&case.sizes), case.dst.strides(&case.sizes));
    let (src_len, dst_len) = (case.src.span(&case.sizes) as usize, case.dst.span(&case.sizes) as usize);
    let mut src = Buffer::<u8>::new(src_len * es, src_managed);
    let mut dst = Buffer::<u8>::new(dst_len * es, dst_managed);
    src.data_mut().iter_mut().for_each(|x| *x = rng.next() as u8);
    dst.data_mut().fill(0xA5);
    let words = |buffer: &Buffer<u8>, layout: &Layout, strides: &[i64]| {
        let mut words = vec![buffer.ptr as i64, buffer.ptr as i64, layout.offset];
        words.extend(&case.sizes);
        words.extend(strides);
        words
    };
    let (src_words, dst_words) = (words(&src, &case.src, &src_strides), words(&dst, &case.dst, &dst_strides));
    let rank = case.sizes.len() as i64;
    let (s, d) = (UnrankedMemRef { rank, desc: src_words.as_ptr() }, UnrankedMemRef { rank, desc: dst_words.as_ptr() });
    // SAFETY: the descriptors describe views within their buffers, which do not overlap.
    unsafe { memrefCopy(es as i64, &s, &d) };
    assert_no_error(&format!("{case:?}"));
    let mut written = vec![false; dst_len];
    let count: i64 = case.sizes.iter().product();
    for flat in 0..count {
        let (mut rest, mut so, mut dof) = (flat, case.src.offset, case.dst.offset);
        for axis in (0..case.sizes.len()).rev() {
            let i = rest % case.sizes[axis];
            rest /= case.sizes[axis];
            so += i * src_strides[axis];
            dof += i * dst_strides[axis];
        }
        let (so, dof) = (so as usize * es, dof as usize * es);
        assert_eq!(dst.data()[dof..dof + es], src.data()[so..so + es], "{case:?}: element {flat}");
        written[dof / es] = true;
    }
    for (i, chunk) in dst.data().chunks(es).enumerate() {
        assert!(written[i] || chunk.iter().all(|&x| x == 0xA5), "{case:?}: element {i} outside the view was written");
    }
}

#[test]
fn memref_copy_in_every_layout() {
    let _guard = serial();
    let managed = managed();
    let mut rng = Rng(8);
    for case in copy_cases() {
        check_copy(&case, [managed, managed], &mut rng);
    }
}

#[test]
fn memref_copy_rejects_mismatched_memrefs() {
    let _guard = serial();
    let mut a = [1.0f32; 6];
    let mut b = [0.0f32; 6];
    let src = [a.as_mut_ptr() as i64, a.as_mut_ptr() as i64, 0, 2, 3, 3, 1];
    let dst = [b.as_mut_ptr() as i64, b.as_mut_ptr() as i64, 0, 3, 2, 2, 1];
    let (s, d) = (UnrankedMemRef { rank: 2, desc: src.as_ptr() }, UnrankedMemRef { rank: 2, desc: dst.as_ptr() });
    // SAFETY: valid descriptors; the shapes are rejected before anything is copied.
    unsafe { memrefCopy(4, &s, &d) };
    let error = take_error().expect("the mismatch is recorded");
    assert!(error.to_string().starts_with("memrefCopy: shapes [2, 3] and [3, 2] differ"), "{error}");
    assert_eq!(b, [0.0; 6]);
    let d = UnrankedMemRef { rank: 1, desc: dst.as_ptr() };
    // SAFETY: as above.
    unsafe { memrefCopy(4, &s, &d) };
    assert!(take_error().expect("the rank mismatch is recorded").to_string().contains("ranks 2 and 1"));
    // SAFETY: as above.
    unsafe { memrefCopy(0, &s, &s) };
    assert!(take_error().expect("a zero element size is recorded").to_string().contains("bad element size 0"));
}
