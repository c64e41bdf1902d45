//! Property tests (issue 12) for the three parsers of outside input: the labels CSV of
//! `finetune`, the model metadata of the contract, and the ONNX editing. Each never panics
//! on arbitrary input, and what it accepts round-trips. Run with the other tests
//! (proptest's default 256 cases each); `PROPTEST_CASES=100000` runs them longer, and
//! `scripts/fuzz.sh` runs each for minutes with fresh seeds. Besides generated input, the
//! `mutated_*` properties start from real files (the shipped model, the test models, a
//! labels CSV as the README writes it) and flip, insert, delete and cut bytes.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use framegpt::model::contract;
use framegpt::model::TensorDecl;
use framegpt::onnx_graph::{self, DenseLayer, HeadGraph};
use framegpt::train::data;
use proptest::prelude::*;

use super::fixture;

fn valid_metadata() -> BTreeMap<String, String> {
    [
        ("framegpt.contract", "1"),
        ("framegpt.frame_size", "64x64"),
        ("framegpt.patch_size", "8"),
        ("framegpt.context_frames", "8"),
        ("framegpt.mean", "0.45,0.45,0.45"),
        ("framegpt.std", "0.225,0.225,0.225"),
        ("framegpt.embedding_dim", "8"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn io(t: i64) -> (Vec<TensorDecl>, Vec<TensorDecl>) {
    let decl = |name: &str, shape: &[i64]| TensorDecl {
        name: name.to_string(),
        is_f32: true,
        shape: shape.to_vec(),
    };
    (
        vec![decl("patches", &[-1, t, 64, 192])],
        vec![
            decl("next_patches", &[-1, t, 64, 192]),
            decl("embeddings", &[-1, t, 8]),
        ],
    )
}

proptest! {
    /// Any value for any contract key: an Ok contract or a list of violations, never a
    /// panic; an accepted contract's sizes are the positive numbers the metadata says.
    #[test]
    fn metadata_parser_never_panics(
        key in prop::sample::select(vec![
            "framegpt.contract", "framegpt.frame_size", "framegpt.patch_size",
            "framegpt.context_frames", "framegpt.mean", "framegpt.std",
            "framegpt.embedding_dim", "framegpt.labels",
        ]),
        value in r"(\PC|[0-9x,.\-e\[\]{}]){0,24}",
        t in -1i64..20,
    ) {
        let mut md = valid_metadata();
        md.insert(key.to_string(), value);
        let (inputs, outputs) = io(t);
        if let Ok(c) = contract::check(&md, &inputs, &outputs) {
            prop_assert!(c.context_frames > 0 && c.frame_width > 0 && c.embedding_dim > 0);
            prop_assert!(t < 0 || c.context_frames as i64 == t, "context {} vs graph {t}", c.context_frames);
        }
    }

    /// A context that differs from a static graph dimension is always refused.
    #[test]
    fn declared_context_must_match_static_dims(declared in 1usize..64, graph in 1i64..64) {
        let mut md = valid_metadata();
        md.insert("framegpt.context_frames".into(), declared.to_string());
        let (inputs, outputs) = io(graph);
        let result = contract::check(&md, &inputs, &outputs);
        prop_assert_eq!(result.is_ok(), declared as i64 == graph);
    }

    /// Arbitrary bytes are never a panic for the ONNX reader.
    #[test]
    fn onnx_reader_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = onnx_graph::read_metadata(&bytes);
        let _ = onnx_graph::graph_outputs(&bytes);
    }

    /// Attaching a head keeps every metadata entry not overwritten, sets the new ones, and
    /// adds exactly the head's output; a truncated model is an error, not a panic.
    #[test]
    fn attach_head_round_trips_metadata(
        extra in prop::collection::btree_map(r"x\.[a-z]{1,8}", r"\PC{0,16}", 0..4),
        hidden in 1usize..5,
        cut in 0usize..13_000,
    ) {
        let model = std::fs::read(fixture("models/tiny-valid.onnx")).unwrap();
        let head = HeadGraph {
            input: "embeddings".into(),
            output: "logits".into(),
            layers: vec![
                DenseLayer { inputs: 8, outputs: hidden, weight: vec![0.5; 8 * hidden], bias: vec![0.0; hidden] },
                DenseLayer { inputs: hidden, outputs: 2, weight: vec![0.25; hidden * 2], bias: vec![0.0; 2] },
            ],
            temporal_lag: 0,
            motion: None,
            frames: 8,
            output_shape: vec![None, Some(8), Some(2)],
        };
        let edited = onnx_graph::attach_head(&model, &head, &extra).unwrap();
        let before = onnx_graph::read_metadata(&model).unwrap();
        let after = onnx_graph::read_metadata(&edited).unwrap();
        for (k, v) in &before {
            prop_assert_eq!(after.get(k).unwrap_or(v), extra.get(k).unwrap_or(v));
        }
        for (k, v) in &extra {
            prop_assert_eq!(after.get(k), Some(v));
        }
        let mut outputs = onnx_graph::graph_outputs(&edited).unwrap();
        prop_assert_eq!(outputs.pop(), Some("logits".to_string()));
        prop_assert_eq!(outputs, onnx_graph::graph_outputs(&model).unwrap());
        let _ = onnx_graph::attach_head(&model[..cut.min(model.len())], &head, &extra);
    }

    /// The labels CSV: arbitrary text is rows or an error naming a line, never a panic;
    /// every accepted row has a label and start < end.
    #[test]
    fn labels_csv_parser_never_panics(
        rows in prop::collection::vec(
            (r"[a-z/.]{0,8}", r"(-?[0-9]{0,3}(\.[0-9])?|nan|inf|x)", r"(-?[0-9]{0,3}(\.[0-9])?|nan|inf|x)", r"[a-z =+\-]{0,6}"),
            0..6,
        ),
        header in prop::sample::select(vec!["path,start_s,end_s,label", "path,label", "x,y", ""]),
    ) {
        let mut text = format!("{header}\n");
        for (p, s, e, l) in &rows {
            text.push_str(&format!("{p},{s},{e},{l}\n"));
        }
        if let Ok(parsed) = data::parse_csv(&text, Path::new("labels.csv"), Path::new("/base")) {
            for (clip, label) in parsed {
                prop_assert!(!label.is_empty());
                if let (Some(s), Some(e)) = (clip.start_s, clip.end_s) {
                    prop_assert!(s < e, "{s} >= {e}");
                }
            }
        }
    }
}

/// The real models the mutation properties start from, read once.
fn seed_models() -> &'static [Vec<u8>] {
    static MODELS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    MODELS.get_or_init(|| {
        let shipped = super::root().join("models/framegpt-base.onnx");
        [
            fixture("models/tiny-valid.onnx"),
            fixture("models/framegpt-tiny-named.onnx"),
            shipped,
        ]
        .iter()
        .map(|p| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .collect()
    })
}

/// A labels CSV as the README describes it: segments, empty times, a quoted path.
const SEED_LABELS_CSV: &str = "path,start_s,end_s,label\n\
clips/a.mp4,0,2.5,walk\n\
clips/b.mp4,,,run\n\
\"clips/with, comma.mp4\",1.0,,walk\n\
/abs/c.mkv,3,4,=sum\n";

/// One byte-level edit: (where, as a fraction of the length; what; a byte).
type Edit = (f64, u8, u8);

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    prop::collection::vec((0.0f64..1.0, 0u8..4, any::<u8>()), 1..8)
}

/// Applies `edits`: overwrite, insert, delete a byte, or cut the rest.
fn mutate(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for &(at, op, byte) in edits {
        let i = ((at * bytes.len() as f64) as usize).min(bytes.len());
        match op {
            0 if i < bytes.len() => bytes[i] = byte,
            1 => bytes.insert(i, byte),
            2 if i < bytes.len() => {
                bytes.remove(i);
            }
            3 => bytes.truncate(i),
            _ => {}
        }
    }
    bytes
}

fn tiny_head() -> HeadGraph {
    HeadGraph {
        input: "embeddings".into(),
        output: "logits".into(),
        layers: vec![DenseLayer {
            inputs: 8,
            outputs: 2,
            weight: vec![0.5; 16],
            bias: vec![0.0; 2],
        }],
        temporal_lag: 0,
        motion: None,
        frames: 8,
        output_shape: vec![None, Some(8), Some(2)],
    }
}

proptest! {
    /// Writing weights back by initializer name: the named initializers read back with
    /// the new values, every other initializer, the metadata and the outputs are kept; an
    /// unknown name or a wrong element count is an error, never a changed model.
    #[test]
    fn replace_initializers_round_trips_by_name(
        picks in prop::collection::vec(any::<prop::sample::Index>(), 0..4),
        scale in -4.0f32..4.0,
        wrong_len in any::<bool>(),
    ) {
        let model = &seed_models()[1];
        let before = onnx_graph::read_float_initializers(model).unwrap();
        let names: Vec<&String> = before.keys().collect();
        prop_assume!(!names.is_empty());
        let mut values = BTreeMap::new();
        for p in &picks {
            let name = names[p.index(names.len())];
            let n = before[name].data.len();
            let v: Vec<f32> = (0..n).map(|i| scale * (i as f32).sin()).collect();
            values.insert(name.clone(), v);
        }
        if wrong_len {
            if let Some(v) = values.values_mut().next() {
                v.push(1.0);
                prop_assert!(onnx_graph::replace_initializers(model, &values).is_err());
                return Ok(());
            }
        }
        let edited = onnx_graph::replace_initializers(model, &values).unwrap();
        let after = onnx_graph::read_float_initializers(&edited).unwrap();
        prop_assert_eq!(after.len(), before.len());
        for (name, t) in &before {
            let got = &after[name];
            prop_assert_eq!(&got.dims, &t.dims);
            prop_assert_eq!(&got.data, values.get(name).unwrap_or(&t.data), "{}", name);
        }
        prop_assert_eq!(onnx_graph::read_metadata(&edited).unwrap(), onnx_graph::read_metadata(model).unwrap());
        prop_assert_eq!(onnx_graph::graph_outputs(&edited).unwrap(), onnx_graph::graph_outputs(model).unwrap());
        let unknown: BTreeMap<String, Vec<f32>> = [("no.such.weight".to_string(), vec![0.0])].into();
        prop_assert!(onnx_graph::replace_initializers(model, &unknown).is_err());
    }

    /// A real model with bytes flipped, inserted, deleted or cut: every reader and editor
    /// (and the contract check on whatever metadata still reads) returns, never panics.
    #[test]
    fn mutated_models_never_panic(which in 0usize..3, edits in edits()) {
        let bytes = mutate(seed_models()[which].clone(), &edits);
        if let Ok(md) = onnx_graph::read_metadata(&bytes) {
            let (inputs, outputs) = io(8);
            let _ = contract::check(&md, &inputs, &outputs);
        }
        let _ = onnx_graph::graph_outputs(&bytes);
        if let Ok(weights) = onnx_graph::read_float_initializers(&bytes) {
            if let Some((name, t)) = weights.into_iter().next() {
                let values: BTreeMap<String, Vec<f32>> = [(name, vec![0.0; t.data.len()])].into();
                let _ = onnx_graph::replace_initializers(&bytes, &values);
            }
        }
        let extra: BTreeMap<String, String> = [("x.k".to_string(), "v".to_string())].into();
        let _ = onnx_graph::attach_head(&bytes, &tiny_head(), &extra);
    }

    /// The README's labels CSV with bytes edited (read as UTF-8, lossily, as a file would
    /// be): rows or an error naming a line, never a panic; accepted rows keep start < end.
    #[test]
    fn mutated_labels_csv_never_panics(edits in edits()) {
        let bytes = mutate(SEED_LABELS_CSV.as_bytes().to_vec(), &edits);
        let text = String::from_utf8_lossy(&bytes);
        if let Ok(parsed) = data::parse_csv(&text, Path::new("labels.csv"), Path::new("/base")) {
            for (clip, label) in parsed {
                prop_assert!(!label.is_empty());
                if let (Some(s), Some(e)) = (clip.start_s, clip.end_s) {
                    prop_assert!(s < e, "{s} >= {e}");
                }
            }
        }
    }
}
