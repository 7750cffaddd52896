//! Rendering of neutral diagnostics with `ariadne` (the only place that does).

use archc_compiler::diag::{Diagnostic, Severity};
use archc_grammar::span::SourceMap;
use ariadne::{Color, Config, Label, Report, ReportKind};

/// Renders diagnostics to a string (no colour when `color` is false, e.g. in snapshots).
pub fn render(diags: &[Diagnostic], sources: &SourceMap, color: bool) -> String {
    let mut out = Vec::new();
    for d in diags {
        render_one(d, sources, color, &mut out);
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn render_one(d: &Diagnostic, sources: &SourceMap, color: bool, out: &mut Vec<u8>) {
    let kind = match d.severity {
        Severity::Error => ReportKind::Error,
        Severity::Warning => ReportKind::Warning,
    };
    let Some(span) = d.span else {
        out.extend_from_slice(format!("error: {}\n", d.message).as_bytes());
        if let Some(h) = &d.help {
            out.extend_from_slice(format!("  help: {h}\n").as_bytes());
        }
        return;
    };
    let name = |f| sources.get(f).name.clone();
    let mut report = Report::build(kind, (name(span.file), span.range()))
        .with_config(Config::default().with_color(color).with_index_type(ariadne::IndexType::Byte))
        .with_message(&d.message)
        .with_label(Label::new((name(span.file), span.range())).with_message(&d.label).with_color(Color::Red));
    for r in &d.related {
        report = report.with_label(
            Label::new((name(r.span.file), r.span.range())).with_message(&r.message).with_color(Color::Blue),
        );
    }
    if let Some(h) = &d.help {
        report = report.with_help(h);
    }
    let files: Vec<(String, String)> = sources.files().map(|(_, f)| (f.name.clone(), f.text.clone())).collect();
    let _ = report.finish().write(ariadne::sources(files), &mut *out);
}
