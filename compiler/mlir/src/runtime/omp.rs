//! The few OpenMP runtime (`libomp`) entry points that `convert-scf-to-openmp` plus LLVM's
//! OpenMP translation call, implemented over a small pool of helper threads, so that the
//! CPU backend's large parallel loops run on every core without libomp.
//!
//! Contract (what the generated code relies on, and all this implements):
//! - `__kmpc_fork_call(loc, argc, microtask, args...)` runs `microtask(&tid, &zero,
//!   args...)` once per team member (`tid` 0 on the calling thread, `1..n` on helpers)
//!   and returns when all have finished. LLVM passes the captured values as one
//!   aggregate, so `argc` is 1; up to [`MAX_ARGS`] are supported. Helpers busy with another
//!   caller's region (tests run modules on several threads) make the region run alone on
//!   the caller (a team of one); a region inside a region does too.
//! - `__kmpc_for_static_init_{4,4u,8,8u}` with the static schedule (no chunk) give each
//!   team member one contiguous share of the iterations, as libomp does.
//! - `__kmpc_barrier` does nothing: the regions `convert-scf-to-openmp` produces hold one
//!   worksharing loop and nothing after its closing barrier, and the fork joins the team.
//! - `__kmpc_global_thread_num` is the caller's index in its current team (0 outside).
//!
//! Helpers spin for [`SPIN`] after a region before they sleep, so the next loop of a step
//! starts without a wake-up: a helper woken by a futex arrives tens of microseconds late,
//! after the caller has taken its share of a split product too. A millisecond spans the
//! gaps between the regions of a train step (libomp's default `KMP_BLOCKTIME` spins for
//! 200 ms).
//!
//! A helper that finds itself on the core of the thread it helps moves off it ([`step_off`]):
//! waking a helper places it on the waker's core, and two threads on one core ran a
//! whole step at one core's speed, for whole epochs.

use std::cell::Cell;
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Captured arguments of a fork supported (all passed in registers).
pub const MAX_ARGS: i32 = 3;
/// How long an idle helper polls for the next region before it sleeps.
pub const SPIN: Duration = Duration::from_millis(1);

type Microtask = unsafe extern "C" fn(*const i32, *const i32, *mut c_void, *mut c_void, *mut c_void);

thread_local! {
    /// (index in the current team, team size); (0, 1) outside a region.
    static TEAM: Cell<(i32, i32)> = const { Cell::new((0, 1)) };
}

#[derive(Clone, Copy)]
struct Job {
    task: Option<Microtask>,
    args: [*mut c_void; 3],
    size: i32,
    generation: u64,
}

// SAFETY: the pointers are the generated code's captured values, valid for the whole
// region, which the caller does not leave before every share is done.
unsafe impl Send for Job {}

struct Pool {
    helpers: usize,
    /// Held by the thread whose region the helpers run.
    owner: Mutex<()>,
    job: Mutex<Job>,
    /// Bumped once per region (after `job` is written).
    generation: AtomicU64,
    /// Per team member: the last generation whose share someone took (`fetch_max`), so
    /// each share runs once, on a helper or, if it comes late, on the caller.
    claimed: Vec<AtomicU64>,
    /// Helpers between looking at a share and finishing it.
    busy: AtomicUsize,
    /// Set while the caller sleeps on `done` for helpers' shares.
    waiting: AtomicBool,
    done: Condvar,
    /// The CPU the caller of the current region started it on (see [`step_off`]).
    caller_cpu: AtomicI32,
    /// Helpers asleep on `wake`.
    asleep: AtomicI32,
    sleep: Mutex<()>,
    wake: Condvar,
    /// The first refusal (`rt::archc_fail`) a helper's share recorded in this region,
    /// handed to the caller's thread when the region ends.
    failure: Mutex<Option<String>>,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<&'static Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let helpers = cores.saturating_sub(1);
        let pool: &'static Pool = Box::leak(Box::new(Pool {
            helpers,
            owner: Mutex::new(()),
            job: Mutex::new(Job { task: None, args: [std::ptr::null_mut(); 3], size: 1, generation: 0 }),
            generation: AtomicU64::new(0),
            claimed: (0..=helpers).map(|_| AtomicU64::new(0)).collect(),
            busy: AtomicUsize::new(0),
            waiting: AtomicBool::new(false),
            done: Condvar::new(),
            caller_cpu: AtomicI32::new(-1),
            asleep: AtomicI32::new(0),
            sleep: Mutex::new(()),
            wake: Condvar::new(),
            failure: Mutex::new(None),
        }));
        for h in 0..helpers {
            std::thread::Builder::new()
                .name(format!("archc-omp-{}", h + 1))
                .spawn(move || helper(pool, h as i32 + 1))
                .expect("spawn an OpenMP helper thread");
        }
        pool
    })
}

