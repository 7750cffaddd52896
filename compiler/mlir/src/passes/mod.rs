//! Pass pipelines: ordered lists of named passes, upstream MLIR's and archc's own, run by
//! one pass manager.
//!
//! Contract: a [`Pipeline`] is a name and a list of [`Step`]s. [`Pipeline::run`] builds
//! one pass manager for the whole list, so the verifier after every pass, IR dumps
//! ([`RunOptions::dump`]) and failures cover archc's passes exactly as they cover
//! upstream ones. Upstream steps are written as MLIR pipeline elements (what
//! `mlir-opt --pass-pipeline='builtin.module(...)'` takes between the parentheses);
//! archc's passes ([`ArchcPass`]) are Rust passes over the IR (melior's external-pass
//! interface), each in a module of its own with filetests (`tests/filetests/<pass>/`).
//! Every pipeline of the backend is defined in [`pipelines`]. A failed pipeline is an
//! [`Error::Pipeline`] carrying the error of the archc pass that failed it, if one did.

pub mod accumulators;
pub mod device_math;
pub mod distinct;
pub mod flatten_loops;
pub mod group_loops;
pub mod innermost_first;
mod ir;
pub mod parallel_loops;
pub mod pipelines;
pub mod route_copies;
pub mod wrap_host_compute;

use crate::error::{Error, Result};
use crate::jit::{parsed, with_diagnostics};
use melior::ir::operation::OperationLike;
use melior::ir::r#type::TypeId;
use melior::ir::{Module, OperationRef};
use melior::pass::{create_external, ExternalPass, Pass, PassManager, RunExternalPass};
use melior::{Context, ContextRef, StringRef};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// How many passes [`ArchcPass::all`] lists.
const PASSES: usize = 10;

/// A pass of archc's own, with its options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArchcPass {
    /// [`parallel_loops`]: large loops parallel over their outer dimension, the rest
    /// sequential (`None`: every loop sequential).
    ParallelLoops { min_work: Option<u64> },
    /// [`flatten_loops`]: GPU loops whose first dimension would leave threads idle made
    /// one-dimensional.
    FlattenLoops,
    /// [`distinct::unmark`]: the fusion's `memref.distinct_objects` ops removed.
    UnmarkDistinct,
    /// [`accumulators`]: reductions' accumulators carried through their loop nests.
    CarryAccumulators,
    /// [`distinct::mark`]: a function's buffers declared distinct for loop fusion.
    MarkDistinct,
    /// [`group_loops`]: independent loops over equal bounds brought together.
    GroupLoops,
    /// [`wrap_host_compute`]: host compute without parallel loops into one-iteration
    /// parallel loops (one-thread kernels).
    WrapHostCompute,
    /// [`route_copies`]: `memref.copy` through the runtime's copy functions.
    RouteCopies,
    /// [`innermost_first`]: parallel loops' dimensions reversed, innermost first.
    InnermostFirst,
    /// [`device_math`]: kernels' `math` ops and `arith.remf` through `gpu::devmath`'s
    /// helpers, defined in their gpu.module.
    DeviceMath,
}

