//! Modules, imports and the entry points of checking.
//!
//! A compilation starts from one user file. Its `use` items load modules: the embedded
//! stdlib first (`nn`, `attention`, ...), then user modules through a [`ModuleSource`]
//! (the CLI reads `name.arch` beside the main file; the core does no IO). Each module
//! gets a global scope of its own items plus what it imports (`globals`); builtins are
//! visible everywhere.
//!
//! Contract: no error stops checking early. Syntax errors, unknown modules and imports,
//! names defined twice and unknown names are all reported; an item that did not parse
//! (or whose names clash) is not checked, and every other item is. What a failure makes
//! unavailable is poisoned, so nothing is reported twice; the diagnostics handed out are
//! each shown once ([`crate::diag::finish`]).

use super::apply::EntryKind;
use super::globals::module_name;
use super::resolve::resolve_module;
use super::scope::Scope;
use super::value::{BlockRef, Value};
use super::{Checker, R};
use crate::diag::{did_you_mean, Diagnostic};
use crate::tir::Program;
use archc_grammar::ast::{self, BlockKind, Item};
use archc_grammar::span::{FileId, SourceMap, Span};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

/// Where user modules come from (the core does no IO).
pub trait ModuleSource: Sync {
    /// `(display name, text)` of module `name`, if it exists.
    fn load(&self, name: &str) -> Option<(String, String)>;
}

/// A source with no user modules (only the stdlib).
pub struct NoModules;

impl ModuleSource for NoModules {
    fn load(&self, _: &str) -> Option<(String, String)> {
        None
    }
}

#[derive(Clone, Debug, Default)]
pub enum ChoiceMode {
    /// Every choice takes its first option.
    #[default]
    First,
    /// Every choice is drawn with this seed.
    Sample(u64),
    /// `name=value` (ints by value, other options by index); unnamed choices take the first.
    Explicit(Vec<(String, String)>),
    /// Decisions by qualified name and option index (how a search addresses candidates);
    /// every other decision takes its first option, or with `seed` one drawn as `Sample`
    /// draws it.
    Assign { fixed: Vec<(String, usize)>, seed: Option<u64> },
}

/// One decision a build made: its qualified name, the labels of all its options, the
/// option taken and where the `choose` is.
#[derive(Clone, Debug, PartialEq)]
pub struct ChoiceRecord {
    pub name: String,
    pub options: Vec<String>,
    pub chosen: usize,
    pub span: Span,
}

#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Compile for training (`training` is true: dropout active, batch statistics).
    pub training: bool,
    pub choices: ChoiceMode,
    /// The block to build; default: the last network or operator of the main file.
    pub entry: Option<String>,
    /// Overrides of the entry's parameters, as written on the command line.
    pub args: Vec<(String, String)>,
    /// Check every instantiable item of the main file (`archc check`), not only the entry.
    pub check_all: bool,
    /// Build only to learn whether the candidate builds (enumerating a space): the
    /// program is returned as built, without cleanup, shared initialisers or the final
    /// verification.
    pub validate_only: bool,
    /// Build a supernet's subnet: every `shared` choice gives its size symbol
    /// (`elastic_NAME`, see `params::elastic_symbol_name`) instead of the chosen width,
    /// bound at run time by an argument `choice:NAME` of `main` of type `f32[0, SYMBOL]`,
    /// so one program serves every width of the choice.
    pub elastic_symbols: bool,
    /// Name the instances of a layer option of a `choose` among several layers after the
    /// option (`conv1d_op1_0`), so that each option has weights of its own when the
    /// subnets of a supernet share one weight set.
    pub option_tags: bool,
    /// Build every choice among layers as the gated mixture of all its options (a
    /// ProxylessNAS build, see `sema::gated`); implies `option_tags`.
    pub gated_choices: bool,
    /// The data fields a `train` block's loss and metrics expressions read, with their
    /// dtypes and per-row shapes (the caller reads them from the data). `None`: not
    /// known, so such a loss is checked by name only and `TrainConfig::pending` lists
    /// the fields it needs.
    pub data_fields: Option<Vec<super::loss_expr::DataField>>,
}

pub struct ModuleInfo {
    pub name: String,
    pub file: FileId,
    pub ast: Rc<ast::Module>,
    pub globals: Rc<Scope>,
    /// Where errors make the item around them unusable (syntax errors, names defined
    /// twice): such an item is not checked, and using it fails with poison.
    pub broken: Vec<Span>,
    /// Uses of unknown names that resolution reported (evaluating them gives poison).
    pub unresolved: HashSet<Span>,
    /// The module imports everything from a module that could not be loaded, so its
    /// unknown names are not reported.
    pub unknown_glob: bool,
}

impl ModuleInfo {
    /// Whether the item at `span` holds an error that makes it unusable.
    pub fn is_broken(&self, span: Span) -> bool {
        self.broken.iter().any(|e| span.covers(*e))
    }

