//! Search-space choices on the command line: `--choices NAME=VALUE,...` must name choices
//! the space has (a misspelt name is an error, never silently ignored), and the choices a
//! build made are shown in one line.
//!
//! A name is known when the build made a choice of that name (qualified, `repeat_0.2.op`,
//! or by its local name `op`) or when a `choose NAME` statement appears in the user's
//! sources: a choice that exists but was not reached in this candidate (inside a branch
//! another choice disabled) is not a typo.

use archc_compiler::diag::did_you_mean;
use archc_grammar::lexer::{lex, Tok};
use archc_grammar::span::SourceMap;
use std::collections::BTreeSet;

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
    fn a_program_without_choices_says_so() {
        let e = check_names(&pairs(&[("depth", "3")]), &[], &BTreeSet::new()).unwrap_err();
        assert!(e.contains("has no choices"), "{e}");
    }
}
