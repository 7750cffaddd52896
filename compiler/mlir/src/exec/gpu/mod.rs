//! Running GPU host code however it was compiled (JIT-compiled by `gpu::jit`, or a
//! shared object of an ahead-of-time artifact), the entry's buffers in one of two memories:
//! - device (the default, for host code that touches no buffer and draws no random
//!   numbers): inputs and outputs in one device buffer per input shape, uploaded and
//!   downloaded in one copy each, temporaries in device memory, no waits but the last
//!   (see [`resident`]); the entry is captured into a CUDA graph on its second run
//!   and replayed from then on (`Memory::Device { graphs: false }`: launched every time);
//! - managed ([`Memory::Managed`], and always when host code touches buffers or draws
//!   random numbers): inputs copied into managed buffers, the entry run with a wait after
//!   every launch (unless [`GpuOptions::async_launches`] and no host code touches
//!   buffers), outputs copied back. A device-memory run that meets a runtime path needing
//!   host access to device memory ([`CudaError::NeedsHostMemory`]) is rerun with managed
//!   memory, which the runner keeps from then on (said once on stderr).
//!
//! [`GpuRunner::run_bound`] runs with some arguments and results in resident state (see
//! [`state`]): in device memory they never leave the device; in managed memory
//! they are read back before the run and put again after it.
//!
//! Both report the first CUDA error the runtime recorded ([`Error::Gpu`]; a refusal of
//! compiled code is [`Error::Refused`]). Parameter globals (host memory)
//! are registered with the driver so kernels can read them. With [`ProfileMode::Runs`] a
//! runner prints, when dropped, its runs' mean time and counted work
//! (`archc_cuda::stats`); with [`ProfileMode::Kernels`] also each piece of work's GPU
//! time. No LLVM needed.
//!
//! Options ([`GpuOptions`]): this crate reads no environment variable. A runner takes its
//! options from [`GpuRunner::with_options`], or ([`GpuRunner::new`]) the process's, set
//! once with [`configure`] (the `archc` CLI maps `ARCHC_GPU_MEMORY`, `ARCHC_GPU_GRAPH`,
//! `ARCHC_GPU_ASYNC`, `ARCHC_GPU_PROFILE` and the CUDA runtime's variables to them at
//! start-up), else the defaults.

use crate::abi::{data_ptr, output_tensors, param_descriptors, Descriptors};
use crate::emit::Module as Emitted;
use crate::error::{Error, Result};
use archc_cuda::checks::Records;
use archc_cuda::copy::UnrankedMemRef;
use archc_cuda::stats::{snapshot, Stats};
use archc_cuda::{Cuda, CudaError, CudaOptions, Stream};
use archc_runtime::resident::Bindings;
use archc_runtime::tensor::Tensor;
use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::OsString;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub mod resident;
pub mod state;

use resident::{capture, invoke_on_device, Slot};
use state::DeviceState;

/// Compiled host code: its symbols' addresses and its packed entry points.
pub trait HostCode {
    /// The address of a global or function (0 when missing).
    fn lookup(&self, symbol: &str) -> usize;
    /// Calls the packed entry point of `func` (`archc_entry`, `archc_set_params`).
    ///
    /// # Safety
    /// `args` must follow `func`'s packed convention (see [`crate::abi`]).
    unsafe fn invoke(&self, func: &str, args: &mut [*mut ()]) -> Result<()>;
}

/// The GPU backend's options (see the module docs); `Default` is the CUDA runtime's
/// defaults, device memory with graphs, waits after launches in managed memory, and no
/// profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GpuOptions {
    /// The CUDA runtime's (the device, where cuBLAS is, host products and copies).
    pub cuda: CudaOptions,
    /// Where runners keep the entry's buffers; managed memory wherever host code touches
    /// buffers or draws random numbers, whatever this says.
    pub memory: Memory,
    /// With managed memory, launches do not wait where no host code touches buffers. Off
    /// by default: a GPU run found an inline host `memcpy` this missed (now routed through
    /// the runtime), and the fix has not run on a GPU yet.
    pub async_launches: bool,
    /// What runners report on stderr when dropped.
    pub profile: ProfileMode,
}

