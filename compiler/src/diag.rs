//! Renderer-neutral diagnostics.
//!
//! Every stage (parser, checker, verifier, runtime) converts its errors into
//! [`Diagnostic`]s once; only the edge (the CLI and tests) renders them, with `ariadne`.

use archc_grammar::span::Span;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// A secondary location with a short message ("in this instantiation").
#[derive(Clone, Debug, PartialEq)]
pub struct Label {
    pub span: Span,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// One line: what went wrong.
    pub message: String,
    /// The primary location and what is wrong there.
    pub span: Option<Span>,
    pub label: String,
    /// Further locations: where a layer was instantiated, where a name was defined.
    pub related: Vec<Label>,
    /// A suggestion: "did you mean `d_model`?".
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn error(message: impl Into<String>, span: Span) -> Self {
        let message = message.into();
        Diagnostic {
            severity: Severity::Error,
            label: message.clone(),
            message,
            span: Some(span),
            related: Vec::new(),
            help: None,
        }
    }

    /// An error with no source location (e.g. a bad command-line argument).
    pub fn global(message: impl Into<String>) -> Self {
        let message = message.into();
        Diagnostic { severity: Severity::Error, label: message.clone(), message, span: None, related: Vec::new(), help: None }
    }

    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn with_related(mut self, span: Span, message: impl Into<String>) -> Self {
        self.related.push(Label { span, message: message.into() });
        self
    }
}

/// The closest candidate by edit distance, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let limit = (name.len() / 3).max(1);
    candidates
        .into_iter()
        .filter(|c| *c != name)
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, c)| c.to_string())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(did_you_mean("d_modle", ["d_model", "depth"]), Some("d_model".into()));
        assert_eq!(did_you_mean("x", ["hidden", "classes"]), None);
    }
}
