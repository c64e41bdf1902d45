//! The model contract (v1 and v2): what an ONNX file must declare to run in framegpt.
//!
//! v2 adds a `boundary` output (f32 [B, T, 2]: per frame, the probability that a hard cut
//! starts a shot there and that the frame lies inside a gradual transition) and the metadata
//! keys `framegpt.boundary` (`cut,gradual`) and, optionally, `framegpt.boundary_rule` (the
//! thresholds its validation chose, as `key=value,…` detector settings). Unlike the other
//! outputs, `boundary` may look at the whole window (not causal).
//!
//! Pure code: it reads plain metadata strings and tensor shapes, so it builds and tests
//! without ONNX Runtime. [`super::Model`] feeds it what the session reports.

use std::collections::BTreeMap;
use std::fmt;

/// The newest contract version this framegpt reads (it reads every version up to it).
pub const CONTRACT_VERSION: &str = "2";
pub const SUPPORTED_VERSIONS: [&str; 2] = ["1", "2"];
pub const INPUT_PATCHES: &str = "patches";
pub const OUTPUT_NEXT_PATCHES: &str = "next_patches";
pub const OUTPUT_EMBEDDINGS: &str = "embeddings";
pub const OUTPUT_LOGITS: &str = "logits";
pub const OUTPUT_BOUNDARY: &str = "boundary";
/// The channels of `boundary`, as `framegpt.boundary` must list them.
pub const BOUNDARY_CHANNELS: &str = "cut,gradual";

/// What a model declares about itself, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelContract {
    pub frame_width: u32,
    pub frame_height: u32,
    pub patch_size: u32,
    pub context_frames: usize,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    pub embedding_dim: usize,
    /// Class labels, present only when a classification head is attached.
    pub labels: Option<Vec<String>>,
    /// Free-form provenance (training data, steps, losses, tool versions).
    pub provenance: Option<serde_json::Value>,
    /// `1` or `2`.
    pub version: u32,
    /// v2: the model has the `boundary` output; with the detector settings its validation
    /// chose (`framegpt.boundary_rule`), if it records them.
    pub boundary: Option<BoundaryOutput>,
    /// An adapted model's per-patch normal of its camera (`framegpt.normal`, written by
    /// `framegpt adapt`): with it `analyze` writes the `anomaly` column.
    /// Shared, so a batch reads it while the session is borrowed mutably, without a copy.
    pub normal: Option<std::sync::Arc<crate::normal::PatchNormal>>,
}

/// What a v2 model says about its `boundary` output.
#[derive(Debug, Clone, PartialEq)]
pub struct BoundaryOutput {
    pub rule: Option<String>,
}

impl ModelContract {
    pub fn patches_x(&self) -> usize {
        (self.frame_width / self.patch_size) as usize
    }
    pub fn patches_y(&self) -> usize {
        (self.frame_height / self.patch_size) as usize
    }
    /// N: patches per frame.
    pub fn num_patches(&self) -> usize {
        self.patches_x() * self.patches_y()
    }
    /// C: values per patch (3·P·P).
    pub fn patch_dim(&self) -> usize {
        3 * (self.patch_size * self.patch_size) as usize
    }
    pub fn num_labels(&self) -> usize {
        self.labels.as_ref().map_or(0, Vec::len)
    }
}

/// A tensor as the model file declares it: name and shape (`-1` for a dynamic axis).
#[derive(Debug, Clone, PartialEq)]
pub struct TensorDecl {
    pub name: String,
    pub is_f32: bool,
    pub shape: Vec<i64>,
}

impl fmt::Display for TensorDecl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dims: Vec<String> = self
            .shape
            .iter()
            .map(|d| {
                if *d < 0 {
                    "?".to_string()
                } else {
                    d.to_string()
                }
            })
            .collect();
        write!(
            f,
            "`{}` {} [{}]",
            self.name,
            if self.is_f32 { "f32" } else { "non-f32" },
            dims.join(", ")
        )
    }
}

