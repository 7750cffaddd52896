//! Execution backends for the CLI: the reference interpreter, the MLIR CPU JIT and GPU
//! backend, the Cranelift tier, or an artifact's compiled code ([`executor`]), and the
//! MLIR and Cranelift text stages of `archc build --emit`.

use crate::cli::Fail;
use crate::driver::parse_pairs;
use crate::inputs::arg_shapes;
use archc_compiler::tir::Program;
use archc_grammar::span::{SourceMap, Span};
use archc_mlir::emit::Target;
use archc_runtime::{Executor, Interpreter};
use clap::ValueEnum;
use std::collections::HashMap;

/// `--dim B=32,N=64` as a map.
pub fn parse_dims(dim: Option<&str>) -> Result<HashMap<String, i64>, String> {
    let Some(d) = dim else { return Ok(HashMap::new()) };
    parse_pairs(d)?
        .into_iter()
        .map(|(k, v)| v.parse::<i64>().map(|n| (k.clone(), n)).map_err(|_| format!("--dim {k}={v}: not an int")))
        .collect()
}

/// The MLIR module of `entry`, specialised for the shapes `--dim` gives its arguments
/// except for the `dynamic` size symbols, with `loc("file":line:col)` locations from
/// `sources`. The emitter's errors say whose fault they are ([`Fail::backend`]).
pub fn emit_mlir(
    program: &Program,
    entry: &str,
    dim: Option<&str>,
    dynamic: &[String],
    sources: &SourceMap,
    gpu: bool,
) -> Result<archc_mlir::emit::Module, Fail> {
    let f = program.func(entry).ok_or_else(|| Fail::user(format!("the program has no function @{entry}")))?;
    let shapes = arg_shapes(f, &parse_dims(dim).map_err(Fail::user)?).map_err(Fail::user)?;
    let inputs: Vec<_> = f.args.iter().zip(shapes).map(|((_, t), s)| (t.dtype, s)).collect();
    let locate = |span: Span| Some(mlir_location(sources, span));
    let target = if gpu { Target::Gpu } else { Target::Cpu };
    archc_mlir::emit::emit_module_dynamic(program, entry, &inputs, dynamic, Some(&locate), target)
        .map_err(Fail::backend)
}

