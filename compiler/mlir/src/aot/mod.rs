//! Ahead-of-time artifacts (`.archx`): compiled functions that an archc without LLVM runs.
//!
//! An artifact is a zip archive holding
//! - `manifest.txt`: the format version, the target, the CPU its host code is compiled
//!   for ([`HostCpu`]: an x86-64 level, or `native` with the build machine's features),
//!   the hash of the program's TIR, and per compiled function its shared object, its entry's input and output types (sizes
//!   left dynamic are symbols, read from input axes at run time), and the parameters its
//!   setter takes, in order;
//! - `src/*.arch`: the sources it was built from, so that the runner rebuilds the same
//!   program (and train configuration) with the front end alone and checks its hash;
//! - one shared object per function (`<func>.so`): the module's host code compiled for
//!   that CPU, with a packed entry point per exported function
//!   (`archc_packed_<name>(void **args)`, the convention of [`crate::abi`]) and every
//!   runtime function it calls reached through a slot (`archc_slot.<symbol>`, a function
//!   pointer the loader fills from archc's own runtime), so that it has no undefined
//!   symbols beyond libc and libm; its constructors and destructors (a CUDA module's
//!   kernel loading) are the functions `archc_init` and `archc_fini`, which the loader
//!   calls once the slots are filled and before the object is closed.
//!
//! [`build`] (feature `llvm`) writes artifacts; [`Artifact::read`] and [`Loaded`] run them.
//! [`Loaded::load`] checks that the running CPU has the features the artifact's CPU
//! implies before it loads any code (an error naming the missing features, never an
//! illegal instruction). Format `archx 1` (before the CPU was recorded) is refused.

#[cfg(feature = "llvm")]
pub mod build;
pub mod cpu;

pub use cpu::HostCpu;

use crate::abi::{output_tensors, param_descriptors, Descriptors};
use crate::emit::{Module, Shape, Ty};
use archc_compiler::tir::{parse_type, TensorType};
use archc_runtime::{Executor, RunError, Tensor};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The manifest's first line.
const FORMAT: &str = "archx 2";

/// What an artifact's code runs on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AotTarget {
    /// The CPU ([`Artifact::cpu`] says which).
    Cpu,
    /// NVIDIA GPUs of this architecture (`sm_80`) or newer: host code for the
    /// artifact's CPU with the kernels' PTX inside, JIT-compiled by the driver at load.
    Cuda(String),
}

/// One compiled function of an artifact.
#[derive(Clone, PartialEq)]
pub struct FuncEntry {
    pub name: String,
    /// The entry's signature: types, dynamic symbols, parameters (no module text).
    pub sig: Module,
    /// The shared object.
    pub object: Vec<u8>,
    /// CUDA: whether every kernel launch must synchronise.
    pub sync: bool,
}

impl std::fmt::Debug for FuncEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.debug_struct("FuncEntry").field("name", &self.name).field("object bytes", &self.object.len()).finish()
    }
}

/// An artifact in memory.
#[derive(Clone, Debug, PartialEq)]
pub struct Artifact {
    pub target: AotTarget,
    /// The CPU the host code is compiled for, checked before loading.
    pub cpu: HostCpu,
    /// FNV-1a hash of the program's printed TIR.
    pub program_hash: u64,
    /// The name of the source file the program is built from (the entry file).
    pub main_source: String,
    /// Build options the runner must repeat (`--args`, `--choices`, `--sample`, ...) as
    /// `key=value` lines.
    pub options: Vec<(String, String)>,
    /// Source files by name.
    pub sources: Vec<(String, String)>,
    pub funcs: Vec<FuncEntry>,
}

