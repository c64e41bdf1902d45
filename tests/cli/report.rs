//! The HTML report in real headless Chromium, the editor exports read back by the PyPI
//! OpenTimelineIO package and by FFmpeg, and `generate` end to end (a module of the one
//! integration test binary). scripts/test.sh installs Chromium and the Python packages.

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use super::{analyze, column, fixture, framegpt, read_csv, run, sample};

fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("FRAMEGPT_CHROMIUM") {
        return PathBuf::from(p);
    }
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = Path::new(dir).join("chromium");
        if p.is_file() {
            return p;
        }
    }
    panic!("no `chromium` on PATH; hint: scripts/test.sh installs it (apt-get install chromium)");
}

/// Headless Chromium on `page` with the flags that work on this kind of machine; returns
/// (stdout, stderr).
fn chromium_run(page: &Path, profile: &Path, extra: &[&str]) -> (String, String) {
    let url = format!("file://{}", page.display());
    let out = Command::new(chromium())
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(&url)
        .output()
        .expect("chromium runs");
    assert!(out.status.success(), "chromium failed: {out:?}");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn png_size(path: &Path) -> (u32, u32) {
    let b = fs_err::read(path).unwrap();
    assert_eq!(&b[1..4], b"PNG", "{} is not a PNG", path.display());
    let be = |i: usize| u32::from_be_bytes(b[i..i + 4].try_into().unwrap());
    (be(16), be(20))
}

/// The DOM of one video's section.
fn section<'a>(dom: &'a str, video: &str) -> &'a str {
    let key = format!("data-video=\"{video}\" data-shots=");
    let start = dom
        .find(&key)
        .unwrap_or_else(|| panic!("no section for {video}"));
    let rest = &dom[start..];
    &rest[..rest.find("</section>").expect("section closes")]
}

#[test]
fn report_renders_in_chromium_with_a_marker_per_boundary_and_a_picture_per_shot() {
    let dir = TempDir::new().unwrap();
    let out = dir.path().join("out");
    // One folder, so the output names are the file names.
    let input = dir.path().join("in");
    fs_err::create_dir_all(&input).unwrap();
    for (from, name) in [
        (sample("generated/cut.mp4"), "cut.mp4"),
        (sample("cockatoo.mp4"), "cockatoo.mp4"),
        (fixture("media/audio-only.m4a"), "audio-only.m4a"),
    ] {
        fs_err::copy(from, input.join(name)).unwrap();
    }
    // (A folder input takes video extensions only: the .m4a is named as well.)
    let r = analyze(
        &[&input, &input.join("audio-only.m4a")],
        &out,
        &["--report"],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    let page = out.join("report.html");
    let html = fs_err::read_to_string(&page).unwrap();
    // Self-contained: nothing fetched from anywhere.
    for pattern in [
        "http://",
        "https://",
        "<link",
        "src=\"http",
        "@import",
        "url(",
    ] {
        assert!(!html.contains(pattern), "report references `{pattern}`");
    }

    let profile = dir.path().join("profile");
    let (dom, log) = chromium_run(&page, &profile, &["--dump-dom"]);
    assert!(
        dom.contains("data-ready=\"1\""),
        "the page script did not finish; log:\n{log}"
    );
    let js_errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("Uncaught") || l.contains(":ERROR:CONSOLE"))
        .collect();
    assert!(js_errors.is_empty(), "JavaScript errors: {js_errors:#?}");
    // Errors first in the index.
    let body = &dom[dom.find("<tbody>").unwrap()..];
    let first_row = &body[..body.find("</tr>").unwrap()];
    assert!(
        first_row.contains("class=\"error\"") && first_row.contains("audio-only.m4a"),
        "{first_row}"
    );
    assert!(section(&dom, "audio-only.m4a").contains("no video stream"));
    for video in ["cut.mp4", "cockatoo.mp4"] {
        let (h, rows) = read_csv(&out.join(video).join("shots.csv"));
        let starts = column(&h, &rows, "start_frame");
        let kinds = column(&h, &rows, "transition");
        let s = section(&dom, video);
        assert_eq!(
            s.matches("data-boundary=").count(),
            rows.len() - 1,
            "{video}: one marker per boundary"
        );
        for (start, kind) in starts.iter().zip(&kinds).skip(1) {
            assert!(
                s.contains(&format!("data-boundary=\"{kind}\" data-frame=\"{start}\"")),
                "{video}: no {kind} marker at frame {start}"
            );
        }
        assert_eq!(
            s.matches("<img class=\"thumb\" src=\"data:image/jpeg;base64,")
                .count(),
            rows.len(),
            "{video}: one thumbnail per shot"
        );
        assert!(
            s.contains("class=\"surprise\""),
            "{video}: no surprise curve"
        );
    }
    // The known cut of cut.mp4 is drawn where shots.csv has it.
    assert!(section(&dom, "cut.mp4").contains("data-boundary=\"cut\" data-frame=\"60\""));

    let shot = dir.path().join("report.png");
    chromium_run(
        &page,
        &profile,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1200,1600",
        ],
    );
    assert_eq!(png_size(&shot), (1200, 1600));
    assert!(
        fs_err::metadata(&shot).unwrap().len() > 50_000,
        "blank screenshot?"
    );

    // `framegpt report OUT` makes the same page from the folder alone.
    fs_err::remove_file(&page).unwrap();
    let r = run(framegpt().arg("report").arg(&out));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(fs_err::read_to_string(&page).unwrap(), html);
}