impl GpuOptions {
    /// The options the variables `var` gives (`ARCHC_GPU_MEMORY`, `ARCHC_GPU_GRAPH`,
    /// `ARCHC_GPU_ASYNC`, `ARCHC_GPU_PROFILE`; the library reads no environment itself: the
    /// CLI and tests pass their lookup), with the CUDA runtime's `cuda`. An error names a
    /// variable with a value it does not take ([`Error::Config`]).
    pub fn from_vars(var: &dyn Fn(&str) -> Option<OsString>, cuda: CudaOptions) -> Result<GpuOptions> {
        let bad = |setting: String, expected: &str| Err(Error::Config(format!("{setting}: expected {expected}")));
        let text = |name: &str| var(name).and_then(|value| value.into_string().ok());
        let graphs = match text("ARCHC_GPU_GRAPH").as_deref() {
            Some("1") | Some("") | None => true,
            Some("0") => false,
            Some(other) => return bad(format!("ARCHC_GPU_GRAPH={other}"), "`1` or `0`"),
        };
        let memory = match text("ARCHC_GPU_MEMORY").as_deref() {
            Some("device") | Some("") | None => Memory::Device { graphs },
            Some("managed") => Memory::Managed,
            Some(other) => return bad(format!("ARCHC_GPU_MEMORY={other}"), "`device` or `managed`"),
        };
        let profile = match text("ARCHC_GPU_PROFILE").as_deref() {
            Some("1") => ProfileMode::Runs,
            Some("kernels") => ProfileMode::Kernels,
            _ => ProfileMode::Off,
        };
        let async_launches = text("ARCHC_GPU_ASYNC").as_deref() == Some("1");
        Ok(GpuOptions { cuda, memory, async_launches, profile })
    }
}

impl Default for GpuOptions {
    fn default() -> GpuOptions {
        GpuOptions {
            cuda: CudaOptions::default(),
            memory: Memory::Device { graphs: true },
            async_launches: false,
            profile: ProfileMode::Off,
        }
    }
}

/// What a runner reports when dropped (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProfileMode {
    /// Nothing.
    #[default]
    Off,
    /// Its runs' mean time and counted work.
    Runs,
    /// That, and the GPU time of each launch, cuBLAS call and copy (CUDA events).
    Kernels,
}

static OPTIONS: OnceLock<GpuOptions> = OnceLock::new();

/// Sets the process's GPU options (and the CUDA runtime's, [`archc_cuda::configure`]),
/// once, before anything starts CUDA; setting the same options again is fine, others are
/// an error.
pub fn configure(options: GpuOptions) -> Result<()> {
    archc_cuda::configure(options.cuda.clone())?;
    let set = OPTIONS.get_or_init(|| options.clone());
    if *set != options {
        return Err(Error::Config(format!(
            "the GPU options are set already ({set:?}); they are set once, at start-up"
        )));
    }
    Ok(())
}

/// The process's GPU options: those [`configure`] set, else the defaults with the CUDA
/// runtime's options in force (fixed from then on).
pub fn options() -> &'static GpuOptions {
    OPTIONS.get_or_init(|| GpuOptions { cuda: archc_cuda::options().clone(), ..GpuOptions::default() })
}

/// The run-time state of one GPU module (see the module docs). Drop it before the code:
/// dropping unregisters the globals' pages, which the code's unloading frees.
pub struct GpuRunner {
    cuda: &'static Cuda,
    /// The start of the host range registered for the parameter globals.
    registered: Option<*mut u8>,
    /// Whether launches must synchronise: some compute, or a random fill, stays on the
    /// host and reads or writes buffers the GPU uses (or asynchronous launches are off).
    sync_launches: bool,
    state: RefCell<State>,
    pub sig: Emitted,
}

/// Where a runner keeps the entry's buffers (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Memory {
    Managed,
    Device { graphs: bool },
}

/// What changes between runs: the memory in use, the device slots by input shapes, and
/// the profile.
struct State {
    memory: Memory,
    slots: HashMap<SlotKey, Slot>,
    profile: Option<Profile>,
}

/// What a device slot serves: the shapes of the inputs in the slot, which arguments and
/// results are bound to resident state (none for a plain run), and the state's generation
/// (its buffers' addresses are baked into the slot's graph).
type SlotKey = (Vec<Vec<usize>>, Vec<bool>, u64);