impl ArchcPass {
    /// The pass's name, as in pipeline listings and filetest headers.
    pub fn name(&self) -> &'static str {
        match self {
            ArchcPass::ParallelLoops { .. } => "archc-parallel-loops",
            ArchcPass::FlattenLoops => "archc-flatten-parallel-loops",
            ArchcPass::UnmarkDistinct => "archc-unmark-distinct",
            ArchcPass::CarryAccumulators => "archc-carry-accumulators",
            ArchcPass::MarkDistinct => "archc-mark-distinct",
            ArchcPass::GroupLoops => "archc-group-loops",
            ArchcPass::WrapHostCompute => "archc-wrap-host-compute",
            ArchcPass::RouteCopies => "archc-route-copies",
            ArchcPass::InnermostFirst => "archc-innermost-first",
            ArchcPass::DeviceMath => "archc-device-math",
        }
    }

    /// The pass named `name` with `options` (`key=value` words), as a filetest's header
    /// writes it: `archc-parallel-loops min-work=4096` (`min-work=none`: sequential).
    pub fn parse(name: &str, options: &[&str]) -> Result<ArchcPass> {
        let pass = ArchcPass::all().into_iter().find(|p| p.name() == name);
        match pass.ok_or_else(|| Error::Config(format!("no archc pass is named `{name}`")))? {
            ArchcPass::ParallelLoops { .. } => {
                let option = |key: &str| options.iter().find_map(|o| o.strip_prefix(key)?.strip_prefix('='));
                let min_work = match option("min-work") {
                    None => Some(parallel_loops::MIN_WORK),
                    Some("none") => None,
                    Some(v) => Some(v.parse().map_err(|_| Error::Config(format!("min-work={v}: not a number")))?),
                };
                Ok(ArchcPass::ParallelLoops { min_work })
            }
            other => Ok(other),
        }
    }

    /// A one-line description (the pass's MLIR description).
    pub fn description(&self) -> &'static str {
        match self {
            ArchcPass::ParallelLoops { .. } => "large parallel loops over their outer dimension, the rest sequential",
            ArchcPass::FlattenLoops => "GPU loops whose first dimension leaves threads idle made one-dimensional",
            ArchcPass::UnmarkDistinct => "memref.distinct_objects removed after loop fusion",
            ArchcPass::CarryAccumulators => "reduction accumulators carried through their scf.for nests",
            ArchcPass::MarkDistinct => "a function's buffers routed through one memref.distinct_objects",
            ArchcPass::GroupLoops => "independent parallel loops over equal bounds moved next to each other",
            ArchcPass::WrapHostCompute => "host compute without parallel loops wrapped in one-iteration scf.parallel",
            ArchcPass::RouteCopies => "memref.copy routed through the runtime's archc_copy_<elem> functions",
            ArchcPass::InnermostFirst => "scf.parallel dimensions reversed, innermost first",
            ArchcPass::DeviceMath => "gpu.module math ops and arith.remf as calls of arith-only helpers",
        }
    }

    /// Every archc pass, with default options ([`PASSES`] of them; for parsing, listings
    /// and the filetests' check that each has tests).
    pub fn all() -> Vec<ArchcPass> {
        vec![
            ArchcPass::ParallelLoops { min_work: Some(parallel_loops::MIN_WORK) },
            ArchcPass::FlattenLoops,
            ArchcPass::UnmarkDistinct,
            ArchcPass::CarryAccumulators,
            ArchcPass::MarkDistinct,
            ArchcPass::GroupLoops,
            ArchcPass::WrapHostCompute,
            ArchcPass::RouteCopies,
            ArchcPass::InnermostFirst,
            ArchcPass::DeviceMath,
        ]
    }

    /// Runs the pass on `root` (a module); `Err` fails the pass with that message.
    fn apply(&self, context: &Context, root: OperationRef) -> Result<()> {
        match self {
            ArchcPass::ParallelLoops { min_work } => parallel_loops::run(context, root, *min_work),
            ArchcPass::FlattenLoops => flatten_loops::run(context, root),
            ArchcPass::UnmarkDistinct => distinct::unmark(root),
            ArchcPass::CarryAccumulators => accumulators::run(context, root),
            ArchcPass::MarkDistinct => distinct::mark(root),
            ArchcPass::GroupLoops => group_loops::run(root),
            ArchcPass::WrapHostCompute => wrap_host_compute::run(context, root),
            ArchcPass::RouteCopies => route_copies::run(context, root),
            ArchcPass::InnermostFirst => innermost_first::run(root),
            ArchcPass::DeviceMath => return device_math::run(context, root),
        }
        Ok(())
    }

    /// The pass as an MLIR pass on `builtin.module`; its error, if it fails, goes to
    /// `failed`.
    fn create(&self, failed: &Failed) -> Pass {
        // One type id per pass: the address of its own word (words, not zero-sized
        // values, so that no two share an address), by the pass's place in `all()`.
        static IDS: [u64; PASSES] = [0; PASSES];
        let same = |p: &ArchcPass| std::mem::discriminant(p) == std::mem::discriminant(self);
        let index = ArchcPass::all().iter().position(same).expect("every pass is in ArchcPass::all()");
        create_external(
            External { pass: self.clone(), failed: failed.clone() },
            TypeId::create(&IDS[index]),
            self.name(),
            self.name(),
            self.description(),
            "builtin.module",
            &[],
        )
    }
}