/// Everything that is off about a model, each point naming what was expected and found.
#[derive(Debug, Clone, PartialEq)]
pub struct ContractViolations(pub Vec<String>);

impl fmt::Display for ContractViolations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, v) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "  - {v}")?;
        }
        Ok(())
    }
}

/// The metadata keys of contract v1.
pub const REQUIRED_KEYS: [&str; 7] = [
    "framegpt.contract",
    "framegpt.frame_size",
    "framegpt.patch_size",
    "framegpt.context_frames",
    "framegpt.mean",
    "framegpt.std",
    "framegpt.embedding_dim",
];

/// Parses and checks the metadata, then the declared tensors against it.
pub fn check(
    metadata: &BTreeMap<String, String>,
    inputs: &[TensorDecl],
    outputs: &[TensorDecl],
) -> Result<ModelContract, ContractViolations> {
    let mut errs = Vec::new();
    let contract = parse_metadata(metadata, &mut errs);
    let Some(contract) = contract else {
        return Err(ContractViolations(errs));
    };
    let (t, n, c, d) = (
        contract.context_frames as i64,
        contract.num_patches() as i64,
        contract.patch_dim() as i64,
        contract.embedding_dim as i64,
    );
    check_tensor(inputs, "input", INPUT_PATCHES, &[-1, t, n, c], &mut errs);
    check_tensor(
        outputs,
        "output",
        OUTPUT_NEXT_PATCHES,
        &[-1, t, n, c],
        &mut errs,
    );
    check_tensor(outputs, "output", OUTPUT_EMBEDDINGS, &[-1, t, d], &mut errs);
    if contract.boundary.is_some() {
        check_tensor(outputs, "output", OUTPUT_BOUNDARY, &[-1, t, 2], &mut errs);
    }
    let has_logits = outputs.iter().any(|o| o.name == OUTPUT_LOGITS);
    match (&contract.labels, has_logits) {
        (Some(labels), _) => {
            check_tensor(outputs, "output", OUTPUT_LOGITS, &[-1, t, labels.len() as i64], &mut errs)
        }
        (None, true) => errs.push(format!(
            "output `{OUTPUT_LOGITS}` is present but metadata `framegpt.labels` is missing (expected a JSON list of label names)"
        )),
        (None, false) => {}
    }
    if errs.is_empty() {
        Ok(contract)
    } else {
        Err(ContractViolations(errs))
    }
}