/// At most this many device slots (input shape sets) are kept; more empty the cache.
const MAX_SLOTS: usize = 8;

/// Runs, their time and counted work, for [`ProfileMode::Runs`]; with
/// [`ProfileMode::Kernels`] also the GPU time of each kernel, product and copy
/// (`archc_cuda::timing`), summed by label over the later runs.
#[derive(Default)]
struct Profile {
    runs: u64,
    time: Duration,
    work: Stats,
    first: Option<(Duration, Stats)>,
    /// (label, total ms, count), in first-seen order; `None` unless timing kernels.
    pieces: Option<Vec<(String, f64, u64)>>,
}

/// How many pieces of work a kernel profile lists.
const LONGEST: usize = 20;

/// Whether a module's launches must synchronise (see [`GpuRunner`]): host loads or
/// stores left after outlining, or random fills on the host.
pub fn needs_sync(host_ops: usize, random_fills: bool) -> bool {
    host_ops > 0 || random_fills
}

/// Bytes of a tensor's data as compiled code stores it.
pub(crate) fn tensor_bytes(t: &Tensor) -> usize {
    t.numel() * elem_bytes(t.dtype())
}

/// Bytes per element of a dtype as compiled code stores it.
fn elem_bytes(dtype: archc_compiler::tir::DType) -> usize {
    use archc_compiler::tir::DType;
    match dtype {
        DType::F32 => 4,
        DType::F64 | DType::I64 | DType::C64 => 8,
        DType::Bool => 1,
    }
}

impl GpuRunner {
    /// Registers `code`'s parameter globals; `needs_sync` as [`needs_sync`] gave it. The
    /// options are the process's ([`options`]).
    pub fn new(sig: Emitted, needs_sync: bool, code: &dyn HostCode) -> Result<GpuRunner> {
        GpuRunner::with_options(sig, needs_sync, code, options())
    }

    /// [`GpuRunner::new`] with these options. Their CUDA part must be the process's (CUDA
    /// starts once, on one device): [`archc_cuda::configure`] refuses others.
    pub fn with_options(
        sig: Emitted,
        needs_sync: bool,
        code: &dyn HostCode,
        options: &GpuOptions,
    ) -> Result<GpuRunner> {
        archc_cuda::configure(options.cuda.clone())?;
        let cuda = archc_cuda::cuda()?;
        take_error()?;
        let sync_launches = needs_sync || !options.async_launches;
        let memory = memory_for(options.memory, needs_sync);
        let profile = match options.profile {
            ProfileMode::Runs => Some(Profile::default()),
            ProfileMode::Kernels => {
                archc_cuda::timing::set_enabled(true);
                Some(Profile { pieces: Some(Vec::new()), ..Profile::default() })
            }
            ProfileMode::Off => None,
        };
        let state = RefCell::new(State { memory, slots: HashMap::new(), profile });
        let mut runner = GpuRunner { cuda, registered: None, sync_launches, state, sig };
        runner.registered = runner.register_globals(code)?;
        Ok(runner)
    }

    /// The memory the runner uses now.
    pub fn memory(&self) -> Memory {
        self.state.borrow().memory
    }

    /// Makes the parameter globals (data in host memory) readable by kernels: the pages
    /// spanning all of them are registered with the driver at once (globals share pages,
    /// and a page can be registered only once).
    fn register_globals(&self, code: &dyn HostCode) -> Result<Option<*mut u8>> {
        const PAGE: usize = 4096;
        let (mut lo, mut hi) = (usize::MAX, 0usize);
        for ((name, (dt, shape)), global) in self.sig.params.iter().zip(&self.sig.param_globals) {
            let addr = code.lookup(global);
            if addr == 0 {
                return Err(Error::Abi(format!("parameter @{name}: its global is missing from the compiled module")));
            }
            let bytes = shape.iter().product::<usize>().max(1) * elem_bytes(*dt);
            lo = lo.min(addr);
            hi = hi.max(addr + bytes);
        }
        if hi == 0 {
            return Ok(None);
        }
        let (lo, hi) = (lo / PAGE * PAGE, hi.div_ceil(PAGE) * PAGE);
        self.cuda.register_host(lo as *mut u8, hi - lo).map_err(|e| e.context("parameters"))?;
        Ok(Some(lo as *mut u8))
    }

