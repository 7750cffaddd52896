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
        Diagnostic {
            severity: Severity::Error,
            label: message.clone(),
            message,
            span: None,
            related: Vec::new(),
            help: None,
        }
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

/// Optimal string alignment distance: insertions, deletions, substitutions and swaps of
/// adjacent characters each cost one (`widht` is one edit from `width`).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for j in 0..=b.len() {
        d[0][j] = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(did_you_mean("d_modle", ["d_model", "depth"]), Some("d_model".into()));
        assert_eq!(did_you_mean("x", ["hidden", "classes"]), None);
        assert_eq!(did_you_mean("widht", ["width", "depth"]), Some("width".into()));
        assert_eq!(did_you_mean("bais", ["bias"]), Some("bias".into()));
    }
}
