//! `archc supernet`: one-shot architecture search. One weight set (the supernet) is
//! trained with subnets sampled every step, so that every subnet of the space works with
//! the shared weights without training of its own.
//!
//! - [`space`]: the subnets of a space, their structures, and the sampling rules.
//! - [`build`]: the supernet's program: per structure a gradient step and an eval step,
//!   one update over every parameter. `shared` choices are size symbols in it (see
//!   `archc_compiler::sema::Options::elastic_symbols`), so one compiled step serves every
//!   width.
//! - [`train`]: the loop over resident state (weights, slots, gradient accumulators).
//! - [`extract`]: one subnet as a plain program with its weights.
//! - [`search`]: a search over the subnets, scored with the shared weights.
//! - [`cli`]: `archc supernet train`, `extract`, `search`.

pub mod build;
pub mod cli;
pub mod extract;
pub mod proxyless;
pub mod proxyless_cmd;
pub mod search;
pub mod space;
pub mod train;
