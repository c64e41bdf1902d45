//! framegpt: video analysis with a small generative pretrained Transformer.
//!
//! The pipeline's stages are modules, and the types between them are our own:
//!
//! ```text
//! discover ─▶ decode ─▶ sample ─▶ patchify ─▶ infer ─▶ score ─▶ shots ─▶ write
//! ```
//!
//! `ffmpeg_next` appears only in [`decode`], `ort` only in [`model`]; everything else
//! builds and tests without either library.

pub mod cli;
pub mod commands;
pub mod decode;
pub mod discover;
pub mod exit;
pub mod manifest;
pub mod model;
pub mod onnx_graph;
pub mod patchify;
pub mod pipeline;
pub mod progress;
pub mod runtime;
pub mod sample;
pub mod score;
pub mod settings;
pub mod shard;
pub mod shots;
pub mod train;
pub mod write;
