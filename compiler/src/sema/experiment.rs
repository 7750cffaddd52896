//! Search-space choice picking, and building the model a `train` or `adapt` block names
//! (their entries are checked in `train_config` and `adapt`).

use super::modules::{ChoiceMode, ModuleInfo, Options};
use super::value::{Layer, Value};
use super::{Checker, R};
use crate::diag::Diagnostic;
use crate::tir::Program;
use archc_grammar::ast::Expr;

/// The option index for choice `qualified` (also addressable by its local `name`). An
/// explicit option is named by its label (how builds show it: `x` for a tensor option),
/// by its value (a string option also without its quotes: `mode=kv`), or (non-int
/// options) by its index.
pub fn pick_option(
    mode: &ChoiceMode,
    qualified: &str,
    name: &str,
    vals: &[Value],
    labels: &[String],
) -> Result<usize, String> {
    let n = vals.len();
    match mode {
        ChoiceMode::First => Ok(0),
        ChoiceMode::Sample(seed) => Ok(sample_index(*seed, qualified, n)),
        ChoiceMode::Assign { fixed, seed } => match fixed.iter().find(|(k, _)| k == qualified) {
            Some(&(_, i)) if i < n => Ok(i),
            Some(&(_, i)) => Err(format!("`{qualified}` has {n} options; option {i} does not exist")),
            None => Ok(seed.map_or(0, |s| sample_index(s, qualified, n))),
        },
        ChoiceMode::Explicit(list) => {
            let Some((_, want)) =
                list.iter().find(|(k, _)| k == qualified).or_else(|| list.iter().find(|(k, _)| k == name))
            else {
                return Ok(0);
            };
            let shown: Vec<String> = vals.iter().map(|v| v.to_string()).collect();
            let unquoted = |s: &String| s.strip_prefix('"').and_then(|s| s.strip_suffix('"')) == Some(want.as_str());
            let found = labels.iter().position(|s| s == want).or_else(|| shown.iter().position(|s| s == want));
            if let Some(i) = found.or_else(|| labels.iter().position(unquoted)) {
                return Ok(i);
            }
            let all_ints = vals.iter().all(|v| v.as_const_int().is_some());
            match want.parse::<usize>() {
                Ok(i) if !all_ints && i < n => Ok(i),
                _ => Err(format!("`{name}={want}` is not an option of `{name}`: options are [{}]", labels.join(", "))),
            }
        }
    }
}

/// The option a seeded draw takes for decision `qualified` among `n`.
fn sample_index(seed: u64, qualified: &str, n: usize) -> usize {
    (splitmix(seed ^ fnv1a(qualified)) % n as u64) as usize
}

fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100000001b3))
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e3779b97f4a7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
    z ^ (z >> 31)
}

fn build_model_in(c: &mut Checker, model: &Expr) -> R<Program> {
    let env = super::scope::Scope::child(&c.globals[0]);
    let v = c.eval(model, &env, 0)?;
    let v = match v {
        Value::Block(b) => Value::Layer(c.make_spec(&b, Default::default(), model.span)?),
        v => v,
    };
    let Value::Layer(Layer::Spec { block, args, .. }) = v else {
        return Err(Diagnostic::error("expected a network, e.g. `Mlp(64, 128, 10)`", model.span));
    };
    c.build_spec(&block, args)
}

/// Builds the network a `train` or `adapt` block names; on failure, every error of the
/// build (see `recover`).
pub fn build_model(modules: &[ModuleInfo], opts: &Options, model: &Expr) -> Result<Program, Vec<Diagnostic>> {
    let mut c = Checker::new(modules, opts);
    let r = build_model_in(&mut c, model);
    c.into_errors(r)
}

/// [`build_model`], also giving the decisions the build made (kept when it fails, so a
/// caller can say which candidate failed).
pub fn build_model_recorded(
    modules: &[ModuleInfo],
    opts: &Options,
    model: &Expr,
) -> (Result<Program, Vec<Diagnostic>>, Vec<super::modules::ChoiceRecord>) {
    let mut c = Checker::new(modules, opts);
    let r = build_model_in(&mut c, model);
    let r = c.into_errors(r);
    (r, std::mem::take(&mut c.decisions))
}