/// Where an archc pass of a pipeline run leaves its error (the first one).
type Failed = Arc<Mutex<Option<Error>>>;

/// An archc pass behind melior's external-pass interface.
#[derive(Clone)]
struct External {
    pass: ArchcPass,
    failed: Failed,
}

impl<'c> RunExternalPass<'c> for External {
    fn initialize(&mut self, _context: ContextRef<'c>) {}

    fn run(&mut self, operation: OperationRef<'c, '_>, pass: ExternalPass<'_>) {
        // `to_ref` borrows the `ContextRef` itself (it is the `Context`'s one field), so
        // the `ContextRef` must outlive the borrow.
        let context_ref = operation.context();
        // SAFETY: the pass runs inside the pass manager of a live context.
        let context = unsafe { context_ref.to_ref() };
        if let Err(error) = self.pass.apply(context, operation) {
            // An MLIR error (which the pipeline's diagnostics collect), then the failure.
            let message = std::ffi::CString::new(error.to_string().replace('\0', " ")).unwrap_or_default();
            self.failed.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(error);
            // SAFETY: the location is live; MLIR copies the message.
            unsafe { mlir_sys::mlirEmitError(operation.location().to_raw(), message.as_ptr()) };
            pass.signal_failure();
        }
    }
}

/// One step of a pipeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Upstream MLIR passes, as a pipeline element (`canonicalize`,
    /// `func.func(convert-linalg-to-parallel-loops)`, `one-shot-bufferize{...}`).
    Upstream(String),
    /// A pass of archc's own.
    Archc(ArchcPass),
}

impl Step {
    /// The step's name in listings: the upstream element or the archc pass's name.
    pub fn name(&self) -> &str {
        match self {
            Step::Upstream(text) => text,
            Step::Archc(pass) => pass.name(),
        }
    }
}

/// How a pipeline runs.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Writes the module before and after every pass into this folder (MLIR's IR printing).
    pub dump: Option<PathBuf>,
    /// Prints MLIR's time report of every pass (archc's included) to stderr when the
    /// pipeline ends.
    pub pass_timing: bool,
}

/// A named, ordered list of passes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pipeline {
    pub name: &'static str,
    pub steps: Vec<Step>,
}

impl Pipeline {
    /// A pipeline of `steps`, upstream elements given as text.
    pub fn new(name: &'static str, steps: impl IntoIterator<Item = Step>) -> Pipeline {
        Pipeline { name, steps: steps.into_iter().collect() }
    }

    /// Runs every step on `module` with one pass manager, verifying after each pass.
    pub fn run(&self, context: &Context, module: &mut Module, options: &RunOptions) -> Result<()> {
        let pm = PassManager::new(context);
        pm.enable_verifier(true);
        if let Some(dir) = &options.dump {
            // MLIR refuses IR printing on a multi-threaded context.
            context.enable_multi_threading(false);
            dump_each_pass(&pm, dir);
        }
        if options.pass_timing {
            // SAFETY: the pass manager is live; MLIR prints the report when it is dropped.
            unsafe { mlir_sys::mlirPassManagerEnableTiming(pm.to_raw()) };
        }
        let failed = Failed::default();
        for step in &self.steps {
            match step {
                Step::Upstream(text) => add_upstream(&pm, self.name, text)?,
                Step::Archc(pass) => pm.add_pass(pass.create(&failed)),
            }
        }
        let (res, diagnostics) = with_diagnostics(context, || pm.run(module));
        res.map_err(|e| Error::Pipeline {
            pipeline: self.name.to_string(),
            error: e.to_string(),
            diagnostics,
            pass: failed.lock().unwrap_or_else(|e| e.into_inner()).take().map(Box::new),
        })
    }

