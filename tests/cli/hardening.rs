//! Hardening (issue 12), a module of the one integration test binary: a full disk, hostile
//! file names, runaway settings, telemetry. The real binary on real files throughout.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use super::{analyze, assert_no_temp_files, clip_rows, column, framegpt, manifest, run, sample};

/// Every folder under `dir` (not `dir` itself) that holds nothing.
pub(crate) fn empty_dirs(dir: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .min_depth(1)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_dir())
        .filter(|e| std::fs::read_dir(e.path()).is_ok_and(|mut d| d.next().is_none()))
        .map(|e| e.path().to_path_buf())
        .collect()
}

/// A tmpfs of `size` mounted on a new folder, unmounted on drop; None where mounting is not
/// allowed (not root, or in a container without CAP_SYS_ADMIN).
struct SmallDisk {
    dir: TempDir,
}

impl SmallDisk {
    fn mount(options: &str) -> Option<Self> {
        let dir = TempDir::new().unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(SmallDisk { dir })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.dir.path())
            .status();
    }
}

#[test]
fn a_full_disk_keeps_whole_files_exits_2_and_names_the_path() {
    let inputs = [
        sample("realshort.mp4"),
        sample("cockatoo.mp4"),
        sample("generated/cut.mp4"),
    ];
    let inputs: Vec<&Path> = inputs.iter().map(PathBuf::as_path).collect();
    for size in ["16k", "24k"] {
        let Some(disk) = SmallDisk::mount(&format!("size={size}")) else {
            eprintln!("skipped: cannot mount a tmpfs here (needs root)");
            return;
        };
        let out = disk.dir.path();
        let r = analyze(&inputs, out, &["--jobs", "1"]);
        assert_eq!(r.code, 2, "{size}: {}", r.stderr);
        assert!(
            r.stderr.contains("No space left on device"),
            "{size}: {}",
            r.stderr
        );
        assert!(
            r.stderr
                .contains(&format!("failed to write `{}/", out.display())),
            "{size}: the error names the path: {}",
            r.stderr
        );
        // No final name holds a partial or empty file: run.json is the last whole one.
        let m = manifest(out);
        assert_eq!(m["complete"], false, "{size}");
        for e in walkdir::WalkDir::new(out)
            .into_iter()
            .filter_map(Result::ok)
        {
            if e.file_type().is_file() {
                assert!(e.metadata().unwrap().len() > 0, "{}", e.path().display());
            }
        }
        // A video has all of its files or none (no orphan shots.csv), and no empty folder.
        for video in ["realshort.mp4", "cockatoo.mp4", "generated/cut.mp4"] {
            let dir = out.join(video);
            assert_eq!(
                dir.join("frames.csv").is_file(),
                dir.join("shots.csv").is_file(),
                "{size}: {video} is half written"
            );
        }
        assert_eq!(empty_dirs(out), Vec::<PathBuf>::new(), "{size}");
        assert_no_temp_files(out);
    }
}

/// The ONNX Runtime library this machine has, found the way the binary finds it under the
/// real HOME, for runs under a HOME of their own.
pub(crate) fn ort_library() -> OsString {
    if let Some(lib) = std::env::var_os("FRAMEGPT_ORT_LIB") {
        return lib;
    }
    let home = PathBuf::from(std::env::var_os("HOME").expect("HOME is set"));
    home.join(".local/share/framegpt/onnxruntime/1.31.1/libonnxruntime.so")
        .into_os_string()
}

