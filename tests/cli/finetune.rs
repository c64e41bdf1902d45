//! `framegpt finetune` end to end (a module of the one integration test binary): tiny labelled sets built in a TempDir from `samples/`,
//! the real binary, real FFmpeg and ONNX Runtime. Kept small (a few dozen frames per file).

use std::collections::BTreeMap;
use std::path::Path;

use framegpt::model::{Device, Model, SessionOptions};
use framegpt::onnx_graph::{self, HeadGraph};
use framegpt::train::head::{HeadKind, Standardizer};
use framegpt::train::optim::{self, Split, TrainConfig};
use framegpt::train::rng::SplitMix64;
use ndarray::{Array2, Array4, Axis};
use tempfile::TempDir;

use super::{framegpt, root, run, Run};

fn copy(from: &str, to: &Path) {
    fs_err::create_dir_all(to.parent().unwrap()).unwrap();
    fs_err::copy(root().join("samples").join(from), to).unwrap();
}

fn finetune(data: &Path, out: &Path, cache: &Path, extra: &[&str]) -> Run {
    run(framegpt()
        .arg("finetune")
        .arg("--data")
        .arg(data)
        .arg("-o")
        .arg(out)
        .arg("--cache")
        .arg(cache)
        .args(["--max-frames", "24", "--epochs", "40", "--val-split", "0.5"])
        .args(extra))
}

fn column(path: &Path, name: &str) -> Vec<String> {
    let mut r = csv::Reader::from_path(path).unwrap();
    let i = r.headers().unwrap().iter().position(|h| h == name).unwrap();
    r.records().map(|rec| rec.unwrap()[i].to_string()).collect()
}

