//! Counters of the GPU runtime's work, for GPU profiles (the CLI's `ARCHC_GPU_PROFILE=1`):
//! how many launches, waits, driver allocations, products, copies and graph replays a run
//! made, and how many bytes it moved between host and device.
//!
//! Contract: counting is always on (relaxed atomic increments); [`snapshot`] reads all
//! counters, and the difference of two snapshots is what happened between them.

use std::sync::atomic::{AtomicU64, Ordering};

/// One counter per kind of work.
#[derive(Clone, Copy, Debug)]
pub enum Counter {
    /// Kernel launches (`mgpuLaunchKernel`).
    Launch,
    /// Host waits for the stream or the device.
    Wait,
    /// Blocks from the driver (the pool's cache missed).
    FreshAlloc,
    /// cuBLAS calls.
    Gemm,
    /// Copies queued on the stream (1-D and 2-D).
    Copy,
    /// CUDA graph replays.
    GraphLaunch,
    /// Bytes copied from the host to the device by a run's upload (`Cuda::copy_to_device`).
    Uploaded,
    /// Bytes copied from the device to the host by a run's download (`Cuda::copy_to_host`).
    Downloaded,
}

const COUNTERS: usize = 8;
static VALUES: [AtomicU64; COUNTERS] = [const { AtomicU64::new(0) }; COUNTERS];

/// Adds one to `counter`.
pub fn bump(counter: Counter) {
    add(counter, 1);
}

/// Adds `n` to `counter`.
pub fn add(counter: Counter, n: u64) {
    VALUES[counter as usize].fetch_add(n, Ordering::Relaxed);
}

/// All counters at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats([u64; COUNTERS]);

/// The counters now.
pub fn snapshot() -> Stats {
    Stats(std::array::from_fn(|i| VALUES[i].load(Ordering::Relaxed)))
}

impl Stats {
    /// What happened since `earlier`.
    pub fn since(&self, earlier: &Stats) -> Stats {
        Stats(std::array::from_fn(|i| self.0[i].saturating_sub(earlier.0[i])))
    }

    /// Both counts added.
    pub fn plus(&self, other: &Stats) -> Stats {
        Stats(std::array::from_fn(|i| self.0[i] + other.0[i]))
    }

    /// The value of one counter.
    pub fn get(&self, counter: Counter) -> u64 {
        self.0[counter as usize]
    }
}

impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        let [launch, wait, fresh, gemm, copy, graph, up, down] = self.0;
        write!(
            f,
            "{launch} launches, {wait} waits, {fresh} driver allocations, {gemm} cuBLAS calls, {copy} copies, \
             {graph} graph replays, {up} bytes uploaded, {down} bytes downloaded"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_count_what_happened_between_snapshots() {
        let before = snapshot();
        bump(Counter::GraphLaunch);
        bump(Counter::GraphLaunch);
        let after = snapshot().since(&before);
        // Other tests may count concurrently, but never graph replays.
        assert_eq!(after.get(Counter::GraphLaunch), 2);
        assert!(after.to_string().contains("2 graph replays"), "{after}");
    }
}
