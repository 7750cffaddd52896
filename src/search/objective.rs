//! What a search measures: `--objective accuracy,latency,...`. The first objective is
//! the primary one, which the strategy optimises; every one is recorded per trial.
//!
//! Each objective has a direction: accuracy and the training-free proxies are
//! maximised (a higher proxy predicts a better network), latency, parameter count and
//! FLOPs are minimised. Strategies maximise [`Objective::score`], the value with the
//! sign its direction gives.

use super::proxies::Proxy;
use std::fmt;
use std::str::FromStr;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Objective {
    /// A training-free proxy on one minibatch of the training data.
    Proxy(Proxy),
    /// Test accuracy after `--train-epochs` epochs of the `train` block's training.
    Accuracy,
    /// Median forward time in milliseconds on the chosen backend, at the train block's batch.
    Latency,
    /// Trainable parameters.
    Params,
    /// Floating-point operations of one sample's forward, counted from the TIR.
    Flops,
}

/// Every objective name, for help and errors.
pub const NAMES: &[&str] =
    &["synflow", "naswot", "jacob_cov", "grad_norm", "snip", "hidden_cov", "accuracy", "latency", "params", "flops"];

impl Objective {
    pub fn name(self) -> &'static str {
        match self {
            Objective::Proxy(p) => p.name(),
            Objective::Accuracy => "accuracy",
            Objective::Latency => "latency",
            Objective::Params => "params",
            Objective::Flops => "flops",
        }
    }

    /// Whether larger values are better.
    pub fn maximise(self) -> bool {
        !matches!(self, Objective::Latency | Objective::Params | Objective::Flops)
    }

    /// The value as a strategy's score (larger is better).
    pub fn score(self, value: f64) -> f64 {
        if self.maximise() {
            value
        } else {
            -value
        }
    }

    /// The unit a value is shown with.
    pub fn unit(self) -> &'static str {
        match self {
            Objective::Latency => " ms",
            _ => "",
        }
    }
}

impl fmt::Display for Objective {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Objective {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "accuracy" => Ok(Objective::Accuracy),
            "latency" => Ok(Objective::Latency),
            "params" => Ok(Objective::Params),
            "flops" => Ok(Objective::Flops),
            other => other
                .parse::<Proxy>()
                .map(Objective::Proxy)
                .map_err(|_| format!("unknown objective `{other}`; the objectives: {}", NAMES.join(", "))),
        }
    }
}

/// Parses `--objective a,b,c`: at least one, no repeats.
pub fn parse_list(s: &str) -> Result<Vec<Objective>, String> {
    let mut out: Vec<Objective> = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let o: Objective = part.parse()?;
        if out.contains(&o) {
            return Err(format!("objective `{o}` is given twice"));
        }
        out.push(o);
    }
    if out.is_empty() {
        return Err(format!("--objective needs at least one of: {}", NAMES.join(", ")));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objectives_parse_with_directions() {
        let l = parse_list("accuracy, latency,synflow").expect("parses");
        assert_eq!(l, vec![Objective::Accuracy, Objective::Latency, Objective::Proxy(Proxy::Synflow)]);
        assert!(l[0].maximise() && !l[1].maximise() && l[2].maximise());
        assert_eq!(Objective::Latency.score(3.0), -3.0);
        for n in NAMES {
            assert_eq!(n.parse::<Objective>().expect("known").name(), *n);
        }
    }

    #[test]
    fn bad_lists_are_refused() {
        assert!(parse_list("").unwrap_err().contains("at least one"));
        assert!(parse_list("accuracy,accuracy").unwrap_err().contains("twice"));
        let e = parse_list("acuracy").unwrap_err();
        assert!(e.contains("unknown objective `acuracy`") && e.contains("synflow"), "{e}");
    }
}
