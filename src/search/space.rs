//! The search-space abstraction every strategy works against.
//!
//! A candidate is the list of decisions one build of a space made, in the order the build
//! met them, with the option index taken at each. Decisions are discovered, not declared:
//! a choice inside a branch that another choice disables is simply not met, so the set
//! of decisions depends on the values of earlier ones (conditional choices). A [`Space`]
//! resolves an assignment: the decisions named in `fixed` take the given option, every
//! other decision the build meets takes its first option ([`Rest::First`]) or a seeded
//! random one ([`Rest::Sample`]); the result lists the decisions actually met.

use std::fmt;

/// One decision of a space: its qualified name (`depth`, `repeat_0.2.op`) and the labels
/// of its options.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Decision {
    pub name: String,
    pub options: Vec<String>,
}

/// One candidate: the decisions a build met, in order, and the option taken at each.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Candidate {
    pub decisions: Vec<Decision>,
    pub chosen: Vec<usize>,
}

impl Candidate {
    /// `(name, option index)` for every decision met.
    pub fn assignment(&self) -> Vec<(String, usize)> {
        self.decisions.iter().zip(&self.chosen).map(|(d, &i)| (d.name.clone(), i)).collect()
    }

    /// The option index taken at decision `name`, if the candidate met it.
    pub fn get(&self, name: &str) -> Option<usize> {
        self.decisions.iter().position(|d| d.name == name).map(|i| self.chosen[i])
    }

    /// `name=label` pairs, as `--choices` takes them.
    pub fn labels(&self) -> Vec<(String, String)> {
        self.decisions.iter().zip(&self.chosen).map(|(d, &i)| (d.name.clone(), d.options[i].clone())).collect()
    }

    /// A stable identity: `name=index` pairs joined by commas.
    pub fn key(&self) -> String {
        let parts: Vec<String> = self.assignment().iter().map(|(n, i)| format!("{n}={i}")).collect();
        parts.join(",")
    }
}

impl fmt::Display for Candidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.labels().iter().map(|(n, l)| format!("{n} = {l}")).collect();
        write!(f, "{}", parts.join(", "))
    }
}

/// How decisions not named in an assignment are taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rest {
    /// The first option.
    First,
    /// A random option, drawn from this seed and the decision's name.
    Sample(u64),
}

/// A space that resolves assignments into candidates.
pub trait Space {
    /// The candidate that `fixed` (decision name, option index) and `rest` give. An
    /// entry of `fixed` whose decision the build does not meet is ignored. `Err` when
    /// that candidate does not build (its message says why).
    fn resolve(&mut self, fixed: &[(String, usize)], rest: Rest) -> Result<Candidate, String>;
}
