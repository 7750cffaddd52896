//! Reverse-mode automatic differentiation of TIR.
//!
//! - [`emit`]: a builder for the instructions gradient rules emit.
//! - [`rules`]: one vector-Jacobian product per primitive op (the gradient table).
//! - [`reverse`]: the reverse sweep over a straight-line function.
//!
//! - [`train_step`]: the train and eval steps; [`split`]: the step as a gradient step and
//!   an update, for gradients accumulated over several models.
//! - [`vjp`]: the forward pass's vector-Jacobian product as one function (`archc grad`).
//!
//! Control ops are expanded before the sweep (calls and stacks are inlined); `scan` and
//! `vmap` bodies are differentiated as functions of their own.

pub mod control;
pub mod emit;
pub mod expand;
pub mod loss;
pub mod optim;
pub mod reverse;
pub mod rules;
pub mod split;
pub mod train_step;
pub mod vjp;

pub use control::FuncTable;
pub use reverse::gradient;
pub use split::{build_apply_func, build_grad_program};
pub use train_step::{build_train_program, TrainSpec};
pub use vjp::build_vjp_program;
