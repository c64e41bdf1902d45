//! `framegpt inspect MODEL`: the contract as the file declares it, what is off, labels,
//! provenance, and the execution providers this machine's ONNX Runtime offers.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;

use crate::cli::InspectArgs;
use crate::digest;
use crate::exit::{ExitCode, UsageError};
use crate::model::{self, runtime, ModelDescription};

pub fn run(args: &InspectArgs) -> Result<ExitCode> {
    let path = match &args.model {
        Some(p) => p.clone(),
        None => model::default_model().map_err(UsageError::from)?,
    };
    let description = model::describe(&path).map_err(UsageError::from)?;
    let bytes = fs_err::read(&path)?;
    let text = render(&path, &bytes, &description);
    print!("{text}");
    Ok(if description.contract.is_ok() {
        ExitCode::Success
    } else {
        ExitCode::UsageError
    })
}

fn render(path: &Path, bytes: &[u8], d: &ModelDescription) -> String {
    let mut s = String::new();
    let sha = digest::sha256_hex(bytes);
    let _ = writeln!(s, "model:       {}", path.display());
    let _ = writeln!(s, "size:        {} bytes", bytes.len());
    let _ = writeln!(s, "sha256:      {sha}");
    if let Some(p) = &d.producer {
        let _ = writeln!(s, "producer:    {p}");
    }
    match &d.contract {
        Ok(c) => {
            let _ = writeln!(s, "contract:    v{}, ok", c.version);
            let _ = writeln!(
                s,
                "frames:      {}x{}, patches {}x{} px ({} per frame, {} values each)",
                c.frame_width,
                c.frame_height,
                c.patch_size,
                c.patch_size,
                c.num_patches(),
                c.patch_dim()
            );
            let _ = writeln!(s, "context:     {} frames", c.context_frames);
            let _ = writeln!(s, "embedding:   {} values per frame", c.embedding_dim);
            let _ = writeln!(s, "normalize:   mean {:?}, std {:?}", c.mean, c.std);
            outputs_summary(&mut s, c);
        }
        Err(v) => {
            let _ = writeln!(s, "contract:    NOT MET\n{v}");
        }
    }
    let _ = writeln!(s, "inputs:");
    for t in &d.inputs {
        let _ = writeln!(s, "  {t}");
    }
    let _ = writeln!(s, "outputs:");
    for t in &d.outputs {
        let _ = writeln!(s, "  {t}");
    }
    let _ = writeln!(s, "metadata:");
    for (k, v) in &d.metadata {
        if k == "framegpt.normal" {
            let _ = writeln!(
                s,
                "  {k} = ({} bytes of JSON: per-patch median and spread)",
                v.len()
            );
        } else if k != "framegpt.provenance" {
            let _ = writeln!(s, "  {k} = {v}");
        }
    }
    if let Some(p) = d.metadata.get("framegpt.provenance") {
        let pretty = serde_json::from_str::<serde_json::Value>(p)
            .ok()
            .and_then(|v| serde_json::to_string_pretty(&v).ok())
            .unwrap_or_else(|| p.clone());
        let _ = writeln!(s, "provenance:");
        for line in pretty.lines() {
            let _ = writeln!(s, "  {line}");
        }
    }
    let _ = writeln!(
        s,
        "runtime:     ONNX Runtime from {}",
        runtime::loaded_path().map_or("?".to_string(), |p| format!("`{}`", p.display()))
    );
    let _ = writeln!(
        s,
        "providers:   {} (use with --device)",
        model::available_providers().join(", ")
    );
    s
}

/// What the model's optional parts give: boundaries, anomaly, labels.
fn outputs_summary(s: &mut String, c: &crate::model::ModelContract) {
    match &c.boundary {
        Some(b) => {
            let _ = writeln!(
                s,
                "boundaries:  learned (output `boundary`: cut, gradual per frame; rule {})",
                b.rule.as_deref().unwrap_or("framegpt defaults")
            );
        }
        None => {
            let _ = writeln!(
                s,
                "boundaries:  from surprise (no `boundary` output: contract v1 rules)"
            );
        }
    }
    match &c.normal {
        Some(n) => {
            let _ = writeln!(
                s,
                "anomaly:     per-camera normal of {} predicted frames (`framegpt adapt`, version {}{}): analyze writes the `anomaly` column",
                n.frames,
                n.version,
                if n.frame.is_some() {
                    ": patches and surprise"
                } else {
                    ": patches only; adapt again for the version-2 score"
                }
            );
        }
        None => {
            let _ = writeln!(
                s,
                "anomaly:     none (no per-camera normal; `framegpt adapt` adds one)"
            );
        }
    }
    match &c.labels {
        Some(l) => {
            let _ = writeln!(s, "labels:      {} ({})", l.len(), l.join(", "));
        }
        None => {
            let _ = writeln!(
                s,
                "labels:      none (no classification head; `framegpt finetune` adds one)"
            );
        }
    }
}
