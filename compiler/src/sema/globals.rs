//! The global scope of each module: its own items, then what its `use` items import.
//!
//! Contract: nothing here stops checking. A name defined twice is an error at the second
//! definition, which then counts as broken (it is not checked, and using it gives poison).
//! A name that cannot be had (an item that did not parse, an import from a module that
//! could not be loaded, an import of a missing item) is bound to
//! [`Value::Poison`], so its uses are not reported again; a glob import of a missing
//! module makes the module's unknown names quiet.

use super::modules::ModuleInfo;
use super::scope::Scope;
use super::value::{BlockRef, Callable, FnRef, Value};
use crate::diag::{did_you_mean, Diagnostic};
use archc_grammar::ast::{self, Item, UseNames};
use archc_grammar::span::{FileId, Span};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

/// A parsed module as the loader keeps it.
pub struct Parsed<'a> {
    pub name: &'a str,
    pub file: FileId,
    pub ast: &'a Rc<ast::Module>,
    pub syntax_errors: &'a [Span],
    /// Names that items which did not parse would have defined.
    pub lost_names: &'a [String],
}

/// The modules with their globals, and the errors found on the way.
pub fn build_globals(parsed: &[Parsed], by_name: &HashMap<String, usize>) -> (Vec<ModuleInfo>, Vec<Diagnostic>) {
    let mut errors = Vec::new();
    let mut infos: Vec<ModuleInfo> = parsed.iter().enumerate().map(|(id, p)| own_items(p, id, &mut errors)).collect();
    for (id, p) in parsed.iter().enumerate() {
        for item in &p.ast.items {
            let Item::Use(u) = item else { continue };
            match by_name.get(&module_name(u)) {
                Some(&target) => import(&infos, id, target, u, &mut errors),
                None => poison_import(&mut infos[id], u),
            }
        }
    }
    (infos, errors)
}

pub fn module_name(u: &ast::UseItem) -> String {
    u.path.iter().map(|p| p.node.as_str()).collect::<Vec<_>>().join(".")
}

/// A module's own items in a fresh global scope.
fn own_items(p: &Parsed, id: usize, errors: &mut Vec<Diagnostic>) -> ModuleInfo {
    let globals = Scope::root();
    let mut broken = p.syntax_errors.to_vec();
    define_items(p.ast, id, &globals, errors, &mut broken);
    for n in p.lost_names {
        if globals.get(n).is_none() {
            globals.set(n.clone(), Value::Poison);
        }
    }
    ModuleInfo {
        name: p.name.to_string(),
        file: p.file,
        ast: p.ast.clone(),
        globals,
        broken,
        unresolved: HashSet::new(),
        unknown_glob: false,
    }
}

fn define_items(
    ast: &ast::Module,
    module: usize,
    globals: &Scope,
    errors: &mut Vec<Diagnostic>,
    broken: &mut Vec<Span>,
) {
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
            broken.push(name.span);
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
                        dest.set(n.node.clone(), Value::Poison);
                    }
                }
            }
        }
    }
}

/// `use` of a module that could not be loaded (already reported): what it would have
/// imported is poisoned.
fn poison_import(info: &mut ModuleInfo, u: &ast::UseItem) {
    match &u.names {
        UseNames::Module => info.globals.set(u.path.last().expect("non-empty path").node.clone(), Value::Poison),
        UseNames::List(names) => names.iter().for_each(|n| info.globals.set(n.node.clone(), Value::Poison)),
        UseNames::Glob => info.unknown_glob = true,
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
