//! `curves.svg`: training curves per epoch, drawn with `plotters` (SVG backend only).
//!
//! Two panels side by side: loss (train and test) and accuracy (train and test, on a
//! fixed axis from 0 to just above 1), each with the epoch on the x axis, labelled axes and a legend. A
//! series is drawn as a line with a dot per epoch (so a one-epoch run still shows);
//! epochs where a value is missing or non-finite (`null` in `metrics.jsonl`) are skipped.
//! Without `train_acc`/`test_acc` the accuracy panel says so instead of plotting.

use super::metrics::Record;
use super::tmpfile::TempFile;
use super::{io_error, TrainError};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

/// Panel size in pixels; the image is two panels wide.
const PANEL: (u32, u32) = (480, 360);

type Series = (&'static str, Vec<(f64, f64)>, RGBColor);

/// The points `(epoch, value)` of `key` that are finite numbers.
fn points(records: &[Record], key: &str) -> Vec<(f64, f64)> {
    records.iter().filter_map(|r| Some((r.epoch()? as f64, r.f64(key)?))).filter(|(_, y)| y.is_finite()).collect()
}

/// The SVG text of the curves of `records` (see the module docs).
pub fn render_curves(records: &[Record]) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (PANEL.0 * 2, PANEL.1)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let panels = root.split_evenly((1, 2));
        let train = RGBColor(31, 119, 180);
        let test = RGBColor(255, 127, 14);
        let loss = vec![
            ("train loss", points(records, "train_loss"), train),
            ("test loss", points(records, "test_loss"), test),
        ];
        let acc = vec![
            ("train accuracy", points(records, "train_acc"), train),
            ("test accuracy", points(records, "test_acc"), test),
        ];
        let epochs: Vec<f64> = records.iter().filter_map(|r| r.epoch()).map(|e| e as f64).collect();
        let x_range = padded(&epochs, 0.0).unwrap_or((0.0, 1.0));
        // Loss usually falls and accuracy rises: legends go where the curves end low / high.
        panel(&panels[0], "loss", x_range, None, SeriesLabelPosition::UpperRight, &loss)?;
        panel(&panels[1], "accuracy", x_range, Some((0.0, 1.04)), SeriesLabelPosition::LowerRight, &acc)?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// `[min, max]` of `values` widened by `pad` of its width (by 1 when the width is 0).
fn padded(values: &[f64], pad: f64) -> Option<(f64, f64)> {
    let lo = values.iter().cloned().fold(f64::INFINITY, f64::min);
    let hi = values.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    if !lo.is_finite() || !hi.is_finite() {
        return None;
    }
    if hi - lo <= f64::EPSILON * hi.abs().max(1.0) {
        let d = if lo == 0.0 { 1.0 } else { lo.abs() * 0.5 };
        return Some((lo - d, hi + d));
    }
    let d = (hi - lo) * pad;
    Some((lo - d, hi + d))
}

fn panel(
    area: &DrawingArea<SVGBackend, Shift>,
    title: &str,
    x_range: (f64, f64),
    y_fixed: Option<(f64, f64)>,
    legend: SeriesLabelPosition,
    series: &[Series],
) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let present: Vec<&Series> = series.iter().filter(|s| !s.1.is_empty()).collect();
    if present.is_empty() {
        let style = ("sans-serif", 16).into_font().color(&BLACK);
        area.draw_text(&format!("{title}: no data"), &style, (40, (PANEL.1 / 2) as i32)).map_err(|e| err(&e))?;
        return Ok(());
    }
    let ys: Vec<f64> = present.iter().flat_map(|s| s.1.iter().map(|p| p.1)).collect();
    let y_range = y_fixed.or_else(|| padded(&ys, 0.05)).unwrap_or((0.0, 1.0));
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(x_range.0..x_range.1, y_range.0..y_range.1)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(title)
        .x_label_formatter(&|x| if x.fract() == 0.0 { format!("{x:.0}") } else { format!("{x:.1}") })
        .draw()
        .map_err(|e| err(&e))?;
    for (label, pts, color) in present {
        let color = *color;
        chart
            .draw_series(LineSeries::new(pts.iter().cloned(), color.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label(*label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        chart.draw_series(pts.iter().map(|p| Circle::new(*p, 3, color.filled()))).map_err(|e| err(&e))?;
    }
    chart
        .configure_series_labels()
        .position(legend)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    Ok(())
}

/// Renders `records` and writes the SVG to `path` (through a temporary file and a rename;
/// on any error the temporary file is removed).
pub fn write_curves(path: &Path, records: &[Record]) -> Result<(), TrainError> {
    let svg = render_curves(records).map_err(|m| TrainError::Format { path: path.to_path_buf(), message: m })?;
    let tmp = TempFile::new(path.with_extension("svg.tmp"));
    std::fs::write(tmp.path(), svg).map_err(|e| io_error(tmp.path(), e))?;
    tmp.persist(path).map_err(|e| io_error(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::metrics::Value;

    fn record(epoch: i64, train: f64, test: Option<f64>, acc: Option<f64>) -> Record {
        let mut r = Record::default();
        r.push("epoch", Value::Int(epoch));
        r.push("train_loss", Value::num(train));
        r.push("test_loss", Value::opt(test));
        if let Some(a) = acc {
            r.push("train_acc", Value::num(a));
        }
        r
    }

    /// The trimmed contents of the SVG's `<text>` elements.
    fn texts(svg: &str) -> Vec<String> {
        svg.split("<text")
            .skip(1)
            .filter_map(|t| Some(t.split_once('>')?.1.split_once("</text>")?.0.trim().to_string()))
            .collect()
    }

    #[test]
    fn renders_both_panels_with_legends() {
        let rs = vec![
            record(1, 2.0, Some(2.5), Some(0.3)),
            record(2, 1.0, None, Some(0.6)),
            record(3, 0.5, Some(0.9), Some(0.8)),
        ];
        let svg = render_curves(&rs).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..100]);
        let texts = texts(&svg);
        for text in ["train loss", "test loss", "train accuracy", "epoch", "loss", "accuracy"] {
            assert!(texts.iter().any(|t| t == text), "missing {text} in {texts:?}");
        }
        assert!(!svg.contains("test accuracy"), "a series without points has no legend entry");
        assert!(svg.matches("<polyline").count() >= 3, "three line series");
    }

    #[test]
    fn degenerate_inputs_still_render() {
        let svg = render_curves(&[record(1, f64::NAN, None, None)]).unwrap();
        let texts = texts(&svg);
        assert!(texts.contains(&"loss: no data".to_string()) && texts.contains(&"accuracy: no data".to_string()));
        let svg = render_curves(&[record(1, 1.0, Some(1.0), None)]).unwrap();
        assert!(svg.contains("train loss"));
        assert!(render_curves(&[]).is_ok());
    }

    #[test]
    fn a_failed_write_leaves_no_temporary_file() {
        let dir = std::env::temp_dir().join(format!("archc-plot-fail-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        // A non-empty directory where the plot goes: the write succeeds, the rename fails.
        std::fs::create_dir_all(dir.join("curves.svg/x")).unwrap();
        let err = write_curves(&dir.join("curves.svg"), &[record(1, 1.0, None, None)]).unwrap_err();
        assert!(matches!(err, TrainError::Io(_)), "{err}");
        assert!(!dir.join("curves.svg.tmp").exists(), "the temporary file was left behind");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