    /// Whether an unknown name at `span` is already accounted for.
    pub fn quiet_unknown(&self, span: Span) -> bool {
        self.unknown_glob || self.unresolved.contains(&span)
    }
}

/// What checking produced.
pub struct CheckOutput {
    pub sources: SourceMap,
    pub diagnostics: Vec<Diagnostic>,
    /// The entry program, when it was requested and built without errors.
    pub program: Option<Program>,
    /// The choices made for the entry, `(name, option)`.
    pub choices: Vec<(String, String)>,
    /// The same decisions with every option and the `choose` span.
    pub decisions: Vec<ChoiceRecord>,
    /// The main file's syntax tree.
    pub ast: Option<ast::Module>,
    pub main_file: FileId,
}

/// One parsed module: its name, file, tree, where its syntax errors are and the names
/// its unparsed items would have defined.
struct Parsed {
    name: String,
    file: FileId,
    ast: Rc<ast::Module>,
    syntax_errors: Vec<Span>,
    lost_names: Vec<String>,
}

pub(super) struct Loader<'s> {
    source: &'s dyn ModuleSource,
    pub(super) sources: SourceMap,
    modules: Vec<Parsed>,
    by_name: HashMap<String, usize>,
    diagnostics: Vec<Diagnostic>,
}

impl Loader<'_> {
    fn add(&mut self, name: &str, display: String, text: String) -> usize {
        let file = self.sources.add(display, text.clone());
        let (module, errors) = archc_grammar::parse(file, &text);
        let syntax_errors = errors.iter().map(|e| e.span).collect();
        for e in errors {
            let mut d = Diagnostic::error(format!("syntax error: {}", e.message), e.span);
            if !e.expected.is_empty() {
                d = d.with_help(format!("expected one of: {}", e.expected.join(", ")));
            }
            self.diagnostics.push(d);
        }
        let lost_names = module
            .items
            .iter()
            .filter_map(|i| match i {
                Item::Error(s) => text.get(s.range()),
                _ => None,
            })
            .flat_map(archc_grammar::defined_names)
            .collect();
        let id = self.modules.len();
        let ast = Rc::new(module);
        self.modules.push(Parsed { name: name.to_string(), file, ast, syntax_errors, lost_names });
        self.by_name.insert(name.to_string(), id);
        id
    }

    /// Loads module `name` (and what it uses); `None` when it does not exist.
    fn load(&mut self, name: &str) -> Option<usize> {
        if let Some(&id) = self.by_name.get(name) {
            return Some(id);
        }
        let (display, text) = match crate::stdlib::source(name) {
            Some(text) => (format!("<stdlib>/{name}.arch"), text.to_string()),
            None => self.source.load(name)?,
        };
        let id = self.add(name, display, text);
        self.load_uses(id);
        Some(id)
    }

    fn load_uses(&mut self, id: usize) {
        let ast = self.modules[id].ast.clone();
        for item in &ast.items {
            if let Item::Use(u) = item {
                let name = module_name(u);
                if self.load(&name).is_none() {
                    let known = crate::stdlib::MODULES.iter().copied();
                    let mut d = Diagnostic::error(format!("unknown module `{name}`"), u.span)
                        .with_label(format!("no stdlib module or file `{name}.arch`"));
                    if let Some(s) = did_you_mean(&name, known) {
                        d = d.with_help(format!("did you mean `{s}`?"));
                    }
                    self.diagnostics.push(d);
                }
            }
        }
    }
}

/// Stack for checking: evaluation recurses once per nested layer application.
const CHECK_STACK: usize = 256 << 20;

/// Checks `main` (and builds its entry program unless only checking). Runs on a thread
/// of its own with a large stack, so deeply nested programs end in a diagnostic rather
/// than a stack overflow whatever thread calls this.
pub fn check_file(name: &str, text: &str, source: &dyn ModuleSource, opts: &Options) -> CheckOutput {
    on_big_stack(|| check_file_here(name, text, source, opts))
}

/// Runs `f` on a thread with [`CHECK_STACK`] of stack (inline if no thread can start).
pub fn on_big_stack<T: Send>(f: impl Fn() -> T + Send + Sync) -> T {
    std::thread::scope(|s| {
        let worker = std::thread::Builder::new().stack_size(CHECK_STACK);
        match worker.spawn_scoped(s, &f) {
            Ok(handle) => handle.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
            Err(_) => f(),
        }
    })
}