/// `loc("path":line:col)` of a span's start (1-based, columns in characters).
fn mlir_location(sources: &SourceMap, span: Span) -> String {
    let file = sources.get(span.file);
    let before = &file.text[..(span.start as usize).min(file.text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    let name = file.name.replace('\\', "\\\\").replace('"', "\\\"");
    format!("loc(\"{name}\":{line}:{col})")
}

/// The module after the CPU pipeline (`llvm_ir`: translated to LLVM IR).
#[cfg(feature = "mlir")]
pub fn lower_mlir(text: &str, llvm_ir: bool) -> Result<String, Fail> {
    use archc_mlir::jit::{lower_to, Stage};
    lower_to(text, if llvm_ir { Stage::LlvmIr } else { Stage::Optimized }).map_err(Fail::backend)
}

#[cfg(not(feature = "mlir"))]
pub fn lower_mlir(_: &str, _: bool) -> Result<String, Fail> {
    Err(Fail::user(NO_MLIR))
}

/// The PTX of every kernel of an emitted (GPU-target) module, each under a header line.
#[cfg(feature = "mlir")]
pub fn ptx(text: &str, arch: &str) -> Result<String, Fail> {
    let lowered = archc_mlir::gpu::compile(text, arch).map_err(Fail::backend)?;
    let mut out = format!("// {} loads/stores of buffers left in host code\n", lowered.host_ops);
    for (name, ptx) in archc_mlir::gpu::ptx(&lowered).map_err(Fail::backend)? {
        out.push_str(&format!("// ---- kernel module @{name}\n{ptx}\n"));
    }
    Ok(out)
}

#[cfg(not(feature = "mlir"))]
pub fn ptx(_: &str, _: &str) -> Result<String, Fail> {
    Err(Fail::user(NO_MLIR))
}

#[cfg(not(feature = "mlir"))]
const NO_MLIR: &str = "this archc was built without the MLIR backend (cargo feature `mlir`)";

/// Compiles `module` through the JIT and reports each phase's time.
#[cfg(feature = "mlir")]
pub fn timings(module: &archc_mlir::emit::Module, front: std::time::Duration) -> Result<String, Fail> {
    use archc_mlir::jit::{configure, cpu_options, CpuOptions};
    configure(CpuOptions { pass_timing: true, ..cpu_options() });
    let c = archc_mlir::jit::Compiled::new(module.clone()).map_err(Fail::backend)?;
    let t = &c.timings;
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    let total = front + t.parse_verify + t.passes + t.jit;
    Ok(format!(
        "timings: front end + TIR {:.1} ms, MLIR parse + verify {:.1} ms, passes {:.1} ms, LLVM JIT {:.1} ms, total {:.1} ms\n",
        ms(front),
        ms(t.parse_verify),
        ms(t.passes),
        ms(t.jit),
        ms(total)
    ))
}

#[cfg(not(feature = "mlir"))]
pub fn timings(_: &archc_mlir::emit::Module, _: std::time::Duration) -> Result<String, Fail> {
    Err(Fail::user(NO_MLIR))
}

/// Compiles `entry` with the Cranelift tier and reports the time (`build --timings`).
pub fn clif_timings(program: &Program, entry: &str, front: std::time::Duration) -> String {
    let t0 = std::time::Instant::now();
    if let Err(e) = archc_clif::compile(program, entry) {
        return format!("timings: the Cranelift tier cannot compile @{entry}: {e}\n");
    }
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    let (clif, total) = (t0.elapsed(), front + t0.elapsed());
    format!("timings: front end + TIR {:.1} ms, Cranelift {:.1} ms, total {:.1} ms\n", ms(front), ms(clif), ms(total))
}

/// The Cranelift IR of `entry` and every function it reaches (`archc build --emit clif`).
pub fn emit_clif(program: &Program, entry: &str) -> Result<String, String> {
    archc_clif::emit_clif(program, entry).map_err(|e| e.to_string())
}

/// What executes a program.
#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// The reference interpreter (every op, exact error messages; slow).
    Interp,
    /// MLIR lowered to LLVM and JIT-compiled for this CPU (compiled once per input shapes).
    MlirCpu,
    /// MLIR lowered to NVVM/PTX kernels run through the CUDA driver (`--device cuda:N`).
    MlirGpu,
    /// Cranelift IR JIT-compiled for this CPU in milliseconds (one compile per function
    /// serves every size; slower code than `mlir-cpu`).
    Cranelift,
    /// Tiered: starts on Cranelift at once; a function called again with the same input
    /// types is compiled by MLIR in the background and switches to it when ready (without
    /// MLIR in this archc: Cranelift alone).
    Auto,
}

impl Default for Backend {
    /// The MLIR CPU backend when archc is built with it (it runs every example, op and
    /// train step the interpreter does, to 1e-5), else the interpreter.
    fn default() -> Self {
        if cfg!(feature = "mlir") {
            Backend::MlirCpu
        } else {
            Backend::Interp
        }
    }
}

/// An executor of `program`: the artifact's compiled functions when one is given (a
/// `backend` contradicting it is refused by [`crate::artifact::check_backend`] first),
/// else `backend` or the default.
pub fn executor<'p>(
    program: &'p Program,
    backend: Option<Backend>,
    artifact: Option<&archc_mlir::aot::Artifact>,
) -> Result<Box<dyn Executor + 'p>, String> {
    if let Some(art) = artifact {
        if matches!(art.target, archc_mlir::aot::AotTarget::Cuda(_)) {
            crate::options::gpu_ready()?;
        }
        return Ok(Box::new(archc_mlir::exec::artifact::AotExecutor::new(program, art)?));
    }
    match backend.unwrap_or_default() {
        Backend::Interp => Ok(Box::new(Interpreter::new(program))),
        #[cfg(feature = "mlir")]
        Backend::MlirCpu => Ok(Box::new(archc_mlir::backend::MlirCpu::new(program))),
        #[cfg(feature = "mlir")]
        Backend::MlirGpu => {
            crate::options::gpu_ready()?;
            archc_cuda::cuda()?;
            Ok(Box::new(archc_mlir::backend::MlirGpu::new(program)))
        }
        #[cfg(not(feature = "mlir"))]
        Backend::MlirCpu | Backend::MlirGpu => Err(NO_MLIR.into()),
        Backend::Cranelift => Ok(Box::new(archc_clif::ClifCpu::new(program))),
        #[cfg(feature = "mlir")]
        Backend::Auto => Ok(Box::new(crate::tiered::Tiered::new(program))),
        #[cfg(not(feature = "mlir"))]
        Backend::Auto => Ok(Box::new(archc_clif::ClifCpu::new(program))),
    }
}