#[test]
fn report_of_a_folder_without_clips_csv_is_a_usage_error() {
    let dir = TempDir::new().unwrap();
    let r = run(framegpt().arg("report").arg(dir.path()));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("has no clips.csv"), "{}", r.stderr);
}

fn test_python() -> PathBuf {
    let p = std::env::var_os("FRAMEGPT_TEST_PYTHON").map_or_else(
        || {
            PathBuf::from(std::env::var("HOME").unwrap())
                .join(".cache/framegpt/test-venv/bin/python")
        },
        PathBuf::from,
    );
    assert!(
        p.is_file(),
        "no `{}`; hint: scripts/test.sh makes this venv (opentimelineio==0.18.1, otio-cmx3600-adapter==1.0.0)",
        p.display()
    );
    p
}

/// The stream's nominal rate (`r_frame_rate`: 25/1 where the average is 24.93).
fn ffprobe_rate(video: &Path) -> f64 {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=r_frame_rate", "-of", "csv=p=0"])
        .arg(video)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let (n, d) = text.trim().split_once('/').unwrap();
    n.parse::<f64>().unwrap() / d.parse::<f64>().unwrap()
}

#[test]
fn edl_and_otio_read_back_with_opentimelineio_and_chapters_with_ffmpeg() {
    let dir = TempDir::new().unwrap();
    // SMPTE timecode (and so OpenTimelineIO's EDL reader) has no 20 fps: the 20 fps
    // sample's timestamps are rescaled to 25 fps (same frames, no re-encode); the 30.02 fps
    // sample is used as it is.
    let cut25 = dir.path().join("cut25.mp4");
    let st = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-itsscale", "0.8", "-i"])
        .arg(sample("generated/cut.mp4"))
        .args(["-c", "copy"])
        .arg(&cut25)
        .status()
        .unwrap();
    assert!(st.success());
    let realshort = dir.path().join("realshort.mp4");
    fs_err::copy(sample("realshort.mp4"), &realshort).unwrap();
    let out = dir.path().join("out");
    let r = analyze(
        &[&cut25, &realshort],
        &out,
        &["--scenes-format", "edl,otio,chapters,vtt,pyscenedetect"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let python = test_python();
    for (video, path) in [("cut25.mp4", &cut25), ("realshort.mp4", &realshort)] {
        let d = out.join(video);
        let (h, rows) = read_csv(&d.join("shots.csv"));
        let want: Vec<(u64, u64)> = column(&h, &rows, "start_frame")
            .iter()
            .zip(column(&h, &rows, "end_frame"))
            .map(|(s, e)| {
                let (s, e): (u64, u64) = (s.parse().unwrap(), e.parse().unwrap());
                (s, e + 1 - s)
            })
            .collect();
        // The EDL counts non-drop frames at the rounded rate (realshort is 30.02 fps).
        let rate = ffprobe_rate(path).round();
        let read = Command::new(&python)
            .arg(super::root().join("tests/cli/otio_read.py"))
            .arg(d.join("scenes.edl"))
            .arg(d.join("scenes.otio"))
            .arg(format!("{rate}"))
            .output()
            .unwrap();
        assert!(
            read.status.success(),
            "{}",
            String::from_utf8_lossy(&read.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&read.stdout).unwrap();
        let spans = |key: &str| -> Vec<(u64, u64)> {
            v[key]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| (p[0].as_u64().unwrap(), p[1].as_u64().unwrap()))
                .collect()
        };
        assert_eq!(spans("edl"), want, "{video}: EDL source ranges = shots.csv");
        assert_eq!(
            spans("otio"),
            want,
            "{video}: OTIO source ranges = shots.csv"
        );
        // Record side: the shots laid end to end.
        let mut at = 0;
        for (k, (start, len)) in spans("edl_record").into_iter().enumerate() {
            assert_eq!(
                (start, len),
                (at, want[k].1),
                "{video}: EDL record range {k}"
            );
            at += len;
        }
        let url = v["otio_urls"][0].as_str().unwrap();
        assert!(url.starts_with("file:///") && url.ends_with(video), "{url}");

        // chapters.txt goes into a container with FFmpeg; the chapters come back.
        let with_chapters = dir.path().join(format!("chaptered-{video}"));
        let st = Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-i"])
            .arg(path)
            .arg("-i")
            .arg(d.join("chapters.txt"))
            .args(["-map_metadata", "1", "-codec", "copy"])
            .arg(&with_chapters)
            .status()
            .unwrap();
        assert!(st.success(), "ffmpeg rejected chapters.txt of {video}");
        let probe = Command::new("ffprobe")
            .args(["-v", "error", "-show_chapters", "-of", "json"])
            .arg(&with_chapters)
            .output()
            .unwrap();
        let chapters: serde_json::Value = serde_json::from_slice(&probe.stdout).unwrap();
        let chapters = chapters["chapters"].as_array().unwrap();
        let starts = column(&h, &rows, "start_s");
        assert_eq!(chapters.len(), rows.len(), "{video}: one chapter per shot");
        for (c, s) in chapters.iter().zip(&starts) {
            let got: f64 = c["start_time"].as_str().unwrap().parse().unwrap();
            assert!(
                (got - s.parse::<f64>().unwrap()).abs() < 1e-3,
                "{video}: {got} vs {s}"
            );
        }
        let vtt = fs_err::read_to_string(d.join("chapters.vtt")).unwrap();
        assert!(vtt.starts_with("WEBVTT\n"));
        assert_eq!(vtt.matches(" --> ").count(), rows.len());
    }
}

#[test]
fn generate_writes_n_frames_and_prints_the_per_step_error_table() {
    let dir = TempDir::new().unwrap();
    let video = sample("cockatoo.mp4");
    let gen = |out: &Path, extra: &[&str]| {
        let r = run(framegpt()
            .arg("generate")
            .arg(&video)
            .args(["--at", "2", "--frames", "5", "-o"])
            .arg(out)
            .args(extra));
        assert_eq!(r.code, 0, "{}", r.stderr);
        r.stdout
    };
    // The table: a header and one row per step, both errors measured.
    let png = dir.path().join("strip.png");
    let table = gen(&png, &[]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        lines[0],
        "candidate\tstep\ttime_s\tmse_generated\tmse_copy_last\tratio"
    );
    assert_eq!(lines.len(), 1 + 5, "{table}");
    for (k, line) in lines[1..].iter().enumerate() {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f[1], (k + 1).to_string());
        let g: f64 = f[3].parse().unwrap();
        let copy: f64 = f[4].parse().unwrap();
        assert!(g > 0.0 && copy > 0.0, "{line}");
    }
    // Strip: context (8), generated (5) and real (5) rows of 64×64 tiles at zoom 2.
    let (w, h) = png_size(&png);
    assert_eq!((w, h), (96 + 8 * 132 + 4, 3 * (132 + 12) + 4));
    // Deterministic without noise; --noise with a seed repeats, and candidates differ.
    assert_eq!(gen(&dir.path().join("again.png"), &[]), table);
    let a = gen(
        &dir.path().join("a.png"),
        &["--noise", "0.2", "--candidates", "2", "--seed", "3"],
    );
    let b = gen(
        &dir.path().join("b.png"),
        &["--noise", "0.2", "--candidates", "2", "--seed", "3"],
    );
    assert_eq!(a, b);
    let rows: Vec<&str> = a.lines().skip(1).collect();
    assert_eq!(rows.len(), 10);
    assert_ne!(rows[0].split('\t').nth(3), rows[5].split('\t').nth(3));
    // A video: the 8 context frames then the 5 generated ones.
    let mp4 = dir.path().join("rollout.mp4");
    gen(&mp4, &[]);
    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"])
        .arg(&mp4)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&probe.stdout).trim(), "13");
    let gif = dir.path().join("rollout.gif");
    gen(&gif, &[]);
    assert_eq!(&fs_err::read(&gif).unwrap()[..6], b"GIF89a");
    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"])
        .arg(&gif)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&probe.stdout).trim(), "13");
}

