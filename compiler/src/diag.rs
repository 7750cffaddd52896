//! Renderer-neutral diagnostics.
//!
//! Every stage (parser, checker, verifier, runtime) converts its errors into
//! [`Diagnostic`]s once; only the edge (the CLI and tests) renders them, with `ariadne`.
//!
//! A *poison* diagnostic ([`Diagnostic::poison`]) is a placeholder that stops whatever
//! depends on a failed computation without saying anything: the real error was already
//! reported. [`finish`] drops poison and repeated diagnostics, so what a stage hands out
//! never holds either.

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
    /// A placeholder for errors already reported (never shown; see [`Diagnostic::poison`]).
    pub poison: bool,
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
            poison: false,
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
            poison: false,
        }
    }

    /// The poison placeholder: evaluation that used a value whose computation already
    /// failed (and was reported) stops with it, and nothing more is shown.
    pub fn poison() -> Self {
        Diagnostic { poison: true, ..Diagnostic::global("(an error reported elsewhere)") }
    }

    pub fn is_poison(&self) -> bool {
        self.poison
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

/// The diagnostics to show: poison placeholders dropped, and each diagnostic once (the
/// same message at the same span, reached along two paths, is one error), in order.
pub fn finish(diagnostics: Vec<Diagnostic>) -> Vec<Diagnostic> {
    let mut out: Vec<Diagnostic> = Vec::with_capacity(diagnostics.len());
    for d in diagnostics {
        if !d.poison && !out.contains(&d) {
            out.push(d);
        }
    }
    out
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

    #[test]
    fn finish_drops_poison_and_repeats() {
        let span = Span::new(archc_grammar::span::FileId(0), 1, 4);
        let a = Diagnostic::error("theta has 30 entries", span);
        let b = Diagnostic::error("theta has 30 entries", Span::new(span.file, 5, 9));
        let shown = finish(vec![a.clone(), Diagnostic::poison(), a.clone(), b.clone()]);
        assert_eq!(shown, vec![a, b]);
    }
}