/// Parses `main` and every module it uses.
pub(super) fn load_main<'s>(name: &str, text: &str, source: &'s dyn ModuleSource) -> (Loader<'s>, usize) {
    let mut loader = Loader {
        source,
        sources: SourceMap::new(),
        modules: Vec::new(),
        by_name: HashMap::new(),
        diagnostics: Vec::new(),
    };
    let main = loader.add("main", name.to_string(), text.to_string());
    loader.load_uses(main);
    if loader.modules[main].ast.items.iter().any(|i| matches!(i, Item::Train(_))) {
        // A `train` block's loss and metrics see the stdlib's losses without a `use`.
        loader.load("losses");
    }
    (loader, main)
}

fn check_file_here(name: &str, text: &str, source: &dyn ModuleSource, opts: &Options) -> CheckOutput {
    let _budget = super::budget::FileBudget::start(super::budget::FILE_FUEL);
    let (loader, main) = load_main(name, text, source);
    let mut out = CheckOutput {
        sources: SourceMap::new(),
        diagnostics: Vec::new(),
        program: None,
        choices: Vec::new(),
        decisions: Vec::new(),
        ast: Some((*loader.modules[main].ast).clone()),
        main_file: loader.modules[main].file,
    };
    let (modules, mut diagnostics) = prepare(&loader);
    let failed = check_modules(&modules, opts, &mut out);
    diagnostics.append(&mut out.diagnostics);
    out.diagnostics = finish(diagnostics, failed);
    if !out.diagnostics.is_empty() {
        out.program = None;
    }
    out.sources = loader.sources;
    out
}

/// Everything before evaluation: the modules with their globals, resolved; and the
/// errors found so far (syntax, unknown modules and imports, clashes, unknown names).
/// None of these stops checking: what they break is poisoned, the rest is checked.
pub(super) fn prepare(loader: &Loader) -> (Vec<ModuleInfo>, Vec<Diagnostic>) {
    let parsed: Vec<super::globals::Parsed> = loader
        .modules
        .iter()
        .map(|p| super::globals::Parsed {
            name: &p.name,
            file: p.file,
            ast: &p.ast,
            syntax_errors: &p.syntax_errors,
            lost_names: &p.lost_names,
        })
        .collect();
    let (mut modules, global_errors) = super::globals::build_globals(&parsed, &loader.by_name);
    let mut diagnostics = loader.diagnostics.clone();
    diagnostics.extend(global_errors);
    let resolution = resolve_module(&modules, 0);
    modules[0].broken.extend(resolution.clashes);
    modules[0].unresolved = resolution.unknown;
    diagnostics.extend(resolution.errors);
    (modules, diagnostics)
}

/// The diagnostics to show; `failed` says whether some check failed, which must have
/// been reported.
fn finish(diagnostics: Vec<Diagnostic>, failed: bool) -> Vec<Diagnostic> {
    let mut shown = crate::diag::finish(diagnostics);
    if failed && shown.is_empty() {
        shown.push(Diagnostic::global("internal error: checking failed without a diagnostic"));
    }
    shown
}

/// What reading a `train` block produced.
pub struct TrainOutput {
    pub sources: SourceMap,
    pub diagnostics: Vec<Diagnostic>,
    pub config: Option<super::train_config::TrainConfig>,
}

/// Checks `main` and reads its `train` block (the first one, or the one whose model is
/// `opts.entry`).
pub fn train_file(name: &str, text: &str, source: &dyn ModuleSource, opts: &Options) -> TrainOutput {
    on_big_stack(|| train_file_here(name, text, source, opts))
}

fn train_file_here(name: &str, text: &str, source: &dyn ModuleSource, opts: &Options) -> TrainOutput {
    let _budget = super::budget::FileBudget::start(super::budget::FILE_FUEL);
    let (loader, _) = load_main(name, text, source);
    let mut out = TrainOutput { sources: SourceMap::new(), diagnostics: Vec::new(), config: None };
    let (modules, mut diagnostics) = prepare(&loader);
    let mut failed = false;
    if diagnostics.is_empty() {
        let config = find_train(&modules[0], opts)
            .map_err(|d| vec![d])
            .and_then(|t| super::train_config::train_config(&modules, opts, t));
        match config {
            Ok(cfg) => out.config = Some(cfg),
            Err(ds) => {
                failed = true;
                diagnostics.extend(ds);
            }
        }
    }
    out.diagnostics = finish(diagnostics, failed);
    out.sources = loader.sources;
    out
}

pub(super) fn find_train<'m>(main: &'m ModuleInfo, opts: &Options) -> R<&'m ast::TrainDef> {
    let trains: Vec<&ast::TrainDef> = main
        .ast
        .items
        .iter()
        .filter_map(|i| match i {
            Item::Train(t) => Some(t),
            _ => None,
        })
        .collect();
    let model_name = |t: &ast::TrainDef| match &t.model.kind {
        ast::ExprKind::Call(c, _) => match &c.kind {
            ast::ExprKind::Name(n) => n.clone(),
            _ => String::new(),
        },
        ast::ExprKind::Name(n) => n.clone(),
        _ => String::new(),
    };
    match &opts.entry {
        Some(e) => trains.into_iter().find(|t| &model_name(t) == e),
        None => trains.into_iter().next(),
    }
    .ok_or_else(|| {
        Diagnostic::global("this file has no `train` block").with_help("add `train Model(..) on data(..) { .. }`")
    })
}

