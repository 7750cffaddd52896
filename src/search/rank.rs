//! Rank correlation between objectives over a search's trials: how well each proxy
//! ranks candidates the way their accuracy after training does (Kendall τ-b and
//! Spearman ρ, both over the trials that have both values).

use super::objective::Objective;
use super::trials::Trial;

/// Kendall τ-b of paired values (ties counted as τ-b counts them); `None` for fewer
/// than two pairs or when either side is constant.
pub fn kendall(x: &[f64], y: &[f64]) -> Option<f64> {
    let n = x.len().min(y.len());
    let (mut conc, mut disc, mut tx, mut ty) = (0f64, 0f64, 0f64, 0f64);
    for i in 0..n {
        for j in i + 1..n {
            let (a, b) = (
                (x[i] - x[j]).signum() * ((x[i] != x[j]) as i32 as f64),
                (y[i] - y[j]).signum() * ((y[i] != y[j]) as i32 as f64),
            );
            match (a == 0.0, b == 0.0) {
                (true, true) => {}
                (true, false) => tx += 1.0,
                (false, true) => ty += 1.0,
                (false, false) if a == b => conc += 1.0,
                (false, false) => disc += 1.0,
            }
        }
    }
    let denom = ((conc + disc + tx) * (conc + disc + ty)).sqrt();
    (denom > 0.0).then(|| (conc - disc) / denom)
}

/// Spearman ρ: Pearson correlation of the ranks (ties take their mean rank).
pub fn spearman(x: &[f64], y: &[f64]) -> Option<f64> {
    let (rx, ry) = (ranks(x), ranks(y));
    let n = rx.len() as f64;
    if n < 2.0 {
        return None;
    }
    let (mx, my) = (rx.iter().sum::<f64>() / n, ry.iter().sum::<f64>() / n);
    let cov: f64 = rx.iter().zip(&ry).map(|(a, b)| (a - mx) * (b - my)).sum();
    let vx: f64 = rx.iter().map(|a| (a - mx).powi(2)).sum();
    let vy: f64 = ry.iter().map(|b| (b - my).powi(2)).sum();
    (vx > 0.0 && vy > 0.0).then(|| cov / (vx * vy).sqrt())
}

fn ranks(v: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut r = vec![0.0; v.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
            j += 1;
        }
        for k in i..=j {
            r[idx[k]] = (i + j) as f64 / 2.0;
        }
        i = j + 1;
    }
    r
}

/// For each objective after the first: (objective, pairs, Kendall τ, Spearman ρ) of its
/// value against the first one's value (no direction applied: a positive τ for `flops`
/// against `accuracy` says larger networks were more accurate).
pub fn against_primary(trials: &[Trial], objs: &[Objective]) -> Vec<(Objective, usize, Option<f64>, Option<f64>)> {
    let primary = objs[0];
    objs[1..]
        .iter()
        .map(|&o| {
            let pairs: Vec<(f64, f64)> =
                trials.iter().filter_map(|t| Some((t.metric(o.name())?, t.metric(primary.name())?))).collect();
            let (x, y): (Vec<f64>, Vec<f64>) = pairs.iter().copied().unzip();
            (o, pairs.len(), kendall(&x, &y), spearman(&x, &y))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kendall_and_spearman_match_hand_computed_values() {
        let x = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(kendall(&x, &x), Some(1.0));
        assert_eq!(kendall(&x, &[5.0, 4.0, 3.0, 2.0, 1.0]), Some(-1.0));
        // One discordant pair of 10: tau = (9 - 1) / 10.
        let y = [1.0, 2.0, 3.0, 5.0, 4.0];
        assert!((kendall(&x, &y).expect("defined") - 0.8).abs() < 1e-12);
        // rho = 1 - 6 * sum d^2 / (n (n^2 - 1)) = 1 - 12 / 120.
        assert!((spearman(&x, &y).expect("defined") - 0.9).abs() < 1e-12);
        // tau-b with ties in x: scipy.stats.kendalltau([1,1,2,3],[1,2,3,4]) = 0.9128709291752769.
        let t = kendall(&[1.0, 1.0, 2.0, 3.0], &[1.0, 2.0, 3.0, 4.0]).expect("defined");
        assert!((t - 0.912_870_929_175_276_9).abs() < 1e-12, "{t}");
        assert_eq!(kendall(&[1.0, 1.0], &[1.0, 2.0]), None);
    }
}