    /// Copies parameter values into the module's globals (in `sig.params` order).
    pub fn set_params(&self, code: &dyn HostCode, values: &[&Tensor]) -> Result<()> {
        let mut descs = param_descriptors(&self.sig, values)?;
        let mut args = descs.packed();
        // SAFETY: one descriptor per memref argument of archc_set_params, each over a live
        // tensor of the declared type; the setter only runs host code.
        unsafe { code.invoke("archc_set_params", &mut args) }?;
        Ok(take_error()?)
    }

    /// Runs the entry on `inputs` with random seed `seed`.
    pub fn run(&self, code: &dyn HostCode, inputs: &[&Tensor], seed: u64) -> Result<Vec<Tensor>> {
        let (start, before) = (Instant::now(), snapshot());
        let mut state = self.state.borrow_mut();
        let mut outputs = output_tensors(&self.sig, inputs)?;
        let _ = crate::runtime::rt::take_failure();
        match state.memory {
            Memory::Managed => self.run_managed(code, inputs, &mut outputs, seed)?,
            Memory::Device { graphs } => {
                match self.run_on_device(&mut state.slots, graphs, code, inputs, &mut outputs, seed) {
                    Err(Error::Gpu(CudaError::NeedsHostMemory(why))) => {
                        to_managed(&mut state, &why);
                        self.run_managed(code, inputs, &mut outputs, seed)?;
                    }
                    other => other?,
                }
            }
        }
        self.finish(&mut state, start, before)?;
        Ok(outputs)
    }

    /// Runs the entry with the arguments and results `bindings` places in `resident`;
    /// `given` fills the other arguments in order, and the other results are returned.
    pub fn run_bound(
        &self,
        code: &dyn HostCode,
        resident: &mut DeviceState,
        bindings: &Bindings,
        given: &[&Tensor],
        seed: u64,
    ) -> Result<Vec<Tensor>> {
        let shapes = bound_shapes(resident, bindings, given)?;
        let all = crate::abi::output_shapes(&self.sig, &shapes)?;
        if all.len() != bindings.results.len() {
            return Err(Error::Input(format!("{} results, the bindings place {}", all.len(), bindings.results.len())));
        }
        let run = Bound { resident, bindings, given };
        if self.memory() == Memory::Managed {
            return self.run_bound_managed(code, run, seed);
        }
        let (start, before) = (Instant::now(), snapshot());
        let mut returned: Vec<Tensor> = all
            .iter()
            .zip(&bindings.results)
            .filter(|(_, r)| r.is_none())
            .map(|((d, s), _)| Tensor::zeros(*d, s))
            .collect();
        let _ = crate::runtime::rt::take_failure();
        let mut state = self.state.borrow_mut();
        let Memory::Device { graphs } = state.memory else { unreachable!("checked above") };
        match self.bound_on_device(&mut state.slots, graphs, code, &run, &mut returned, seed) {
            Err(Error::Gpu(CudaError::NeedsHostMemory(why))) => {
                to_managed(&mut state, &why);
                drop(state);
                return self.run_bound_managed(code, run, seed);
            }
            other => other?,
        }
        self.finish(&mut state, start, before)?;
        Ok(returned)
    }

    /// A bound run in managed memory: the bound arguments read back, the bound results put.
    fn run_bound_managed(&self, code: &dyn HostCode, run: Bound, seed: u64) -> Result<Vec<Tensor>> {
        let Bound { resident, bindings, given } = run;
        let mut given = given.iter();
        let read: Vec<Option<Tensor>> = bindings
            .args
            .iter()
            .map(|a| a.as_deref().map(|name| resident.read(name)).transpose())
            .collect::<Result<_, _>>()?;
        let args: Vec<&Tensor> =
            read.iter().map(|r| r.as_ref().unwrap_or_else(|| *given.next().expect("counted by the caller"))).collect();
        let out = self.run(code, &args, seed)?;
        let mut returned = Vec::new();
        for (r, t) in bindings.results.iter().zip(out) {
            match r {
                Some(name) => resident.put(name, &t)?,
                None => returned.push(t),
            }
        }
        Ok(returned)
    }

