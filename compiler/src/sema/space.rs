//! Search spaces: one parse, many candidate builds, and the whole space enumerated.
//!
//! A [`SpaceFile`] parses and resolves a file once; [`SpaceFile::build`] builds the
//! candidate an [`Options::choices`] selects and returns the decisions the build met
//! ([`ChoiceRecord`]: qualified name, every option's label, the option taken, the span).
//! The model is the one the file's `train` block names when it has one (what a search
//! trains), else the entry block with its defaults.
//!
//! [`SpaceFile::enumerate`] walks the decision tree depth first: a node is an assignment
//! of the decisions met so far; its build (every other decision at its first option)
//! names the next decision, and each option of it is a child. The first child's build
//! is the node's own, so every candidate is built exactly once: the walk counts the
//! candidates exactly, conditional decisions included (a decision a branch disables is
//! never met), and proves each one builds, which is the checker's proof that its shapes
//! are valid. A walk that passes its limit stops; [`SpaceFile::count_by_structure`] then
//! counts by factoring out decisions whose options leave the rest of the space unchanged,
//! and the caller checks a sample. The first candidate that fails is returned with the
//! decisions involved: those for which some other option makes it build.
//!
//! Builds need a large stack: call these on a thread made with `modules::on_big_stack`.

use super::modules::{entry_block, find_train, load_main, prepare, ChoiceMode, ChoiceRecord, Loader, ModuleInfo};
use super::{CheckOutput, Options};
use crate::diag::Diagnostic;
use crate::tir::Program;
use archc_grammar::span::SourceMap;
use std::time::Instant;

/// A parsed and resolved file whose candidates can be built one after another.
pub struct SpaceFile<'s> {
    loader: Loader<'s>,
    modules: Vec<ModuleInfo>,
    /// Errors found before any build (syntax, names): with any, nothing is built.
    pub diagnostics: Vec<Diagnostic>,
    /// The main file's name, as given to [`SpaceFile::open`].
    pub name: String,
}

/// One candidate's build.
pub struct SpaceBuild {
    pub program: Result<Program, Vec<Diagnostic>>,
    pub decisions: Vec<ChoiceRecord>,
}

impl SpaceBuild {
    /// `(name, option index)` of every decision met.
    pub fn assignment(&self) -> Vec<(String, usize)> {
        self.decisions.iter().map(|d| (d.name.clone(), d.chosen)).collect()
    }
}

/// A candidate that does not build.
pub struct Failure {
    /// The decisions its build met before it failed.
    pub decisions: Vec<ChoiceRecord>,
    pub diagnostics: Vec<Diagnostic>,
    /// Indices into `decisions` of those with another option that makes it build.
    pub involved: Vec<usize>,
}

/// What walking a space found.
pub struct Enumeration {
    /// The candidates counted (all of them when `complete`).
    pub count: u128,
    /// Whether every candidate was built.
    pub complete: bool,
    pub failure: Option<Failure>,
    /// The local names of the decisions met (`depth`, `op` for `repeat_0.1.op`), in the
    /// order first met.
    pub names: Vec<String>,
}

