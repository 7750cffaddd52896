//! Modules, imports and the entry points of checking.
//!
//! A compilation starts from one user file. Its `use` items load modules: the embedded
//! stdlib first (`nn`, `attention`, ...), then user modules through a [`ModuleSource`]
//! (the CLI reads `name.arch` beside the main file; the core does no IO). Each module
//! gets a global scope of its own items plus what it imports; builtins are visible
//! everywhere.

use super::apply::EntryKind;
use super::resolve::resolve_module;
use super::scope::Scope;
use super::value::{BlockRef, Callable, FnRef, Value};
use super::{Checker, R};
use crate::diag::{did_you_mean, Diagnostic};
use crate::tir::Program;
use archc_grammar::ast::{self, BlockKind, Item, UseNames};
use archc_grammar::span::{FileId, SourceMap, Span};
use std::collections::HashMap;
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
}

pub struct ModuleInfo {
    pub name: String,
    pub file: FileId,
    pub ast: Rc<ast::Module>,
    pub globals: Rc<Scope>,
}

/// What checking produced.
pub struct CheckOutput {
    pub sources: SourceMap,
    pub diagnostics: Vec<Diagnostic>,
    /// The entry program, when it was requested and built without errors.
    pub program: Option<Program>,
    /// The choices made for the entry, `(name, option)`.
    pub choices: Vec<(String, String)>,
    /// The main file's syntax tree.
    pub ast: Option<ast::Module>,
    pub main_file: FileId,
}

struct Loader<'s> {
    source: &'s dyn ModuleSource,
    sources: SourceMap,
    modules: Vec<(String, FileId, Rc<ast::Module>)>,
    by_name: HashMap<String, usize>,
    diagnostics: Vec<Diagnostic>,
}

impl Loader<'_> {
    fn add(&mut self, name: &str, display: String, text: String) -> usize {
        let file = self.sources.add(display, text.clone());
        let (module, errors) = archc_grammar::parse(file, &text);
        for e in errors {
            let mut d = Diagnostic::error(format!("syntax error: {}", e.message), e.span);
            if !e.expected.is_empty() {
                d = d.with_help(format!("expected one of: {}", e.expected.join(", ")));
            }
            self.diagnostics.push(d);
        }
        let id = self.modules.len();
        self.modules.push((name.to_string(), file, Rc::new(module)));
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
        let ast = self.modules[id].2.clone();
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

fn module_name(u: &ast::UseItem) -> String {
    u.path.iter().map(|p| p.node.as_str()).collect::<Vec<_>>().join(".")
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
fn on_big_stack<T: Send>(f: impl Fn() -> T + Send + Sync) -> T {
    std::thread::scope(|s| {
        let worker = std::thread::Builder::new().stack_size(CHECK_STACK);
        match worker.spawn_scoped(s, &f) {
            Ok(handle) => handle.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
            Err(_) => f(),
        }
    })
}

/// Parses `main` and every module it uses.
fn load_main<'s>(name: &str, text: &str, source: &'s dyn ModuleSource) -> (Loader<'s>, usize) {
    let mut loader = Loader {
        source,
        sources: SourceMap::new(),
        modules: Vec::new(),
        by_name: HashMap::new(),
        diagnostics: Vec::new(),
    };
    let main = loader.add("main", name.to_string(), text.to_string());
    loader.load_uses(main);
    (loader, main)
}

fn check_file_here(name: &str, text: &str, source: &dyn ModuleSource, opts: &Options) -> CheckOutput {
    let (loader, main) = load_main(name, text, source);
    let main_file = loader.modules[main].1;
    let mut out = CheckOutput {
        sources: SourceMap::new(),
        diagnostics: Vec::new(),
        program: None,
        choices: Vec::new(),
        ast: Some((*loader.modules[main].2).clone()),
        main_file,
    };
    if loader.diagnostics.is_empty() {
        let modules = build_globals(&loader, &mut loader.diagnostics.clone());
        match modules {
            Ok(modules) => check_modules(&modules, opts, &mut out),
            Err(ds) => out.diagnostics.extend(ds),
        }
    }
    out.diagnostics.splice(0..0, loader.diagnostics);
    out.sources = loader.sources;
    out
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
    let (loader, _) = load_main(name, text, source);
    let mut out = TrainOutput { sources: SourceMap::new(), diagnostics: Vec::new(), config: None };
    if loader.diagnostics.is_empty() {
        match build_globals(&loader, &mut Vec::new()) {
            Ok(modules) => {
                let errors = resolve_module(&modules, 0);
                if errors.is_empty() {
                    match find_train(&modules[0], opts) {
                        Ok(t) => match super::train_config::train_config(&modules, opts, t) {
                            Ok(cfg) => out.config = Some(cfg),
                            Err(d) => out.diagnostics.push(d),
                        },
                        Err(d) => out.diagnostics.push(d),
                    }
                }
                out.diagnostics.extend(errors);
            }
            Err(ds) => out.diagnostics.extend(ds),
        }
    }
    out.diagnostics.splice(0..0, loader.diagnostics);
    out.sources = loader.sources;
    out
}

fn find_train<'m>(main: &'m ModuleInfo, opts: &Options) -> R<&'m ast::TrainDef> {
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