fn parse_metadata(md: &BTreeMap<String, String>, errs: &mut Vec<String>) -> Option<ModelContract> {
    let missing: Vec<&str> = REQUIRED_KEYS
        .iter()
        .copied()
        .filter(|k| !md.contains_key(*k))
        .collect();
    if !missing.is_empty() {
        let found: Vec<&str> = md.keys().map(String::as_str).collect();
        errs.push(format!(
            "metadata keys missing: {}; found: {}",
            missing
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", "),
            if found.is_empty() {
                "none".to_string()
            } else {
                found
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ));
        return None;
    }
    let version = md["framegpt.contract"].trim();
    if !SUPPORTED_VERSIONS.contains(&version) {
        errs.push(format!(
            "metadata `framegpt.contract`: expected one of {}, found `{version}` (this framegpt reads contract v1 and v2)",
            SUPPORTED_VERSIONS.map(|v| format!("`{v}`")).join(", ")
        ));
        return None;
    }
    let before = errs.len();
    let boundary = (version == "2").then(|| parse_boundary(md, errs)).flatten();
    let frame = parse_frame_size(&md["framegpt.frame_size"])
        .map_err(|e| errs.push(format!("metadata `framegpt.frame_size`: {e}")))
        .ok();
    let patch = parse_positive(&md["framegpt.patch_size"])
        .map_err(|e| errs.push(format!("metadata `framegpt.patch_size`: {e}")))
        .ok();
    let context = parse_positive(&md["framegpt.context_frames"])
        .map_err(|e| errs.push(format!("metadata `framegpt.context_frames`: {e}")))
        .ok();
    let dim = parse_positive(&md["framegpt.embedding_dim"])
        .map_err(|e| errs.push(format!("metadata `framegpt.embedding_dim`: {e}")))
        .ok();
    let mean = parse_triplet(&md["framegpt.mean"], false)
        .map_err(|e| errs.push(format!("metadata `framegpt.mean`: {e}")))
        .ok();
    let std = parse_triplet(&md["framegpt.std"], true)
        .map_err(|e| errs.push(format!("metadata `framegpt.std`: {e}")))
        .ok();
    let labels = match md.get("framegpt.labels") {
        None => None,
        Some(raw) => match serde_json::from_str::<Vec<String>>(raw) {
            Ok(l) if !l.is_empty() => Some(l),
            Ok(_) => {
                errs.push("metadata `framegpt.labels`: empty list".to_string());
                None
            }
            Err(e) => {
                errs.push(format!("metadata `framegpt.labels`: expected a JSON list of strings, found `{raw}` ({e})"));
                None
            }
        },
    };
    let provenance = md.get("framegpt.provenance").map(|raw| {
        serde_json::from_str(raw).unwrap_or_else(|_| serde_json::Value::String(raw.clone()))
    });
    if errs.len() > before {
        return None;
    }
    let ((w, h), p) = (frame?, patch?);
    if w % p != 0 || h % p != 0 {
        errs.push(format!(
            "frame size {w}x{h} is not a multiple of patch size {p}"
        ));
        return None;
    }
    let normal = parse_normal(md, ((w / p) * (h / p)) as usize, errs)?;
    Some(ModelContract {
        frame_width: w,
        frame_height: h,
        patch_size: p,
        context_frames: context? as usize,
        mean: mean?,
        std: std?,
        embedding_dim: dim? as usize,
        labels,
        provenance,
        version: if boundary.is_some() { 2 } else { 1 },
        boundary,
        normal,
    })
}

/// `framegpt.normal` (optional): `Some(None)` when absent, `Some(Some(..))` when valid,
/// `None` when present and wrong (the error is in `errs`).
fn parse_normal(
    md: &BTreeMap<String, String>,
    patches: usize,
    errs: &mut Vec<String>,
) -> Option<Option<std::sync::Arc<crate::normal::PatchNormal>>> {
    match md.get("framegpt.normal") {
        None => Some(None),
        Some(raw) => match crate::normal::PatchNormal::parse(raw, patches) {
            Ok(n) => Some(Some(std::sync::Arc::new(n))),
            Err(e) => {
                errs.push(format!("metadata `framegpt.normal`: {e}"));
                None
            }
        },
    }
}

/// v2: `framegpt.boundary` must name the channels of the `boundary` output.
fn parse_boundary(md: &BTreeMap<String, String>, errs: &mut Vec<String>) -> Option<BoundaryOutput> {
    match md.get("framegpt.boundary").map(|s| s.trim()) {
        Some(BOUNDARY_CHANNELS) => Some(BoundaryOutput {
            rule: md.get("framegpt.boundary_rule").cloned(),
        }),
        Some(other) => {
            errs.push(format!(
                "metadata `framegpt.boundary`: expected `{BOUNDARY_CHANNELS}`, found `{other}`"
            ));
            None
        }
        None => {
            errs.push(format!(
                "metadata `framegpt.boundary` missing: contract v2 requires it (`{BOUNDARY_CHANNELS}`)"
            ));
            None
        }
    }
}

