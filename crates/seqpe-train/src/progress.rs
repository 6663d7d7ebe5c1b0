//! [`Progress`]: a progress bar on a terminal; on a log (no terminal) one line every ~10 s.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

pub struct Progress {
    bar: Option<ProgressBar>,
    label: String,
    total: u64,
    start_pos: u64,
    started: Instant,
    last_line: Instant,
    every: Duration,
}

impl Progress {
    /// `total` units (steps, batches), starting at `position` (a resumed run).
    pub fn new(label: &str, total: u64, position: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix} [{bar:30.cyan/blue}] {pos}/{len} {msg} [{elapsed_precise} < {eta_precise}]",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar.set_prefix(label.to_string());
            bar.set_position(position);
            bar
        });
        Self {
            bar,
            label: label.into(),
            total,
            start_pos: position,
            started: Instant::now(),
            last_line: Instant::now(),
            every: Duration::from_secs(10),
        }
    }

    /// Moves to `position` with a status message (loss, perplexity, throughput…).
    pub fn update(&mut self, position: u64, msg: &str) {
        match &self.bar {
            Some(bar) => {
                bar.set_position(position);
                bar.set_message(msg.to_string());
            }
            None => {
                if self.last_line.elapsed() >= self.every || position == self.total {
                    self.last_line = Instant::now();
                    let done = position.saturating_sub(self.start_pos) as f64;
                    let rate = done / self.started.elapsed().as_secs_f64().max(1e-9);
                    let eta = (self.total.saturating_sub(position)) as f64 / rate.max(1e-9);
                    eprintln!(
                        "{} {position}/{} {msg} (eta {:.0}s)",
                        self.label, self.total, eta
                    );
                }
            }
        }
    }

    /// Prints a line without breaking the bar.
    pub fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