fn build_globals(loader: &Loader, _: &mut Vec<Diagnostic>) -> Result<Vec<ModuleInfo>, Vec<Diagnostic>> {
    let mut infos: Vec<ModuleInfo> = Vec::new();
    let mut errors = Vec::new();
    for (id, (name, file, ast)) in loader.modules.iter().enumerate() {
        let globals = Scope::root();
        define_items(ast, id, &globals, &mut errors);
        infos.push(ModuleInfo { name: name.clone(), file: *file, ast: ast.clone(), globals });
    }
    for (id, (_, _, ast)) in loader.modules.iter().enumerate() {
        for item in &ast.items {
            if let Item::Use(u) = item {
                if let Some(&target) = loader.by_name.get(&module_name(u)) {
                    import(&infos, id, target, u, &mut errors);
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(infos)
    } else {
        Err(errors)
    }
}

fn define_items(ast: &ast::Module, module: usize, globals: &Scope, errors: &mut Vec<Diagnostic>) {
    let mut seen: HashMap<String, Span> = HashMap::new();
    for item in &ast.items {
        let (name, value) = match item {
            Item::Block(b) => (&b.name, Value::Block(BlockRef { def: Rc::new(b.clone()), module })),
            Item::Fn(f) => match &f.name {
                Some(n) => (n, Value::Func(Callable::User(FnRef { def: Rc::new(f.clone()), module }))),
                None => continue,
            },
            _ => continue,
        };
        if let Some(prev) = seen.insert(name.node.clone(), name.span) {
            errors.push(
                Diagnostic::error(format!("`{}` is defined twice", name.node), name.span)
                    .with_related(prev, "first defined here"),
            );
        }
        globals.set(name.node.clone(), value);
    }
}

fn import(infos: &[ModuleInfo], into: usize, from: usize, u: &ast::UseItem, errors: &mut Vec<Diagnostic>) {
    let target = &infos[from];
    let dest = &infos[into].globals;
    match &u.names {
        UseNames::Module => dest.set(u.path.last().expect("non-empty path").node.clone(), Value::Module(from)),
        UseNames::Glob => {
            for name in own_names(&target.ast) {
                if let Some(v) = target.globals.get(&name) {
                    dest.set(name, v);
                }
            }
        }
        UseNames::List(names) => {
            for n in names {
                match target.globals.get(&n.node).or_else(|| super::builtins::lookup(&n.node)) {
                    Some(v) => dest.set(n.node.clone(), v),
                    None => {
                        let names = own_names(&target.ast);
                        let mut d =
                            Diagnostic::error(format!("module `{}` has no item `{}`", target.name, n.node), n.span);
                        if let Some(s) = did_you_mean(&n.node, names.iter().map(|s| s.as_str())) {
                            d = d.with_help(format!("did you mean `{s}`?"));
                        }
                        errors.push(d);
                    }
                }
            }
        }
    }
}

fn own_names(m: &ast::Module) -> Vec<String> {
    m.items
        .iter()
        .filter_map(|i| match i {
            Item::Block(b) => Some(b.name.node.clone()),
            Item::Fn(f) => f.name.as_ref().map(|n| n.node.clone()),
            _ => None,
        })
        .collect()
}

fn check_modules(modules: &[ModuleInfo], opts: &Options, out: &mut CheckOutput) {
    let main = &modules[0];
    let resolve_errors = resolve_module(modules, 0);
    if !resolve_errors.is_empty() {
        out.diagnostics.extend(resolve_errors);
        return;
    }
    if opts.check_all {
        check_all_items(modules, opts, out);
        return;
    }
    match entry_block(main, opts) {
        Ok(b) => match build_entry(modules, opts, &b, EntryKind::Program) {
            Ok((p, choices)) => {
                out.program = Some(p);
                out.choices = choices;
            }
            Err(d) => out.diagnostics.push(d),
        },
        Err(d) => out.diagnostics.push(d),
    }
}

/// Builds one block as the entry program.
pub fn build_entry(
    modules: &[ModuleInfo],
    opts: &Options,
    block: &BlockRef,
    kind: EntryKind,
) -> R<(Program, Vec<(String, String)>)> {
    let mut c = Checker::new(modules, opts);
    let program = c.build_entry(block, kind)?;
    Ok((program, c.choices))
}

fn entry_block(main: &ModuleInfo, opts: &Options) -> R<BlockRef> {
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
    match main.globals.get(&pick.name.node) {
        Some(Value::Block(b)) => Ok(b),
        _ => Err(Diagnostic::global("internal: entry block not in scope")),
    }
}

fn check_all_items(modules: &[ModuleInfo], opts: &Options, out: &mut CheckOutput) {
    let main = &modules[0];
    for item in &main.ast.items {
        let result = match item {
            Item::Block(b) if all_defaulted(b) => match main.globals.get(&b.name.node) {
                Some(Value::Block(r)) => build_entry(modules, opts, &r, EntryKind::Check).map(|_| ()),
                _ => Ok(()),
            },
            Item::Train(t) => super::experiment::check_train(modules, opts, t),
            Item::Adapt(a) => super::experiment::check_adapt(modules, opts, a),
            _ => Ok(()),
        };
        if let Err(d) = result {
            out.diagnostics.push(d);
        }
    }
}

/// A block whose parameters all have defaults can be built on its own.
pub fn all_defaulted(b: &ast::BlockDef) -> bool {
    b.params.iter().all(|p| p.default.is_some())
}