/// FNV-1a over the printed TIR of a program: the runner's check that it rebuilt the
/// program the artifact was compiled from.
pub fn program_hash(program: &archc_compiler::tir::Program) -> u64 {
    let text = program.to_string();
    text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

fn ty_text((dt, dims): &Ty) -> String {
    TensorType { dtype: *dt, shape: dims.clone() }.to_string()
}

fn parse_ty(text: &str) -> Result<Ty, String> {
    let t = parse_type(text).map_err(|e| format!("bad type `{text}`: {e:?}"))?;
    Ok((t.dtype, t.shape))
}

fn parse_shape(text: &str) -> Result<Shape, String> {
    let (dt, dims) = parse_ty(text)?;
    let sizes = dims.iter().map(crate::emit::fixed_size).collect::<Result<_, _>>()?;
    Ok((dt, sizes))
}

impl Artifact {
    fn manifest(&self) -> String {
        let target = match &self.target {
            AotTarget::Cpu => "cpu".to_string(),
            AotTarget::Cuda(arch) => format!("cuda {arch}"),
        };
        let mut m = format!(
            "{FORMAT}\ntarget {target}\ncpu {}\nprogram {:016x}\nmain {}\n",
            self.cpu.manifest_text(),
            self.program_hash,
            self.main_source
        );
        for (k, v) in &self.options {
            m.push_str(&format!("option {k}={v}\n"));
        }
        for f in &self.funcs {
            m.push_str(&format!("func {}\n", f.name));
            if f.sync {
                m.push_str("  sync\n");
            }
            for (sym, input, axis) in &f.sig.dynamic {
                m.push_str(&format!("  dynamic {sym} {input} {axis}\n"));
            }
            for t in &f.sig.inputs {
                m.push_str(&format!("  input {}\n", ty_text(t)));
            }
            for t in &f.sig.outputs {
                m.push_str(&format!("  output {}\n", ty_text(t)));
            }
            for (i, (name, (dt, shape))) in f.sig.params.iter().enumerate() {
                let dims = shape.iter().map(|&n| archc_compiler::tir::Dim::constant(n as i64)).collect();
                let global = f.sig.param_globals.get(i).map(String::as_str).unwrap_or("-");
                m.push_str(&format!("  param {name} {global} {}\n", ty_text(&(*dt, dims))));
            }
        }
        m
    }

    /// Writes the artifact as a zip archive.
    pub fn write(&self, path: &Path) -> Result<(), String> {
        let file = std::fs::File::create(path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        let mut zip = zip::ZipWriter::new(file);
        let deflate = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        let mut put = |name: &str, bytes: &[u8]| -> Result<(), String> {
            zip.start_file(name, deflate).map_err(|e| e.to_string())?;
            zip.write_all(bytes).map_err(|e| e.to_string())
        };
        put("manifest.txt", self.manifest().as_bytes())?;
        for (name, text) in &self.sources {
            put(&format!("src/{name}"), text.as_bytes())?;
        }
        for f in &self.funcs {
            put(&format!("{}.so", f.name), &f.object)?;
        }
        zip.finish().map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(())
    }

    /// Reads an artifact written by [`Artifact::write`].
    pub fn read(path: &Path) -> Result<Artifact, String> {
        let bad = |m: String| format!("{}: not a valid archc artifact: {m}", path.display());
        let file = std::fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut zip = zip::ZipArchive::new(file).map_err(|e| bad(e.to_string()))?;
        let mut entries: HashMap<String, Vec<u8>> = HashMap::new();
        for i in 0..zip.len() {
            let mut f = zip.by_index(i).map_err(|e| bad(e.to_string()))?;
            let mut bytes = Vec::new();
            f.read_to_end(&mut bytes).map_err(|e| bad(e.to_string()))?;
            entries.insert(f.name().to_string(), bytes);
        }
        let manifest = entries.remove("manifest.txt").ok_or_else(|| bad("no manifest.txt".into()))?;
        let manifest = String::from_utf8(manifest).map_err(|e| bad(e.to_string()))?;
        let mut art = parse_manifest(&manifest).map_err(bad)?;
        for f in &mut art.funcs {
            f.object = entries.remove(&format!("{}.so", f.name)).ok_or_else(|| bad(format!("no {}.so", f.name)))?;
        }
        for (name, bytes) in entries {
            if let Some(src) = name.strip_prefix("src/") {
                art.sources.push((src.to_string(), String::from_utf8(bytes).map_err(|e| bad(e.to_string()))?));
            }
        }
        art.sources.sort();
        Ok(art)
    }

    /// Writes the sources into `dir`; returns the main file's path there.
    pub fn extract_sources(&self, dir: &Path) -> Result<PathBuf, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        for (name, text) in &self.sources {
            let path = dir.join(name);
            std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        Ok(dir.join(&self.main_source))
    }
}

fn parse_manifest(text: &str) -> Result<Artifact, String> {
    let mut lines = text.lines();
    check_format(lines.next())?;
    let mut cpu = None;
    let mut art = Artifact {
        target: AotTarget::Cpu,
        cpu: HostCpu::Generic,
        program_hash: 0,
        main_source: String::new(),
        options: Vec::new(),
        sources: Vec::new(),
        funcs: Vec::new(),
    };
    for line in lines {
        let (key, rest) = line.trim().split_once(' ').unwrap_or((line.trim(), ""));
        let func = || -> Result<&mut FuncEntry, String> { Err(format!("`{key}` before any `func`")) };
        match key {
            "target" if rest == "cpu" => art.target = AotTarget::Cpu,
            "target" if rest.starts_with("cuda ") => art.target = AotTarget::Cuda(rest[5..].to_string()),
            "target" => return Err(format!("unknown target `{rest}`")),
            "cpu" => cpu = Some(HostCpu::from_manifest(rest)?),
            "program" => art.program_hash = u64::from_str_radix(rest, 16).map_err(|e| e.to_string())?,
            "main" => art.main_source = rest.to_string(),
            "option" => {
                let (k, v) = rest.split_once('=').ok_or("bad option line")?;
                art.options.push((k.to_string(), v.to_string()));
            }
            "func" => {
                art.funcs.push(FuncEntry { name: rest.to_string(), sig: empty_sig(), object: Vec::new(), sync: false })
            }
            _ => {
                let Some(f) = art.funcs.last_mut() else {
                    func()?;
                    unreachable!()
                };
                match key {
                    "dynamic" => {
                        let p: Vec<&str> = rest.split(' ').collect();
                        let [sym, i, a] = p.as_slice() else { return Err(format!("bad line `{line}`")) };
                        let n = |s: &str| s.parse::<usize>().map_err(|e| e.to_string());
                        f.sig.dynamic.push((sym.to_string(), n(i)?, n(a)?));
                    }
                    "input" => f.sig.inputs.push(parse_ty(rest)?),
                    "output" => f.sig.outputs.push(parse_ty(rest)?),
                    "sync" => f.sync = true,
                    "param" => {
                        let (name, rest) = rest.split_once(' ').ok_or("bad param line")?;
                        let (global, ty) = rest.split_once(' ').ok_or("bad param line")?;
                        f.sig.params.push((name.to_string(), parse_shape(ty)?));
                        f.sig.param_globals.push(global.to_string());
                    }
                    _ => return Err(format!("unknown line `{line}`")),
                }
            }
        }
    }
    art.cpu = cpu.ok_or("no `cpu` line")?;
    Ok(art)
}

/// The manifest's first line must be [`FORMAT`].
fn check_format(first: Option<&str>) -> Result<(), String> {
    match first {
        Some(FORMAT) => Ok(()),
        Some("archx 1") => Err("format `archx 1` records no CPU (it was built for its build machine's); rebuild it \
             with this archc"
            .into()),
        _ => Err(format!("expected `{FORMAT}` (built by another archc version?)")),
    }
}

fn empty_sig() -> Module {
    Module {
        text: String::new(),
        inputs: Vec::new(),
        outputs: Vec::new(),
        dynamic: Vec::new(),
        params: Vec::new(),
        param_globals: Vec::new(),
    }
}

/// Every runtime function compiled code for `target` may call, by symbol.
pub fn runtime_symbols(target: &AotTarget) -> HashMap<&'static str, *mut ()> {
    match target {
        AotTarget::Cpu => {
            crate::rt::symbols().into_iter().chain(crate::alloc::symbols()).chain(crate::omp::symbols()).collect()
        }
        AotTarget::Cuda(_) => crate::gpu::run::gpu_symbols().into_iter().collect(),
    }
}

/// A loaded function of an artifact.
pub struct Loaded {
    pub sig: Module,
    /// CUDA: the buffers, parameters and errors of the GPU path (dropped before the code).
    gpu: Option<crate::gpu::run::GpuRunner>,
    code: Code,
}

/// A loaded shared object and its packed entry points.
struct Code {
    entry: unsafe extern "C" fn(*mut *mut ()),
    set_params: unsafe extern "C" fn(*mut *mut ()),
    /// The object's destructors (`archc_fini`: a CUDA module's kernels unloaded), run on
    /// drop, before the library closes.
    fini: Option<unsafe extern "C" fn()>,
    lib: libloading::Library,
}

impl Drop for Code {
    fn drop(&mut self) {
        if let Some(fini) = self.fini {
            // SAFETY: generated with this signature; run once, after every use.
            unsafe { fini() };
        }
    }
}

impl crate::gpu::run::HostCode for Code {
    fn lookup(&self, symbol: &str) -> usize {
        // SAFETY: only the address is taken.
        unsafe { self.lib.get::<*mut u8>(symbol.as_bytes()).map(|s| *s as usize).unwrap_or(0) }
    }

    unsafe fn invoke(&self, func: &str, args: &mut [*mut ()]) -> Result<(), String> {
        let f = match func {
            "archc_entry" => self.entry,
            "archc_set_params" => self.set_params,
            other => return Err(format!("no packed entry point {other}")),
        };
        // SAFETY: as the caller guarantees.
        unsafe { f(args.as_mut_ptr()) };
        Ok(())
    }
}

impl Loaded {
    /// Loads `f`'s shared object (through a temporary file) and fills its runtime slots,
    /// after checking that this CPU runs code for `cpu`; for CUDA, also sets up the
    /// device (a clear error without one).
    pub fn load(f: &FuncEntry, target: &AotTarget, cpu: &HostCpu) -> Result<Loaded, String> {
        cpu.check_host()?;
        if let AotTarget::Cuda(_) = target {
            archc_cuda::cuda()?;
        }
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("archc-aot-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let path = dir.join(format!("{}.so", f.name));
        std::fs::write(&path, &f.object).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        // SAFETY: the object was built by `build` for this target: its initialisers do
        // nothing but set up its own globals (and, for CUDA, load its kernels).
        let lib = unsafe { libloading::Library::new(&path) }.map_err(|e| format!("cannot load {}: {e}", f.name));
        // The mapping outlives the file.
        let _ = std::fs::remove_dir_all(&dir);
        let lib = lib?;
        fill_slots(&lib, &f.name, target)?;
        // SAFETY: both are generated with exactly this signature (see the module docs).
        let (entry, set_params) = unsafe {
            let e = lib.get::<unsafe extern "C" fn(*mut *mut ())>(b"archc_packed_archc_entry");
            let s = lib.get::<unsafe extern "C" fn(*mut *mut ())>(b"archc_packed_archc_set_params");
            (*e.map_err(|e| e.to_string())?, *s.map_err(|e| e.to_string())?)
        };
        // The object's constructors, which would have run when it was loaded, before its
        // slots were filled (see `build::loadable`).
        // SAFETY: generated with this signature, taking no arguments.
        let (init, fini) = unsafe {
            let init = lib.get::<unsafe extern "C" fn()>(b"archc_init").map(|f| *f);
            let fini = lib.get::<unsafe extern "C" fn()>(b"archc_fini").map(|f| *f);
            (init.map_err(|e| format!("{}: no archc_init ({e})", f.name))?, fini.ok())
        };
        // SAFETY: the slots are filled, so the constructors' runtime calls are served.
        unsafe { init() };
        let code = Code { entry, set_params, fini, lib };
        let gpu = match target {
            AotTarget::Cpu => None,
            AotTarget::Cuda(_) => Some(crate::gpu::run::GpuRunner::new(f.sig.clone(), f.sync, &code)?),
        };
        Ok(Loaded { sig: f.sig.clone(), gpu, code })
    }

    /// Copies parameter values into the module's globals (in `sig.params` order).
    pub fn set_params(&self, values: &[&Tensor]) -> Result<(), String> {
        if let Some(gpu) = &self.gpu {
            return gpu.set_params(&self.code, values);
        }
        let mut descs = param_descriptors(&self.sig, values)?;
        let mut args = descs.packed();
        // SAFETY: one descriptor per memref argument of archc_set_params, each over a
        // live tensor of the declared type.
        unsafe { (self.code.set_params)(args.as_mut_ptr()) };
        Ok(())
    }

    /// Runs the entry on `inputs` with random seed `seed`.
    pub fn run(&self, inputs: &[&Tensor], seed: u64) -> Result<Vec<Tensor>, String> {
        if let Some(gpu) = &self.gpu {
            return gpu.run(&self.code, inputs, seed);
        }
        let outputs = output_tensors(&self.sig, inputs)?;
        let mut descs = Descriptors::default();
        for t in inputs.iter().copied().chain(outputs.iter()) {
            descs.push(t);
        }
        let mut seed = seed as i64;
        let mut args = vec![&mut seed as *mut i64 as *mut ()];
        args.extend(descs.packed());
        // SAFETY: the seed, then one descriptor per memref, over live buffers of the
        // entry's types (checked by `output_tensors`); outputs are fresh tensors.
        unsafe { (self.code.entry)(args.as_mut_ptr()) };
        Ok(outputs)
    }
}

/// Points every `archc_slot.<symbol>` of `lib` at archc's runtime function `<symbol>`.
fn fill_slots(lib: &libloading::Library, name: &str, target: &AotTarget) -> Result<(), String> {
    // SAFETY: `archc_slots` is generated as a null-terminated array of C strings.
    let names: Vec<String> = unsafe {
        let table = lib
            .get::<*const *const std::ffi::c_char>(b"archc_slot_names")
            .map_err(|e| format!("{name}: no slot table: {e}"))?;
        let mut v = Vec::new();
        let mut p = *table;
        while !(*p).is_null() {
            v.push(std::ffi::CStr::from_ptr(*p).to_string_lossy().into_owned());
            p = p.add(1);
        }
        v
    };
    let symbols = runtime_symbols(target);
    for sym in names {
        let f = symbols.get(sym.as_str()).ok_or_else(|| format!("{name}: unknown runtime function {sym}"))?;
        let slot = format!("archc_slot.{sym}");
        // SAFETY: each slot is a pointer-sized global the generated trampolines call.
        unsafe {
            let s = lib.get::<*mut *mut ()>(slot.as_bytes()).map_err(|e| format!("{name}: {e}"))?;
            **s = *f;
        }
    }
    Ok(())
}

/// An [`Executor`] over an artifact's functions, with parameters held by name.
pub struct AotExecutor<'p> {
    program: &'p archc_compiler::tir::Program,
    funcs: HashMap<String, (Loaded, Option<u64>)>,
    params: HashMap<String, Tensor>,
    generation: u64,
}

impl<'p> AotExecutor<'p> {
    /// Loads every function of `art`, which must have been built from `program`.
    pub fn new(program: &'p archc_compiler::tir::Program, art: &Artifact) -> Result<Self, String> {
        if program_hash(program) != art.program_hash {
            return Err("the artifact's sources build a different program with this archc (built by another version?); rebuild it".into());
        }
        let mut funcs = HashMap::new();
        for f in &art.funcs {
            funcs.insert(f.name.clone(), (Loaded::load(f, &art.target, &art.cpu)?, None));
        }
        Ok(AotExecutor { program, funcs, params: HashMap::new(), generation: 0 })
    }

    /// Every declared parameter at its initial value.
    pub fn init_params(&mut self, seed: u64) -> Result<(), RunError> {
        for decl in &self.program.params {
            let value = archc_runtime::interp::random::init_param(decl, seed)
                .map_err(|message| RunError::Param { name: decl.name.clone(), message })?;
            self.params.insert(decl.name.clone(), value);
        }
        self.generation += 1;
        Ok(())
    }
}

impl Executor for AotExecutor<'_> {
    fn run_func(&mut self, func: &str, inputs: &[Tensor], seed: u64) -> Result<Vec<Tensor>, RunError> {
        let err = |message: String| RunError::Backend { func: func.to_string(), message };
        let Some((loaded, params_at)) = self.funcs.get_mut(func) else {
            return Err(err(format!("the artifact has no compiled @{func}")));
        };
        if *params_at != Some(self.generation) && !loaded.sig.params.is_empty() {
            let values: Vec<&Tensor> = loaded
                .sig
                .params
                .iter()
                .map(|(n, _)| {
                    self.params.get(n).ok_or_else(|| RunError::Param { name: n.clone(), message: "not set".into() })
                })
                .collect::<Result<_, _>>()?;
            loaded.set_params(&values).map_err(err)?;
        }
        *params_at = Some(self.generation);
        let refs: Vec<&Tensor> = inputs.iter().collect();
        loaded.run(&refs, seed).map_err(|m| err(format!("{m} (artifact built for {})", signature(&loaded.sig))))
    }

    fn set_param_value(&mut self, name: &str, value: Tensor) -> Result<(), RunError> {
        let e = |message: String| RunError::Param { name: name.to_string(), message };
        let decl = self.program.param(name).ok_or_else(|| e("not declared by the program".into()))?;
        let shape = archc_runtime::interp::random::param_shape(decl).map_err(e)?;
        if value.dtype() != decl.ty.dtype || value.shape() != shape.as_slice() {
            return Err(e(format!("value is {}, declared {}", value.type_string(), decl.ty)));
        }
        self.params.insert(name.to_string(), value);
        self.generation += 1;
        Ok(())
    }
}

