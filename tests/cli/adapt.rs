//! `framegpt adapt` end to end (a module of the one integration test binary): a short real
//! sample, the real binary, FFmpeg and ONNX Runtime; a few training steps only.

use std::path::Path;

use tempfile::TempDir;

use super::{analyze, framegpt, run, sample, Run};

fn adapt(data: &Path, out: &Path, extra: &[&str]) -> Run {
    run(framegpt()
        .arg("adapt")
        .arg("--data")
        .arg(data)
        .arg("-o")
        .arg(out)
        .args(extra))
}

/// One camera, one file: the held-out part is its last frames. A few steps lower the
/// held-out next-frame loss; the written file is a model inspect and analyze accept.
#[test]
fn adapt_lowers_the_held_out_loss_and_writes_a_model_analyze_runs() {
    let tmp = TempDir::new().unwrap();
    let data = tmp.path().join("cam");
    fs_err::create_dir_all(&data).unwrap();
    fs_err::copy(sample("cockatoo.mp4"), data.join("day1.mp4")).unwrap();
    let model = tmp.path().join("cam.onnx");
    let r = adapt(
        &data,
        &model,
        &[
            "--max-frames",
            "72",
            "--steps",
            "10",
            "--eval-every",
            "5",
            "--lr",
            "1e-3",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("held-out next-frame loss before"),
        "{}",
        r.stderr
    );
    let report = tmp.path().join("cam.onnx.report");
    for f in ["metrics.csv", "curve.svg", "report.txt", "summary.json"] {
        assert!(report.join(f).is_file(), "missing {f}");
    }
    let summary: serde_json::Value =
        serde_json::from_str(&fs_err::read_to_string(report.join("summary.json")).unwrap())
            .unwrap();
    let losses = &summary["losses"];
    let (before, after) = (
        losses["heldout_before"].as_f64().unwrap(),
        losses["heldout_after"].as_f64().unwrap(),
    );
    assert!(after < before, "held-out loss {before} -> {after}");
    assert_eq!(summary["steps"], 10);
    assert!(summary["data"]["split"]
        .as_str()
        .unwrap()
        .contains("last 20 %"));

    let inspect = run(framegpt().arg("inspect").arg(&model));
    assert_eq!(inspect.code, 0, "{}", inspect.stderr);
    assert!(
        inspect.stdout.contains("contract:    v2, ok"),
        "{}",
        inspect.stdout
    );
    assert!(inspect.stdout.contains("\"adapt\""), "{}", inspect.stdout);

    let out = tmp.path().join("out");
    let model_arg = model.to_str().unwrap();
    let a = analyze(&[&sample("realshort.mp4")], &out, &["--model", model_arg]);
    assert_eq!(a.code, 0, "{}", a.stderr);
    assert!(out.join("realshort.mp4/frames.csv").is_file());
    // Surprise is what adapt changes; the shot-boundary probabilities stay the base
    // model's (the adapted decoder feeds the boundary heads only through a copy that keeps
    // the base weights), to the last digit written.
    let base_out = tmp.path().join("base");
    let b = analyze(&[&sample("realshort.mp4")], &base_out, &[]);
    assert_eq!(b.code, 0, "{}", b.stderr);
    let col = |dir: &Path, name: &str| -> Vec<String> {
        let mut r = csv::Reader::from_path(dir.join("realshort.mp4/frames.csv")).unwrap();
        let i = r.headers().unwrap().iter().position(|h| h == name).unwrap();
        r.records().map(|rec| rec.unwrap()[i].to_string()).collect()
    };
    for c in ["boundary_prob", "gradual_prob"] {
        assert_eq!(col(&out, c), col(&base_out, c), "{c}");
    }
    assert_ne!(col(&out, "surprise"), col(&base_out, "surprise"));
    // Only an adapted model has a camera's normal: the base model leaves `anomaly` empty.
    assert!(col(&base_out, "anomaly").iter().all(String::is_empty));
    assert!(
        inspect.stdout.contains("anomaly:     per-camera normal of"),
        "{}",
        inspect.stdout
    );

    // The camera's normal turns an exposure step into a sustained anomaly: the same footage
    // (the first 4 s, which adapt learned from) 25 % brighter from 2 s to 3 s. Inside the
    // step every frame is unusual for this camera, although frame to frame nothing changes
    // there but at its two edges (surprise sees only those).
    let stepped = tmp.path().join("stepped.mp4");
    let status = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-nostdin", "-i"])
        .arg(sample("cockatoo.mp4"))
        .args([
            "-t",
            "4",
            "-vf",
            "eq=brightness=0.25:enable='between(t,2,3)'",
            "-c:v",
            "libx264",
            "-crf",
            "18",
            "-an",
        ])
        .arg(&stepped)
        .status()
        .expect("the ffmpeg program runs");
    assert!(status.success());
    let step_out = tmp.path().join("step");
    let a = analyze(&[&stepped], &step_out, &["--model", model_arg]);
    assert_eq!(a.code, 0, "{}", a.stderr);
    let (header, rows) = super::read_csv(&step_out.join("stepped.mp4/frames.csv"));
    let times = super::column(&header, &rows, "time_s");
    let anomaly = super::column(&header, &rows, "anomaly");
    let (mut inside, mut outside) = (vec![], vec![]);
    for (t, a) in times.iter().zip(&anomaly) {
        let (t, Ok(a)) = (t.parse::<f64>().unwrap(), a.parse::<f64>()) else {
            continue;
        };
        if (2.2..2.9).contains(&t) {
            inside.push(a);
        } else if !(1.8..3.3).contains(&t) {
            outside.push(a);
        }
    }
    assert!(
        inside.len() >= 10 && outside.len() >= 40,
        "{} {}",
        inside.len(),
        outside.len()
    );
    // A repeated frame shows the picture it repeats: it has that picture's anomaly (while
    // its surprise is 0). samples/generated/lowfps.mp4: 3 distinct pictures per second.
    let low_out = tmp.path().join("low");
    let a = analyze(
        &[&sample("generated/lowfps.mp4")],
        &low_out,
        &["--model", model_arg],
    );
    assert_eq!(a.code, 0, "{}", a.stderr);
    let (h, r) = super::read_csv(&low_out.join("lowfps.mp4/frames.csv"));
    let (rep, an) = (
        super::column(&h, &r, "repeated"),
        super::column(&h, &r, "anomaly"),
    );
    assert!(rep.iter().filter(|x| *x == "1").count() > r.len() / 2);
    for k in 1..r.len() {
        if rep[k] == "1" {
            assert_eq!(an[k], an[k - 1], "row {k}");
        } else {
            assert!(an[k].parse::<f64>().is_ok(), "row {k}: `{}`", an[k]);
        }
    }
    let least_inside = inside.iter().copied().fold(f64::INFINITY, f64::min);
    let most_outside = outside.iter().copied().fold(0.0, f64::max);
    assert!(
        least_inside > most_outside,
        "every frame of the step must be more unusual than every normal frame: inside {inside:?}, outside {outside:?}"
    );
}

/// No videos, only unreadable files, only files without two distinct frames: exit 2 with
/// the cause (and the file) named.
#[test]
fn adapt_refuses_footage_it_cannot_learn_from() {
    let tmp = TempDir::new().unwrap();
    let out = tmp.path().join("m.onnx");
    let empty = tmp.path().join("empty");
    fs_err::create_dir_all(&empty).unwrap();
    fs_err::write(empty.join("notes.txt"), "no video here").unwrap();
    let r = adapt(&empty, &out, &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("no video files found in"), "{}", r.stderr);

    let broken = tmp.path().join("broken");
    fs_err::create_dir_all(&broken).unwrap();
    fs_err::write(broken.join("a.mp4"), "not a video").unwrap();
    fs_err::write(broken.join("b.mp4"), "").unwrap();
    let r = adapt(&broken, &out, &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("no usable footage")
            && r.stderr.contains("`a.mp4`: not a readable video file"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("`b.mp4`: empty file"), "{}", r.stderr);

    // A still held for 3 s: every frame repeats the first, one distinct picture per file.
    let stills = tmp.path().join("stills");
    fs_err::create_dir_all(&stills).unwrap();
    for name in ["x.mp4", "y.mp4"] {
        fs_err::copy(sample("generated/static.mp4"), stills.join(name)).unwrap();
    }
    let r = adapt(&stills, &out, &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("`x.mp4`: 1 distinct frame (a prediction needs at least 2)"),
        "{}",
        r.stderr
    );
    assert!(!out.exists());
}

/// `--normal-only` trains nothing: the written model predicts exactly as the one it started
/// from (same surprise, to the last digit) and has the camera's normal (the `anomaly`
/// column); the report says that nothing was trained.
#[test]
fn adapt_normal_only_keeps_the_weights_and_adds_the_normal() {
    let tmp = TempDir::new().unwrap();
    let data = tmp.path().join("cam");
    fs_err::create_dir_all(&data).unwrap();
    fs_err::copy(sample("cockatoo.mp4"), data.join("day1.mp4")).unwrap();
    // The output's folder is created when missing.
    let model = tmp.path().join("models/day1/cam.onnx");
    let r = adapt(&data, &model, &["--max-frames", "48", "--normal-only"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stderr.contains("loss after"), "{}", r.stderr);
    let report = tmp.path().join("models/day1/cam.onnx.report");
    let text = fs_err::read_to_string(report.join("report.txt")).unwrap();
    assert!(text.contains("training: none (--normal-only)"), "{text}");
    let summary: serde_json::Value =
        serde_json::from_str(&fs_err::read_to_string(report.join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["steps"], 0);
    assert_eq!(summary["trained_initializers"], serde_json::json!([]));
    assert_eq!(summary["config"]["normal_only"], true);

    let input = sample("realshort.mp4");
    let (ours, base) = (tmp.path().join("ours"), tmp.path().join("base"));
    let a = analyze(&[&input], &ours, &["--model", model.to_str().unwrap()]);
    assert_eq!(a.code, 0, "{}", a.stderr);
    let b = analyze(&[&input], &base, &[]);
    assert_eq!(b.code, 0, "{}", b.stderr);
    let (h, rows) = super::read_csv(&ours.join("realshort.mp4/frames.csv"));
    let (hb, rows_b) = super::read_csv(&base.join("realshort.mp4/frames.csv"));
    for c in ["surprise", "boundary_prob", "gradual_prob", "is_cut"] {
        assert_eq!(
            super::column(&h, &rows, c),
            super::column(&hb, &rows_b, c),
            "{c}"
        );
    }
    let anomaly = super::column(&h, &rows, "anomaly");
    assert!(anomaly[1..].iter().all(|a| a.parse::<f64>().is_ok()));
    // clips.csv: the video's highest anomaly and where it first occurs; empty for the base.
    let times = super::column(&h, &rows, "time_s");
    let top = anomaly
        .iter()
        .filter_map(|a| a.parse::<f64>().ok())
        .fold(f64::MIN, f64::max);
    let (ch, crow) = super::read_csv(&ours.join("clips.csv"));
    let (cb, crow_b) = super::read_csv(&base.join("clips.csv"));
    let max: f64 = super::column(&ch, &crow, "max_anomaly")[0].parse().unwrap();
    assert!((max - top).abs() < 1e-3, "{max} vs {top}");
    let at = &super::column(&ch, &crow, "max_anomaly_s")[0];
    let k = times
        .iter()
        .position(|t| t == at)
        .expect("a frame at max_anomaly_s");
    let there: f64 = anomaly[k].parse().unwrap();
    assert!((there - top).abs() < 2e-3, "{there} at {at} vs {top}");
    let mean: f64 = super::column(&ch, &crow, "mean_anomaly")[0]
        .parse()
        .unwrap();
    assert!(mean > 0.0 && mean <= max);
    for c in ["mean_anomaly", "max_anomaly", "max_anomaly_s"] {
        assert_eq!(super::column(&cb, &crow_b, c), [""], "{c}");
    }
    // The report shows it: a column in the index, a strip under the video's chart.
    let r = run(framegpt().arg("report").arg(&ours));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let html = fs_err::read_to_string(ours.join("report.html")).unwrap();
    assert!(html.contains("<th>max anomaly</th>"));
    assert!(html.contains(&format!("<small>at {at} s</small>")));
    assert!(html.contains("class=\"anomaly\""));

    // The training options have nothing to act on.
    let r = adapt(&data, &model, &["--normal-only", "--steps", "5"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--steps"), "{}", r.stderr);
}