#[test]
fn report_shows_label_bands_and_the_frames_a_truncated_file_kept() {
    let dir = TempDir::new().unwrap();
    // A two-label head, trained in seconds on samples (as in tests/cli/finetune.rs).
    let data = dir.path().join("data");
    for (class, files) in [
        ("bird", ["cockatoo.mp4", "generated/static.mp4"]),
        ("plant", ["realshort.mp4", "realshort.mp4"]),
    ] {
        for (k, f) in files.iter().enumerate() {
            let to = data.join(class).join(format!("{k}.mp4"));
            fs_err::create_dir_all(to.parent().unwrap()).unwrap();
            fs_err::copy(sample(f), to).unwrap();
        }
    }
    let model = dir.path().join("head.onnx");
    let r = run(framegpt()
        .arg("finetune")
        .arg("--data")
        .arg(&data)
        .arg("-o")
        .arg(&model)
        .arg("--cache")
        .arg(dir.path().join("cache"))
        .args(["--max-frames", "24", "--epochs", "40", "--val-split", "0.5"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let input = dir.path().join("in");
    fs_err::create_dir_all(&input).unwrap();
    fs_err::copy(sample("generated/cut.mp4"), input.join("cut.mp4")).unwrap();
    let avi = fs_err::read(fixture("media/clip.avi")).unwrap();
    fs_err::write(input.join("trunc.avi"), &avi[..avi.len() / 2]).unwrap();
    let out = dir.path().join("out");
    let r = analyze(
        &[&input],
        &out,
        &["--model", model.to_str().unwrap(), "--report"],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    let html = fs_err::read_to_string(out.join("report.html")).unwrap();

    // One label band per run of equal labels in frames.csv, titled with its label.
    let (h, rows) = read_csv(&out.join("cut.mp4/frames.csv"));
    let labels = column(&h, &rows, "label");
    let label_runs = 1 + labels.windows(2).filter(|w| w[0] != w[1]).count();
    let s = section(&html, "cut.mp4");
    assert_eq!(s.matches("class=\"label\"").count(), label_runs);
    assert!(s.contains(&format!("<title>{} · mean confidence", labels[0])));

    // The truncated file: listed first, its error shown, the frames it kept drawn.
    let t = section(&html, "trunc.avi");
    assert!(t.contains("<b>error:</b> truncated"), "{t}");
    assert!(t.contains("class=\"surprise\""));
    assert!(
        html.find("data-video=\"trunc.avi\"").unwrap()
            < html.find("data-video=\"cut.mp4\"").unwrap()
    );
}
