//! `framegpt finetune` end to end (a module of the one integration test binary): tiny labelled sets built in a TempDir from `samples/`,
//! the real binary, real FFmpeg and ONNX Runtime. Kept small (a few dozen frames per file).

use std::path::Path;

use framegpt::onnx_graph;
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
/// an unreadable file (reported and left out) and a class with one clip (kept, trained on).
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
        first.stderr.contains("synthetic/broken.mp4` left out"),
        "{}",
        first.stderr
    );
    assert!(first.stderr.contains("decoded"), "{}", first.stderr);
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
        inspect
            .stdout
            .contains("labels:      3 (bird, lonely, synthetic)"),
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
        labels
            .iter()
            .all(|l| ["bird", "lonely", "synthetic"].contains(&l.as_str())),
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

fn summary(model: &Path) -> serde_json::Value {
    let mut s = model.as_os_str().to_os_string();
    s.push(".report/summary.json");
    serde_json::from_str(&fs_err::read_to_string(s).unwrap()).unwrap()
}

/// Regression (issue 10): a class whose clips have 2–3 sampled frames used to vanish
/// (every frame skipped); now each clip keeps at least half its frames, the class is
/// in the model and its test clips are labelled with it.
#[test]
fn a_class_of_two_or_three_frame_clips_is_kept_and_recognized() {
    let tmp = TempDir::new().unwrap();
    let (train, test) = (tmp.path().join("train"), tmp.path().join("test"));
    for i in 0..3 {
        copy("realshort.mp4", &train.join(format!("short/{i}.mp4")));
    }
    copy("cockatoo.mp4", &train.join("bird/0.mp4"));
    copy("generated/static.mp4", &train.join("bird/1.mp4"));
    copy("realshort.mp4", &test.join("short/t.mp4"));
    copy("generated/flash.mp4", &test.join("bird/t.mp4"));
    let model = tmp.path().join("m.onnx");
    // 2 frames per second: realshort (1.2 s) gives 3 sampled frames. No validation split
    // (each class trains on all its clips).
    let r = run(framegpt()
        .arg("finetune")
        .arg("--data")
        .arg(&train)
        .arg("--test")
        .arg(&test)
        .arg("-o")
        .arg(&model)
        .arg("--cache")
        .arg(tmp.path().join("c"))
        .args(["--fps", "2", "--val-split", "0", "--epochs", "60"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stderr.contains("left out"), "{}", r.stderr);
    let md = onnx_graph::read_metadata(&fs_err::read(&model).unwrap()).unwrap();
    assert_eq!(md["framegpt.labels"], r#"["bird","short"]"#);
    let t = &summary(&model)["results"]["test"];
    assert_eq!(t["clips"], 2, "{t}");
    assert_eq!(t["clip_accuracy"], 1.0, "{t}");
}

/// A class none of whose clips decodes is an error naming it, unless
/// --allow-missing-classes.
#[test]
fn a_class_without_any_usable_clip_exits_2_naming_it() {
    let tmp = TempDir::new().unwrap();
    let data = tmp.path().join("data");
    copy("cockatoo.mp4", &data.join("bird/a.mp4"));
    copy("generated/static.mp4", &data.join("bird/b.mp4"));
    copy("generated/cut.mp4", &data.join("synthetic/a.mp4"));
    copy("generated/flash.mp4", &data.join("synthetic/b.mp4"));
    fs_err::create_dir_all(data.join("broken")).unwrap();
    fs_err::write(data.join("broken/a.mp4"), "not a video").unwrap();
    fs_err::write(data.join("broken/b.mp4"), "").unwrap();
    let (model, cache) = (tmp.path().join("m.onnx"), tmp.path().join("c"));
    let r = finetune(&data, &model, &cache, &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("class `broken`"), "{}", r.stderr);
    assert!(!model.exists());
    let r = finetune(&data, &model, &cache, &["--allow-missing-classes"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let md = onnx_graph::read_metadata(&fs_err::read(&model).unwrap()).unwrap();
    assert_eq!(md["framegpt.labels"], r#"["bird","synthetic"]"#);
}

/// The exported file's logits equal the trained model's on the same real frames: frozen
/// with a temporal lag (e_{t−lag} from e_t's own window, as the graph computes it), and
/// with the last temporal block trained and written back into the file.
#[test]
fn exported_logits_equal_the_trained_models_frozen_and_unfrozen() {
    let tmp = TempDir::new().unwrap();
    let data = tmp.path().join("data");
    copy("cockatoo.mp4", &data.join("bird/a.mp4"));
    copy("generated/static.mp4", &data.join("bird/b.mp4"));
    copy("generated/cut.mp4", &data.join("synthetic/a.mp4"));
    copy("generated/flash.mp4", &data.join("synthetic/b.mp4"));
    let base = root().join("tests/fixtures/models/framegpt-tiny-named.onnx");
    let cache = tmp.path().join("c");
    for (name, extra) in [
        (
            "lag",
            &["--temporal-lag", "3", "--head", "mlp", "--hidden", "8"][..],
        ),
        ("unfrozen", &["--unfreeze", "1", "--temporal-lag", "2"][..]),
        ("motion", &["--head-inputs", "motion"][..]),
        ("embeddings", &["--head-inputs", "embeddings"][..]),
        (
            "both",
            &["--head-inputs", "both", "--temporal-lag", "0"][..],
        ),
    ] {
        let model = tmp.path().join(format!("{name}.onnx"));
        let r = finetune(
            &data,
            &model,
            &cache,
            &[&["--model", base.to_str().unwrap()], extra].concat(),
        );
        assert_eq!(r.code, 0, "{name}: {}", r.stderr);
        let diff = summary(&model)["export_check_max_abs_diff"]
            .as_f64()
            .unwrap();
        assert!(diff < 1e-4, "{name}: {diff}");
        let results = &summary(&model)["results"];
        let inputs = results["head_inputs"].as_str().unwrap();
        if let Some(asked) = extra.iter().position(|a| *a == "--head-inputs") {
            assert_eq!(inputs, extra[asked + 1], "{results}");
        }
        let before = onnx_graph::read_float_initializers(&fs_err::read(&base).unwrap()).unwrap();
        let after = onnx_graph::read_float_initializers(&fs_err::read(&model).unwrap()).unwrap();
        for (k, v) in &before {
            let trained = name == "unfrozen" && k.starts_with("temporal.1.");
            assert_eq!(after[k] != *v, trained, "{name}: {k}");
        }
        // The trained blocks feed the head; next_patches (surprise) is the base model's.
        for init in before.keys() {
            let copy = format!("{init}{}", onnx_graph::BASE_SUFFIX);
            assert_eq!(
                after.contains_key(&copy),
                name == "unfrozen" && init.starts_with("temporal.1."),
                "{copy}"
            );
            if let Some(v) = after.get(&copy) {
                assert!(*v == before[init], "{copy}");
            }
        }
        // The graph computes the camera-motion features only for a head that reads them.
        let motion_nodes = after.keys().any(|k| k.contains("/motion/"));
        assert_eq!(motion_nodes, inputs != "embeddings", "{name}: {inputs}");
        let md = onnx_graph::read_metadata(&fs_err::read(&model).unwrap()).unwrap();
        let prov: serde_json::Value = serde_json::from_str(&md["framegpt.provenance"]).unwrap();
        let listed = prov["finetune"]["trained_initializers"].as_array().unwrap();
        assert_eq!(listed.is_empty(), name != "unfrozen", "{prov}");
        // Nothing held in memory (--memory-mb 0: windows read back from a fresh cache,
        // the split's inputs from a scratch file): the same training, the same weights.
        let bounded = tmp.path().join(format!("{name}-bounded.onnx"));
        let cache0 = tmp.path().join(format!("c-{name}"));
        let r = finetune(
            &data,
            &bounded,
            &cache0,
            &[
                &["--model", base.to_str().unwrap(), "--memory-mb", "0"],
                extra,
            ]
            .concat(),
        );
        assert_eq!(r.code, 0, "{name} bounded: {}", r.stderr);
        let metrics = |m: &Path| {
            let mut s = m.as_os_str().to_os_string();
            s.push(".report/metrics.csv");
            fs_err::read_to_string(s).unwrap()
        };
        assert_eq!(metrics(&bounded), metrics(&model), "{name}");
        let weights =
            onnx_graph::read_float_initializers(&fs_err::read(&bounded).unwrap()).unwrap();
        assert!(
            weights == after,
            "{name}: --memory-mb 0 trained other weights"
        );
        // No scratch file is left in the cache folder.
        for e in fs_err::read_dir(&cache0).unwrap() {
            let p = e.unwrap().path();
            assert_eq!(p.extension().unwrap(), "safetensors", "{}", p.display());
        }
    }
    // A constant-folded model (weights without their names) cannot be unfrozen.
    let r = finetune(
        &data,
        &tmp.path().join("x.onnx"),
        &cache,
        &[
            "--model",
            root()
                .join("tests/fixtures/models/tiny-valid.onnx")
                .to_str()
                .unwrap(),
            "--unfreeze",
            "1",
        ],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("do_constant_folding=False"),
        "{}",
        r.stderr
    );
}

/// The Rust backbone (`train::backbone`, candle) against ONNX Runtime on the same weights
/// and the same real frames. Here, in the integration binary (its own process), so its
/// allocations do not disturb the RSS-based leak test of decode.rs.
mod backbone {
    use std::path::Path;
    use std::sync::atomic::AtomicBool;

    use candle_core::{Device, Tensor};
    use framegpt::model::{Device as OrtDevice, Model, SessionOptions};
    use framegpt::train::backbone::{to_vec, Backbone, Block};

    fn fixture() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models/framegpt-tiny-named.onnx")
    }

    /// An ONNX Runtime session on the CPU, one thread.
    fn cpu_model(path: &Path) -> Model {
        Model::load(
            path,
            SessionOptions {
                device: OrtDevice::Cpu,
                threads: 1,
            },
        )
        .unwrap()
    }

    /// Real frames: the first `n` frames of `samples/realshort.mp4`, patchified as the
    /// pipeline does, [n, N·C].
    fn real_frames(contract: &framegpt::model::ModelContract, n: usize) -> Vec<Vec<f32>> {
        let patchifier = framegpt::patchify::Patchifier::new(contract);
        let mut sampler = framegpt::sample::Sampler::new(framegpt::sample::SampleSpec::default());
        let mut frames = Vec::new();
        let options = framegpt::decode::DecodeOptions {
            frame_width: contract.frame_width,
            frame_height: contract.frame_height,
            threads: 1,
        };
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/realshort.mp4");
        framegpt::decode::decode_file(&path, options, &mut sampler, &AtomicBool::new(false), |f| {
            frames.push(patchifier.patchify(&f.rgb));
            frames.len() < n
        })
        .unwrap();
        assert_eq!(frames.len(), n);
        frames
    }

    /// The Rust forward pass against ONNX Runtime on the same weights and the same real
    /// frames: both outputs, full and short windows. Measured: max abs diff ~1e-6.
    #[test]
    fn forward_matches_onnx_runtime_on_real_frames() {
        let path = fixture();
        let bytes = std::fs::read(&path).unwrap();
        let inits = framegpt::onnx_graph::read_float_initializers(&bytes).unwrap();
        let backbone = Backbone::from_initializers(&inits, 4).unwrap();
        assert_eq!((backbone.d, backbone.temporal.len()), (32, 2));
        let mut model = cpu_model(&path);
        let contract = model.contract().clone();
        let (n, c) = (contract.num_patches(), contract.patch_dim());
        let frames = real_frames(&contract, 24);
        for (b, t) in [(2usize, 8usize), (1, 5)] {
            // Windows at stride 8 over the clip: real motion inside each window.
            let data: Vec<f32> = (0..b)
                .flat_map(|w| frames[w * 8..w * 8 + t].concat())
                .collect();
            let input = ndarray::Array4::from_shape_vec((b, t, n, c), data.clone()).unwrap();
            let ort = model.run(input.view()).unwrap();
            let x = Tensor::from_vec(data, (b, t, n, c), &Device::Cpu).unwrap();
            let (next, emb) = backbone.forward(&x).unwrap();
            let diff = |a: &[f32], b: &[f32]| {
                assert_eq!(a.len(), b.len());
                a.iter()
                    .zip(b)
                    .map(|(x, y)| (x - y).abs())
                    .fold(0.0f32, f32::max)
            };
            let d_next = diff(
                ort.next_patches.as_slice().unwrap(),
                &to_vec(&next).unwrap(),
            );
            let d_emb = diff(ort.embeddings.as_slice().unwrap(), &to_vec(&emb).unwrap());
            eprintln!(
                "B={b} T={t}: max abs diff next_patches {d_next:.2e}, embeddings {d_emb:.2e}"
            );
            assert!(d_next < 1e-4 && d_emb < 1e-4, "{d_next} {d_emb}");
            // The embeddings are not trivially constant.
            let spread = ort.embeddings.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            assert!(spread > 0.1, "{spread}");
        }
    }

    /// `--unfreeze` writes trained temporal blocks back into the file, but `boundary` and
    /// `next_patches` keep the base weights (`onnx_graph::keep_outputs_on_base`): on the
    /// shipped model (with its boundary heads) and real frames, perturbed weights in
    /// `backbone.temporal.1.*` move the embeddings and leave those two outputs exactly as
    /// they were; without the branch the boundary output moves (so the check can fail).
    #[test]
    fn trained_blocks_leave_boundary_and_next_patches_on_the_base_weights() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let base_path = root.join("models/framegpt-base.onnx");
        let bytes = std::fs::read(&base_path).unwrap();
        let inits = framegpt::onnx_graph::read_float_initializers(&bytes).unwrap();
        let trained: std::collections::BTreeMap<String, Vec<f32>> = inits
            .iter()
            .filter(|(k, _)| k.starts_with("backbone.temporal.1."))
            .map(|(k, v)| (k.clone(), v.data.iter().map(|x| x * 1.3 + 0.02).collect()))
            .collect();
        assert!(trained.len() >= 10, "{}", trained.len());
        let names = trained.keys().cloned().collect();
        let kept = framegpt::onnx_graph::keep_outputs_on_base(
            &bytes,
            &names,
            &["boundary", "next_patches"],
        )
        .unwrap();
        let kept = framegpt::onnx_graph::replace_initializers(&kept, &trained).unwrap();
        let plain = framegpt::onnx_graph::replace_initializers(&bytes, &trained).unwrap();
        let tmp = tempfile::TempDir::new().unwrap();
        let run = |b: &[u8], name: &str| {
            let p = tmp.path().join(name);
            std::fs::write(&p, b).unwrap();
            let mut m = cpu_model(&p);
            let contract = m.contract().clone();
            let (n, c) = (contract.num_patches(), contract.patch_dim());
            let frames = real_frames(&contract, 16);
            let input = ndarray::Array4::from_shape_vec((2, 8, n, c), frames.concat()).unwrap();
            m.run(input.view()).unwrap()
        };
        let diff = |a: &[f32], b: &[f32]| {
            a.iter()
                .zip(b)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0f32, f32::max)
        };
        let (b0, bk, bp) = (
            run(&bytes, "base.onnx"),
            run(&kept, "kept.onnx"),
            run(&plain, "plain.onnx"),
        );
        let boundary = |o: &framegpt::model::ModelOutput| o.boundary.clone().unwrap();
        let sl = |a: &ndarray::Array3<f32>| a.as_slice().unwrap().to_vec();
        assert!(diff(&sl(&b0.embeddings), &sl(&bk.embeddings)) > 1e-3);
        assert!(diff(&sl(&boundary(&b0)), &sl(&boundary(&bk))) < 1e-6);
        let next = |o: &framegpt::model::ModelOutput| o.next_patches.as_slice().unwrap().to_vec();
        assert!(diff(&next(&b0), &next(&bk)) < 1e-6);
        assert!(diff(&sl(&boundary(&b0)), &sl(&boundary(&bp))) > 1e-4);
        assert!(diff(&next(&b0), &next(&bp)) > 1e-4);
    }

    #[test]
    fn temporal_input_then_the_last_blocks_gives_the_embeddings() {
        let bytes = std::fs::read(fixture()).unwrap();
        let inits = framegpt::onnx_graph::read_float_initializers(&bytes).unwrap();
        let backbone = Backbone::from_initializers(&inits, 4).unwrap();
        let x = Tensor::randn(0f32, 1.0, (2, 8, 64, 192), &Device::Cpu).unwrap();
        let (_, emb) = backbone.forward(&x).unwrap();
        let mask = Backbone::causal_mask(8).unwrap();
        for first in 0..=2 {
            let h = backbone.temporal_input(&x, first).unwrap();
            let (blocks, _): (Vec<Block>, Vec<_>) = backbone.temporal[first..]
                .iter()
                .map(|b| b.to_vars().unwrap())
                .unzip();
            let e = backbone.embeddings_from(&h, &blocks, &mask).unwrap();
            let d = (e - &emb)
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(d < 1e-5, "first {first}: {d}");
        }
    }
}