    /// A bound run in device memory (see [`state`]).
    fn bound_on_device(
        &self,
        slots: &mut HashMap<SlotKey, Slot>,
        graphs: bool,
        code: &dyn HostCode,
        run: &Bound,
        returned: &mut [Tensor],
        seed: u64,
    ) -> Result<()> {
        let stream = archc_cuda::runtime_stream()?;
        let (resident, bindings, given) = (&*run.resident, run.bindings, run.given);
        let pattern = bindings.args.iter().chain(&bindings.results).map(Option::is_some).collect();
        let key: SlotKey = (given.iter().map(|t| t.shape().to_vec()).collect(), pattern, resident.generation());
        let slot = slot_for(slots, key, || Slot::new(self.cuda, given, returned))?;
        slot.upload(given, stream)?;
        let state_of = |name: &String| resident.get(name).ok_or_else(|| no_such_state(name));
        let mut outside = Vec::with_capacity(bindings.args.len() + bindings.results.len());
        for a in &bindings.args {
            outside.push(a.as_ref().map(|n| state_of(n).map(|t| (t.home, t.shape.as_slice()))).transpose()?);
        }
        let mut copies = Vec::new();
        for r in &bindings.results {
            let place = r.as_ref().map(state_of).transpose()?;
            if let Some(t) = place {
                copies.push((t.home, t.staging as *const u8, t.bytes));
            }
            outside.push(place.map(|t| (t.staging, t.shape.as_slice())));
        }
        let move_home = |s: Stream| -> Result<(), CudaError> {
            for &(home, staging, bytes) in &copies {
                // SAFETY: both are device buffers of `bytes` bytes of one state tensor.
                unsafe { self.cuda.copy_on_device(home, staging, bytes, s)? };
            }
            Ok(())
        };
        let mut descs = slot.descriptors_with(&outside);
        let mut seed = seed as i64;
        let mut args = entry_args(&mut seed, &mut descs);
        // SAFETY: `args` are the seed and one descriptor per memref, over the slot's
        // device buffer or the state's, laid out for the entry's types.
        unsafe { self.launch(slot, graphs, code, &mut args, stream, &move_home)? };
        slot.download(returned, stream)?;
        slot.refusal();
        slot.runs += 1;
        Ok(take_error()?)
    }

    /// Runs the slot's graph, capturing it on the slot's second run where graphs are on,
    /// or the entry and then `after`.
    ///
    /// # Safety
    /// `args` follow the entry's packed convention over live device buffers.
    unsafe fn launch(
        &self,
        slot: &mut Slot,
        graphs: bool,
        code: &dyn HostCode,
        args: &mut [*mut ()],
        stream: Stream,
        after: &dyn Fn(Stream) -> Result<(), CudaError>,
    ) -> Result<()> {
        if graphs && slot.graph.is_none() && !slot.no_graph && slot.runs > 0 {
            // SAFETY: forwarded from this function's contract.
            match slot.checks.collect(|| unsafe { capture(self.cuda, code, args, stream, after) }) {
                Ok(captured) => slot.graph = Some(captured),
                Err(e) => {
                    eprintln!("archc: mlir-gpu: CUDA graph capture failed ({e}); launching kernel by kernel");
                    slot.no_graph = true;
                }
            }
        }
        match slot.replay(stream) {
            Some(replayed) => Ok(replayed?),
            // SAFETY: forwarded from this function's contract.
            None => slot.checks.collect(|| unsafe { invoke_on_device(code, args) }).and_then(|()| Ok(after(stream)?)),
        }
    }

    /// After a run: its profile entry, and a refusal the compiled code recorded.
    fn finish(&self, state: &mut State, start: Instant, before: Stats) -> Result<()> {
        if let Some(profile) = &mut state.profile {
            let timed = match profile.pieces {
                Some(_) => archc_cuda::timing::take(self.cuda).unwrap_or_else(|e| {
                    eprintln!("archc: gpu profile: kernel times lost ({e})");
                    Vec::new()
                }),
                None => Vec::new(),
            };
            profile.add(start.elapsed(), snapshot().since(&before), timed);
        }
        match crate::runtime::rt::take_failure() {
            Some(refused) => Err(Error::Refused(refused)),
            None => Ok(()),
        }
    }

