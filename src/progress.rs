//! Progress on stderr (indicatif): one line per file in flight and a total with frames/s
//! and ETA. Hidden when stderr is not a terminal, and with -q, -v or --no-progress.

use std::cell::Cell;
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

pub struct Progress {
    multi: Option<MultiProgress>,
    total: ProgressBar,
}

impl Progress {
    /// `total_bytes`: the summed size of the inputs; the total bar advances by bytes (each
    /// file's share spread over its frames), so its ETA covers the whole batch.
    pub fn new(enabled: bool, total_bytes: u64) -> Self {
        let enabled = enabled && std::io::stderr().is_terminal();
        if !enabled {
            return Progress {
                multi: None,
                total: ProgressBar::hidden(),
            };
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(8));
        let total = multi.add(ProgressBar::new(total_bytes.max(1)));
        total.set_style(
            ProgressStyle::with_template("{prefix:>6} [{bar:30}] {percent:>3}%  {msg}  eta {eta}")
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
    pub fn file(&self, name: &str) -> FileProgress {
        let Some(multi) = &self.multi else {
            return FileProgress {
                bar: ProgressBar::hidden(),
                bytes_left: Cell::new(0),
                bytes_per_frame: Cell::new(0),
            };
        };
        let bar = multi.insert_before(&self.total, ProgressBar::no_length());
        bar.set_style(file_style(false));
        bar.set_prefix("file");
        bar.set_message(name.to_string());
        FileProgress {
            bar,
            bytes_left: Cell::new(0),
            bytes_per_frame: Cell::new(0),
        }
    }

    /// The file's expected frame count is known: show a bar and spread its bytes over it.
    pub fn file_opened(&self, file: &FileProgress, size: u64, expected_frames: Option<u64>) {
        file.bytes_left.set(size);
        if let Some(n) = expected_frames {
            file.bar.set_length(n);
            file.bar.set_style(file_style(true));
            file.bytes_per_frame.set(size / n.max(1));
        }
    }

    pub fn frame(&self, file: &FileProgress) {
        file.bar.inc(1);
        let step = file.bytes_per_frame.get().min(file.bytes_left.get());
        file.bytes_left.set(file.bytes_left.get() - step);
        self.total.inc(step);
    }

    pub fn file_done(&self, file: FileProgress) {
        self.total.inc(file.bytes_left.get());
        file.bar.finish_and_clear();
        if let Some(multi) = &self.multi {
            multi.remove(&file.bar);
        }
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

/// Progress of one file in flight.
pub struct FileProgress {
    bar: ProgressBar,
    bytes_left: Cell<u64>,
    bytes_per_frame: Cell<u64>,
}

fn file_style(with_bar: bool) -> ProgressStyle {
    let template = if with_bar {
        "{prefix:>6} [{bar:30}] {pos}/{len} frames {fps}  {msg}"
    } else {
        "{prefix:>6} {spinner} {pos} frames {fps}  {msg}"
    };
    ProgressStyle::with_template(template)
        .expect("valid template")
        .with_key(
            "fps",
            |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.0} frames/s", state.per_sec());
            },
        )
        .progress_chars("=> ")
}
