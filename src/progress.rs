//! Progress on stderr (indicatif): one line per file in flight and a total with frames/s
//! and ETA. Hidden when stderr is not a terminal, and with -q, -v or --no-progress.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    multi: Option<MultiProgress>,
    total: ProgressBar,
}

impl Progress {
    pub fn new(enabled: bool, files: u64) -> Self {
        let enabled = enabled && std::io::stderr().is_terminal();
        if !enabled {
            return Progress {
                multi: None,
                total: ProgressBar::hidden(),
            };
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(8));
        let total = multi.add(ProgressBar::new(files));
        total.set_style(
            ProgressStyle::with_template(
                "{prefix:>8} [{bar:30}] {pos}/{len} files  {msg}  eta {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        total.set_prefix("total");
        total.enable_steady_tick(Duration::from_millis(250));
        Progress {
            multi: Some(multi),
            total,
        }
    }

    /// A line for one file in flight.
    pub fn file(&self, name: &str, frames_hint: Option<u64>) -> ProgressBar {
        let Some(multi) = &self.multi else {
            return ProgressBar::hidden();
        };
        let bar = multi.insert_before(&self.total, ProgressBar::new(frames_hint.unwrap_or(0)));
        let template = if frames_hint.is_some() {
            "{prefix:>8} [{bar:30}] {pos}/{len} frames {per_sec}  {msg}"
        } else {
            "{prefix:>8} {spinner} {pos} frames {per_sec}  {msg}"
        };
        bar.set_style(
            ProgressStyle::with_template(template)
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix("file");
        bar.set_message(name.to_string());
        bar
    }

    pub fn file_done(&self, bar: &ProgressBar) {
        bar.finish_and_clear();
        if let Some(multi) = &self.multi {
            multi.remove(bar);
        }
        self.total.inc(1);
    }

    pub fn frames(&self, total_frames: u64, elapsed: Duration) {
        if self.multi.is_some() {
            let fps = total_frames as f64 / elapsed.as_secs_f64().max(1e-3);
            self.total
                .set_message(format!("{total_frames} frames, {fps:.0} frames/s"));
        }
    }

    /// Prints a line above the bars (or plainly when hidden).
    pub fn println(&self, line: &str) {
        match &self.multi {
            Some(m) => {
                let _ = m.println(line);
            }
            None => eprintln!("{line}"),
        }
    }

    pub fn finish(&self) {
        self.total.finish_and_clear();
    }
}
