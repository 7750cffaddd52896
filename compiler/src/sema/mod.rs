//! The checker: name resolution, instantiation and shape inference, producing TIR.
//!
//! Checking is evaluation at build time. [`Checker`] walks the AST of the entry block
//! with compile-time values ([`value::Value`]): numbers and dims are computed, layer
//! specs are instantiated under dotted paths (`enc.0.attn`), and every tensor operation
//! is emitted into the TIR program through the shared shape rules. An error becomes a
//! [`Diagnostic`] with the source span and, when it happened inside a library layer, the
//! user's call site; it stops the statement it is in, and the item goes on with the
//! statement's name poisoned ([`recover`]), so independent errors are all reported and
//! follow-on errors never are.
//!
//! Contract: given the same sources and [`Options`], the produced program (names, order
//! of params and instructions, random seeds) is identical.

pub mod adapt;
pub mod apply;
pub mod args;
pub mod budget;
pub mod builder;
pub mod builtins;
pub mod data_source;
pub mod einsum;
pub mod eval;
pub mod experiment;
pub mod gated;
pub mod globals;
pub mod hyper;
pub mod index;
pub mod invariance;
pub mod loss_expr;
pub mod modules;
pub mod params;
pub mod pooling;
pub mod recover;
pub mod resample;
pub mod resolve;
pub mod scope;
pub mod settings;
pub mod shapes;
pub mod sorting;
pub mod space;
pub mod spectral;
pub mod tensor_ops;
pub mod train_config;
pub mod value;

pub use modules::{
    check_file, train_file, CheckOutput, ChoiceMode, ChoiceRecord, ModuleSource, NoModules, Options, TrainOutput,
};

use crate::diag::Diagnostic;
use builder::Builder;
use modules::ModuleInfo;
use scope::Scope;
use std::collections::HashMap;
use std::rc::Rc;
use value::TVal;

pub type R<T> = Result<T, Diagnostic>;

/// One application frame: the instance path and its counters for anonymous children.
#[derive(Default)]
pub struct Frame {
    pub path: String,
    pub counters: HashMap<String, usize>,
    pub used_names: HashMap<String, usize>,
}

pub struct Checker<'a> {
    pub modules: &'a [ModuleInfo],
    pub opts: &'a Options,
    pub b: Builder,
    pub frames: Vec<Frame>,
    /// Parameters replaced by generated tensors (`with_params`), by full name.
    pub overrides: Vec<HashMap<String, TVal>>,
    /// Call sites in the user's file, innermost last (for diagnostics).
    pub call_sites: Vec<archc_grammar::span::Span>,
    pub depth: usize,
    /// Choices made, `(qualified name, chosen option)`, in order of first use.
    pub choices: Vec<(String, String)>,
    /// The decisions behind `choices`, with every option's label and the span.
    pub decisions: Vec<modules::ChoiceRecord>,
    /// Outputs of the entry block, collected when `entry` is set.
    pub entry_outputs: Option<Vec<(String, TVal)>>,
    pub globals: Vec<Rc<Scope>>,
    /// Buffers read in this build, by the value that holds them: `(function, value) -> name`.
    pub buffer_reads: HashMap<(usize, crate::tir::ValueId), String>,
    /// The whole (largest-option) value of each elastic buffer, by the sliced value read
    /// in this build: `update` writes the chosen part back into it.
    pub elastic_buffers: HashMap<(usize, crate::tir::ValueId), TVal>,
    /// Build with every `shared` choice at its largest option (to read the initialisers
    /// that every candidate of the space shares).
    pub shared_at_max: bool,
    /// The grid dims of the operators being built (`operator .. over grid N`), which
    /// grid-local operations must not touch (see `invariance`).
    pub grid: Vec<String>,
    /// Whether this build made a `shared` choice.
    pub made_shared: bool,
    /// The shared choices given size symbols (`Options::elastic_symbols`), in order:
    /// `(qualified name, symbol)`.
    pub elastic_args: Vec<(String, String)>,
    /// New values of buffers (`update(buffer, value)` in `main`), by buffer name.
    pub buffer_updates: Vec<(String, TVal)>,
    /// Evaluation steps left before the build is abandoned (guards against programs like
    /// `repeat 10000 { repeat 10000 { skip } }` that would not finish).
    pub fuel: u64,
    /// Errors of statements that failed while the item went on (`recover`).
    pub errors: Vec<Diagnostic>,
}

/// Evaluation steps allowed for one build.
pub const FUEL: u64 = 2_000_000;

/// Maximum nesting of applications and function calls.
pub const MAX_DEPTH: usize = 200;

impl<'a> Checker<'a> {
    pub fn new(modules: &'a [ModuleInfo], opts: &'a Options) -> Self {
        let globals = modules.iter().map(|m| m.globals.clone()).collect();
        Checker {
            modules,
            opts,
            b: Builder::default(),
            frames: vec![Frame::default()],
            overrides: Vec::new(),
            call_sites: Vec::new(),
            depth: 0,
            choices: Vec::new(),
            decisions: Vec::new(),
            entry_outputs: None,
            globals,
            fuel: budget::take(FUEL),
            buffer_reads: HashMap::new(),
            buffer_updates: Vec::new(),
            errors: Vec::new(),
            elastic_buffers: HashMap::new(),
            shared_at_max: false,
            grid: Vec::new(),
            made_shared: false,
            elastic_args: Vec::new(),
        }
    }

    pub fn frame(&mut self) -> &mut Frame {
        self.frames.last_mut().expect("a frame")
    }

    /// A fresh name for an anonymous child instance: `linear_0`, `linear_1`, ...
    pub fn anon_path(&mut self, base: &str) -> String {
        let base = base.to_lowercase();
        let f = self.frame();
        let n = f.counters.entry(base.clone()).or_insert(0);
        let name = format!("{base}_{n}");
        *n += 1;
        join_path(&f.path, &name)
    }

    /// The path for a `let`-bound instance (deduplicated within the frame).
    pub fn let_path(&mut self, name: &str) -> String {
        let f = self.frame();
        let n = f.used_names.entry(name.to_string()).or_insert(0);
        let local = if *n == 0 { name.to_string() } else { format!("{name}_{n}") };
        *n += 1;
        join_path(&f.path, &local)
    }

    pub fn push_frame(&mut self, path: String) {
        self.frames.push(Frame { path, ..Frame::default() });
    }

    pub fn pop_frame(&mut self) {
        self.frames.pop();
    }

    /// Adds the innermost user call site to a diagnostic raised in another file.
    pub fn locate(&self, mut d: Diagnostic) -> Diagnostic {
        if let (Some(span), Some(site)) = (d.span, self.call_sites.last()) {
            if span.file != site.file && d.related.is_empty() {
                d = d.with_related(*site, "in this use");
            }
        }
        d
    }
}

impl Drop for Checker<'_> {
    /// Unspent evaluation steps go back to the file's pool.
    fn drop(&mut self) {
        budget::give_back(self.fuel);
    }
}

pub fn join_path(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}
