//! Exit codes, in one place (fd `exit_codes.rs`, uv `ExitStatus`).

/// How a run ended, as the process exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Every input was analyzed.
    Success,
    /// Some inputs failed; the others were analyzed and written.
    SomeInputsFailed,
    /// Usage, model or configuration error: nothing was analyzed.
    UsageError,
    /// Interrupted by SIGINT/SIGTERM; files in flight were discarded, never half-written.
    Interrupted,
}

impl ExitCode {
    pub fn code(self) -> i32 {
        match self {
            ExitCode::Success => 0,
            ExitCode::SomeInputsFailed => 1,
            ExitCode::UsageError => 2,
            ExitCode::Interrupted => 130,
        }
    }
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> Self {
        std::process::ExitCode::from(code.code() as u8)
    }
}