/// Runs share `tid` of `job` if nobody took it yet.
fn take_share(pool: &Pool, job: &Job, tid: i32) {
    if pool.claimed[tid as usize].fetch_max(job.generation, Ordering::AcqRel) >= job.generation {
        return;
    }
    if let Some(task) = job.task {
        let saved = TEAM.with(|t| t.replace((tid, job.size)));
        let zero = 0i32;
        // SAFETY: the microtask and its arguments come from the fork being run, which
        // waits for this share.
        unsafe { task(&tid, &zero, job.args[0], job.args[1], job.args[2]) };
        TEAM.with(|t| t.set(saved));
    }
}

fn helper(pool: &'static Pool, tid: i32) {
    let mut seen = 0u64;
    loop {
        let start = Instant::now();
        let mut spins = 0u32;
        while pool.generation.load(Ordering::Acquire) == seen {
            std::hint::spin_loop();
            spins += 1;
            if spins % 256 == 0 && start.elapsed() > SPIN {
                let mut guard = pool.sleep.lock().unwrap_or_else(|e| e.into_inner());
                pool.asleep.fetch_add(1, Ordering::SeqCst);
                while pool.generation.load(Ordering::SeqCst) == seen {
                    guard = pool.wake.wait(guard).unwrap_or_else(|e| e.into_inner());
                }
                pool.asleep.fetch_sub(1, Ordering::SeqCst);
                break;
            }
        }
        // Busy before looking: the caller then waits for this helper unless the share
        // is already taken.
        pool.busy.fetch_add(1, Ordering::SeqCst);
        let job = *pool.job.lock().unwrap_or_else(|e| e.into_inner());
        seen = job.generation;
        step_off(pool.caller_cpu.load(Ordering::Relaxed));
        if tid < job.size {
            take_share(pool, &job, tid);
            if let Some(m) = crate::runtime::rt::take_failure() {
                pool.failure.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(m);
            }
        }
        if pool.busy.fetch_sub(1, Ordering::SeqCst) == 1 && pool.waiting.load(Ordering::SeqCst) {
            let _lock = pool.sleep.lock().unwrap_or_else(|e| e.into_inner());
            pool.done.notify_all();
        }
    }
}

/// The CPU the calling thread runs on (-1 where unknown).
fn current_cpu() -> i32 {
    // SAFETY: no arguments; reads the CPU number (vDSO).
    unsafe { libc::sched_getcpu() }
}

/// Moves the calling thread off `cpu` if it runs there: for a moment it may run anywhere
/// else it was allowed, then its allowed set is restored (the scheduler leaves it where it
/// now is). A helper woken by its caller is placed on the caller's core by the kernel's
/// wake-up affinity, where it only takes time from the caller; the load balancer may leave
/// the pair there for whole epochs.
fn step_off(cpu: i32) {
    if cpu < 0 || current_cpu() != cpu {
        return;
    }
    let size = std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: plain syscalls on zeroed cpu_set_t values of this thread.
    unsafe {
        let mut allowed: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, size, &mut allowed) != 0 {
            return;
        }
        let mut others = allowed;
        libc::CPU_CLR(cpu as usize, &mut others);
        if libc::CPU_COUNT(&others) == 0 {
            return;
        }
        if libc::sched_setaffinity(0, size, &others) == 0 {
            libc::sched_setaffinity(0, size, &allowed);
        }
    }
}

/// Runs `task` with a team of one on the calling thread.
unsafe fn alone(task: Microtask, args: [*mut c_void; 3]) {
    let saved = TEAM.with(|t| t.replace((0, 1)));
    let (tid, zero) = (0i32, 0i32);
    // SAFETY: the caller's microtask and arguments.
    unsafe { task(&tid, &zero, args[0], args[1], args[2]) };
    TEAM.with(|t| t.set(saved));
}

