//! A supernet's space: every subnet of a `.arch` space, the decisions that make it, and
//! the sampling rules that pick the subnets a step trains.
//!
//! Contract:
//! - [`Subnets::enumerate`] walks the decision tree depth first (each node built with the
//!   decisions assigned so far, the others at their first option; validate-only builds)
//!   and keeps every leaf: the decisions in the order the build met them, with their
//!   option labels. More than [`MAX_SUBNETS`] leaves is an error.
//! - A leaf's *structure* is its assignment without the elastic decisions (the `shared`
//!   choices that a supernet build turns into size symbols, read from the build's
//!   `choice:NAME` arguments). Subnets of one structure share one compiled step, if
//!   each one's own build with size symbols gives the same functions (a width read as a
//!   number, `if width > 32`, would make them differ); otherwise, and where a build with
//!   size symbols fails (`groups = width`), each subnet is a structure of its own, built
//!   with its widths as numbers.
//! - Sampling goes decision by decision, as the reference implementations draw a subnet:
//!   the first decision not yet fixed among the leaves that agree with those fixed, then
//!   the next. [`Rule::Largest`] and [`Rule::Smallest`] take each int decision's largest
//!   or smallest option; [`Rule::Level`] takes, for every int decision, the option at the
//!   same relative position of its options sorted by value (SortedNet's nested subnets);
//!   every other decision, and every decision under [`Rule::Uniform`], is drawn uniformly.

use archc_compiler::sema::modules::ChoiceRecord;
use archc_compiler::sema::space::SpaceFile;
use archc_compiler::sema::Options;
use rand::Rng;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

/// The most subnets a supernet's space may have.
pub const MAX_SUBNETS: usize = 20_000;

/// One subnet: its decisions (qualified name, option index) in build order.
pub type Assignment = Vec<(String, usize)>;

/// Every subnet of a space (see the module docs).
pub struct Subnets {
    pub leaves: Vec<Leaf>,
    /// Option labels of every decision, by qualified name.
    pub options: BTreeMap<String, Vec<String>>,
}

/// One subnet and its structure.
#[derive(Clone, Debug)]
pub struct Leaf {
    pub assignment: Assignment,
    /// Index into [`Subnets::structures`].
    pub structure: usize,
    /// The elastic decisions' widths: (symbol-carrying argument `choice:NAME`, width).
    pub widths: Vec<(String, i64)>,
}

/// The decisions that fix a compiled step, and whether its widths are size symbols (else
/// the key is a whole assignment, built with its widths as numbers).
#[derive(Clone, Debug, PartialEq)]
pub struct Structure {
    pub key: Assignment,
    pub symbolic: bool,
}

/// The kind of dimension a decision chooses, in the order progressive shrinking makes
/// them elastic (Once-for-All: kernel, then depth, then width).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// A choice among layers (an operation, a kernel size).
    Layer,
    /// A choice of ints that is not `shared` (a depth).
    Depth,
    /// A `shared` choice (an elastic width).
    Width,
}

/// How a subnet is drawn (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rule {
    Uniform,
    Largest,
    Smallest,
    /// Every int decision at this relative position (0: smallest, 1: largest).
    Level(f64),
}

impl Subnets {
    /// Enumerates the subnets of `file` (see the module docs); `base` carries the
    /// supernet build options.
    pub fn enumerate(file: &SpaceFile, base: &Options) -> Result<(Subnets, Vec<Structure>), String> {
        let opts = Options { validate_only: true, elastic_symbols: true, option_tags: true, ..base.clone() };
        let mut walk = Walk { file, opts, leaves: Vec::new(), options: BTreeMap::new() };
        walk.node(Vec::new())?;
        let Walk { leaves, options, .. } = walk;
        // Keys whose subnets' symbolic builds differ cannot share a program.
        let key_of = |l: &WalkLeaf| -> Assignment {
            l.assignment.iter().filter(|(n, _)| !l.elastic.contains(n)).cloned().collect()
        };
        let mut prints: BTreeMap<Assignment, Option<u64>> = BTreeMap::new();
        for l in &leaves {
            let seen = prints.entry(key_of(l)).or_insert(l.fingerprint);
            if *seen != l.fingerprint {
                *seen = None;
            }
        }
        let mut structures: Vec<Structure> = Vec::new();
        let mut out = Vec::with_capacity(leaves.len());
        for l in leaves {
            let concretised = prints[&key_of(&l)].is_none();
            let WalkLeaf { assignment, elastic, .. } = l;
            let key: Assignment = match concretised {
                true => assignment.clone(),
                false => assignment.iter().filter(|(n, _)| !elastic.contains(n)).cloned().collect(),
            };
            let structure = match structures.iter().position(|s| s.key == key) {
                Some(i) => i,
                None => {
                    structures.push(Structure { key, symbolic: !concretised });
                    structures.len() - 1
                }
            };
            let widths = match concretised {
                true => Vec::new(),
                false => elastic
                    .iter()
                    .map(|n| {
                        let (_, i) = assignment.iter().find(|(d, _)| d == n).expect("an elastic decision is met");
                        let label = &options[n][*i];
                        let w = label.parse::<i64>().map_err(|_| format!("shared choice `{n}`: option `{label}`"))?;
                        Ok((format!("choice:{n}"), w))
                    })
                    .collect::<Result<_, String>>()?,
            };
            out.push(Leaf { assignment, structure, widths });
        }
        Ok((Subnets { leaves: out, options }, structures))
    }