    /// The entry in device memory, replayed as a graph where enabled (see the module docs).
    fn run_on_device(
        &self,
        slots: &mut HashMap<SlotKey, Slot>,
        graphs: bool,
        code: &dyn HostCode,
        inputs: &[&Tensor],
        outputs: &mut [Tensor],
        seed: u64,
    ) -> Result<()> {
        let stream = archc_cuda::runtime_stream()?;
        let mut seed = seed as i64;
        let key: SlotKey = (inputs.iter().map(|t| t.shape().to_vec()).collect(), Vec::new(), 0);
        let slot = slot_for(slots, key, || Slot::new(self.cuda, inputs, outputs))?;
        slot.upload(inputs, stream)?;
        // The seed, then one descriptor per memref over the slot's device buffer, laid
        // out for the entry's types (`Slot::new`).
        let mut descs = slot.descriptors();
        let mut args = entry_args(&mut seed, &mut descs);
        // SAFETY: `args` as described above.
        unsafe { self.launch(slot, graphs, code, &mut args, stream, &|_| Ok(()))? };
        slot.download(outputs, stream)?;
        slot.refusal();
        slot.runs += 1;
        Ok(take_error()?)
    }

    /// The entry over managed copies of inputs and outputs.
    fn run_managed(&self, code: &dyn HostCode, inputs: &[&Tensor], outputs: &mut [Tensor], seed: u64) -> Result<()> {
        let buffers = Buffers::new(self.cuda, inputs.iter().copied().chain(outputs.iter()))?;
        let mut descs = Descriptors::default();
        for (t, &(ptr, _)) in inputs.iter().copied().chain(outputs.iter()).zip(&buffers.0) {
            descs.push_raw(ptr, t.shape());
        }
        let mut seed = seed as i64;
        let mut args = entry_args(&mut seed, &mut descs);
        let mut records = Records::new(self.cuda)?;
        archc_cuda::set_sync_launches(self.sync_launches);
        // SAFETY: the arguments follow archc_entry's C interface: the seed, then one
        // descriptor per memref over a managed buffer of the declared shape.
        let ran = records.collect(|| unsafe { code.invoke("archc_entry", &mut args) });
        archc_cuda::set_sync_launches(true);
        ran?;
        // The runtime's first error names the launch or call that failed; a fault the
        // launches did not report shows at the final synchronisation.
        take_error()?;
        self.cuda.synchronize()?;
        resident::refuse(&records);
        let n_in = inputs.len();
        for (t, &(ptr, bytes)) in outputs.iter_mut().zip(&buffers.0[n_in..]) {
            // SAFETY: the buffer holds `bytes` bytes written by the entry; the tensor was
            // created with the same dtype and shape, so its storage has `bytes` bytes.
            unsafe { std::ptr::copy_nonoverlapping(ptr, data_ptr(t), bytes) };
        }
        Ok(())
    }
}

/// A bound run's state, bindings and given inputs.
struct Bound<'a> {
    resident: &'a mut DeviceState,
    bindings: &'a Bindings,
    given: &'a [&'a Tensor],
}

/// The slot for `key`, made by `new` if there is none (the cache is emptied when full).
fn slot_for<E>(
    slots: &mut HashMap<SlotKey, Slot>,
    key: SlotKey,
    new: impl FnOnce() -> Result<Slot, E>,
) -> Result<&mut Slot, E> {
    if !slots.contains_key(&key) {
        if slots.len() >= MAX_SLOTS {
            slots.clear();
        }
        slots.insert(key.clone(), new()?);
    }
    Ok(slots.get_mut(&key).expect("inserted above"))
}

/// Switches a runner to managed memory after `why` (said once on stderr).
fn to_managed(state: &mut State, why: &str) {
    eprintln!("archc: mlir-gpu: {why}; using managed memory for this function from now on");
    state.memory = Memory::Managed;
    state.slots.clear();
}

