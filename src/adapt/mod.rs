//! Per-sample layer-loop adaptation at test time, after CoLa ("Skip a Layer or Loop it?
//! Test-Time Depth Adaptation of Pretrained LLMs", Li et al. 2025) and its PoLar code:
//! a network's fixed depth is replaced, per sample, by a chain of its own stack blocks.
//!
//! - [`chain`]: chains and the moves between them; [`search`] and [`mcts`]: per-sample
//!   searches as state machines; [`score`]: what a chain's output is worth.
//! - [`split`]: the network cut into prefix, blocks and suffix; [`exec`]: many
//!   (sample, chain) pairs run at once on the resident weights, each function compiled
//!   once; [`lockstep`]: every sample's search advanced together.
//! - [`deploy`]: given chains and the benchmark; [`report`]: the files written;
//!   [`cli`]: `archc adapt`.
//!
//! Contract: blocks are compiled once and never per chain; results are seeded and
//! repeat; a chain of the trained order gives the network's own output.

pub mod chain;
pub mod cli;
pub mod deploy;
pub mod exec;
pub mod lockstep;
pub mod mcts;
pub mod report;
pub mod score;
pub mod search;
pub mod split;