fn check_tensor(
    decls: &[TensorDecl],
    kind: &str,
    name: &str,
    expected: &[i64],
    errs: &mut Vec<String>,
) {
    let want = TensorDecl {
        name: name.to_string(),
        is_f32: true,
        shape: expected.to_vec(),
    };
    let Some(got) = decls.iter().find(|d| d.name == name) else {
        let names: Vec<String> = decls.iter().map(|d| format!("`{}`", d.name)).collect();
        errs.push(format!(
            "{kind} {want}: missing (found {kind}s: {})",
            names.join(", ")
        ));
        return;
    };
    let shape_ok = got.shape.len() == expected.len()
        && got
            .shape
            .iter()
            .zip(expected)
            .all(|(g, e)| *e < 0 || *g < 0 || g == e);
    if !got.is_f32 || !shape_ok {
        errs.push(format!("{kind} `{name}`: expected {want}, found {got}"));
    }
}

fn parse_frame_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s
        .trim()
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("expected `WxH`, found `{s}`"))?;
    let w = parse_positive(w)?;
    let h = parse_positive(h)?;
    Ok((w, h))
}

fn parse_positive(s: &str) -> Result<u32, String> {
    match s.trim().parse::<u32>() {
        Ok(v) if v > 0 => Ok(v),
        _ => Err(format!("expected a positive integer, found `{s}`")),
    }
}