impl<'s> SpaceFile<'s> {
    /// Parses and resolves `text` and the modules it uses.
    pub fn open(name: &str, text: &str, source: &'s dyn super::ModuleSource) -> SpaceFile<'s> {
        let (loader, _) = load_main(name, text, source);
        let (modules, diagnostics) = prepare(&loader);
        let diagnostics = crate::diag::finish(diagnostics);
        SpaceFile { loader, modules, diagnostics, name: name.to_string() }
    }

    pub fn sources(&self) -> &SourceMap {
        &self.loader.sources
    }

    /// Builds the candidate `opts.choices` selects (inference mode unless `opts.training`).
    pub fn build(&self, opts: &Options) -> SpaceBuild {
        let main = &self.modules[0];
        if let Ok(t) = find_train(main, opts) {
            let (program, decisions) = super::experiment::build_model_recorded(&self.modules, opts, &t.model);
            return SpaceBuild { program, decisions };
        }
        let block = match entry_block(main, opts) {
            Ok(b) => b,
            Err(d) => return SpaceBuild { program: Err(vec![d]), decisions: Vec::new() },
        };
        let mut c = super::Checker::new(&self.modules, opts);
        let r = c.build_entry(&block, super::apply::EntryKind::Program);
        let program = c.into_errors(r);
        SpaceBuild { program, decisions: std::mem::take(&mut c.decisions) }
    }

    /// The `train` block's configuration for the candidate `opts.choices` selects.
    pub fn train_config(&self, opts: &Options) -> Result<super::train_config::TrainConfig, Vec<Diagnostic>> {
        let t = find_train(&self.modules[0], opts).map_err(|d| vec![d])?;
        super::train_config::train_config(&self.modules, opts, t)
    }

    /// The candidate with `fixed` decisions and every other at its first option.
    pub fn build_assigned(&self, base: &Options, fixed: &[(String, usize)], seed: Option<u64>) -> SpaceBuild {
        let opts = Options { choices: ChoiceMode::Assign { fixed: fixed.to_vec(), seed }, ..base.clone() };
        self.build(&opts)
    }

    /// Builds every candidate, up to `limit` of them and until `deadline`.
    pub fn enumerate(&self, base: &Options, limit: u128, deadline: Option<Instant>) -> Enumeration {
        self.enumerate_from(base, &[], limit, deadline)
    }

    /// [`Self::enumerate`] of the subtree below `prefix` (decisions in the order the walk
    /// assigns them, as [`Self::subtrees`] gives them).
    pub fn enumerate_from(
        &self,
        base: &Options,
        prefix: &[(String, usize)],
        limit: u128,
        deadline: Option<Instant>,
    ) -> Enumeration {
        let mut walk =
            Walk { file: self, base, limit, deadline, count: 0, stopped: false, failure: None, names: Vec::new() };
        let root = self.build_assigned(base, prefix, None);
        walk.node(prefix.to_vec(), root);
        let complete = !walk.stopped && walk.failure.is_none();
        Enumeration { count: walk.count, complete, failure: walk.failure, names: walk.names }
    }

    /// At least `want` disjoint subtrees that together hold every candidate, in the
    /// walk's order (each given by its prefix), found by expanding the decision tree
    /// breadth first; fewer when the space is smaller. Enumerating each and adding up
    /// gives [`Self::enumerate`]'s count, so the subtrees can be walked in parallel.
    pub fn subtrees(&self, base: &Options, want: usize) -> Vec<Vec<(String, usize)>> {
        let mut level: Vec<Vec<(String, usize)>> = vec![Vec::new()];
        while level.len() < want {
            let mut next = Vec::new();
            let mut grew = false;
            for prefix in &level {
                let b = self.build_assigned(base, prefix, None);
                let d = b.program.is_ok().then(|| next_decision(&b.decisions, prefix)).flatten();
                match d {
                    Some(i) => {
                        grew = true;
                        let d = &b.decisions[i];
                        next.extend((0..d.options.len()).map(|k| with(prefix, &d.name, k)));
                    }
                    None => next.push(prefix.clone()),
                }
            }
            level = next;
            if !grew {
                break;
            }
        }
        level
    }

    /// The number of candidates, counted by structure: a decision whose every option
    /// leaves the decisions after it unchanged (names and option counts, the rest at
    /// their first options) multiplies the count below its first option. Exact when
    /// no decision changes the space only in combination with a later one. `None` past
    /// `u128` or when a probe build fails (enumerate to find out why).
    pub fn count_by_structure(&self, base: &Options, deadline: Option<Instant>) -> Option<u128> {
        let root = self.build_assigned(base, &[], None);
        self.count_node(base, &[], root, deadline)
    }

    fn count_node(
        &self,
        base: &Options,
        prefix: &[(String, usize)],
        b: SpaceBuild,
        deadline: Option<Instant>,
    ) -> Option<u128> {
        b.program.as_ref().ok()?;
        if deadline.is_some_and(|d| Instant::now() > d) {
            return None;
        }
        let Some(next) = next_decision(&b.decisions, prefix) else { return Some(1) };
        let d = b.decisions[next].clone();
        let mut children = vec![b];
        for i in 1..d.options.len() {
            children.push(self.build_assigned(base, &with(prefix, &d.name, i), None));
        }
        let shape = |c: &SpaceBuild| -> Vec<(String, usize)> {
            c.decisions
                .iter()
                .filter(|x| x.name != d.name && !prefix.iter().any(|(n, _)| n == &x.name))
                .map(|x| (x.name.clone(), x.options.len()))
                .collect()
        };
        let first = shape(&children[0]);
        if children.iter().all(|c| c.program.is_ok() && shape(c) == first) {
            let child = children.swap_remove(0);
            let below = self.count_node(base, &with(prefix, &d.name, 0), child, deadline)?;
            return below.checked_mul(d.options.len() as u128);
        }
        let mut total: u128 = 0;
        for (i, c) in children.into_iter().enumerate() {
            total = total.checked_add(self.count_node(base, &with(prefix, &d.name, i), c, deadline)?)?;
        }
        Some(total)
    }

    /// The decisions of a failing build for which another option makes it build.
    pub fn involved(&self, base: &Options, decisions: &[ChoiceRecord]) -> Vec<usize> {
        let fixed: Vec<(String, usize)> = decisions.iter().map(|d| (d.name.clone(), d.chosen)).collect();
        (0..decisions.len())
            .filter(|&j| {
                (0..decisions[j].options.len()).filter(|&i| i != decisions[j].chosen).any(|i| {
                    let mut f = fixed.clone();
                    f[j].1 = i;
                    self.build_assigned(base, &f, None).program.is_ok()
                })
            })
            .collect()
    }
}

/// The index of the first decision met that `prefix` does not assign.
fn next_decision(decisions: &[ChoiceRecord], prefix: &[(String, usize)]) -> Option<usize> {
    decisions.iter().position(|d| !prefix.iter().any(|(n, _)| n == &d.name))
}

fn with(prefix: &[(String, usize)], name: &str, i: usize) -> Vec<(String, usize)> {
    let mut v = prefix.to_vec();
    v.push((name.to_string(), i));
    v
}

struct Walk<'a, 's> {
    file: &'a SpaceFile<'s>,
    base: &'a Options,
    limit: u128,
    deadline: Option<Instant>,
    count: u128,
    stopped: bool,
    failure: Option<Failure>,
    names: Vec<String>,
}

impl Walk<'_, '_> {
    fn node(&mut self, prefix: Vec<(String, usize)>, b: SpaceBuild) {
        if self.stopped || self.failure.is_some() {
            return;
        }
        let next = if b.program.is_ok() { next_decision(&b.decisions, &prefix) } else { None };
        let Some(next) = next else { return self.leaf(b) };
        let d = b.decisions[next].clone();
        self.node(with(&prefix, &d.name, 0), b);
        for i in 1..d.options.len() {
            if self.stopped || self.failure.is_some() {
                return;
            }
            let child = with(&prefix, &d.name, i);
            let cb = self.file.build_assigned(self.base, &child, None);
            self.node(child, cb);
        }
    }

    fn leaf(&mut self, b: SpaceBuild) {
        add_local_names(&mut self.names, &b.decisions);
        match b.program {
            Ok(_) => {
                self.count += 1;
                let late = self.deadline.is_some_and(|d| self.count % 64 == 0 && Instant::now() > d);
                self.stopped |= self.count >= self.limit || late;
            }
            Err(diagnostics) => {
                let involved = self.file.involved(self.base, &b.decisions);
                self.failure = Some(Failure { decisions: b.decisions, diagnostics, involved });
            }
        }
    }
}

/// Adds the local names of `decisions` not in `names` yet.
pub fn add_local_names(names: &mut Vec<String>, decisions: &[ChoiceRecord]) {
    for d in decisions {
        let local = d.name.rsplit('.').next().unwrap_or(&d.name);
        if !names.iter().any(|n| n == local) {
            names.push(local.to_string());
        }
    }
}

/// Whether a check output's build met any decision (the file is a search space).
pub fn is_space(out: &CheckOutput) -> bool {
    !out.decisions.is_empty()
}
