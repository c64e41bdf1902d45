//! Where the shipped base model is looked for when no `--model` is given.

use std::path::{Path, PathBuf};

/// Name of the shipped base model.
pub const BASE_MODEL_FILE: &str = "framegpt-base.onnx";

#[derive(Debug, thiserror::Error)]
pub enum LocateError {
    #[error("no model given and the base model `{BASE_MODEL_FILE}` was not found; looked in:\n{}\nhint: pass --model PATH or set FRAMEGPT_MODEL", .0.iter().map(|p| format!("  {}", p.display())).collect::<Vec<_>>().join("\n"))]
    NoModel(Vec<PathBuf>),
}

/// Places the base model is looked for, in order.
pub fn default_model_candidates() -> Vec<PathBuf> {
    let mut c = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            c.push(dir.join(BASE_MODEL_FILE));
            c.push(dir.join("../share/framegpt").join(BASE_MODEL_FILE));
        }
    }
    c.push(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("models")
            .join(BASE_MODEL_FILE),
    );
    c
}

/// The first candidate that exists.
pub fn default_model() -> Result<PathBuf, LocateError> {
    let candidates = default_model_candidates();
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or(LocateError::NoModel(candidates))
}