    /// The upstream steps as one textual pipeline (`builtin.module(...)`), archc's passes
    /// left out: what `mlir-opt` can run.
    pub fn upstream_text(&self) -> String {
        let steps: Vec<&str> = self
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::Upstream(text) => Some(text.as_str()),
                Step::Archc(_) => None,
            })
            .collect();
        format!("builtin.module({})", steps.join(","))
    }

    /// One line per step: the pipeline as a reader (or `--help`) would list it.
    pub fn listing(&self) -> String {
        let mut out = format!("{}:\n", self.name);
        for (i, step) in self.steps.iter().enumerate() {
            let _ = writeln!(out, "  {:>2}. {}", i + 1, step.name());
        }
        out
    }
}

/// Appends upstream pipeline elements to the pass manager (MLIR's `addPipeline`, which,
/// unlike parsing a whole pipeline, keeps the passes already added); `pipeline` names the
/// pipeline in errors.
fn add_upstream(pm: &PassManager, pipeline: &str, elements: &str) -> Result<()> {
    unsafe extern "C" fn on_error(message: mlir_sys::MlirStringRef, data: *mut std::ffi::c_void) {
        // SAFETY: `data` is the `String` below; MLIR passes a valid string reference.
        let out = unsafe { &mut *(data as *mut String) };
        let bytes = unsafe { std::slice::from_raw_parts(message.data as *const u8, message.length) };
        out.push_str(&String::from_utf8_lossy(bytes));
    }
    let mut error = String::new();
    // SAFETY: the pass manager is live; the callback only appends to `error`.
    let ok = unsafe {
        mlir_sys::mlirOpPassManagerAddPipeline(
            pm.as_operation_pass_manager().to_raw(),
            StringRef::new(elements).to_raw(),
            Some(on_error),
            &mut error as *mut String as *mut std::ffi::c_void,
        )
    };
    if ok.value == 0 {
        let (pipeline, element) = (pipeline.to_string(), elements.to_string());
        return Err(Error::PipelineElement { pipeline, element, message: error });
    }
    Ok(())
}

fn dump_each_pass(pm: &PassManager, dir: &Path) {
    use melior::ir::operation::OperationPrintingFlags;
    use melior::pass::PassIrPrintingOptions;
    let _ = std::fs::create_dir_all(dir);
    pm.enable_ir_printing(&PassIrPrintingOptions {
        before_all: true,
        after_all: true,
        module_scope: true,
        on_change: false,
        on_failure: true,
        flags: OperationPrintingFlags::new(),
        tree_printing_path: dir.to_path_buf(),
    });
}

/// Runs one archc pass on a module given as text and prints the result: how the filetests
/// exercise a pass alone. The module is verified before and after.
pub fn run_on_text(pass: &ArchcPass, text: &str) -> Result<String> {
    let context = crate::jit::context();
    let mut module = parsed(&context, text, "input")?;
    Pipeline::new("filetest", [Step::Archc(pass.clone())]).run(&context, &mut module, &RunOptions::default())?;
    Ok(format!("{}", module.as_operation()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pass_is_listed_once_and_parses_by_its_name() {
        let all = ArchcPass::all();
        assert_eq!(all.len(), PASSES, "PASSES counts ArchcPass::all()");
        for pass in &all {
            assert_eq!(&ArchcPass::parse(pass.name(), &[]).expect("parses"), pass);
            assert_eq!(all.iter().filter(|p| p.name() == pass.name()).count(), 1, "{}", pass.name());
        }
        let none = ArchcPass::parse("archc-parallel-loops", &["min-work=none"]).expect("parses");
        assert_eq!(none, ArchcPass::ParallelLoops { min_work: None });
        assert!(ArchcPass::parse("archc-bogus", &[]).is_err());
        assert!(ArchcPass::parse("archc-parallel-loops", &["min-work=many"]).is_err());
    }
}
