//! Search-space choices on the command line: `--choices NAME=VALUE,...` must name choices
//! the space has (a misspelt name is an error, never silently ignored), and the choices a
//! build made are shown in one line.
//!
//! A name is known when the build made a choice of that name (qualified, `repeat_0.2.op`,
//! or by its local name `op`) or when a `choose NAME` statement appears in the user's
//! sources: a choice that exists but was not reached in this candidate (inside a branch
//! another choice disabled) is not a typo.
//!
//! A training run records its candidate in the run folder ([`RECORD_FILE`]), so that
//! `eval` of its checkpoint builds the same candidate when none is named.
//! [`EntryFlags`] are the flags that select what a command builds from a file.

use archc_compiler::diag::did_you_mean;
use archc_compiler::sema::{ChoiceMode, Options};
use archc_grammar::lexer::{lex, Tok};
use archc_grammar::span::SourceMap;
use std::collections::BTreeSet;

/// What to build from a file: the entry block, its arguments and the search-space
/// choices (flattened into a command's arguments).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct EntryFlags {
    /// The block to build (default: the last network or operator in the file).
    #[arg(long)]
    pub entry: Option<String>,
    /// Values for the entry's parameters: `--args hidden=64,classes=10`.
    #[arg(long, value_name = "NAME=VALUE,...")]
    pub args: Option<String>,
    /// Draw every search-space choice at random with this seed.
    #[arg(long, conflicts_with = "choices")]
    pub sample: Option<u64>,
    /// Fix choices: `--choices depth=3,op=1` (ints by value, other options by index).
    #[arg(long, value_name = "NAME=VALUE,...")]
    pub choices: Option<String>,
}

impl EntryFlags {
    /// Whether any flag is given.
    pub fn any(&self) -> bool {
        self.entry.is_some() || self.args.is_some() || self.sample.is_some() || self.choices.is_some()
    }

    /// The build options the flags give (inference mode).
    pub fn options(&self) -> Result<Options, String> {
        let choices = match (&self.sample, &self.choices) {
            (Some(seed), _) => ChoiceMode::Sample(*seed),
            (None, Some(c)) => ChoiceMode::Explicit(crate::driver::parse_pairs(c)?),
            (None, None) => ChoiceMode::First,
        };
        let args = self.args.as_deref().map(crate::driver::parse_pairs).transpose()?.unwrap_or_default();
        Ok(Options { choices, entry: self.entry.clone(), args, ..Options::default() })
    }
}

/// The names of every `choose NAME` in the user's sources (the stdlib has none).
pub fn declared(sources: &SourceMap) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (_, f) in sources.files() {
        if f.name.starts_with("<stdlib>") {
            continue;
        }
        let (toks, _) = lex(&f.text);
        for w in toks.windows(2) {
            if let (Tok::Choose, Tok::Ident(name)) = (&w[0].1, &w[1].1) {
                out.insert(name.clone());
            }
        }
    }
    out
}

/// Checks every name of `--choices` against the choices `made` and the `declared` ones.
pub fn check_names(
    given: &[(String, String)],
    made: &[(String, String)],
    declared: &BTreeSet<String>,
) -> Result<(), String> {
    let local = |q: &str| q.rsplit('.').next().unwrap_or(q).to_string();
    let mut known: BTreeSet<String> = declared.clone();
    for (q, _) in made {
        known.insert(q.clone());
        known.insert(local(q));
    }
    for (name, value) in given {
        if known.contains(name) || declared.contains(&local(name)) {
            continue;
        }
        let mut msg = if declared.is_empty() {
            format!("`--choices {name}={value}`: this program has no choices")
        } else {
            format!("`--choices {name}={value}`: this space has no choice `{name}`")
        };
        if let Some(s) = did_you_mean(name, known.iter().map(String::as_str)) {
            msg.push_str(&format!("; did you mean `{s}`?"));
        }
        if !declared.is_empty() {
            let names: Vec<&str> = declared.iter().map(String::as_str).collect();
            msg.push_str(&format!(" (choices: {})", names.join(", ")));
        }
        return Err(msg);
    }
    Ok(())
}

/// The file in a run folder that records which candidate the run trained.
pub const RECORD_FILE: &str = "candidate.txt";