/// `(f32[B, 784], i64[B])`.
fn signature(sig: &Module) -> String {
    format!("({})", sig.inputs.iter().map(ty_text).collect::<Vec<_>>().join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn artifact(cpu: HostCpu) -> Artifact {
        Artifact {
            target: AotTarget::Cuda("sm_90".into()),
            cpu,
            program_hash: 0x1234,
            main_source: "m.arch".into(),
            options: vec![("train".into(), "true".into())],
            sources: Vec::new(),
            funcs: vec![FuncEntry { name: "main".into(), sig: empty_sig(), object: Vec::new(), sync: true }],
        }
    }

    #[test]
    fn the_manifest_round_trips_the_cpu() {
        for cpu in [HostCpu::X86Level(2), HostCpu::Native(vec!["avx2".into(), "avx512f".into()]), HostCpu::Generic] {
            let art = artifact(cpu);
            let text = art.manifest();
            assert!(text.starts_with("archx 2\ntarget cuda sm_90\ncpu "), "{text}");
            assert_eq!(parse_manifest(&text).expect("parses"), art);
        }
    }

    #[test]
    fn manifests_without_a_cpu_are_refused() {
        let text = artifact(HostCpu::X86Level(3)).manifest();
        let e = parse_manifest(&text.replace("cpu x86-64-v3\n", "")).expect_err("no cpu line");
        assert!(e.contains("no `cpu` line"), "{e}");
        let e = parse_manifest(&text.replace("archx 2", "archx 1")).expect_err("format 1");
        assert!(e.contains("rebuild it"), "{e}");
        let e = parse_manifest(&text.replace("x86-64-v3", "pentium4")).expect_err("unknown cpu");
        assert!(e.contains("unknown cpu `pentium4`"), "{e}");
    }
}
