//! framegpt: video analysis with a small generative pretrained Transformer.
//!
//! The pipeline's stages are modules, and the types between them are our own:
//!
//! ```text
//! discover ─▶ decode ─▶ sample ─▶ patchify ─▶ score (windows) ─▶ model ─▶ shots
//!          ─▶ aggregate ─▶ rows ─▶ write            (threads: pipeline)
//! ```
//!
//! `ffmpeg_next` appears only in [`decode`], `ort` only in [`model`]; everything else
//! builds and tests without either library. What a library user calls is `pub`: the
//! stages and their types, [`pipeline::run`], the row types, and the finetuning pieces
//! (`train`, `onnx_graph`). The command line (`cli`, `commands`) and the run plumbing
//! (manifest, shards, hashing, atomic files) are internal.

pub mod aggregate;
pub(crate) mod cli;
pub(crate) mod commands;
pub mod decode;
pub(crate) mod digest;
pub mod discover;
pub(crate) mod exit;
pub(crate) mod export;
pub(crate) mod manifest;
pub mod model;
pub mod normal;
pub(crate) mod npy;
pub mod onnx_graph;
pub mod patchify;
pub mod pipeline;
pub mod progress;
pub(crate) mod report;
pub mod rows;
pub mod sample;
pub mod score;
pub(crate) mod shard;
pub mod shots;
pub(crate) mod threads;
pub mod train;
pub(crate) mod write;

/// The `framegpt` command line: parses the process arguments, runs the subcommand and
/// returns its exit status (0 done, 1 some inputs failed, 2 usage/model/config or
/// run-level error, 130 interrupted).
pub fn run_cli() -> std::process::ExitCode {
    cli::main()
}