fn parse_triplet(s: &str, positive: bool) -> Result<[f32; 3], String> {
    let vals: Result<Vec<f32>, _> = s.split(',').map(|v| v.trim().parse::<f32>()).collect();
    match vals {
        Ok(v) if v.len() == 3 && v.iter().all(|x| x.is_finite() && (!positive || *x > 0.0)) => {
            Ok([v[0], v[1], v[2]])
        }
        _ => Err(format!(
            "expected three comma-separated {}numbers (R,G,B), found `{s}`",
            if positive { "positive " } else { "" }
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn base() -> BTreeMap<String, String> {
        md(&[
            ("framegpt.contract", "1"),
            ("framegpt.frame_size", "64x64"),
            ("framegpt.patch_size", "8"),
            ("framegpt.context_frames", "8"),
            ("framegpt.mean", "0.45,0.45,0.45"),
            ("framegpt.std", "0.225,0.225,0.225"),
            ("framegpt.embedding_dim", "128"),
        ])
    }

    fn t(name: &str, shape: &[i64]) -> TensorDecl {
        TensorDecl {
            name: name.into(),
            is_f32: true,
            shape: shape.to_vec(),
        }
    }

    fn good_io() -> (Vec<TensorDecl>, Vec<TensorDecl>) {
        (
            vec![t("patches", &[-1, 8, 64, 192])],
            vec![
                t("next_patches", &[-1, 8, 64, 192]),
                t("embeddings", &[-1, 8, 128]),
            ],
        )
    }

    #[test]
    fn accepts_a_valid_model_and_derives_sizes() {
        let (i, o) = good_io();
        let c = check(&base(), &i, &o).unwrap();
        assert_eq!(
            (c.num_patches(), c.patch_dim(), c.context_frames),
            (64, 192, 8)
        );
        assert_eq!(c.labels, None);
    }

    #[test]
    fn refuses_unknown_contract_version() {
        let mut m = base();
        m.insert("framegpt.contract".into(), "99".into());
        let (i, o) = good_io();
        let err = check(&m, &i, &o).unwrap_err().to_string();
        assert!(
            err.contains("expected one of `1`, `2`, found `99`"),
            "{err}"
        );
    }

    #[test]
    fn v2_needs_the_boundary_output_and_its_metadata() {
        let mut m = base();
        m.insert("framegpt.contract".into(), "2".into());
        let (i, mut o) = good_io();
        let err = check(&m, &i, &o).unwrap_err().to_string();
        assert!(err.contains("`framegpt.boundary` missing"), "{err}");
        m.insert("framegpt.boundary".into(), "cut,gradual".into());
        let err = check(&m, &i, &o).unwrap_err().to_string();
        assert!(err.contains("`boundary`"), "{err}");
        o.push(t("boundary", &[-1, 8, 2]));
        m.insert("framegpt.boundary_rule".into(), "cut=0.6".into());
        let c = check(&m, &i, &o).unwrap();
        assert_eq!(c.version, 2);
        assert_eq!(c.boundary.unwrap().rule.as_deref(), Some("cut=0.6"));
        // a v1 model with an extra `boundary` output is still v1: the output is ignored
        let c = check(&base(), &i, &o).unwrap();
        assert_eq!((c.version, c.boundary), (1, None));
    }

    #[test]
    fn an_adapted_models_normal_is_read_and_a_wrong_one_refused() {
        let (i, o) = good_io();
        assert_eq!(check(&base(), &i, &o).unwrap().normal, None);
        let mut acc = crate::normal::NormalAccumulator::new(64);
        acc.push(&[[0.0; 5]; 64], 0.01);
        let normal = acc.finish().unwrap();
        let mut m = base();
        m.insert(
            "framegpt.normal".into(),
            serde_json::to_string(&normal).unwrap(),
        );
        assert_eq!(check(&m, &i, &o).unwrap().normal.as_deref(), Some(&normal));
        // the statistics of another frame layout (16 patches) do not fit 64x64 / 8
        let mut acc = crate::normal::NormalAccumulator::new(16);
        acc.push(&[[0.0; 5]; 16], 0.01);
        m.insert(
            "framegpt.normal".into(),
            serde_json::to_string(&acc.finish().unwrap()).unwrap(),
        );
        let err = check(&m, &i, &o).unwrap_err().to_string();
        assert!(
            err.contains("`framegpt.normal`: expected 64 patches"),
            "{err}"
        );
    }

    #[test]
    fn lists_missing_metadata_keys() {
        let (i, o) = good_io();
        let err = check(&md(&[("producer", "x")]), &i, &o)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`framegpt.frame_size`") && err.contains("found: `producer`"),
            "{err}"
        );
    }

    #[test]
    fn names_shape_mismatch_and_missing_output() {
        let i = vec![t("patches", &[-1, 8, 64, 100])];
        let o = vec![t("embeddings", &[-1, 8, 128])];
        let err = check(&base(), &i, &o).unwrap_err();
        assert_eq!(err.0.len(), 2, "{err}");
        assert!(
            err.0[0].contains(
                "expected `patches` f32 [?, 8, 64, 192], found `patches` f32 [?, 8, 64, 100]"
            ),
            "{err}"
        );
        assert!(
            err.0[1].contains("`next_patches`") && err.0[1].contains("missing"),
            "{err}"
        );
    }

    #[test]
    fn labels_require_logits_of_matching_width() {
        let mut m = base();
        m.insert("framegpt.labels".into(), r#"["a","b","c"]"#.into());
        let (i, mut o) = good_io();
        o.push(t("logits", &[-1, 8, 2]));
        let err = check(&m, &i, &o).unwrap_err().to_string();
        assert!(err.contains("`logits`"), "{err}");
        o.pop();
        o.push(t("logits", &[-1, 8, 3]));
        assert_eq!(check(&m, &i, &o).unwrap().num_labels(), 3);
    }

    #[test]
    fn rejects_bad_values() {
        for (key, value, needle) in [
            ("framegpt.frame_size", "64", "expected `WxH`"),
            ("framegpt.patch_size", "0", "positive integer"),
            (
                "framegpt.frame_size",
                "60x64",
                "not a multiple of patch size",
            ),
            ("framegpt.std", "0.2,0,0.2", "positive numbers"),
            ("framegpt.mean", "0.4,0.4", "three comma-separated"),
            ("framegpt.labels", "goal,foul", "JSON list"),
        ] {
            let mut m = base();
            m.insert(key.into(), value.into());
            let (i, o) = good_io();
            let err = check(&m, &i, &o).unwrap_err().to_string();
            assert!(err.contains(needle), "{key}={value}: {err}");
        }
    }
}
