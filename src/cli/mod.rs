//! The command line (clap derive): every argument struct, and the entry point that parses
//! them, starts logging, runs the subcommand and maps the result to an exit status. Only
//! `main.rs` and `commands/` see this module; each command turns its arguments into one
//! validated settings struct of domain types before any work starts.

mod adapt;
mod analyze;
mod bench;
mod finetune;
mod generate;
mod inspect;
mod merge;
mod predict;
mod report;

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use adapt::AdaptArgs;
pub use analyze::{AnalyzeArgs, EmbeddingsFormat, ScenesFormatArg};
pub use bench::{BenchArgs, Stage};
pub use finetune::{FeaturesArg, FinetuneArgs, GroupByArg, HeadArg, HeadInputsArg};
pub use generate::GenerateArgs;
pub use inspect::InspectArgs;
pub use merge::MergeArgs;
pub use predict::PredictArgs;
pub use report::ReportArgs;

use crate::commands;
use crate::exit::{self, ExitCode, UsageError};
use crate::model::{self, Device};

#[derive(Debug, Parser)]
#[command(
    name = "framegpt",
    version,
    about = "Video analysis with a generative pretrained Transformer: surprise, shot boundaries, embeddings, labels",
    after_help = "Examples:\n  framegpt analyze talk.mp4 -o out/\n  framegpt analyze ~/footage/ -r -o out/ --fps 5\n  framegpt inspect models/framegpt-base.onnx"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every subcommand takes.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Print only errors (no progress, no summary).
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// More log output on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// When to use colors on stderr (NO_COLOR is respected).
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, global = true)]
    pub color: ColorChoice,
    /// Total CPU threads, shared by FFmpeg, ONNX Runtime and rayon [default: all cores;
    /// at most 4 per core, between 16 and 256].
    #[arg(long, global = true, value_name = "N", value_parser = parse_threads)]
    pub threads: Option<usize>,
    /// Never show progress bars.
    #[arg(long, global = true)]
    pub no_progress: bool,
}

/// The most `--threads` accepted here: 4 per core, at least 16, at most 256. More only
/// adds contention, and far more exhausts memory or makes ONNX Runtime fail every file.
pub fn max_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (4 * cores).clamp(16, 256)
}

fn parse_threads(s: &str) -> Result<usize, String> {
    let n: usize = s
        .parse()
        .map_err(|_| format!("`{s}` is not a whole number"))?;
    let max = max_threads();
    match n {
        0 => Err("--threads must be at least 1".to_string()),
        n if n > max => Err(format!(
            "--threads {n} is more than this machine can use (at most {max}: 4 per core, between 16 and 256)"
        )),
        n => Ok(n),
    }
}

impl GlobalArgs {
    /// `--threads`, or every core.
    pub fn total_threads(&self) -> usize {
        self.threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .max(1)
    }

    /// Whether progress bars may show (they also hide when stderr is not a terminal).
    pub fn progress(&self) -> bool {
        !self.quiet && !self.no_progress && self.verbose == 0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Colors when stderr is a terminal and NO_COLOR is unset.
    Auto,
    Always,
    Never,
}

/// The model a command runs and where: flattened into every subcommand that runs one.
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// Model file (ONNX, framegpt contract v1) [default: the shipped base model].
    #[arg(long, value_name = "PATH", env = "FRAMEGPT_MODEL")]
    pub model: Option<PathBuf>,
    /// Where inference runs: cpu, cuda, cuda:N, or auto (CUDA if it loads, else CPU with a warning).
    #[arg(long, default_value = "cpu", value_name = "DEVICE")]
    pub device: Device,
}

impl ModelArgs {
    /// `--model`, or the shipped base model; not finding either is a usage error.
    pub fn model_path(&self) -> Result<PathBuf, UsageError> {
        match &self.model {
            Some(p) => Ok(p.clone()),
            None => model::default_model().map_err(UsageError::from),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Analyze videos: per-frame surprise, shots and embeddings to CSV.
    Analyze(AnalyzeArgs),
    /// Show a model's contract, labels, provenance and this machine's execution providers.
    Inspect(InspectArgs),
    /// Join the outputs of sharded runs into what a single run would have written.
    Merge(MergeArgs),
    /// Render the model's next-frame predictions and per-patch surprise for one window as a PNG.
    Predict(PredictArgs),
    /// Train a classification head on labelled clips and write backbone + head as one ONNX file.
    Finetune(FinetuneArgs),
    /// Continue the next-frame objective on one camera's normal footage: surprise becomes
    /// "unusual for this camera" (same graph, new weights).
    Adapt(AdaptArgs),
    /// Write an HTML report (curves, boundaries, thumbnails) from an existing output folder.
    Report(ReportArgs),
    /// Roll the model out: generate N future frames from the context at a time, as PNG/GIF/MP4.
    Generate(GenerateArgs),
    /// Measure one pipeline stage alone (decode or infer), for scripts/bench.sh.
    #[command(hide = true)]
    Bench(BenchArgs),
}

/// The `framegpt` program: parse, start logging, run the subcommand, map to an exit status.
pub fn main() -> std::process::ExitCode {
    crate::model::runtime::disable_telemetry();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            let code = if e.use_stderr() {
                ExitCode::UsageError
            } else {
                ExitCode::Success
            };
            return code.into();
        }
    };
    init_logging(&cli.global);
    let global = &cli.global;
    let result = match &cli.command {
        Command::Analyze(args) => commands::analyze::run(args, global),
        Command::Inspect(args) => commands::inspect::run(args),
        Command::Merge(args) => commands::merge::run(args, global),
        Command::Predict(args) => commands::predict::run(args, global),
        Command::Finetune(args) => commands::finetune::run(args, global),
        Command::Adapt(args) => commands::adapt::run(args, global),
        Command::Report(args) => commands::report::run(args, global),
        Command::Generate(args) => commands::generate::run(args, global),
        Command::Bench(args) => commands::bench::run(args, global),
    };
    exit::report(result).into()
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn device_is_parsed_by_clap() {
        let cli = Cli::try_parse_from([
            "framegpt", "analyze", "x.mp4", "-o", "o", "--device", "cuda:1",
        ])
        .unwrap();
        let Command::Analyze(a) = cli.command else {
            panic!("analyze")
        };
        assert_eq!(a.model.device, Device::Cuda(1));
        let err =
            Cli::try_parse_from(["framegpt", "analyze", "x.mp4", "-o", "o", "--device", "gpu"])
                .unwrap_err();
        assert!(err.to_string().contains("invalid device `gpu`"), "{err}");
    }
}