#[test]
fn nothing_is_written_outside_the_output_folder_and_telemetry_is_off() {
    let home = TempDir::new().unwrap();
    let out = TempDir::new().unwrap();
    let mut cmd = framegpt();
    cmd.env("HOME", home.path())
        .env_remove("XDG_CACHE_HOME")
        .env_remove("XDG_DATA_HOME")
        .env("FRAMEGPT_ORT_LIB", ort_library())
        .arg("analyze")
        .arg(sample("realshort.mp4"))
        .arg("-o")
        .arg(out.path());
    let r = run(&mut cmd);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let written: Vec<PathBuf> = walkdir::WalkDir::new(home.path())
        .min_depth(1)
        .into_iter()
        .filter_map(Result::ok)
        .map(|e| e.path().to_path_buf())
        .collect();
    assert_eq!(written, Vec::<PathBuf>::new(), "written under HOME");
    let r = run(framegpt()
        .env("HOME", home.path())
        .env("FRAMEGPT_ORT_LIB", ort_library())
        .arg("inspect"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(std::fs::read_dir(home.path()).unwrap().count(), 0);
}

#[test]
fn runaway_settings_are_usage_errors() {
    let out = TempDir::new().unwrap();
    for (args, needle) in [
        (&["--threads", "0"][..], "--threads must be at least 1"),
        (
            &["--threads", "100000"][..],
            "is more than this machine can use",
        ),
        (
            &["--threads", "4000"][..],
            "is more than this machine can use",
        ),
        (
            &["--max-frames", "0"][..],
            "--max-frames must be at least 1",
        ),
    ] {
        let r = analyze(&[&sample("realshort.mp4")], out.path(), args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(needle), "{args:?}: {}", r.stderr);
        assert!(!out.path().join("clips.csv").exists(), "{args:?}");
    }
    // The cap is generous: 16 threads are fine on any machine.
    let r = analyze(
        &[&sample("realshort.mp4")],
        out.path(),
        &["--threads", "16"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn hostile_names_are_analyzed_merged_and_never_formulas() {
    let dir = TempDir::new().unwrap();
    let not_utf8 = PathBuf::from(OsString::from_vec(b"caf\xe9.mp4".to_vec()));
    let names: Vec<PathBuf> = vec![
        not_utf8.clone(),
        "=1+1.mp4".into(),
        "+x.mp4".into(),
        "-x.mp4".into(),
        "@x.mp4".into(),
        "plain.mp4".into(),
    ];
    for name in &names {
        std::fs::copy(sample("realshort.mp4"), dir.path().join(name)).unwrap();
    }
    std::fs::write(dir.path().join("=bad.mp4"), b"not a video\n").unwrap();
    let out = TempDir::new().unwrap();
    let r = analyze(&[dir.path()], out.path(), &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let (h, rows) = clip_rows(out.path());
    let mut videos = column(&h, &rows, "video");
    videos.sort();
    assert_eq!(
        videos,
        [
            "'+x.mp4",
            "'-x.mp4",
            "'=1+1.mp4",
            "'=bad.mp4",
            "'@x.mp4",
            "caf\\xE9.mp4",
            "plain.mp4"
        ]
    );
    let status = column(&h, &rows, "status");
    let error = column(&h, &rows, "error");
    for ((video, status), error) in column(&h, &rows, "video").iter().zip(&status).zip(&error) {
        let want = if video == "'=bad.mp4" { "error" } else { "ok" };
        assert_eq!(status, want, "{video}: {error}");
        assert!(!error.ends_with('\n'), "{video}: {error:?}");
    }
    // Numbers stay numbers (a negative value is not quoted away).
    assert!(column(&h, &rows, "frames_analyzed").contains(&"36".to_string()));
    // Per-file outputs sit under the real (non-UTF-8) name; frames.csv cells are safe too.
    let (fh, frows) = super::read_csv(&out.path().join(&not_utf8).join("frames.csv"));
    assert_eq!(frows.len(), 36);
    let (fh2, frows2) = super::read_csv(&out.path().join("-x.mp4/frames.csv"));
    assert_eq!(column(&fh2, &frows2, "video")[0], "'-x.mp4");
    assert_eq!(column(&fh, &frows, "video")[0], "caf\\xE9.mp4");
    // The manifest is complete and lossless: a re-run skips everything that was ok.
    assert_eq!(manifest(out.path())["complete"], true);
    let r = analyze(&[dir.path()], out.path(), &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("skipping 6 input(s) already analyzed"),
        "{}",
        r.stderr
    );
    // merge takes the folder and copies the non-UTF-8 video's files.
    let merged = TempDir::new().unwrap();
    let r = run(framegpt()
        .arg("merge")
        .arg(out.path())
        .arg("-o")
        .arg(merged.path()));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(merged.path().join(&not_utf8).join("frames.csv").is_file());
    let (mh, mrows) = clip_rows(merged.path());
    assert_eq!(mrows.len(), 7);
    let mut merged_videos = column(&mh, &mrows, "video");
    merged_videos.sort();
    assert_eq!(merged_videos, videos);
}

#[test]
fn a_read_only_output_folder_exits_2_naming_it() {
    let Some(disk) = SmallDisk::mount("ro,size=1m") else {
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    };
    for out in [disk.dir.path().to_path_buf(), disk.dir.path().join("sub")] {
        let r = analyze(&[&sample("realshort.mp4")], &out, &[]);
        assert_eq!(r.code, 2, "{}", r.stderr);
        assert!(r.stderr.contains("Read-only file system"), "{}", r.stderr);
        assert!(
            r.stderr.contains(&format!("`{}`", out.display())),
            "names the folder: {}",
            r.stderr
        );
    }
}
