//! `framegpt report OUT`: writes `OUT/report.html` from an existing output folder (what
//! `analyze --report` does at the end of a run).

use anyhow::Result;

use crate::cli::{GlobalArgs, ReportArgs};
use crate::exit::{ExitCode, UsageError};

pub fn run(args: &ReportArgs, global: &GlobalArgs) -> Result<ExitCode> {
    if !args.dir.join("clips.csv").is_file() {
        return Err(UsageError(anyhow::anyhow!(
            "`{}` has no clips.csv: not a framegpt output folder\nhint: run `framegpt analyze INPUT -o {}` first",
            args.dir.display(),
            args.dir.display()
        ))
        .into());
    }
    let path = crate::report::write_report(&args.dir, global.total_threads())?;
    if !global.quiet {
        eprintln!("wrote `{}`", path.display());
    }
    Ok(ExitCode::Success)
}
