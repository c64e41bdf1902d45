//! Integration tests: the real binary, real FFmpeg, real ONNX Runtime, real video files.
//! One test binary so linking stays fast.

use std::path::{Path, PathBuf};

#[path = "cli/adapt.rs"]
mod adapt;
#[path = "cli/corpus.rs"]
mod corpus;
#[path = "cli/decoding.rs"]
mod decoding;
#[path = "cli/finetune.rs"]
mod finetune;
#[path = "cli/hardening.rs"]
mod hardening;
#[path = "cli/props.rs"]
mod props;
#[path = "cli/report.rs"]
mod report;

use assert_cmd::Command;
use tempfile::TempDir;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn sample(rel: &str) -> PathBuf {
    root().join("samples").join(rel)
}

fn fixture(rel: &str) -> PathBuf {
    root().join("tests/fixtures").join(rel)
}

fn framegpt() -> Command {
    let mut cmd = assert_cmd::cargo::cargo_bin_cmd!("framegpt");
    cmd.env_remove("FRAMEGPT_MODEL")
        .env_remove("RUST_LOG")
        .arg("--no-progress");
    cmd
}

struct Run {
    code: i32,
    stderr: String,
    stdout: String,
}

fn run(cmd: &mut Command) -> Run {
    let out = cmd.output().expect("framegpt runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
    }
}

fn analyze(inputs: &[&Path], out: &Path, extra: &[&str]) -> Run {
    let mut cmd = framegpt();
    cmd.arg("analyze")
        .args(inputs)
        .arg("-o")
        .arg(out)
        .args(extra);
    run(&mut cmd)
}

/// Reads a CSV into a header and rows of strings.
fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header = r.headers().unwrap().iter().map(String::from).collect();
    let rows = r
        .records()
        .map(|rec| rec.unwrap().iter().map(String::from).collect())
        .collect();
    (header, rows)
}

fn column(header: &[String], rows: &[Vec<String>], name: &str) -> Vec<String> {
    let k = header
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no column {name}"));
    rows.iter().map(|r| r[k].clone()).collect()
}

/// CSV text with the named (model- and timing-dependent) columns replaced by `~`.
fn masked_csv(path: &Path, mask: &[&str]) -> String {
    let (header, rows) = read_csv(path);
    let mut w = csv::Writer::from_writer(vec![]);
    w.write_record(&header).unwrap();
    for row in rows {
        let masked: Vec<String> = row
            .iter()
            .zip(&header)
            .map(|(v, h)| {
                if mask.contains(&h.as_str()) && !v.is_empty() {
                    "~".to_string()
                } else {
                    v.clone()
                }
            })
            .collect();
        w.write_record(&masked).unwrap();
    }
    String::from_utf8(w.into_inner().unwrap()).unwrap()
}

fn frames_of(out: &Path, video: &str) -> Vec<u64> {
    let (h, rows) = read_csv(&out.join(video).join("frames.csv"));
    column(&h, &rows, "frame")
        .iter()
        .map(|f| f.parse().unwrap())
        .collect()
}

fn clip_rows(out: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    read_csv(&out.join("clips.csv"))
}

/// No temporary or partial file anywhere under `dir`.
fn assert_no_temp_files(dir: &Path) {
    for e in walkdir::WalkDir::new(dir) {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy();
        assert!(
            !name.ends_with(".tmp"),
            "temporary file left behind: {}",
            e.path().display()
        );
    }
}

