//! Errors and exit status, in one place (fd `exit_codes.rs`, uv `ExitStatus`): the usage
//! error type, and the one classification of how a run ended into an exit code.

/// How a run ended, as the process exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Every input was analyzed.
    Success,
    /// Some inputs failed; their rows (with the error) and the others' results are written.
    SomeInputsFailed,
    /// Anything else that stopped the run: usage, model or configuration error, or a
    /// failure to write a run-level output (clips.csv, run.json).
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

/// A usage, model or configuration error: the run stops before any input is analyzed.
#[derive(Debug, thiserror::Error)]
#[error("{0:#}")]
pub struct UsageError(pub anyhow::Error);

impl UsageError {
    /// A usage error with this message.
    pub fn msg(message: impl std::fmt::Display) -> Self {
        UsageError(anyhow::anyhow!("{message}"))
    }
}

impl From<crate::model::ModelError> for UsageError {
    fn from(e: crate::model::ModelError) -> Self {
        UsageError(e.into())
    }
}

impl From<crate::model::LocateError> for UsageError {
    fn from(e: crate::model::LocateError) -> Self {
        UsageError(e.into())
    }
}

/// The exit status of a finished command, printing the error of a failed one. A command
/// that ran returns its own status (1 only when some inputs failed and their rows are
/// written); an error that stopped it is 2, except a broken pipe on stdout, which is the
/// reader's choice and exits 0 quietly.
pub fn report(result: anyhow::Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(err) if is_broken_pipe(&err) => ExitCode::Success,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::UsageError
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain()
        .filter_map(|e| e.downcast_ref::<std::io::Error>())
        .any(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_that_stop_a_run_exit_2() {
        let write_failed = anyhow::anyhow!("failed to write `clips.csv`");
        assert_eq!(report(Err(write_failed)), ExitCode::UsageError);
        assert_eq!(
            report(Err(UsageError::msg("bad").into())),
            ExitCode::UsageError
        );
        assert_eq!(
            report(Ok(ExitCode::SomeInputsFailed)).code(),
            1,
            "a command's own status passes through"
        );
        let pipe = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        assert_eq!(report(Err(anyhow::Error::from(pipe))), ExitCode::Success);
    }
}