/// `void __kmpc_fork_call(ident_t *loc, kmp_int32 argc, kmpc_micro microtask, ...)`; the
/// variadic arguments are read as the (register) parameters they are passed in.
///
/// The caller runs share 0, then every share no helper has taken yet (a helper that is
/// asleep or descheduled costs no more than running the region alone), then waits for
/// the shares helpers are running.
///
/// # Safety
/// `microtask` must take `argc` pointer arguments after the two thread ids.
pub unsafe extern "C" fn __kmpc_fork_call(
    _loc: *const c_void,
    argc: i32,
    microtask: Microtask,
    a0: *mut c_void,
    a1: *mut c_void,
    a2: *mut c_void,
) {
    if !(0..=MAX_ARGS).contains(&argc) {
        eprintln!("archc: OpenMP region with {argc} captured arguments (at most {MAX_ARGS} supported)");
        std::process::abort();
    }
    let args = [a0, a1, a2];
    let pool = pool();
    let nested = TEAM.with(|t| t.get().1 > 1);
    let guard = if nested || pool.helpers == 0 { None } else { pool.owner.try_lock().ok() };
    let Some(_guard) = guard else {
        // SAFETY: forwarded.
        unsafe { alone(microtask, args) };
        return;
    };
    let size = 1 + pool.helpers as i32;
    let generation = pool.generation.load(Ordering::Relaxed) + 1;
    let job = Job { task: Some(microtask), args, size, generation };
    *pool.job.lock().unwrap_or_else(|e| e.into_inner()) = job;
    pool.caller_cpu.store(current_cpu(), Ordering::Relaxed);
    pool.generation.store(generation, Ordering::SeqCst);
    if pool.asleep.load(Ordering::SeqCst) > 0 {
        let _lock = pool.sleep.lock().unwrap_or_else(|e| e.into_inner());
        pool.wake.notify_all();
    }
    for tid in 0..size {
        take_share(pool, &job, tid);
    }
    // Spin a little for shares helpers are running, then sleep (a busy machine may have
    // descheduled the helper, which then needs this core).
    let start = Instant::now();
    let mut spins = 0u32;
    while pool.busy.load(Ordering::SeqCst) != 0 {
        spins = spins.wrapping_add(1);
        if spins % 256 == 0 && start.elapsed() > SPIN {
            let mut guard = pool.sleep.lock().unwrap_or_else(|e| e.into_inner());
            pool.waiting.store(true, Ordering::SeqCst);
            while pool.busy.load(Ordering::SeqCst) != 0 {
                guard = pool.done.wait_timeout(guard, Duration::from_millis(1)).unwrap_or_else(|e| e.into_inner()).0;
            }
            pool.waiting.store(false, Ordering::SeqCst);
            break;
        }
        std::hint::spin_loop();
    }
    if let Some(m) = pool.failure.lock().unwrap_or_else(|e| e.into_inner()).take() {
        crate::runtime::rt::record_failure(m);
    }
}

unsafe extern "C" fn run_closure(_tid: *const i32, _zero: *const i32, f: *mut c_void, _: *mut c_void, _: *mut c_void) {
    let (tid, size) = TEAM.with(|t| t.get());
    // SAFETY: `f` is the `&&dyn Fn` that `parallel` passed, alive until the fork returns.
    let f = unsafe { &*(f as *const &(dyn Fn(usize, usize) + Sync)) };
    f(tid as usize, size as usize);
}