#[test]
fn analyze_samples_writes_every_schema() {
    let out = TempDir::new().unwrap();
    let r = analyze(
        &[&root().join("samples")],
        out.path(),
        &["-r", "--embeddings", "npy"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let clips = masked_csv(
        &out.path().join("clips.csv"),
        &["mean_surprise", "max_surprise", "elapsed_s", "shots"],
    );
    insta::assert_snapshot!("clips_csv", clips);
    let frames = masked_csv(
        &out.path().join("generated/static.mp4/frames.csv"),
        &["surprise", "surprise_z"],
    );
    insta::assert_snapshot!("frames_csv_static", frames);
    let shots = masked_csv(&out.path().join("realshort.mp4/shots.csv"), &[]);
    insta::assert_snapshot!("shots_csv_realshort", shots);
    // Embeddings: one float32 row per frames.csv row.
    let npy = std::fs::read(out.path().join("cockatoo.mp4/embeddings.npy")).unwrap();
    let header = String::from_utf8_lossy(&npy[10..128]).to_string();
    let rows = frames_of(out.path(), "cockatoo.mp4").len();
    assert!(header.contains(&format!("'shape': ({rows}, ")), "{header}");
    assert!(header.contains("'descr': '<f4'"), "{header}");
    assert_no_temp_files(out.path());
}

#[test]
fn bad_inputs_get_error_rows_and_the_batch_goes_on() {
    let dir = TempDir::new().unwrap();
    let d = dir.path();
    std::fs::copy(sample("realshort.mp4"), d.join("good.mp4")).unwrap();
    std::fs::copy(sample("generated/cut.mp4"), d.join("good2.mp4")).unwrap();
    std::fs::write(d.join("empty.mp4"), b"").unwrap();
    std::fs::write(
        d.join("notes.mp4"),
        "this is a text file, not a video\n".repeat(20),
    )
    .unwrap();
    std::fs::copy(fixture("media/audio-only.m4a"), d.join("audio.mp4")).unwrap();
    let mut bytes = std::fs::read(sample("cockatoo.mp4")).unwrap();
    std::fs::write(d.join("truncated.mp4"), &bytes[..bytes.len() * 6 / 10]).unwrap();
    // Overwrite the container header: FFmpeg cannot parse it any more.
    bytes[..4096].fill(0x5a);
    std::fs::write(d.join("corrupt.mp4"), &bytes).unwrap();

    let out = TempDir::new().unwrap();
    let r = analyze(&[d], out.path(), &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let (h, rows) = clip_rows(out.path());
    let by_video = |name: &str| -> (String, String) {
        let i = column(&h, &rows, "video")
            .iter()
            .position(|v| v == name)
            .unwrap_or_else(|| panic!("no row for {name}"));
        (rows[i][1].clone(), rows[i][2].clone())
    };
    assert_eq!(rows.len(), 7);
    assert_eq!(by_video("good.mp4"), ("ok".into(), String::new()));
    assert_eq!(by_video("good2.mp4"), ("ok".into(), String::new()));
    for (name, cause) in [
        ("empty.mp4", "empty file"),
        ("notes.mp4", "no supported video container"),
        ("audio.mp4", "no video stream"),
        (
            "truncated.mp4",
            "truncated: the container declares 280 frames",
        ),
        ("corrupt.mp4", "not a readable video file"),
    ] {
        let (status, error) = by_video(name);
        assert_eq!(status, "error", "{name}");
        assert!(error.contains(cause), "{name}: {error}");
        assert!(
            r.stderr.contains(&format!("{}", d.join(name).display())),
            "stderr names {name}: {}",
            r.stderr
        );
    }
    // The good files are complete, the failures have no frames file.
    assert_eq!(frames_of(out.path(), "good.mp4").len(), 36);
    assert_eq!(frames_of(out.path(), "good2.mp4").len(), 84);
    assert!(!out.path().join("empty.mp4/frames.csv").exists());
    assert_no_temp_files(out.path());
}

#[test]
fn truncated_avi_is_reported_not_silently_shorter() {
    let dir = TempDir::new().unwrap();
    let avi = std::fs::read(fixture("media/clip.avi")).unwrap();
    let path = dir.path().join("cut-short.avi");
    std::fs::write(&path, &avi[..avi.len() / 2]).unwrap();
    let out = TempDir::new().unwrap();
    let r = analyze(&[&path], out.path(), &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let (h, rows) = clip_rows(out.path());
    let error = &column(&h, &rows, "error")[0];
    assert!(
        error.starts_with("truncated: the container declares 40 frames, but decoding ended after"),
        "{error}"
    );
    // The frames that did decode are still written.
    assert!(!frames_of(out.path(), "cut-short.avi").is_empty());
}

#[test]
fn cuda_on_a_machine_without_cuda_is_a_clear_error() {
    let out = TempDir::new().unwrap();
    let r = analyze(
        &[&sample("realshort.mp4")],
        out.path(),
        &["--device", "cuda"],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    // With the CPU-only library: it has no CUDA provider. With the onnxruntime-gpu library
    // of `scripts/setup.sh --gpu` on a machine without a GPU: the provider cannot load.
    assert!(
        r.stderr.contains("--device cuda:0 asked for CUDA")
            || r.stderr
                .contains("--device cuda:0: the CUDA execution provider failed to load"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("hint:"), "{}", r.stderr);
    assert!(!out.path().join("clips.csv").exists());
    // auto falls back to the CPU with a warning.
    let r = analyze(
        &[&sample("realshort.mp4")],
        out.path(),
        &["--device", "auto"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("CUDA unavailable, running on the CPU"),
        "{}",
        r.stderr
    );
}

#[test]
fn models_that_break_the_contract_exit_2_naming_the_mismatch() {
    for (file, needle) in [
        ("bad-contract-version.onnx", "metadata `framegpt.contract`: expected one of `1`, `2`, found `99`"),
        ("missing-output.onnx", "output `next_patches` f32 [?, 8, 64, 192]: missing"),
        ("wrong-shape.onnx", "input `patches`: expected `patches` f32 [?, 8, 64, 192], found `patches` f32 [?, 8, 64, 48]"),
        ("no-metadata.onnx", "metadata keys missing: `framegpt.contract`"),
        // Symbolic time axis, so only running the graph shows that it lies about its context.
        ("lying-context.onnx", "the graph does not run on a [1, 9, 64, 192] window (metadata `framegpt.context_frames` = 9)"),
    ] {
        let model = fixture("models").join(file);
        let out = TempDir::new().unwrap();
        let mut cmd = framegpt();
        cmd.args(["analyze"]).arg(sample("realshort.mp4")).arg("-o").arg(out.path()).arg("--model").arg(&model);
        let r = run(&mut cmd);
        assert_eq!(r.code, 2, "{file}: {}", r.stderr);
        assert!(r.stderr.contains("does not meet the framegpt model contract:"), "{file}: {}", r.stderr);
        assert!(r.stderr.contains(needle), "{file}: {}", r.stderr);
        assert!(!r.stderr.contains('\x1b'), "{file}: raw ANSI on a non-terminal: {:?}", r.stderr);
        let r = run(framegpt().arg("inspect").arg(&model));
        assert_eq!(r.code, 2, "{file}");
        assert!(r.stdout.contains("NOT MET"), "{file}: {}", r.stdout);
    }
}

#[test]
fn inspect_prints_the_contract_and_providers() {
    let r = run(framegpt().arg("inspect"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    for needle in [
        "contract:    v2, ok",
        "frames:      64x64",
        "context:     8 frames",
        "providers:   CPU",
        "provenance:",
    ] {
        assert!(
            r.stdout.contains(needle),
            "missing {needle:?} in\n{}",
            r.stdout
        );
    }
}

#[test]
fn sampling_options_choose_the_frames() {
    let clip = sample("cockatoo.mp4"); // 280 frames at 20 fps
    let cases: Vec<(&[&str], Vec<u64>)> = vec![
        (&["--every", "50"], vec![0, 50, 100, 150, 200, 250]),
        (&["--fps", "2", "--max-frames", "4"], vec![0, 10, 20, 30]),
        (&["--start", "1", "--end", "1.5"], (20..30).collect()),
        (
            &["--start", "13.5", "--every", "3"],
            vec![270, 273, 276, 279],
        ),
        (&["--max-frames", "3"], vec![0, 1, 2]),
        (&["--keyframes"], vec![0, 160]), // the IDR frames x264 placed (ffprobe -show_packets)
    ];
    for (args, want) in cases {
        let out = TempDir::new().unwrap();
        let r = analyze(&[&clip], out.path(), args);
        assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
        assert_eq!(frames_of(out.path(), "cockatoo.mp4"), want, "{args:?}");
    }
}

#[test]
fn outputs_mirror_the_input_tree() {
    let dir = TempDir::new().unwrap();
    for sub in ["a", "b/c"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        std::fs::copy(
            sample("realshort.mp4"),
            dir.path().join(sub).join("clip.mp4"),
        )
        .unwrap();
    }
    let out = TempDir::new().unwrap();
    let r = analyze(&[dir.path()], out.path(), &["-r", "--max-frames", "5"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(frames_of(out.path(), "a/clip.mp4").len(), 5);
    assert_eq!(frames_of(out.path(), "b/c/clip.mp4").len(), 5);
    let (h, rows) = clip_rows(out.path());
    assert_eq!(
        column(&h, &rows, "video"),
        vec!["a/clip.mp4", "b/c/clip.mp4"]
    );
}

#[test]
fn usage_errors_exit_2() {
    let out = TempDir::new().unwrap();
    let r = analyze(&[Path::new("/nonexistent/video.mp4")], out.path(), &[]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("`/nonexistent/video.mp4`: no such file or directory"),
        "{}",
        r.stderr
    );
    let r = analyze(&[&sample("realshort.mp4")], out.path(), &["--fps", "0"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("--fps must be a positive number"),
        "{}",
        r.stderr
    );
    let r = analyze(
        &[&sample("realshort.mp4")],
        out.path(),
        &["--fps", "2", "--every", "3"],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
}

#[test]
fn missing_onnx_runtime_says_what_to_do() {
    let out = TempDir::new().unwrap();
    let mut cmd = framegpt();
    cmd.env("FRAMEGPT_ORT_LIB", "/nonexistent/libonnxruntime.so");
    cmd.arg("analyze")
        .arg(sample("realshort.mp4"))
        .arg("-o")
        .arg(out.path());
    let r = run(&mut cmd);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("FRAMEGPT_ORT_LIB points to `/nonexistent/libonnxruntime.so`"),
        "{}",
        r.stderr
    );
    // Nowhere to be found: the message lists where it looked and what to run.
    let home = TempDir::new().unwrap();
    let mut cmd = framegpt();
    cmd.env_remove("FRAMEGPT_ORT_LIB")
        .env_remove("ORT_DYLIB_PATH")
        .env_remove("FRAMEGPT_ORT_DIR");
    cmd.env("HOME", home.path()).env_remove("XDG_DATA_HOME");
    cmd.arg("analyze")
        .arg(sample("realshort.mp4"))
        .arg("-o")
        .arg(out.path());
    let r = run(&mut cmd);
    let system_wide = ["/usr/lib", "/usr/local/lib", "/usr/lib/x86_64-linux-gnu"]
        .iter()
        .any(|d| Path::new(d).join("libonnxruntime.so").exists());
    if system_wide {
        return; // a system-wide install is found, as it should be
    }
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("could not find the ONNX Runtime library"),
        "{}",
        r.stderr
    );
    let expected = format!(
        "{}/.local/share/framegpt/onnxruntime/1.31.1/libonnxruntime.so",
        home.path().display()
    );
    assert!(r.stderr.contains(&expected), "{}", r.stderr);
    assert!(
        r.stderr.contains("hint: run `scripts/setup.sh`"),
        "{}",
        r.stderr
    );
}

fn surprise_of(out: &Path, video: &str) -> Vec<Option<f64>> {
    let (h, rows) = read_csv(&out.join(video).join("frames.csv"));
    column(&h, &rows, "surprise")
        .iter()
        .map(|s| s.parse().ok())
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[test]
fn a_known_cut_is_found_at_its_frame() {
    let out = TempDir::new().unwrap();
    let r = analyze(
        &[&sample("generated/cut.mp4")],
        out.path(),
        &["--scenes-format", "pyscenedetect"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let (h, rows) = read_csv(&out.path().join("cut.mp4/shots.csv"));
    assert_eq!(column(&h, &rows, "start_frame"), vec!["0", "60"]);
    assert_eq!(column(&h, &rows, "transition"), vec!["", "cut"]);
    let (h, rows) = read_csv(&out.path().join("cut.mp4/frames.csv"));
    let cuts: Vec<usize> = column(&h, &rows, "is_cut")
        .iter()
        .enumerate()
        .filter(|(_, c)| *c == "1")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(cuts, vec![60]);
    // PySceneDetect's scene list: a timecode line, then 1-based frames.
    let scenes = std::fs::read_to_string(out.path().join("cut.mp4/scenes.csv")).unwrap();
    let mut lines = scenes.lines();
    assert_eq!(lines.next(), Some("Timecode List:,00:00:03.000"));
    assert!(lines
        .next()
        .unwrap()
        .starts_with("Scene Number,Start Frame,"));
    assert!(
        lines
            .nth(1)
            .unwrap()
            .starts_with("2,61,00:00:03.000,3.000,84,"),
        "{scenes}"
    );
}

#[test]
fn a_flash_is_not_a_cut() {
    let out = TempDir::new().unwrap();
    let r = analyze(&[&sample("generated/flash.mp4")], out.path(), &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let (h, rows) = read_csv(&out.path().join("flash.mp4/shots.csv"));
    assert_eq!(
        column(&h, &rows, "start_frame"),
        vec!["0"],
        "the flash at frames 40-41 split the shot"
    );
    // Not because the flash went unnoticed: its surprise towers over the rest.
    let s = surprise_of(out.path(), "flash.mp4");
    let typical = median(s.iter().flatten().copied().collect());
    let flash = s[40..=42].iter().flatten().copied().fold(0.0, f64::max);
    assert!(
        flash > 10.0 * typical,
        "flash surprise {flash} vs median {typical}"
    );
}

#[test]
fn duplicated_frame_footage_is_one_shot_judged_between_distinct_pictures() {
    // samples/generate.sh: 3 distinct pictures per second of a hand-held shot in a 25 fps
    // file. Every new picture jumps; none of them starts a shot.
    let out = TempDir::new().unwrap();
    let r = analyze(&[&sample("generated/lowfps.mp4")], out.path(), &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let (h, rows) = read_csv(&out.path().join("lowfps.mp4/shots.csv"));
    assert_eq!(
        column(&h, &rows, "start_frame"),
        vec!["0"],
        "a jump between pictures became a cut"
    );
    let (h, rows) = read_csv(&out.path().join("lowfps.mp4/frames.csv"));
    assert_eq!(rows.len(), 125, "one row per decoded frame");
    let repeated = column(&h, &rows, "repeated");
    let distinct: Vec<usize> = (0..rows.len()).filter(|&i| repeated[i] == "0").collect();
    // fps=3 then fps=25: a new picture every 8-9 frames, 15 in 5 s
    assert_eq!(distinct.len(), 15, "distinct pictures at {distinct:?}");
    assert!(
        distinct
            .windows(2)
            .all(|w| (8..=9).contains(&(w[1] - w[0]))),
        "{distinct:?}"
    );
    let is_cut = column(&h, &rows, "is_cut");
    assert!(is_cut.iter().all(|c| c == "0"));
    // a repeated frame brings nothing new
    let surprise = column(&h, &rows, "surprise");
    assert!(rows
        .iter()
        .enumerate()
        .all(|(i, _)| repeated[i] == "0" || surprise[i] == "0.000000"));
}

#[test]
fn the_surprise_of_a_static_clip_stays_low() {
    let out = TempDir::new().unwrap();
    let r = analyze(
        &[&sample("generated/static.mp4"), &sample("cockatoo.mp4")],
        out.path(),
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let still: Vec<f64> = surprise_of(out.path(), "generated/static.mp4")
        .into_iter()
        .flatten()
        .collect();
    let moving: Vec<f64> = surprise_of(out.path(), "cockatoo.mp4")
        .into_iter()
        .flatten()
        .collect();
    // Once the model has a full context (8 frames), a still picture is predicted almost
    // exactly; the first predictions of a video are made from 1..7 frames.
    let settled = &still[8..];
    let still_max = settled.iter().copied().fold(0.0, f64::max);
    assert!(still_max < 0.01, "static clip surprise up to {still_max}");
    assert!(
        median(settled.to_vec()) * 10.0 < median(moving.clone()),
        "static median {} vs moving median {}",
        median(settled.to_vec()),
        median(moving)
    );
}

#[test]
fn results_do_not_depend_on_how_the_video_is_windowed_or_cut_short() {
    let clip = sample("generated/cut.mp4");
    let whole = TempDir::new().unwrap();
    assert_eq!(analyze(&[&clip], whole.path(), &[]).code, 0);
    let frames = |out: &Path| std::fs::read_to_string(out.join("cut.mp4/frames.csv")).unwrap();
    // One window per inference call instead of eight: the same bytes.
    let batch1 = TempDir::new().unwrap();
    assert_eq!(analyze(&[&clip], batch1.path(), &["--batch", "1"]).code, 0);
    assert_eq!(frames(whole.path()), frames(batch1.path()));
    // The video cut short at 3.5 s (frame 70): every decision settled before then is the same.
    let prefix = TempDir::new().unwrap();
    assert_eq!(analyze(&[&clip], prefix.path(), &["--end", "3.5"]).code, 0);
    let (h, all) = read_csv(&whole.path().join("cut.mp4/frames.csv"));
    let (_, part) = read_csv(&prefix.path().join("cut.mp4/frames.csv"));
    assert_eq!(part.len(), 70);
    let settled = 70 - 6; // the detector's lookahead
    for col in ["frame", "surprise", "surprise_z", "is_cut", "shot"] {
        assert_eq!(
            column(&h, &all[..settled], col),
            column(&h, &part[..settled], col),
            "column {col}"
        );
    }
}

// ---- batch at scale: resume, atomic outputs, shards, merge -------------------------------

/// A folder of real videos that takes a few seconds to analyze.
fn batch_dir() -> TempDir {
    let dir = TempDir::new().unwrap();
    for (i, name) in [
        "cockatoo.mp4",
        "generated/cut.mp4",
        "generated/flash.mp4",
        "realshort.mp4",
        "generated/static.mp4",
    ]
    .iter()
    .enumerate()
    {
        let sub = dir.path().join(if i % 2 == 0 { "x" } else { "y/z" });
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::copy(
            sample(name),
            sub.join(format!(
                "{i}-{}",
                Path::new(name).file_name().unwrap().to_string_lossy()
            )),
        )
        .unwrap();
    }
    std::fs::copy(sample("cockatoo.mp4"), dir.path().join("x/5-again.mp4")).unwrap();
    dir
}

/// Every output file under `dir` (relative path → bytes), with clips.csv's timing column
/// masked and run.json left out (it records timings and absolute paths).
fn output_tree(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut tree = std::collections::BTreeMap::new();
    for e in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let e = e.unwrap();
        if !e.file_type().is_file() {
            continue;
        }
        let rel = e
            .path()
            .strip_prefix(dir)
            .unwrap()
            .to_string_lossy()
            .to_string();
        if rel == "run.json" {
            continue;
        }
        let bytes = if rel == "clips.csv" {
            masked_csv(e.path(), &["elapsed_s"]).into_bytes()
        } else {
            std::fs::read(e.path()).unwrap()
        };
        tree.insert(rel, bytes);
    }
    tree
}

fn manifest(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap()
}

#[test]
fn shards_merged_equal_a_single_run() {
    let inputs = batch_dir();
    let single = TempDir::new().unwrap();
    let r = analyze(
        &[inputs.path()],
        single.path(),
        &["-r", "--embeddings", "npy"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let shards = TempDir::new().unwrap();
    for i in 0..3 {
        // Shard 1 is taken from Slurm's environment, the others from --shard.
        let mut cmd = framegpt();
        cmd.arg("analyze")
            .arg(inputs.path())
            .arg("-r")
            .arg("-o")
            .arg(shards.path())
            .args(["--embeddings", "npy"]);
        if i == 1 {
            cmd.env("SLURM_ARRAY_TASK_ID", "1")
                .env("SLURM_ARRAY_TASK_COUNT", "3");
        } else {
            cmd.arg("--shard").arg(format!("{i}/3"));
        }
        let r = run(&mut cmd);
        assert_eq!(r.code, 0, "shard {i}: {}", r.stderr);
    }
    let merged = TempDir::new().unwrap();
    let dirs: Vec<PathBuf> = (0..3)
        .map(|i| shards.path().join(format!("shard-{i}-of-3")))
        .collect();
    let r = run(framegpt()
        .arg("merge")
        .args(&dirs)
        .arg("-o")
        .arg(merged.path()));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let (a, b) = (output_tree(single.path()), output_tree(merged.path()));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (k, v) in &a {
        assert!(
            v == &b[k],
            "{k} differs between the single run and the merged shards"
        );
    }
    // Each shard took a share, none took everything.
    for d in &dirs {
        let n = manifest(d)["assigned"].as_array().unwrap().len();
        assert!((1..6).contains(&n), "{}: {n} inputs", d.display());
    }
}

#[test]
fn merge_refuses_mismatched_or_incomplete_shards() {
    let inputs = batch_dir();
    let out = TempDir::new().unwrap();
    for (i, extra) in [(0, "1"), (1, "2")] {
        let r = analyze(
            &[inputs.path()],
            out.path(),
            &["-r", "--shard", &format!("{i}/2"), "--every", extra],
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    let dirs = [
        out.path().join("shard-0-of-2"),
        out.path().join("shard-1-of-2"),
    ];
    let r = run(framegpt()
        .arg("merge")
        .args(&dirs)
        .arg("-o")
        .arg(out.path().join("all")));
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("were made with different settings"),
        "{}",
        r.stderr
    );
    let r = run(framegpt()
        .arg("merge")
        .arg(&dirs[0])
        .arg("-o")
        .arg(out.path().join("all")));
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("shards missing: 1/2"), "{}", r.stderr);
    let other_model = TempDir::new().unwrap();
    let r = analyze(
        &[inputs.path()],
        other_model.path(),
        &["-r", "--shard", "1/2", "--model"],
    );
    assert_eq!(r.code, 2, "--model needs a value");
    let mut cmd = framegpt();
    cmd.arg("analyze")
        .arg(inputs.path())
        .args(["-r", "--shard", "1/2", "--max-frames", "3", "-o"])
        .arg(other_model.path());
    cmd.arg("--model").arg(fixture("models/tiny-valid.onnx"));
    assert_eq!(run(&mut cmd).code, 0);
    let r = run(framegpt()
        .arg("merge")
        .arg(&dirs[0])
        .arg(other_model.path().join("shard-1-of-2"))
        .arg("-o")
        .arg(out.path().join("all")));
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("different models"), "{}", r.stderr);
}

#[test]
fn a_rerun_skips_what_matches_and_redoes_what_changed() {
    let inputs = batch_dir();
    let out = TempDir::new().unwrap();
    assert_eq!(analyze(&[inputs.path()], out.path(), &["-r"]).code, 0);
    let before = output_tree(out.path());
    let r = analyze(&[inputs.path()], out.path(), &["-r"]);
    assert_eq!(r.code, 0);
    assert!(
        r.stderr
            .contains("nothing to do: all 6 input(s) already analyzed"),
        "{}",
        r.stderr
    );
    assert_eq!(before, output_tree(out.path()));
    // A changed input is redone, the others are not.
    let changed = inputs.path().join("y/z/1-cut.mp4");
    let f = std::fs::File::options()
        .append(true)
        .open(&changed)
        .unwrap();
    f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
        .unwrap();
    drop(f);
    let r = analyze(&[inputs.path()], out.path(), &["-r"]);
    assert_eq!(r.code, 0);
    assert!(r.stderr.contains("skipping 5 input(s)"), "{}", r.stderr);
    assert!(r.stderr.contains("analyzed 1 of 1 inputs"), "{}", r.stderr);
    // Other settings or another model: everything is redone.
    let r = analyze(&[inputs.path()], out.path(), &["-r", "--every", "2"]);
    assert!(!r.stderr.contains("skipping"), "{}", r.stderr);
    let r = analyze(
        &[inputs.path()],
        out.path(),
        &["-r", "--every", "2", "--force"],
    );
    assert!(r.stderr.contains("analyzed 6 of 6 inputs"), "{}", r.stderr);
    let mut cmd = framegpt();
    cmd.arg("analyze")
        .arg(inputs.path())
        .args(["-r", "--every", "2", "-o"])
        .arg(out.path());
    cmd.arg("--model").arg(fixture("models/tiny-valid.onnx"));
    let r = run(&mut cmd);
    assert!(r.stderr.contains("analyzed 6 of 6 inputs"), "{}", r.stderr);
}

/// Starts `analyze` and signals it after `delay`.
#[allow(unsafe_code)] // libc::kill
fn analyze_and_signal(
    inputs: &Path,
    out: &Path,
    signal: i32,
    delay: std::time::Duration,
) -> std::process::Output {
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin!("framegpt"))
        .arg("--no-progress")
        .arg("analyze")
        .arg(inputs)
        .args(["-r", "--embeddings", "npy", "--jobs", "1", "-o"])
        .arg(out)
        .env_remove("FRAMEGPT_MODEL")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(delay);
    unsafe { libc::kill(child.id() as i32, signal) };
    child.wait_with_output().unwrap()
}

#[test]
fn killed_runs_leave_no_partial_file_and_resume_to_identical_outputs() {
    let inputs = batch_dir();
    let reference = TempDir::new().unwrap();
    let started = std::time::Instant::now();
    assert_eq!(
        analyze(
            &[inputs.path()],
            reference.path(),
            &["-r", "--embeddings", "npy", "--jobs", "1"]
        )
        .code,
        0
    );
    // Kill times spread over 5-85 % of how long an uninterrupted run takes here.
    let run_ms = started.elapsed().as_millis() as u64;
    let want = output_tree(reference.path());
    let mut seed = 0x9e3779b97f4a7c15u64;
    let mut killed_rounds = 0;
    for round in 0..6 {
        if killed_rounds == 3 {
            break;
        }
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let delay_ms = run_ms / 20 + (seed >> 33) % (run_ms * 8 / 10).max(1);
        let out = TempDir::new().unwrap();
        let killed = analyze_and_signal(
            inputs.path(),
            out.path(),
            libc::SIGKILL,
            std::time::Duration::from_millis(delay_ms),
        );
        if killed.status.success() {
            // This run was quicker than the reference and finished first: nothing to check.
            continue;
        }
        killed_rounds += 1;
        // Whatever is under a final name is complete: it equals the uninterrupted run's file.
        for (rel, bytes) in output_tree(out.path()) {
            let name = Path::new(&rel)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .to_string();
            if rel == "clips.csv" || (name.starts_with('.') && name.ends_with(".tmp")) {
                continue; // clips.csv is rewritten at the end of every run; temporaries are not final names
            }
            assert!(
                want.get(&rel) == Some(&bytes),
                "round {round} (kill at {delay_ms} ms): `{rel}` is partial or wrong"
            );
        }
        let r = analyze(
            &[inputs.path()],
            out.path(),
            &["-r", "--embeddings", "npy", "--jobs", "1"],
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert_eq!(
            output_tree(out.path()),
            want,
            "round {round}: resumed outputs differ"
        );
        assert_no_temp_files(out.path());
    }
    assert!(
        killed_rounds >= 2,
        "only {killed_rounds} of 6 runs were killed before they finished"
    );
}

#[test]
fn sigint_exits_130_with_a_consistent_manifest() {
    let inputs = batch_dir();
    let out = TempDir::new().unwrap();
    let r = analyze_and_signal(
        inputs.path(),
        out.path(),
        libc::SIGINT,
        std::time::Duration::from_millis(900),
    );
    assert_eq!(
        r.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let m = manifest(out.path());
    assert_eq!(m["complete"], false);
    let done = m["inputs"].as_object().unwrap();
    assert!(done.len() < 6);
    for (video, rec) in done {
        assert_eq!(rec["status"], "ok");
        assert!(
            out.path().join(video).join("frames.csv").is_file(),
            "{video} recorded without outputs"
        );
    }
    assert_no_temp_files(out.path());
    // Files in flight leave no folder behind either.
    assert_eq!(hardening::empty_dirs(out.path()), Vec::<PathBuf>::new());
    let r = analyze(
        &[inputs.path()],
        out.path(),
        &["-r", "--embeddings", "npy", "--jobs", "1"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(manifest(out.path())["complete"], true);
}