/// The command-line form of a candidate (`choices depth=2,op=1`, `sample 7`); `None` for
/// the first option of every choice.
pub fn record(mode: &ChoiceMode) -> Option<String> {
    match mode {
        ChoiceMode::First => None,
        ChoiceMode::Sample(seed) => Some(format!("sample {seed}")),
        ChoiceMode::Explicit(list) => {
            let pairs: Vec<String> = list.iter().map(|(k, v)| format!("{k}={v}")).collect();
            Some(format!("choices {}", pairs.join(",")))
        }
        ChoiceMode::Assign { fixed, seed } => {
            let pairs: Vec<String> = fixed.iter().map(|(k, i)| format!("{k}={i}")).collect();
            let seed = seed.map(|s| format!(" seed {s}")).unwrap_or_default();
            Some(format!("assign {}{seed}", pairs.join(",")))
        }
    }
}

/// Reads what [`record`] wrote.
pub fn parse_record(text: &str) -> Result<ChoiceMode, String> {
    let text = text.trim();
    if let Some(seed) = text.strip_prefix("sample ") {
        return seed.trim().parse().map(ChoiceMode::Sample).map_err(|_| format!("bad candidate record `{text}`"));
    }
    if let Some(list) = text.strip_prefix("choices ") {
        return crate::driver::parse_pairs(list).map(ChoiceMode::Explicit);
    }
    if let Some(rest) = text.strip_prefix("assign ") {
        return parse_assign(rest).ok_or_else(|| format!("bad candidate record `{text}`"));
    }
    Err(format!("bad candidate record `{text}`"))
}

/// `name=index,... [seed S]`, as [`record`] writes an assignment.
fn parse_assign(text: &str) -> Option<ChoiceMode> {
    let (list, seed) = match text.split_once(" seed ") {
        Some((l, s)) => (l, Some(s.trim().parse().ok()?)),
        None => (text, None),
    };
    let pairs = crate::driver::parse_pairs(list).ok()?;
    let fixed = pairs.into_iter().map(|(k, v)| Some((k, v.parse().ok()?))).collect::<Option<Vec<_>>>()?;
    Some(ChoiceMode::Assign { fixed, seed })
}

/// `depth = 3, width = 16, repeat_0.0.op = skip`: the choices a build made.
pub fn summary(made: &[(String, String)]) -> String {
    made.iter().map(|(k, v)| format!("{k} = {v}")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn a_misspelt_name_is_refused_with_a_suggestion() {
        let declared: BTreeSet<String> = ["depth", "op"].iter().map(|s| s.to_string()).collect();
        let made = pairs(&[("depth", "3"), ("repeat_0.0.op", "skip")]);
        let e = check_names(&pairs(&[("dept", "3")]), &made, &declared).unwrap_err();
        assert!(e.contains("no choice `dept`") && e.contains("did you mean `depth`?"), "{e}");
        assert!(check_names(&pairs(&[("depth", "2"), ("op", "1")]), &made, &declared).is_ok());
        assert!(check_names(&pairs(&[("repeat_0.0.op", "1")]), &made, &declared).is_ok());
        // A choice that exists but was not reached in this candidate is no typo.
        assert!(check_names(&pairs(&[("repeat_0.3.op", "1")]), &made, &declared).is_ok());
    }

    #[test]
    fn candidates_are_recorded_and_read_back() {
        let assign =
            ChoiceMode::Assign { fixed: vec![("depth".into(), 1), ("repeat_0.0.op".into(), 2)], seed: Some(3) };
        for mode in [ChoiceMode::Sample(7), ChoiceMode::Explicit(pairs(&[("depth", "2"), ("op", "1")])), assign] {
            let text = record(&mode).expect("a candidate");
            assert_eq!(record(&parse_record(&text).expect("parses")), Some(text));
        }
        assert_eq!(record(&ChoiceMode::First), None);
        assert!(parse_record("nonsense").is_err());
    }

    #[test]
    fn a_program_without_choices_says_so() {
        let e = check_names(&pairs(&[("depth", "3")]), &[], &BTreeSet::new()).unwrap_err();
        assert!(e.contains("has no choices"), "{e}");
    }
}
