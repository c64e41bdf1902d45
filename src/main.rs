use std::io::IsTerminal;

use clap::Parser;
use framegpt::cli::{Cli, ColorChoice, Command, GlobalArgs};
use framegpt::commands::{self, analyze::UsageError};
use framegpt::exit::ExitCode;

fn main() -> std::process::ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::UsageError.into()
            } else {
                ExitCode::Success.into()
            };
        }
    };
    init_logging(&cli.global);
    let result = match &cli.command {
        Command::Analyze(args) => commands::analyze::run(args, &cli.global),
        Command::Inspect(args) => commands::inspect::run(args),
        Command::Merge(args) => commands::merge::run(args, &cli.global),
        Command::Predict(args) => commands::predict::run(args, &cli.global),
        Command::Finetune(args) => commands::finetune::run(args, &cli.global),
        Command::Bench(args) => commands::bench::run(args, &cli.global),
    };
    match result {
        Ok(code) => code.into(),
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::Success.into();
            }
            eprintln!("error: {err:#}");
            if err.downcast_ref::<UsageError>().is_some() {
                ExitCode::UsageError.into()
            } else {
                ExitCode::SomeInputsFailed.into()
            }
        }
    }
}

fn init_logging(global: &GlobalArgs) {
    let default = match (global.quiet, global.verbose) {
        (true, _) => "error,ffmpeg=off",
        (false, 0) => "warn,ffmpeg=off,ort=off",
        (false, 1) => "info,ffmpeg=warn,ort=warn",
        (false, 2) => "debug,ort=info",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let ansi = match global.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(global.verbose >= 2)
        .without_time()
        .init();
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain()
        .filter_map(|e| e.downcast_ref::<std::io::Error>())
        .any(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}
