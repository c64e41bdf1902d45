//! How the `--threads` budget is split so FFmpeg, ONNX Runtime and rayon do not
//! oversubscribe the cores.

/// Threads per consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadBudget {
    pub total: usize,
    /// Files decoded at once.
    pub decode_jobs: usize,
    /// `--jobs`, when the user gave it.
    pub requested_jobs: Option<usize>,
    /// FFmpeg threads per file being decoded.
    pub ffmpeg_per_file: usize,
    /// ONNX Runtime sessions of `analyze`, each with its own inference worker and
    /// [`Self::ort_per_session`] threads (commands with one session use [`Self::ort`]).
    pub sessions: usize,
    /// ONNX Runtime intra-op threads per session (spinning off, so idle threads give their
    /// core back).
    pub ort: usize,
}

impl ThreadBudget {
    pub fn new(total: usize, jobs: Option<usize>) -> Self {
        let total = total.max(1);
        let decode_jobs = jobs.unwrap_or(if total >= 2 { 2 } else { 1 }).max(1);
        // Two single-threaded sessions beat one two-threaded one on 2 cores (issue 13:
        // docs/BENCHMARKS.md, 17 % less wall time for a directory); more is not measured.
        let sessions = sessions_override()
            .unwrap_or(if total >= 2 { 2 } else { 1 })
            .clamp(1, total);
        ThreadBudget {
            total,
            decode_jobs,
            requested_jobs: jobs,
            ffmpeg_per_file: (total / decode_jobs).max(1),
            sessions,
            ort: total,
        }
    }

    /// The same budget for `files` inputs: fewer files than decode workers gives the idle
    /// workers' FFmpeg threads to the others.
    pub fn for_files(self, files: usize) -> Self {
        let decode_jobs = self.decode_jobs.min(files).max(1);
        ThreadBudget {
            decode_jobs,
            ffmpeg_per_file: (self.total / decode_jobs).max(1),
            ..self
        }
    }

    /// ONNX Runtime intra-op threads of each of `analyze`'s sessions.
    pub fn ort_per_session(self) -> usize {
        (self.ort / self.sessions).max(1)
    }

    /// The budget when inference runs on a GPU: the CPU threads go to decoding (one file per
    /// thread unless `--jobs` says otherwise), so that decoding keeps the GPU fed; ONNX
    /// Runtime keeps one thread for what stays on the CPU.
    pub fn on_gpu(self) -> Self {
        let decode_jobs = self.requested_jobs.unwrap_or(self.total).max(1);
        ThreadBudget {
            decode_jobs,
            ffmpeg_per_file: (self.total / decode_jobs).max(1),
            sessions: 1,
            ort: 1,
            ..self
        }
    }

    /// Sizes rayon's global pool to the budget; a second call (tests, library users)
    /// keeps the first pool.
    pub fn init_rayon(self) {
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(self.total)
            .build_global();
    }
}

/// `FRAMEGPT_SESSIONS=N`: N sessions of `--threads`/N intra-op threads each (for
/// `scripts/bench.sh`'s comparison of the ways to spend the cores).
fn sessions_override() -> Option<usize> {
    std::env::var("FRAMEGPT_SESSIONS").ok()?.parse().ok()
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
                requested_jobs: None,
                ffmpeg_per_file: 1,
                sessions: 2,
                ort: 2
            }
        );
        assert_eq!(ThreadBudget::new(2, None).ort_per_session(), 1);
        assert_eq!(ThreadBudget::new(8, None).ort_per_session(), 4);
        assert_eq!(ThreadBudget::new(1, None).sessions, 1);
        assert_eq!(ThreadBudget::new(1, None).decode_jobs, 1);
        assert_eq!(ThreadBudget::new(16, Some(4)).ffmpeg_per_file, 4);
        assert_eq!(ThreadBudget::new(3, Some(8)).ffmpeg_per_file, 1);
        assert_eq!(ThreadBudget::new(4, None).for_files(1).ffmpeg_per_file, 4);
        let gpu = ThreadBudget::new(16, None).on_gpu();
        assert_eq!((gpu.decode_jobs, gpu.ffmpeg_per_file, gpu.ort), (16, 1, 1));
        let gpu = ThreadBudget::new(16, Some(4)).on_gpu().for_files(2);
        assert_eq!((gpu.decode_jobs, gpu.ffmpeg_per_file, gpu.ort), (2, 8, 1));
    }
}