/// The input types of a bound run: the state's for bound arguments, the given tensors'
/// for the others.
fn bound_shapes(resident: &DeviceState, bindings: &Bindings, given: &[&Tensor]) -> Result<Vec<crate::emit::Shape>> {
    if given.len() != bindings.given() {
        return Err(Error::Input(format!("{} inputs given, the bindings take {}", given.len(), bindings.given())));
    }
    let mut given = given.iter();
    let shape = |t: &Tensor| (t.dtype(), t.shape().to_vec());
    bindings
        .args
        .iter()
        .map(|a| match a {
            Some(name) => resident.get(name).map(|t| (t.dtype, t.shape.clone())).ok_or_else(|| no_such_state(name)),
            None => Ok(shape(given.next().expect("counted above"))),
        })
        .collect()
}

/// A binding to state that `resident` does not hold.
pub(crate) fn no_such_state(name: &str) -> Error {
    Error::State(format!("resident state {name}: no such state"))
}

/// The entry's packed arguments: the seed, then the descriptors.
fn entry_args(seed: &mut i64, descs: &mut Descriptors) -> Vec<*mut ()> {
    let mut args = vec![seed as *mut i64 as *mut ()];
    args.extend(descs.packed());
    args
}

/// The memory new runners use, overriding their options (tests).
static MEMORY_OVERRIDE: std::sync::Mutex<Option<Memory>> = std::sync::Mutex::new(None);

/// Makes runners created from now on use `memory` (`None`: as their options say), still
/// managed memory wherever host code touches buffers.
pub fn override_memory(memory: Option<Memory>) {
    *MEMORY_OVERRIDE.lock().unwrap_or_else(|p| p.into_inner()) = memory;
}

/// The memory a new runner uses: the override, else `memory` (its options'); managed
/// whenever `needs_sync`.
fn memory_for(memory: Memory, needs_sync: bool) -> Memory {
    let memory = MEMORY_OVERRIDE.lock().unwrap_or_else(|p| p.into_inner()).unwrap_or(memory);
    if needs_sync {
        Memory::Managed
    } else {
        memory
    }
}

impl Profile {
    fn add(&mut self, time: Duration, work: Stats, timed: Vec<(String, f64)>) {
        if self.first.is_none() {
            self.first = Some((time, work));
            return;
        }
        self.runs += 1;
        self.time += time;
        self.work = self.work.plus(&work);
        if let Some(pieces) = &mut self.pieces {
            for (label, ms) in timed {
                match pieces.iter_mut().find(|p| p.0 == label) {
                    Some(p) => (p.1, p.2) = (p.1 + ms, p.2 + 1),
                    None => pieces.push((label, ms, 1)),
                }
            }
        }
    }

    /// Per later run: the GPU time in all, by kind, and the [`LONGEST`] pieces of work.
    fn pieces_report(&self) -> Option<String> {
        let pieces = self.pieces.as_ref().filter(|p| !p.is_empty() && self.runs > 0)?;
        let runs = self.runs as f64;
        let kind =
            |prefix: &str| pieces.iter().filter(|p| p.0.starts_with(prefix)).fold(0.0, |sum, p| sum + p.1) / runs;
        let (total, kernels, products) = (kind(""), kind("launch "), kind("cublas"));
        let (copies, graphs) = (kind("copy "), kind("graph "));
        let mut text = format!(
            "\n  GPU time per later run: {total:.3} ms in {} pieces of work (kernels {kernels:.3} ms, cuBLAS \
             {products:.3} ms, copies {copies:.3} ms, graph replays {graphs:.3} ms); the longest:",
            pieces.iter().map(|p| p.2).sum::<u64>() / self.runs,
        );
        let mut sorted: Vec<&(String, f64, u64)> = pieces.iter().collect();
        sorted.sort_by(|a, b| b.1.total_cmp(&a.1));
        for (label, ms, count) in sorted.into_iter().take(LONGEST) {
            let per_run = ms / runs;
            let share = if total > 0.0 { 100.0 * per_run / total } else { 0.0 };
            text += &format!("\n    {share:5.1}%  {per_run:8.4} ms  x{:<3} {label}", count / self.runs);
        }
        Some(text)
    }