/// Runs `f(member, team size)` once per member of a team over the pool's threads (a team
/// of one when the pool is busy or this is inside a region), like the generated code's
/// parallel loops; returns when every member has finished.
pub fn parallel(f: &(dyn Fn(usize, usize) + Sync)) {
    let mut f = f;
    // SAFETY: run_closure takes the one argument as the closure reference passed here.
    unsafe {
        __kmpc_fork_call(
            std::ptr::null(),
            1,
            run_closure,
            &mut f as *mut &(dyn Fn(usize, usize) + Sync) as *mut c_void,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    }
}

/// The number of threads a team can have (every core).
pub fn max_team() -> usize {
    1 + pool().helpers
}

/// `kmp_int32 __kmpc_global_thread_num(ident_t *)`: the index in the current team.
pub extern "C" fn __kmpc_global_thread_num(_loc: *const c_void) -> i32 {
    TEAM.with(|t| t.get().0)
}

/// `void __kmpc_push_num_threads(ident_t *, kmp_int32 gtid, kmp_int32 n)`: teams always
/// use every core here.
pub extern "C" fn __kmpc_push_num_threads(_loc: *const c_void, _gtid: i32, _n: i32) {}

/// `void __kmpc_barrier(ident_t *, kmp_int32 gtid)`: see the module doc.
pub extern "C" fn __kmpc_barrier(_loc: *const c_void, _gtid: i32) {}

/// `void __kmpc_for_static_fini(ident_t *, kmp_int32 gtid)`.
pub extern "C" fn __kmpc_for_static_fini(_loc: *const c_void, _gtid: i32) {}

/// This team member's share of the inclusive range `[lower, upper]` (step `incr`) under
/// the static schedule: contiguous blocks, the first `trip % n` members one larger.
fn share(lower: i128, upper: i128, incr: i128) -> (i128, i128, bool) {
    let (tid, n) = TEAM.with(|t| t.get());
    let (tid, n) = (tid as i128, n as i128);
    if incr == 0 || n <= 1 {
        return (lower, upper, true);
    }
    let trip = if incr > 0 { (upper - lower) / incr + 1 } else { (lower - upper) / -incr + 1 };
    if trip <= 0 {
        return (lower, upper, tid == n - 1);
    }
    let (small, extra) = (trip / n, trip % n);
    let first = tid * small + tid.min(extra);
    let count = small + if tid < extra { 1 } else { 0 };
    let lo = lower + first * incr;
    (lo, lo + (count - 1) * incr, tid == n - 1)
}

macro_rules! static_init {
    ($name:ident, $t:ty) => {
        /// `__kmpc_for_static_init_*(loc, gtid, schedtype, plastiter, plower, pupper,
        /// pstride, incr, chunk)` for the static schedule: see [`share`].
        ///
        /// # Safety
        /// The pointers must be valid for reads and writes.
        pub unsafe extern "C" fn $name(
            _loc: *const c_void,
            _gtid: i32,
            _schedule: i32,
            last: *mut i32,
            lower: *mut $t,
            upper: *mut $t,
            stride: *mut $t,
            incr: $t,
            _chunk: $t,
        ) {
            // SAFETY: the caller's loop bounds.
            unsafe {
                let (lo, hi, is_last) = share(*lower as i128, *upper as i128, incr as i128);
                *stride = (*upper as i128 - *lower as i128 + 1) as $t;
                *lower = lo as $t;
                *upper = hi as $t;
                if !last.is_null() {
                    *last = is_last as i32;
                }
            }
        }
    };
}

static_init!(__kmpc_for_static_init_4, i32);
static_init!(__kmpc_for_static_init_4u, u32);
static_init!(__kmpc_for_static_init_8, i64);
static_init!(__kmpc_for_static_init_8u, u64);

/// The OpenMP entry points by symbol.
pub fn symbols() -> Vec<(&'static str, *mut ())> {
    vec![
        ("__kmpc_fork_call", __kmpc_fork_call as *mut ()),
        ("__kmpc_global_thread_num", __kmpc_global_thread_num as *mut ()),
        ("__kmpc_push_num_threads", __kmpc_push_num_threads as *mut ()),
        ("__kmpc_barrier", __kmpc_barrier as *mut ()),
        ("__kmpc_for_static_fini", __kmpc_for_static_fini as *mut ()),
        ("__kmpc_for_static_init_4", __kmpc_for_static_init_4 as *mut ()),
        ("__kmpc_for_static_init_4u", __kmpc_for_static_init_4u as *mut ()),
        ("__kmpc_for_static_init_8", __kmpc_for_static_init_8 as *mut ()),
        ("__kmpc_for_static_init_8u", __kmpc_for_static_init_8u as *mut ()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shares of every team member tile the range in order.
    #[test]
    fn static_shares_tile_the_range() {
        for n in 1..5 {
            for (lo, hi) in [(0i128, 0i128), (0, 9), (3, 4), (0, 1), (5, 104)] {
                let mut next = lo;
                for tid in 0..n {
                    TEAM.with(|t| t.set((tid, n)));
                    let (a, b, _) = share(lo, hi, 1);
                    if b >= a {
                        assert_eq!(a, next, "n {n} range {lo}..={hi} member {tid}");
                        next = b + 1;
                    }
                }
                assert_eq!(next, hi + 1, "n {n} range {lo}..={hi}");
            }
        }
        TEAM.with(|t| t.set((0, 1)));
    }

    static SUM: AtomicU64 = AtomicU64::new(0);

    unsafe extern "C" fn add_share(_tid: *const i32, _z: *const i32, n: *mut c_void, _: *mut c_void, _: *mut c_void) {
        let (mut lo, mut hi, mut stride, mut last) = (0u64, unsafe { *(n as *const u64) } - 1, 0u64, 0i32);
        unsafe { __kmpc_for_static_init_8u(std::ptr::null(), 0, 34, &mut last, &mut lo, &mut hi, &mut stride, 1, 0) };
        let mut s = 0;
        let mut i = lo;
        while i <= hi && hi != u64::MAX {
            s += i;
            i += 1;
        }
        SUM.fetch_add(s, Ordering::SeqCst);
    }

    /// A forked loop covers every iteration once.
    #[test]
    fn fork_runs_every_iteration_once() {
        for n in [1u64, 2, 7, 1000] {
            SUM.store(0, Ordering::SeqCst);
            let mut count = n;
            // SAFETY: add_share reads the one argument as a u64.
            unsafe {
                __kmpc_fork_call(
                    std::ptr::null(),
                    1,
                    add_share,
                    &mut count as *mut u64 as *mut c_void,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                )
            };
            assert_eq!(SUM.load(Ordering::SeqCst), n * (n - 1) / 2);
        }
    }
}