/// `--device` is for the GPU backend: with another backend asked for (or the default,
/// which is not the GPU) it is an error rather than ignored.
pub fn check_device(backend: Option<Backend>, device: Option<&str>) -> Result<(), String> {
    match (device, backend.unwrap_or_default()) {
        (Some(d), b) if b != Backend::MlirGpu => {
            let name = b.to_possible_value().map(|v| v.get_name().to_string()).unwrap_or_default();
            Err(format!("--device {d} selects a GPU, but the backend is {name}: add --backend mlir-gpu"))
        }
        _ => Ok(()),
    }
}

/// `--device cuda:N`: the GPU it selects (`cuda` is `cuda:0`), for the CUDA runtime's
/// options ([`crate::options::configure`]); checked against the devices when CUDA starts.
pub fn select_device(device: Option<&str>) -> Result<Option<archc_cuda::DeviceChoice>, String> {
    let Some(d) = device else { return Ok(None) };
    let n = d
        .strip_prefix("cuda:")
        .or(if d == "cuda" { Some("0") } else { None })
        .and_then(|n| n.parse::<u32>().ok())
        .ok_or_else(|| format!("--device {d}: expected cuda:N, e.g. cuda:0"))?;
    Ok(Some(archc_cuda::DeviceChoice::new(i32::try_from(n).ok(), format!("--device {d}"))))
}

/// `archc devices`: this machine's CPU (the x86-64 level artifacts need), the BLAS CPU
/// products run on, and the GPU
/// and cuBLAS the `mlir-gpu` backend would use, or why there is none.
pub fn devices_report() -> String {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let level = match archc_mlir::aot::cpu::host_level() {
        Some(level) => format!("{level}, "),
        None => String::new(),
    };
    let mut lines = vec![format!("cpu: {} {level}{cores} cores", std::env::consts::ARCH)];
    lines.push(match archc_runtime::blas::describe() {
        Some(blas) => format!("blas: {blas}"),
        None => "blas: none (no libopenblas.so.0, or ARCHC_BLAS=off); CPU products run the gemm crate".into(),
    });
    match archc_cuda::cuda() {
        Ok(cuda) => {
            let (major, minor) = cuda.compute_capability();
            let v = cuda.driver_version();
            lines.push(format!(
                "cuda: driver {}.{}, device {}: {} (sm_{major}{minor}, {:.1} GiB)",
                v / 1000,
                v % 1000 / 10,
                cuda.device_index(),
                cuda.device_name(),
                cuda.total_mem() as f64 / f64::from(1u32 << 30)
            ));
            lines.push(match archc_cuda::gemm_backend() {
                Ok(blas) => format!("cublas: {blas}"),
                Err(e) => format!("cublas: none ({e}); matrix products run on the host"),
            });
        }
        Err(e) => lines.push(format!("cuda: none ({e})")),
    }
    lines.join("\n")
}

/// The `--timings` report: one line per compilation, then the total per tier.
pub fn compile_report(times: &[archc_runtime::CompileTime]) -> String {
    if times.is_empty() {
        return "timings: nothing was compiled\n".into();
    }
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    let mut out = String::from("timings (compile, per tier):\n");
    for t in times {
        out.push_str(&format!("  {:<9} @{:<16} {:>9.1} ms  ({})\n", t.tier, t.func, ms(t.time), t.detail));
    }
    let mut tiers: Vec<&str> = times.iter().map(|t| t.tier).collect();
    tiers.sort();
    tiers.dedup();
    for tier in tiers {
        let of: Vec<_> = times.iter().filter(|t| t.tier == tier).collect();
        let total: std::time::Duration = of.iter().map(|t| t.time).sum();
        out.push_str(&format!("  {tier}: {} compile(s), {:.1} ms in all\n", of.len(), ms(total)));
    }
    out
}