    /// Draws a subnet by `rule` (see the module docs); returns its leaf index.
    pub fn sample(&self, rule: Rule, rng: &mut impl Rng) -> usize {
        self.sample_frozen(rule, &|_| false, rng)
    }

    /// What kind of dimension decision `name` is.
    pub fn kind(&self, name: &str) -> Kind {
        let carrier = format!("choice:{name}");
        if self.leaves.iter().any(|l| l.widths.iter().any(|(n, _)| *n == carrier)) {
            return Kind::Width;
        }
        match self.options[name].iter().all(|l| l.parse::<i64>().is_ok()) {
            true => Kind::Depth,
            false => Kind::Layer,
        }
    }

    /// [`Self::sample`] with the decisions `frozen` names at their largest option (an
    /// int decision) or their first (another), as progressive shrinking holds the
    /// dimensions not yet elastic.
    pub fn sample_frozen(&self, rule: Rule, frozen: &dyn Fn(&str) -> bool, rng: &mut impl Rng) -> usize {
        self.sample_with(&mut |name, opts| match frozen(name) {
            true => self.held(name, opts),
            false => self.pick(name, opts, rule, rng),
        })
    }

    /// Draws a subnet decision by decision, `pick` choosing each decision's option
    /// among those still available (indices, ascending); returns its leaf index.
    pub fn sample_with(&self, pick: &mut dyn FnMut(&str, &[usize]) -> usize) -> usize {
        let mut alive: Vec<usize> = (0..self.leaves.len()).collect();
        let mut depth = 0;
        while alive.len() > 1 {
            // The next decision: the one at `depth` of the live leaves (they agree on
            // everything before it, so they met it in the same place).
            let Some((name, _)) = self.leaves[alive[0]].assignment.get(depth).cloned() else { break };
            let mut opts: Vec<usize> = alive.iter().map(|&l| self.leaves[l].assignment[depth].1).collect();
            opts.sort_unstable();
            opts.dedup();
            let pick = pick(&name, &opts);
            alive.retain(|&l| self.leaves[l].assignment[depth].1 == pick);
            depth += 1;
        }
        alive[0]
    }

    /// The option of decision `name` among `available` (indices) that `rule` takes.
    fn pick(&self, name: &str, available: &[usize], rule: Rule, rng: &mut impl Rng) -> usize {
        let labels = &self.options[name];
        let ints: Option<Vec<(i64, usize)>> =
            available.iter().map(|&i| labels[i].parse::<i64>().ok().map(|v| (v, i))).collect();
        let uniform = available[rng.random_range(0..available.len())];
        let Some(mut ints) = ints else { return uniform };
        ints.sort_unstable();
        match rule {
            Rule::Uniform => uniform,
            Rule::Largest => ints[ints.len() - 1].1,
            Rule::Smallest => ints[0].1,
            Rule::Level(at) => ints[((ints.len() - 1) as f64 * at.clamp(0.0, 1.0)).round() as usize].1,
        }
    }

    /// The option a frozen decision holds: its largest int, or its first.
    fn held(&self, name: &str, available: &[usize]) -> usize {
        let labels = &self.options[name];
        let largest = available.iter().filter_map(|&i| labels[i].parse::<i64>().ok().map(|v| (v, i))).max();
        largest.map_or(available[0], |(_, i)| i)
    }