/// Folder-per-class data: two classes of two files each (copies share one cache entry),
/// an unreadable file and a class with one clip, both reported and left out.
#[test]
fn finetune_writes_one_model_that_inspect_and_analyze_use() {
    let tmp = TempDir::new().unwrap();
    let data = tmp.path().join("data");
    copy("cockatoo.mp4", &data.join("bird/a.mp4"));
    copy("cockatoo.mp4", &data.join("bird/b.mp4"));
    copy("generated/cut.mp4", &data.join("synthetic/a.mp4"));
    copy("generated/flash.mp4", &data.join("synthetic/b.mp4"));
    copy("realshort.mp4", &data.join("lonely/a.mp4"));
    fs_err::write(data.join("synthetic/broken.mp4"), "not a video").unwrap();
    let cache = tmp.path().join("cache");
    let model = tmp.path().join("mine.onnx");

    let first = finetune(&data, &model, &cache, &["--head", "mlp", "--hidden", "8"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(
        first.stderr.contains("class `lonely` has 1 clip"),
        "{}",
        first.stderr
    );
    assert!(
        first.stderr.contains("0 files from the cache"),
        "{}",
        first.stderr
    );
    assert!(first.stderr.contains("confusion"), "{}", first.stderr);
    let report = tmp.path().join("mine.onnx.report");
    for f in [
        "metrics.csv",
        "curve.svg",
        "report.txt",
        "confusion_validation.csv",
        "per_class_validation.csv",
        "summary.json",
    ] {
        assert!(report.join(f).is_file(), "missing {f}");
    }
    let epochs = column(&report.join("metrics.csv"), "val_accuracy");
    assert!(!epochs.is_empty() && epochs.iter().all(|v| !v.is_empty()));

    // Same data, same seed, cached features: the same file, byte for byte.
    let again = tmp.path().join("again.onnx");
    let second = finetune(&data, &again, &cache, &["--head", "mlp", "--hidden", "8"]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(
        second.stderr.contains("from the cache, 0 decoded"),
        "{}",
        second.stderr
    );
    assert_eq!(fs_err::read(&model).unwrap(), fs_err::read(&again).unwrap());

    let inspect = run(framegpt().arg("inspect").arg(&model));
    assert_eq!(inspect.code, 0, "{}", inspect.stderr);
    assert!(
        inspect.stdout.contains("contract:    v2, ok"),
        "{}",
        inspect.stdout
    );
    assert!(
        inspect.stdout.contains("labels:      2 (bird, synthetic)"),
        "{}",
        inspect.stdout
    );
    assert!(
        inspect.stdout.contains("\"finetune\""),
        "{}",
        inspect.stdout
    );

    let out = tmp.path().join("out");
    let analyze = run(framegpt()
        .arg("analyze")
        .arg(root().join("samples/cockatoo.mp4"))
        .arg("-o")
        .arg(&out)
        .args(["--max-frames", "16", "--model"])
        .arg(&model));
    assert_eq!(analyze.code, 0, "{}", analyze.stderr);
    let labels = column(&out.join("cockatoo.mp4/frames.csv"), "label");
    assert_eq!(labels.len(), 16);
    assert!(
        labels.iter().all(|l| l == "bird" || l == "synthetic"),
        "{labels:?}"
    );
    let confidence = column(&out.join("cockatoo.mp4/frames.csv"), "confidence");
    assert!(confidence.iter().all(|c| c.parse::<f64>().is_ok()));
    let top = column(&out.join("clips.csv"), "top_label");
    assert!(!top[0].is_empty());
}

#[test]
fn labels_csv_with_a_bad_row_fails_with_its_line_number() {
    let tmp = TempDir::new().unwrap();
    let csv = tmp.path().join("labels.csv");
    let sample = root().join("samples/cockatoo.mp4");
    fs_err::write(
        &csv,
        format!(
            "path,start_s,end_s,label\n{s},0,1,bird\n{s},2,soon,bird\n",
            s = sample.display()
        ),
    )
    .unwrap();
    let r = finetune(&csv, &tmp.path().join("m.onnx"), &tmp.path().join("c"), &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("line 3"), "{}", r.stderr);
    assert!(r.stderr.contains("end_s"), "{}", r.stderr);
}

/// Segments of longer files from a CSV (relative paths), and a test set.
#[test]
fn csv_segments_train_and_evaluate_a_test_set() {
    let tmp = TempDir::new().unwrap();
    copy("cockatoo.mp4", &tmp.path().join("v/bird.mp4"));
    copy("cockatoo.mp4", &tmp.path().join("v/bird2.mp4"));
    copy("generated/cut.mp4", &tmp.path().join("v/cut.mp4"));
    copy("generated/flash.mp4", &tmp.path().join("v/flash.mp4"));
    let rows = "path,start_s,end_s,label\n\
                v/bird.mp4,0,0.6,bird\nv/bird.mp4,0.6,,bird\nv/bird2.mp4,,,bird\n\
                v/cut.mp4,,,synthetic\nv/flash.mp4,,,synthetic\n";
    fs_err::write(tmp.path().join("labels.csv"), rows).unwrap();
    let r = finetune(
        &tmp.path().join("labels.csv"),
        &tmp.path().join("m.onnx"),
        &tmp.path().join("c"),
        &["--test", tmp.path().join("labels.csv").to_str().unwrap()],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("test (per frame): accuracy"),
        "{}",
        r.stderr
    );
    assert!(tmp
        .path()
        .join("m.onnx.report/confusion_test.csv")
        .is_file());
}

/// The head attached to a backbone: ONNX Runtime's `logits` equal the Rust head's (the
/// f64 head on standardized features, not the folded f32 export) on the same embeddings.
#[test]
fn exported_logits_equal_the_rust_heads() {
    let backbone = root().join("tests/fixtures/models/tiny-valid.onnx");
    let bytes = fs_err::read(&backbone).unwrap();
    let options = SessionOptions {
        device: Device::Cpu,
        threads: 1,
    };
    let contract = Model::load(&backbone, options).unwrap().contract().clone();
    let (t, d) = (contract.context_frames, contract.embedding_dim);
    let mut rng = SplitMix64::new(4);
    let patches =
        Array4::from_shape_fn((2, t, contract.num_patches(), contract.patch_dim()), |_| {
            (rng.next_f64() * 2.0 - 1.0) as f32
        });
    let mut backbone_model = Model::load(&backbone, options).unwrap();
    let emb = backbone_model.run(patches.view()).unwrap().embeddings;

    for (kind, lag) in [(HeadKind::Softmax, 0), (HeadKind::Mlp { hidden: 6 }, 2)] {
        // Train on arbitrary features of the right width.
        let width = if lag > 0 { 2 * d } else { d };
        let x = Array2::from_shape_fn((60, width), |(i, j)| {
            ((i * 7 + j * 3) % 11) as f64 * 0.3 + (i % 3) as f64 * (j % 2) as f64
        });
        let y: Vec<usize> = (0..60).map(|i| i % 3).collect();
        let st = Standardizer::fit(x.view());
        let xs = st.apply(x.view());
        let config = TrainConfig {
            head: kind,
            epochs: 20,
            patience: 5,
            batch_size: 16,
            learning_rate: 0.01,
            weight_decay: 0.01,
            seed: 1,
        };
        let trained = optim::train(
            &config,
            3,
            &Split {
                x: xs.view(),
                y: &y,
            },
            None,
            |_| {},
        );
        let head = HeadGraph {
            input: "embeddings".into(),
            output: "logits".into(),
            layers: trained.head.folded(&st),
            temporal_lag: lag,
            frames: t,
            output_shape: vec![None, Some(t as i64), Some(3)],
        };
        let md = BTreeMap::from([(
            "framegpt.labels".to_string(),
            r#"["a","b","c"]"#.to_string(),
        )]);
        let edited = onnx_graph::attach_head(&bytes, &head, &md).unwrap();
        let tmp = TempDir::new().unwrap();
        let path = tmp.path().join("head.onnx");
        fs_err::write(&path, edited).unwrap();
        let out = Model::load(&path, options)
            .unwrap()
            .run(patches.view())
            .unwrap();
        let onnx = out.logits.expect("logits");
        let steps: Vec<usize> = (0..t).collect();
        for w in 0..2 {
            let e = emb.index_axis(Axis(0), w).to_owned();
            let feats = framegpt::train::with_delta(&e, &steps, lag);
            let want = trained.head.logits(st.apply(feats.view()).view());
            let got = onnx.index_axis(Axis(0), w);
            for (a, b) in want.iter().zip(got.iter()) {
                assert!(
                    (*a as f32 - b).abs() < 1e-4,
                    "{kind:?} lag {lag}: {a} vs {b}"
                );
            }
        }
    }
}
