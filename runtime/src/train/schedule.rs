//! Learning-rate schedules: the learning rate of each optimizer step.
//!
//! Contract: [`Schedule::lr`]`(step, total)` is a pure function of the 0-based optimizer
//! step (the step whose update is being computed) and the run's total number of steps
//! (used when the schedule does not fix its own `total`). Steps past the end hold the
//! final value. Formulas, with `t = step`:
//! - `Constant { lr }`: `lr`.
//! - `Step { lr, step_size, gamma }` (PyTorch `StepLR`, counted in steps):
//!   `lr * gamma^floor(t / step_size)`.
//! - `Cosine { lr, warmup, total, min_lr }` (Hugging Face `get_cosine_schedule_with_warmup`
//!   with a floor): `lr * t / warmup` while `t < warmup`, then
//!   `min_lr + (lr - min_lr) * (1 + cos(pi * p)) / 2` with
//!   `p = min(1, (t - warmup) / max(1, total - warmup))`.
//! - `OneCycle { max_lr, total, pct_start, div_factor, final_div_factor }` (PyTorch
//!   `OneCycleLR`, `anneal_strategy='cos'`, `three_phase=False`): `initial = max_lr /
//!   div_factor`, `min = initial / final_div_factor`; phase 1 ends at step
//!   `pct_start * total - 1` and anneals `initial -> max_lr`, phase 2 ends at `total - 1`
//!   and anneals `max_lr -> min`; within a phase from step `s` to `e`, `pct = (t - s) /
//!   (e - s)` and the value is `end + (start - end) / 2 * (1 + cos(pi * pct))`.

use std::f64::consts::PI;

/// A learning-rate schedule (see the module docs for the formulas).
#[derive(Clone, Debug, PartialEq)]
pub enum Schedule {
    Constant {
        lr: f64,
    },
    Step {
        lr: f64,
        step_size: u64,
        gamma: f64,
    },
    Cosine {
        lr: f64,
        warmup: u64,
        /// Total steps; `None`: the run's total.
        total: Option<u64>,
        min_lr: f64,
    },
    OneCycle {
        max_lr: f64,
        /// Total steps; `None`: the run's total.
        total: Option<u64>,
        pct_start: f64,
        div_factor: f64,
        final_div_factor: f64,
    },
}

impl Schedule {
    /// PyTorch's `OneCycleLR` defaults: `pct_start = 0.3`, `div_factor = 25`,
    /// `final_div_factor = 1e4`, over the run's total steps.
    pub fn one_cycle(max_lr: f64) -> Schedule {
        Schedule::OneCycle { max_lr, total: None, pct_start: 0.3, div_factor: 25.0, final_div_factor: 1e4 }
    }

    /// The learning rate of step `step` (0-based) of a run of `run_total` steps.
    pub fn lr(&self, step: u64, run_total: u64) -> f64 {
        match *self {
            Schedule::Constant { lr } => lr,
            Schedule::Step { lr, step_size, gamma } => lr * gamma.powf((step / step_size.max(1)) as f64),
            Schedule::Cosine { lr, warmup, total, min_lr } => {
                let total = total.unwrap_or(run_total);
                if step < warmup {
                    return lr * step as f64 / warmup as f64;
                }
                let span = total.saturating_sub(warmup).max(1) as f64;
                let p = ((step - warmup) as f64 / span).min(1.0);
                min_lr + (lr - min_lr) * 0.5 * (1.0 + (PI * p).cos())
            }
            Schedule::OneCycle { max_lr, total, pct_start, div_factor, final_div_factor } => {
                let total = total.unwrap_or(run_total).max(1);
                let initial = max_lr / div_factor;
                let min = initial / final_div_factor;
                let t = step.min(total - 1) as f64;
                let end_up = pct_start * total as f64 - 1.0;
                let end_down = total as f64 - 1.0;
                let anneal = |start: f64, end: f64, pct: f64| end + (start - end) / 2.0 * ((PI * pct).cos() + 1.0);
                if t <= end_up {
                    anneal(initial, max_lr, t / end_up)
                } else {
                    anneal(max_lr, min, (t - end_up) / (end_down - end_up))
                }
            }
        }
    }

    /// A short text for logs: `cosine(lr=0.001, warmup=100)`.
    pub fn describe(&self) -> String {
        match self {
            Schedule::Constant { lr } => format!("constant(lr={lr})"),
            Schedule::Step { lr, step_size, gamma } => format!("step(lr={lr}, step_size={step_size}, gamma={gamma})"),
            Schedule::Cosine { lr, warmup, min_lr, .. } => format!("cosine(lr={lr}, warmup={warmup}, min_lr={min_lr})"),
            Schedule::OneCycle { max_lr, pct_start, div_factor, final_div_factor, .. } => format!(
                "one_cycle(max_lr={max_lr}, pct_start={pct_start}, div_factor={div_factor}, final_div_factor={final_div_factor})"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() <= 1e-12 * b.abs().max(1e-3), "{a} vs {b}");
    }

    #[test]
    fn constant_and_step() {
        assert_eq!(Schedule::Constant { lr: 0.1 }.lr(1000, 10), 0.1);
        let s = Schedule::Step { lr: 1.0, step_size: 3, gamma: 0.5 };
        let got: Vec<f64> = (0..8).map(|t| s.lr(t, 8)).collect();
        assert_eq!(got, [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25]);
    }

    #[test]
    fn cosine_with_warmup() {
        let s = Schedule::Cosine { lr: 1.0, warmup: 4, total: Some(14), min_lr: 0.0 };
        // Warmup: t / 4.
        for (t, v) in [(0, 0.0), (1, 0.25), (2, 0.5), (3, 0.75)] {
            close(s.lr(t, 0), v);
        }
        // Cosine over 10 steps: 0.5 * (1 + cos(pi * k / 10)).
        close(s.lr(4, 0), 1.0);
        close(s.lr(9, 0), 0.5);
        close(s.lr(6, 0), 0.5 * (1.0 + (PI * 0.2).cos())); // 0.9045084971874737
        close(s.lr(6, 0), 0.9045084971874737);
        close(s.lr(14, 0), 0.0);
        close(s.lr(100, 0), 0.0);
        // A floor, and the run's total when none is given.
        let s = Schedule::Cosine { lr: 1.0, warmup: 0, total: None, min_lr: 0.1 };
        close(s.lr(0, 10), 1.0);
        close(s.lr(5, 10), 0.55);
        close(s.lr(10, 10), 0.1);
    }

    #[test]
    fn one_cycle_matches_pytorch() {
        // torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=10) (defaults
        // pct_start=0.3, div_factor=25, final_div_factor=1e4, cos): the lr of each step, by
        // PyTorch's `_annealing_cos` and phase arithmetic evaluated in Python:
        let expected = [
            0.040000000000000036,
            0.52,
            1.0,
            0.9504846320134737,
            0.8117456539497631,
            0.6112620219362893,
            0.38874197806371075,
            0.18825834605023697,
            0.049519367986526286,
            4e-06,
        ];
        let s = Schedule::OneCycle {
            max_lr: 1.0,
            total: Some(10),
            pct_start: 0.3,
            div_factor: 25.0,
            final_div_factor: 1e4,
        };
        for (t, v) in expected.iter().enumerate() {
            close(s.lr(t as u64, 0), *v);
        }
        assert_eq!(Schedule::one_cycle(1.0).lr(3, 10), s.lr(3, 10));
        // Past the end: the final value.
        close(s.lr(50, 0), 4e-06);
    }
}
