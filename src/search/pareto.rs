//! The Pareto front of a multi-objective search and `pareto.svg`.
//!
//! A trial dominates another when it is at least as good on every objective (in each
//! objective's direction) and better on one; the front is the trials no other trial
//! dominates. The plot shows every successful trial on the first two objectives, the
//! front highlighted.

use super::objective::Objective;
use super::trials::Trial;
use plotters::prelude::*;

/// The values of `t` on `objs` as scores (larger is better), if it has them all.
fn scores(t: &Trial, objs: &[Objective]) -> Option<Vec<f64>> {
    objs.iter().map(|o| t.metric(o.name()).map(|v| o.score(v))).collect()
}

/// The indices (into `trials`) of the non-dominated trials, in trial order.
pub fn front(trials: &[Trial], objs: &[Objective]) -> Vec<usize> {
    let s: Vec<Option<Vec<f64>>> = trials.iter().map(|t| scores(t, objs)).collect();
    let dominates = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| x >= y) && a.iter().zip(b).any(|(x, y)| x > y);
    (0..trials.len())
        .filter(|&i| {
            let Some(si) = &s[i] else { return false };
            !s.iter().flatten().any(|sj| dominates(sj, si))
        })
        .collect()
}

/// `pareto.svg`: every trial on the first two objectives, the front in red.
pub fn render(trials: &[Trial], objs: &[Objective]) -> Result<String, String> {
    let (ox, oy) = (objs[0], objs[1]);
    let point = |t: &Trial| Some((t.metric(ox.name())?, t.metric(oy.name())?));
    let all: Vec<(f64, f64)> = trials.iter().filter_map(point).collect();
    let best: Vec<(f64, f64)> = front(trials, objs).into_iter().filter_map(|i| point(&trials[i])).collect();
    let range = |v: Vec<f64>| {
        let lo = v.iter().cloned().fold(f64::INFINITY, f64::min);
        let hi = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let pad = if hi > lo { (hi - lo) * 0.05 } else { lo.abs().max(1.0) * 0.5 };
        if lo.is_finite() {
            (lo - pad)..(hi + pad)
        } else {
            0.0..1.0
        }
    };
    let (xr, yr) = (range(all.iter().map(|p| p.0).collect()), range(all.iter().map(|p| p.1).collect()));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 480)).into_drawing_area();
        let err = |e: DrawingAreaErrorKind<_>| e.to_string();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(format!("{} trials; Pareto front of {}", all.len(), objective_list(objs)), ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(xr, yr)
            .map_err(err)?;
        let label = |o: Objective| {
            format!("{}{} ({})", o.name(), o.unit(), if o.maximise() { "higher is better" } else { "lower is better" })
        };
        chart.configure_mesh().x_desc(label(ox)).y_desc(label(oy)).draw().map_err(err)?;
        let grey = RGBColor(150, 150, 150);
        chart
            .draw_series(all.iter().map(|&p| Circle::new(p, 3, grey.filled())))
            .map_err(err)?
            .label("trial")
            .legend(move |(x, y)| Circle::new((x, y), 3, grey.filled()));
        chart
            .draw_series(best.iter().map(|&p| Circle::new(p, 5, RED.filled())))
            .map_err(err)?
            .label("Pareto front")
            .legend(|(x, y)| Circle::new((x, y), 5, RED.filled()));
        chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw().map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

fn objective_list(objs: &[Objective]) -> String {
    objs.iter().map(|o| o.name()).collect::<Vec<_>>().join(" × ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(i: usize, acc: f64, lat: f64) -> Trial {
        Trial {
            index: i,
            choices: vec![],
            assignment: vec![("d".into(), i)],
            metrics: vec![("accuracy".into(), acc), ("latency".into(), lat)],
            error: None,
            seconds: 0.0,
        }
    }

    #[test]
    fn the_front_keeps_exactly_the_non_dominated_trials() {
        let objs = [Objective::Accuracy, Objective::Latency];
        // 0 is dominated by 1 (less accurate, slower); 2 is slower but more accurate.
        let trials = vec![t(0, 0.8, 2.0), t(1, 0.9, 1.0), t(2, 0.95, 3.0), t(3, 0.5, 0.5)];
        assert_eq!(front(&trials, &objs), vec![1, 2, 3]);
        let svg = render(&trials, &objs).expect("renders");
        assert!(svg.contains("<svg") && svg.contains("Pareto front"), "{}", &svg[..200.min(svg.len())]);
    }
}
