//! What `archc adapt` writes: `chains.jsonl` (one line per sample), `summary.json`
//! (accuracies, depths, the CoLa statistics, counts and speed) and `adapt.svg` (the
//! lengths of the chains picked; accuracy of the fixed and the adapted model).
//!
//! Contract: the files are written whole or not at all (each through a temporary file
//! renamed into place); with the same inputs they are byte-identical, except for the
//! timing fields of `summary.json` (`seconds`, `evaluations_per_second`).

use super::lockstep::Outcome;
use plotters::prelude::*;
use serde_json::{json, Value};
use std::path::Path;

/// One line of `chains.jsonl` for sample `index`.
pub fn chain_line(index: usize, o: &Outcome) -> String {
    let v = json!({
        "index": index,
        "chain": o.chain.0,
        "length": o.chain.len(),
        "score": finite(o.score),
        "label": o.label,
        "pred_before": o.pred_before,
        "pred_after": o.pred_after,
        "correct_before": o.label.map(|_| o.correct_before()),
        "correct_after": o.label.map(|_| o.correct_after()),
        "evaluated": o.evaluated,
    });
    v.to_string()
}

/// A number, or `null` when it is not finite (JSON has no NaN).
pub fn finite(x: f64) -> Value {
    if x.is_finite() {
        json!(x)
    } else {
        Value::Null
    }
}

/// The share of `outcomes` with `yes` among those with `among` (`null` when none).
pub fn share(outcomes: &[Outcome], among: impl Fn(&Outcome) -> bool, yes: impl Fn(&Outcome) -> bool) -> Value {
    let base: Vec<&Outcome> = outcomes.iter().filter(|o| among(o)).collect();
    if base.is_empty() {
        return Value::Null;
    }
    json!(base.iter().filter(|o| yes(o)).count() as f64 / base.len() as f64)
}

/// The CoLa statistics of labelled outcomes (see [`super::lockstep`]).
pub fn cola_stats(outcomes: &[Outcome], depth: usize) -> Value {
    let labelled = |o: &Outcome| o.label.is_some();
    json!({
        "correct_fixed": outcomes.iter().filter(|o| o.correct_before()).count(),
        "wrong_fixed": outcomes.iter().filter(|o| labelled(o) && !o.correct_before()).count(),
        "correct_with_shorter_correct_chain": share(outcomes, |o| o.correct_before(), |o| o.shorter_correct),
        "wrong_with_some_correct_chain": share(outcomes, |o| labelled(o) && !o.correct_before(), |o| o.any_correct),
        "depth": depth,
        "mean_classes_predicted": outcomes.iter().map(|o| o.classes as f64).sum::<f64>() / outcomes.len().max(1) as f64,
    })
}

/// Mean chain length of `outcomes`.
pub fn mean_depth(outcomes: &[Outcome]) -> f64 {
    outcomes.iter().map(|o| o.chain.len() as f64).sum::<f64>() / outcomes.len().max(1) as f64
}

/// Writes `text` to `path` through a temporary file.
pub fn write(path: &Path, text: &str) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// `adapt.svg`: a bar per chain length (how many samples picked it; the fixed depth in
/// another colour) and the two accuracies.
pub fn render_svg(lengths: &[usize], depth: usize, acc: Option<(f64, f64)>) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 360)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let panels = root.split_evenly((1, 2));
        length_panel(&panels[0], lengths, depth)?;
        accuracy_panel(&panels[1], acc)?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

fn length_panel(area: &Area, lengths: &[usize], depth: usize) -> Result<(), String> {
    let longest = lengths.iter().copied().max().unwrap_or(depth).max(depth);
    let mut counts = vec![0usize; longest + 1];
    for &l in lengths {
        counts[l] += 1;
    }
    let top = counts.iter().copied().max().unwrap_or(1).max(1) as f64 * 1.1;
    let mut chart = ChartBuilder::on(area)
        .caption("chain lengths picked", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(48)
        .build_cartesian_2d(-0.5f64..longest as f64 + 0.5, 0f64..top)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("length (blocks run)")
        .y_desc("samples")
        .x_labels(longest + 2)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .disable_x_mesh()
        .light_line_style(WHITE)
        .draw()
        .map_err(|e| e.to_string())?;
    let bars = counts.iter().enumerate().map(|(l, &c)| {
        let color = if l == depth { RGBColor(255, 127, 14) } else { RGBColor(31, 119, 180) };
        Rectangle::new([(l as f64 - 0.35, 0.0), (l as f64 + 0.35, c as f64)], color.filled())
    });
    chart.draw_series(bars).map_err(|e| e.to_string())?;
    Ok(())
}

fn accuracy_panel(area: &Area, acc: Option<(f64, f64)>) -> Result<(), String> {
    let mut chart = ChartBuilder::on(area)
        .caption("accuracy", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(48)
        .build_cartesian_2d(-0.5f64..1.5, 0f64..1.04)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_labels(2)
        .x_label_formatter(&|x| if *x < 0.5 { "fixed".into() } else { "adapted".into() })
        .disable_x_mesh()
        .light_line_style(WHITE)
        .draw()
        .map_err(|e| e.to_string())?;
    let Some((fixed, adapted)) = acc else {
        chart
            .draw_series(std::iter::once(Text::new("no labels", (0.2, 0.5), ("sans-serif", 16))))
            .map_err(|e| e.to_string())?;
        return Ok(());
    };
    let bars = [(0.0, fixed, RGBColor(255, 127, 14)), (1.0, adapted, RGBColor(31, 119, 180))]
        .into_iter()
        .map(|(x, y, c)| Rectangle::new([(x - 0.3, 0.0), (x + 0.3, y)], c.filled()));
    chart.draw_series(bars).map_err(|e| e.to_string())?;
    let labels = [(0.0, fixed), (1.0, adapted)]
        .into_iter()
        .map(|(x, y)| Text::new(format!("{y:.3}"), (x - 0.1, (y + 0.06).min(1.03)), ("sans-serif", 14)));
    chart.draw_series(labels).map_err(|e| e.to_string())?;
    Ok(())
}
