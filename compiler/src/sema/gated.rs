//! A ProxylessNAS build's choices among layers (`Options::gated_choices`): instead of
//! one option, a choice is the mixture `Σ_j g_j · option_j(x)`, where `g` is the
//! choice's gate parameter `arch_gate.NAME` (`f32[n]`, one element per option).
//!
//! Contract: every option is instantiated as in a supernet build (tagged with the
//! choice and its index, `conv1d_op1_0`), so its parameters are named as in the subnet
//! that picks it and the weights are shared. The gate is a buffer of the program, set by
//! the caller before a call (one-hot: the active path of a binary gate); its gradient is
//! `∂L/∂g_j = <∂L/∂y, option_j(x)>`, which ProxylessNAS turns into the gradient of the
//! architecture logits. The options must give one tensor type, else the build fails
//! naming the two that differ.

use super::value::{Layer, TVal, Value};
use super::{Checker, R};
use crate::diag::Diagnostic;
use crate::tir::{DType, Dim, Init, Op, ParamDecl, TensorType};
use archc_grammar::ast::BinOp;
use archc_grammar::span::Span;

/// The gate parameter of choice `qualified`.
pub fn gate_param_name(qualified: &str) -> String {
    format!("arch_gate.{qualified}")
}

/// Whether every option can be applied as a layer (a layer, a function or a block).
pub fn all_layers(vals: &[Value]) -> bool {
    vals.len() > 1 && vals.iter().all(|v| matches!(v, Value::Layer(_) | Value::Func(_) | Value::Block(_)))
}

impl Checker<'_> {
    /// The value of a gated choice: its options as layers, each tagged.
    pub fn gated_choice(&mut self, name: &str, qualified: &str, vals: &[Value], span: Span) -> R<Value> {
        let mut options = Vec::with_capacity(vals.len());
        for (i, v) in vals.iter().enumerate() {
            let tagged = self.tag_option(v.clone(), name, i, vals);
            options.push(self.as_layer(tagged, span)?);
        }
        let gate = gate_param_name(qualified);
        let ty = TensorType::new(DType::F32, vec![Dim::constant(vals.len() as i64)]);
        let decl = ParamDecl { name: gate.clone(), ty, init: Init::Zeros, trainable: false };
        self.b.declare_param(decl).map_err(|msg| Diagnostic::error(msg, span))?;
        Ok(Value::Layer(Layer::Gated { gate, options }))
    }

    /// `Σ_j gate[j] · run(j)` over the `n` options; `run` applies option `j`.
    pub fn mix_gated(
        &mut self,
        gate: &str,
        n: usize,
        span: Span,
        mut run: impl FnMut(&mut Self, usize) -> R<Value>,
    ) -> R<Value> {
        let ty = TensorType::new(DType::F32, vec![Dim::constant(n as i64)]);
        let g = self.emit(Op::Param(gate.to_string()), &[], Some(ty), span)?;
        let mut sum: Option<TVal> = None;
        for j in 0..n {
            let y = run(self, j)?;
            let y = self.expect_tensor(y, span, "an option of a gated choice")?;
            if let Some(s) = sum.as_ref().filter(|s| s.ty != y.ty) {
                return Err(Diagnostic::error(
                    format!("option {j} of this choice gives {}, option 0 gives {}", y.ty, s.ty),
                    span,
                )
                .with_help("a ProxylessNAS build mixes the options' outputs, so every option must give one type"));
            }
            let slice = Op::Slice {
                start: vec![Dim::constant(j as i64)],
                end: vec![Dim::constant(j as i64 + 1)],
                step: vec![1],
            };
            let gj = self.emit(slice, &[&g], None, span)?;
            let gj = self.reshape(&gj, Vec::new(), span)?;
            let term = self.binary_tensor(BinOp::Mul, Value::Tensor(y), Value::Tensor(gj), span)?;
            sum = Some(match sum {
                None => term,
                Some(s) => self.binary_tensor(BinOp::Add, Value::Tensor(s), Value::Tensor(term), span)?,
            });
        }
        sum.map(Value::Tensor).ok_or_else(|| Diagnostic::error("a gated choice has no options", span))
    }
}
