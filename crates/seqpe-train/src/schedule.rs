//! Learning-rate schedules: linear warm-up, then linear (GPT recipe) or cosine (ViT recipe)
//! decay. A pure function of the step, so resuming needs no scheduler state.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decay {
    /// Linear decay to `final_lr` at `total_steps` (HF `get_linear_schedule_with_warmup`).
    Linear,
    /// Cosine decay to `final_lr` at `total_steps` (timm cosine, per iteration).
    Cosine,
    Constant,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LrSchedule {
    pub peak: f64,
    pub warmup_steps: usize,
    pub total_steps: usize,
    pub decay: Decay,
    /// Learning rate at step 0 of the warm-up (0 for HF, 1e-6 for the ViT recipe).
    pub warmup_start: f64,
    pub final_lr: f64,
}

impl LrSchedule {
    /// Learning rate for 0-based `step`.
    pub fn lr(&self, step: usize) -> f64 {
        if step < self.warmup_steps {
            let t = step as f64 / self.warmup_steps as f64;
            return self.warmup_start + (self.peak - self.warmup_start) * t;
        }
        let span = self.total_steps.saturating_sub(self.warmup_steps).max(1) as f64;
        let t = ((step - self.warmup_steps) as f64 / span).min(1.0);
        match self.decay {
            Decay::Constant => self.peak,
            Decay::Linear => self.peak + (self.final_lr - self.peak) * t,
            Decay::Cosine => {
                self.final_lr
                    + 0.5 * (self.peak - self.final_lr) * (1.0 + (std::f64::consts::PI * t).cos())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_decay() {
        let s = LrSchedule {
            peak: 1.0,
            warmup_steps: 10,
            total_steps: 110,
            decay: Decay::Linear,
            warmup_start: 0.0,
            final_lr: 0.0,
        };
        assert_eq!(s.lr(0), 0.0);
        assert!((s.lr(5) - 0.5).abs() < 1e-12);
        assert_eq!(s.lr(10), 1.0);
        assert!((s.lr(60) - 0.5).abs() < 1e-12);
        assert_eq!(s.lr(110), 0.0);
        let c = LrSchedule {
            decay: Decay::Cosine,
            final_lr: 0.1,
            ..s
        };
        assert!((c.lr(60) - 0.55).abs() < 1e-12);
        assert!((c.lr(110) - 0.1).abs() < 1e-12);
    }
}