    /// The subnets whose decisions agree with `pins` (`NAME=VALUE`, an int option by
    /// value, another by index, as `--choices` takes them), with the structures they use
    /// (renumbered). A name no decision has, a value no option has, or pins no subnet
    /// meets is an error.
    pub fn pinned(
        self,
        structures: Vec<Structure>,
        pins: &[(String, String)],
    ) -> Result<(Subnets, Vec<Structure>), String> {
        let mut fixed = Vec::new();
        for (name, value) in pins {
            let (qualified, labels) =
                self.options.iter().find(|(q, _)| *q == name || q.ends_with(&format!(".{name}"))).ok_or_else(|| {
                    format!("the space has no choice `{name}` (choices: {})", self.names().join(", "))
                })?;
            let index = labels
                .iter()
                .position(|l| l == value)
                .or_else(|| value.parse::<usize>().ok().filter(|&i| i < labels.len()))
                .ok_or_else(|| format!("choice `{name}` has no option `{value}` (options: {})", labels.join(", ")))?;
            fixed.push((qualified.clone(), index));
        }
        let agrees = |l: &Leaf| fixed.iter().all(|(n, i)| l.assignment.iter().all(|(m, j)| m != n || i == j));
        let mut kept: Vec<Leaf> = self.leaves.into_iter().filter(|l| agrees(l)).collect();
        if kept.is_empty() {
            return Err("no subnet of the space makes these choices".into());
        }
        let mut used: Vec<usize> = kept.iter().map(|l| l.structure).collect();
        used.sort_unstable();
        used.dedup();
        for l in &mut kept {
            l.structure = used.binary_search(&l.structure).expect("a kept structure");
        }
        let structures = used.iter().map(|&s| structures[s].clone()).collect();
        Ok((Subnets { leaves: kept, options: self.options }, structures))
    }

    /// The decisions' qualified names.
    pub fn names(&self) -> Vec<String> {
        self.options.keys().cloned().collect()
    }

    /// The options of decision `name` that some subnet takes (indices, ascending).
    pub fn taken(&self, name: &str) -> Vec<usize> {
        let mut out: Vec<usize> =
            self.leaves.iter().flat_map(|l| l.assignment.iter().filter(|(n, _)| n == name).map(|(_, i)| *i)).collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The leaf with exactly this assignment.
    pub fn find(&self, assignment: &[(String, usize)]) -> Option<usize> {
        self.leaves.iter().position(|l| l.assignment == assignment)
    }
}

/// A leaf as the walk found it: its assignment, its elastic decisions, and a hash of its
/// functions as built with size symbols (`None` where that build failed).
struct WalkLeaf {
    assignment: Assignment,
    elastic: Vec<String>,
    fingerprint: Option<u64>,
}

/// The depth-first walk of [`Subnets::enumerate`].
struct Walk<'a, 's> {
    file: &'a SpaceFile<'s>,
    opts: Options,
    leaves: Vec<WalkLeaf>,
    options: BTreeMap<String, Vec<String>>,
}

impl Walk<'_, '_> {
    fn node(&mut self, prefix: Assignment) -> Result<(), String> {
        let mut built = self.file.build_assigned(&self.opts, &prefix, None);
        let fingerprint = built.program.as_ref().ok().map(|p| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            format!("{:?}", p.funcs).hash(&mut h);
            h.finish()
        });
        if built.program.is_err() {
            // A width the build needs as a number (`groups = width`): this subnet is
            // built with its widths as numbers.
            let concrete = Options { elastic_symbols: false, ..self.opts.clone() };
            built = self.file.build_assigned(&concrete, &prefix, None);
        }
        let program = built.program.map_err(|d| {
            let shown: Vec<String> = prefix.iter().map(|(n, i)| format!("{n}={i}")).collect();
            let first = d.first().map_or(String::new(), |d| d.message.clone());
            format!("the subnet {{{}}} does not build: {first}", shown.join(", "))
        })?;
        self.remember(&built.decisions);
        let next = built.decisions.iter().find(|d| !prefix.iter().any(|(n, _)| n == &d.name));
        let Some(next) = next else {
            if self.leaves.len() >= MAX_SUBNETS {
                return Err(format!("the space has more than {MAX_SUBNETS} subnets; a supernet enumerates its space"));
            }
            let elastic: Vec<String> =
                program.main().arg_names.iter().filter_map(|a| a.strip_prefix("choice:").map(str::to_string)).collect();
            let assignment = built.decisions.iter().map(|d| (d.name.clone(), d.chosen)).collect();
            self.leaves.push(WalkLeaf { assignment, elastic, fingerprint });
            return Ok(());
        };
        for i in 0..next.options.len() {
            let mut p = prefix.clone();
            p.push((next.name.clone(), i));
            self.node(p)?;
        }
        Ok(())
    }

    fn remember(&mut self, decisions: &[ChoiceRecord]) {
        for d in decisions {
            self.options.entry(d.name.clone()).or_insert_with(|| d.options.clone());
        }
    }
}
