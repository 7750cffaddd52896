//! Scores of a chain's output for one sample; higher is better.
//!
//! The output is the model's first result for the sample (logits over classes), turned
//! into probabilities `p` by a softmax. `oracle` (1 when the prediction is the label,
//! else 0) and `loss` (`ln p[label]`) read the label: they are for analysis, as CoLa's
//! statistics are. The others need none and can be deployed: `confidence` (`max p`),
//! `entropy` (`1 - H(p) / ln C`), `margin` (the top probability minus the second) and
//! `agreement` (`p[k]`, `k` the class of the mean of `p` over every chain evaluated for
//! the sample so far: chains are scored by how much they agree with the others).

/// A score (see the module docs).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Score {
    Oracle,
    Loss,
    Confidence,
    Entropy,
    Margin,
    Agreement,
}

impl Score {
    /// The score named `name` (as in an `adapt` block).
    pub fn parse(name: &str) -> Result<Score, String> {
        Ok(match name {
            "oracle" => Score::Oracle,
            "loss" => Score::Loss,
            "confidence" => Score::Confidence,
            "entropy" => Score::Entropy,
            "margin" => Score::Margin,
            "agreement" => Score::Agreement,
            _ => {
                return Err(format!(
                    "unknown score `{name}`; known: oracle, loss, confidence, entropy, margin, agreement"
                ))
            }
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Score::Oracle => "oracle",
            Score::Loss => "loss",
            Score::Confidence => "confidence",
            Score::Entropy => "entropy",
            Score::Margin => "margin",
            Score::Agreement => "agreement",
        }
    }

    /// Whether the score reads the label.
    pub fn needs_label(self) -> bool {
        matches!(self, Score::Oracle | Score::Loss)
    }

    /// The score of probabilities `p`, with the sample's `label` and `consensus` (the
    /// mean of `p` over the sample's chains so far, for `agreement`).
    pub fn value(self, p: &[f64], label: Option<usize>, consensus: &[f64]) -> f64 {
        let at = |k: Option<usize>| k.and_then(|k| p.get(k)).copied();
        match self {
            Score::Oracle => f64::from(u8::from(label.is_some() && argmax(p) == label)),
            Score::Loss => at(label).map_or(f64::NEG_INFINITY, |q| q.max(f64::MIN_POSITIVE).ln()),
            Score::Confidence => p.iter().copied().fold(0.0, f64::max),
            Score::Entropy => {
                let h: f64 = p.iter().filter(|&&q| q > 0.0).map(|&q| -q * q.ln()).sum();
                1.0 - h / (p.len().max(2) as f64).ln()
            }
            Score::Margin => {
                let mut s = p.to_vec();
                s.sort_by(|a, b| b.total_cmp(a));
                s.first().copied().unwrap_or(0.0) - s.get(1).copied().unwrap_or(0.0)
            }
            Score::Agreement => at(argmax(consensus)).unwrap_or(0.0),
        }
    }
}

/// The softmax of `logits` (in f64; a row of non-finite logits gives NaNs).
pub fn softmax(logits: &[f64]) -> Vec<f64> {
    let m = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = logits.iter().map(|x| (x - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.into_iter().map(|x| x / s).collect()
}

/// The index of the largest value (the first of equals); `None` when empty.
pub fn argmax(v: &[f64]) -> Option<usize> {
    (0..v.len()).reduce(|b, i| if v[i] > v[b] { i } else { b })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_rank_sure_outputs_higher() {
        let sure = softmax(&[5.0, 0.0, 0.0]);
        let unsure = softmax(&[0.1, 0.0, 0.0]);
        for s in [Score::Confidence, Score::Entropy, Score::Margin] {
            assert!(s.value(&sure, None, &[]) > s.value(&unsure, None, &[]), "{}", s.name());
        }
        assert_eq!(Score::Oracle.value(&sure, Some(0), &[]), 1.0);
        assert_eq!(Score::Oracle.value(&sure, Some(1), &[]), 0.0);
        assert!(Score::Loss.value(&sure, Some(0), &[]) > Score::Loss.value(&unsure, Some(0), &[]));
        assert_eq!(Score::Agreement.value(&sure, None, &[0.1, 0.8, 0.1]), sure[1]);
        assert!((Score::Entropy.value(&[1.0 / 3.0; 3], None, &[])).abs() < 1e-12);
    }

    #[test]
    fn names_round_trip() {
        for n in ["oracle", "loss", "confidence", "entropy", "margin", "agreement"] {
            assert_eq!(Score::parse(n).unwrap().name(), n);
        }
        assert!(Score::parse("vibes").is_err());
    }
}
