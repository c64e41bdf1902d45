//! Decoding limits and orientation (issue 12), a module of the one integration test binary:
//! `--file-timeout` and the display matrix, on videos the `ffmpeg` program makes here.

use std::path::{Path, PathBuf};
use std::process::Command;

use ndarray::Array2;
use tempfile::TempDir;

use super::{analyze, assert_no_temp_files, clip_rows, column, read_csv, sample};

/// Runs the `ffmpeg` program (quiet, overwriting); panics with its stderr on failure.
fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-nostdin"])
        .args(args)
        .output()
        .expect("the ffmpeg program runs");
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A file that takes seconds to analyze (6000 distinct 64×64 frames) times out, gets an
/// error row naming the bound, leaves no output behind; the small file next to it in the
/// same batch (and decoded first) is analyzed; the exit status is 1.
#[test]
fn a_file_over_its_timeout_is_an_error_row_and_the_batch_goes_on() {
    let dir = TempDir::new().unwrap();
    let inputs = dir.path().join("in");
    std::fs::create_dir(&inputs).unwrap();
    std::fs::copy(sample("realshort.mp4"), inputs.join("a_good.mp4")).unwrap();
    let long = inputs.join("b_long.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=64x64:rate=25:duration=240",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-threads",
        "1",
        s(&long),
    ]);
    let out = dir.path().join("out");
    let r = analyze(
        &[&inputs],
        &out,
        &[
            "--file-timeout",
            "1.5",
            "--jobs",
            "1",
            "--embeddings",
            "npy",
        ],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    let (h, rows) = clip_rows(&out);
    assert_eq!(column(&h, &rows, "video"), ["a_good.mp4", "b_long.mp4"]);
    assert_eq!(column(&h, &rows, "status"), ["ok", "error"]);
    let error = &column(&h, &rows, "error")[1];
    assert!(
        error.starts_with("timed out after 1.5 s (--file-timeout) with "),
        "{error}"
    );
    assert!(
        r.stderr.contains("b_long.mp4`: timed out after 1.5 s"),
        "{}",
        r.stderr
    );
    assert_eq!(frames_rows(&out.join("a_good.mp4")), 36);
    assert!(
        !out.join("b_long.mp4").exists(),
        "outputs of the timed-out file were left behind"
    );
    assert_no_temp_files(&out);

    // `none` lifts the bound (checked on the small file: the long one would take seconds).
    let out2 = dir.path().join("out2");
    let good = inputs.join("a_good.mp4");
    let r = analyze(&[&good], &out2, &["--file-timeout", "none"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = analyze(&[&good], &out2, &["--file-timeout", "0"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("is not a duration"), "{}", r.stderr);
}

fn frames_rows(dir: &Path) -> usize {
    read_csv(&dir.join("frames.csv")).1.len()
}

fn embeddings(out: &Path, name: &str) -> Array2<f32> {
    ndarray_npy::read_npy(out.join(name).join("embeddings.npy")).unwrap()
}

fn max_abs_diff(a: &Array2<f32>, b: &Array2<f32>) -> f32 {
    assert_eq!(a.shape(), b.shape());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn mean_abs_diff(a: &Array2<f32>, b: &Array2<f32>) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f32>() / a.len() as f32
}

/// A phone-style video: the same stored pictures with a display matrix (rotate=90, 180,
/// 270 through the mp4 muxer's `rotate` tag) is analyzed as FFmpeg's own player logic
/// shows it: its embeddings equal those of the same video with the turn baked into the
/// pixels by the `ffmpeg` program's autorotate, and differ from the unturned reading.
/// The reference is FFmpeg's autorotate rather than an assumed direction (FFmpeg 5.1's
/// muxer writes `rotate=90` as a counterclockwise display turn). 4:4:4 chroma, so that a
/// quarter turn moves no chroma sample.
#[test]
fn a_display_matrix_turns_the_frames_as_a_player_shows_them() {
    let dir = TempDir::new().unwrap();
    let inputs = dir.path().join("in");
    std::fs::create_dir(&inputs).unwrap();
    let src = inputs.join("src.mp4");
    let lossless = [
        "-c:v", "libx264", "-qp", "0", "-pix_fmt", "yuv444p", "-threads", "1",
    ];
    let mut args = vec![
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=96x64:rate=20:duration=1.6",
    ];
    args.extend(lossless);
    args.push(s(&src));
    ffmpeg(&args);
    let mut turned: Vec<(String, PathBuf, PathBuf)> = Vec::new();
    for deg in ["90", "180", "270"] {
        let rot = inputs.join(format!("rot{deg}.mp4"));
        let baked = inputs.join(format!("baked{deg}.mp4"));
        let tag = format!("rotate={deg}");
        ffmpeg(&[
            "-i",
            s(&src),
            "-c",
            "copy",
            "-metadata:s:v:0",
            &tag,
            s(&rot),
        ]);
        let mut args = vec!["-i", s(&rot)];
        args.extend(lossless);
        args.push(s(&baked));
        ffmpeg(&args);
        turned.push((deg.to_string(), rot, baked));
    }
    let out = dir.path().join("out");
    let r = analyze(&[&inputs], &out, &["--embeddings", "npy", "-v"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let plain = embeddings(&out, "src.mp4");
    for (deg, rot, baked) in &turned {
        let name = |p: &Path| p.file_name().unwrap().to_str().unwrap().to_string();
        let e_rot = embeddings(&out, &name(rot));
        let e_baked = embeddings(&out, &name(baked));
        let same = max_abs_diff(&e_rot, &e_baked);
        let unturned = mean_abs_diff(&e_rot, &plain);
        assert!(
            same < 0.01,
            "rotate={deg}: max |Δ| {same} against FFmpeg's autorotated pixels"
        );
        assert!(
            unturned > 0.1,
            "rotate={deg}: mean |Δ| {unturned} against the unturned video (not turned?)"
        );
        assert!(
            r.stderr
                .contains(&format!("{}`: its display matrix", name(rot))),
            "rotate={deg}: no log line at -v: {}",
            r.stderr
        );
    }
}
