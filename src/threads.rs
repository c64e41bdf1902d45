//! How the `--threads` budget is split so FFmpeg, ONNX Runtime and rayon do not
//! oversubscribe the cores.

/// Threads per consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadBudget {
    pub total: usize,
    /// Files decoded at once.
    pub decode_jobs: usize,
    /// FFmpeg threads per file being decoded.
    pub ffmpeg_per_file: usize,
    /// ONNX Runtime intra-op threads (spinning off, so idle threads give their core back).
    pub ort: usize,
}

impl ThreadBudget {
    pub fn new(total: usize, jobs: Option<usize>) -> Self {
        let total = total.max(1);
        let decode_jobs = jobs.unwrap_or(if total >= 2 { 2 } else { 1 }).max(1);
        ThreadBudget {
            total,
            decode_jobs,
            ffmpeg_per_file: (total / decode_jobs).max(1),
            ort: total,
        }
    }

    /// The same budget for `files` inputs: fewer files than decode workers gives the idle
    /// workers' FFmpeg threads to the others.
    pub fn for_files(self, files: usize) -> Self {
        ThreadBudget::new(self.total, Some(self.decode_jobs.min(files).max(1)))
    }

    /// Sizes rayon's global pool to the budget; a second call (tests, library users)
    /// keeps the first pool.
    pub fn init_rayon(self) {
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(self.total)
            .build_global();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_budget_splits_the_cores() {
        assert_eq!(
            ThreadBudget::new(2, None),
            ThreadBudget {
                total: 2,
                decode_jobs: 2,
                ffmpeg_per_file: 1,
                ort: 2
            }
        );
        assert_eq!(ThreadBudget::new(1, None).decode_jobs, 1);
        assert_eq!(ThreadBudget::new(16, Some(4)).ffmpeg_per_file, 4);
        assert_eq!(ThreadBudget::new(3, Some(8)).ffmpeg_per_file, 1);
        assert_eq!(ThreadBudget::new(4, None).for_files(1).ffmpeg_per_file, 4);
    }
}