/// Checks the main module (every item, or the entry); returns whether something failed.
fn check_modules(modules: &[ModuleInfo], opts: &Options, out: &mut CheckOutput) -> bool {
    if opts.check_all {
        return check_all_items(modules, opts, out);
    }
    let main = &modules[0];
    let block = match entry_block(main, opts) {
        Ok(b) if main.is_broken(b.def.span) => return true,
        Ok(b) => b,
        // With syntax errors, the entry may be among what did not parse.
        Err(_) if !main.broken.is_empty() => return true,
        Err(d) => {
            out.diagnostics.push(d);
            return true;
        }
    };
    // The choices made are kept when the build fails, so the CLI can say which
    // candidate failed.
    let mut c = Checker::new(modules, opts);
    let built = c.build_entry(&block, EntryKind::Program);
    let built = c.into_errors(built);
    out.choices = std::mem::take(&mut c.choices);
    out.decisions = std::mem::take(&mut c.decisions);
    match built {
        Ok(p) => {
            out.program = Some(p);
            false
        }
        Err(ds) => {
            out.diagnostics.extend(ds);
            true
        }
    }
}

/// A built entry program and the choices made for it, `(name, option)`.
pub type Built = (Program, Vec<(String, String)>);

/// Builds one block as the entry program; on failure, every error found.
pub fn build_entry(
    modules: &[ModuleInfo],
    opts: &Options,
    block: &BlockRef,
    kind: EntryKind,
) -> Result<Built, Vec<Diagnostic>> {
    let mut c = Checker::new(modules, opts);
    let r = c.build_entry(block, kind);
    let program = c.into_errors(r)?;
    Ok((program, std::mem::take(&mut c.choices)))
}

pub(super) fn entry_block(main: &ModuleInfo, opts: &Options) -> R<BlockRef> {
    let blocks: Vec<&ast::BlockDef> = main
        .ast
        .items
        .iter()
        .filter_map(|i| match i {
            Item::Block(b) => Some(b),
            _ => None,
        })
        .collect();
    let pick = match &opts.entry {
        Some(name) => blocks.iter().rev().find(|b| &b.name.node == name).copied().ok_or_else(|| {
            let mut d = Diagnostic::global(format!("no layer, network or operator named `{name}` in this file"));
            if let Some(s) = did_you_mean(name, blocks.iter().map(|b| b.name.node.as_str())) {
                d = d.with_help(format!("did you mean `{s}`?"));
            }
            d
        })?,
        None => blocks
            .iter()
            .rev()
            .find(|b| b.kind != BlockKind::Layer)
            .or(blocks.last())
            .copied()
            .ok_or_else(|| Diagnostic::global("this file defines no network, operator or layer to build"))?,
    };
    Ok(block_ref(main, pick))
}

/// The block value of a main-module item (the item itself when its name was redefined).
fn block_ref(main: &ModuleInfo, b: &ast::BlockDef) -> BlockRef {
    match main.globals.get(&b.name.node) {
        Some(Value::Block(r)) if r.def.span == b.span => r,
        _ => BlockRef { def: Rc::new(b.clone()), module: 0 },
    }
}

/// Checks every item of the main module that parsed and whose names do not clash;
/// returns whether one failed.
fn check_all_items(modules: &[ModuleInfo], opts: &Options, out: &mut CheckOutput) -> bool {
    let main = &modules[0];
    let mut failed = false;
    let items: Vec<&Item> = main.ast.items.iter().filter(|i| !main.is_broken(i.span())).collect();
    for (done, item) in items.iter().enumerate() {
        if super::budget::exhausted() {
            let left = items.len() - done;
            out.diagnostics.push(Diagnostic::global(format!(
                "{left} item{} not checked: this file spent its whole evaluation budget",
                if left == 1 { " was" } else { "s were" }
            )));
            return true;
        }
        let result = match item {
            Item::Block(b) if all_defaulted(b) => {
                build_entry(modules, opts, &block_ref(main, b), EntryKind::Check).map(|_| ())
            }
            Item::Train(t) => super::train_config::check_train(modules, opts, t),
            Item::Adapt(a) => super::adapt::check_adapt(modules, opts, a),
            _ => Ok(()),
        };
        if let Err(ds) = result {
            failed = true;
            out.diagnostics.extend(ds);
        }
    }
    failed
}

/// A block whose parameters all have defaults can be built on its own.
pub fn all_defaulted(b: &ast::BlockDef) -> bool {
    b.params.iter().all(|p| p.default.is_some())
}