    /// The report: the first run apart (it loads and captures), then the mean of the rest.
    fn report(&self, memory: Memory, sig: &Emitted) -> String {
        let ty = |(dt, dims): &crate::emit::Ty| {
            format!("{dt}[{}]", dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", "))
        };
        let inputs: Vec<String> = sig.inputs.iter().map(ty).collect();
        let mut text = format!("archc: gpu profile ({memory:?}) of the function of inputs {}", inputs.join(", "));
        if let Some((time, work)) = &self.first {
            text += &format!("\n  first run: {:.3} ms; {work}", time.as_secs_f64() * 1e3);
        }
        if self.runs > 0 {
            let mean = self.time.as_secs_f64() * 1e3 / self.runs as f64;
            text += &format!("\n  {} later runs: mean {mean:.3} ms; in all {}", self.runs, self.work);
        }
        text + &self.pieces_report().unwrap_or_default()
    }
}

impl Drop for GpuRunner {
    /// Unregisters the globals' pages before the code frees them (a stale registration
    /// would map reused addresses to the old pages).
    fn drop(&mut self) {
        let state = self.state.get_mut();
        if let Some(profile) = &state.profile {
            eprintln!("{}", profile.report(state.memory, &self.sig));
        }
        state.slots.clear();
        if let Some(p) = self.registered.take() {
            let _ = self.cuda.unregister_host(p);
        }
    }
}

macro_rules! gpu_copy {
    ($name:ident, $bytes:expr) => {
        /// A routed `memref.copy` of one element type, on the GPU runtime's stream.
        ///
        /// # Safety
        /// As `archc_cuda::copy::memrefCopy`.
        unsafe extern "C" fn $name(src: *const UnrankedMemRef, dst: *const UnrankedMemRef) {
            unsafe { archc_cuda::copy::memrefCopy($bytes, src, dst) }
        }
    };
}

gpu_copy!(gpu_copy_4, 4);
gpu_copy!(gpu_copy_8, 8);
gpu_copy!(gpu_copy_1, 1);

/// The runtime symbols of GPU modules: the GPU copies, `archc-cuda`'s, and the CPU
/// runtime's for the names they do not provide (a symbol is defined once in the JIT).
pub fn gpu_symbols() -> Vec<(&'static str, *mut ())> {
    let mut symbols: Vec<(&'static str, *mut ())> = vec![
        ("_mlir_ciface_archc_copy_f32", gpu_copy_4 as *mut ()),
        ("_mlir_ciface_archc_copy_i32", gpu_copy_4 as *mut ()),
        ("_mlir_ciface_archc_copy_f64", gpu_copy_8 as *mut ()),
        ("_mlir_ciface_archc_copy_i64", gpu_copy_8 as *mut ()),
        ("_mlir_ciface_archc_copy_c64", gpu_copy_8 as *mut ()),
        ("_mlir_ciface_archc_copy_index", gpu_copy_8 as *mut ()),
        ("_mlir_ciface_archc_copy_i1", gpu_copy_1 as *mut ()),
    ];
    symbols.extend(archc_cuda::symbols());
    let cpu: Vec<_> =
        crate::runtime::rt::symbols().into_iter().filter(|(n, _)| symbols.iter().all(|(m, _)| m != n)).collect();
    symbols.extend(cpu);
    symbols
}

/// The first CUDA error the runtime recorded, as an error.
pub fn take_error() -> Result<(), CudaError> {
    match archc_cuda::take_error() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Managed copies of tensors (pointer, bytes), freed on drop.
struct Buffers(Vec<(*mut u8, usize)>, &'static Cuda);

impl Buffers {
    fn new<'t>(cuda: &'static Cuda, tensors: impl Iterator<Item = &'t Tensor>) -> Result<Buffers, CudaError> {
        let mut b = Buffers(Vec::new(), cuda);
        for t in tensors {
            let bytes = tensor_bytes(t);
            let ptr = cuda.alloc_managed(bytes)?;
            // SAFETY: `ptr` has room for `bytes` bytes; the tensor's storage holds them.
            unsafe { std::ptr::copy_nonoverlapping(data_ptr(t), ptr, bytes) };
            b.0.push((ptr, bytes));
        }
        Ok(b)
    }
}

impl Drop for Buffers {
    fn drop(&mut self) {
        for &(p, _) in &self.0 {
            let _ = self.1.free(p);
        }
    }
}
