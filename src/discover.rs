//! Inputs → the sorted list of video files, each with the relative path its outputs are
//! written under (mirroring the input tree, so equal names in different folders never
//! collide).

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// File extensions taken from directories and globs (explicit files are always taken).
pub const VIDEO_EXTENSIONS: &[&str] = &[
    "mp4", "m4v", "mov", "mkv", "webm", "avi", "flv", "wmv", "asf", "mpg", "mpeg", "mpe", "m2v",
    "ts", "mts", "m2ts", "vob", "ogv", "3gp", "3g2", "mxf", "dv", "y4m", "ivf", "nut", "h264",
    "264", "hevc", "265", "rm", "rmvb",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputFile {
    pub path: PathBuf,
    /// Output key: the path relative to the common root of all inputs.
    pub rel: PathBuf,
    pub size: u64,
}

/// An input argument that matched nothing usable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingInput {
    pub input: String,
    pub cause: String,
}

#[derive(Debug, Default)]
pub struct Discovered {
    pub files: Vec<InputFile>,
    pub missing: Vec<MissingInput>,
}

pub fn is_video_name(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| VIDEO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.'))
}

fn has_glob_chars(s: &str) -> bool {
    s.contains(['*', '?', '[', '{'])
}

pub fn discover(inputs: &[String], recursive: bool) -> Discovered {
    let mut found: BTreeMap<PathBuf, u64> = BTreeMap::new();
    let mut roots: Vec<PathBuf> = Vec::new();
    let mut missing = Vec::new();
    for input in inputs {
        let path = PathBuf::from(input);
        if path.is_file() {
            let abs = absolute(&path);
            roots.push(abs.parent().map(Path::to_path_buf).unwrap_or_default());
            found.insert(abs, file_size(&path));
        } else if path.is_dir() {
            let abs = absolute(&path);
            let before = found.len();
            walk(
                &abs,
                if recursive { usize::MAX } else { 1 },
                is_video_name,
                &mut found,
                &mut missing,
            );
            if found.len() == before {
                missing.push(MissingInput {
                    input: input.clone(),
                    cause: format!(
                        "no video files in this directory{}",
                        if recursive {
                            ""
                        } else {
                            " (use -r to descend into subdirectories)"
                        }
                    ),
                });
            }
            roots.push(abs);
        } else if has_glob_chars(input) {
            match globset::GlobBuilder::new(&absolute(&path).to_string_lossy())
                .literal_separator(true)
                .build()
            {
                Ok(glob) => {
                    let matcher = glob.compile_matcher();
                    let base = absolute(&glob_base(&path));
                    let before = found.len();
                    walk(
                        &base,
                        usize::MAX,
                        |p| matcher.is_match(p),
                        &mut found,
                        &mut missing,
                    );
                    if found.len() == before {
                        missing.push(MissingInput {
                            input: input.clone(),
                            cause: "the pattern matched no file".into(),
                        });
                    }
                    roots.push(base);
                }
                Err(e) => missing.push(MissingInput {
                    input: input.clone(),
                    cause: format!("invalid glob: {e}"),
                }),
            }
        } else {
            missing.push(MissingInput {
                input: input.clone(),
                cause: "no such file or directory".into(),
            });
        }
    }
    let root = common_ancestor(&roots);
    let files = found
        .into_iter()
        .map(|(path, size)| {
            let rel = path
                .strip_prefix(&root)
                .map(Path::to_path_buf)
                .unwrap_or_else(|_| strip_root(&path));
            InputFile { path, rel, size }
        })
        .collect();
    Discovered { files, missing }
}

fn walk(
    dir: &Path,
    max_depth: usize,
    keep: impl Fn(&Path) -> bool,
    found: &mut BTreeMap<PathBuf, u64>,
    unreadable: &mut Vec<MissingInput>,
) {
    let walker = walkdir::WalkDir::new(dir)
        .max_depth(max_depth)
        .follow_links(true)
        .sort_by_file_name();
    for entry in walker
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !is_hidden(e.path()))
    {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                // A folder we may not read, or a video whose link is broken, is reported
                // (an error row, exit 1) rather than skipped; a link loop is only skipped.
                if let Some(cause) = walk_error_cause(&e, &keep) {
                    unreadable.push(MissingInput {
                        input: e
                            .path()
                            .map_or_else(|| dir.display().to_string(), |p| p.display().to_string()),
                        cause,
                    });
                }
                continue;
            }
        };
        if entry.file_type().is_file() && keep(entry.path()) {
            let size = entry.metadata().map_or(0, |m| m.len());
            found.insert(entry.path().to_path_buf(), size);
        }
    }
}

fn walk_error_cause(e: &walkdir::Error, keep: &impl Fn(&Path) -> bool) -> Option<String> {
    if e.loop_ancestor().is_some() {
        tracing::debug!("skipping a symbolic link loop: {e}");
        return None;
    }
    let io = e.io_error()?;
    match io.kind() {
        std::io::ErrorKind::PermissionDenied => Some(format!("cannot read it: {io}")),
        std::io::ErrorKind::NotFound if e.path().is_some_and(keep) => {
            Some("broken symbolic link (its target does not exist)".to_string())
        }
        _ if e.path().is_some_and(keep) => Some(format!("cannot read it: {io}")),
        _ => None,
    }
}

fn file_size(p: &Path) -> u64 {
    std::fs::metadata(p).map_or(0, |m| m.len())
}

/// Absolute and lexically normalized (no `.`/`..`), without resolving links.
fn absolute(p: &Path) -> PathBuf {
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    };
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// The literal directory prefix of a glob pattern.
fn glob_base(pattern: &Path) -> PathBuf {
    let mut base = PathBuf::new();
    for c in pattern.components() {
        if has_glob_chars(&c.as_os_str().to_string_lossy()) {
            break;
        }
        base.push(c);
    }
    if base.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        base
    }
}

fn common_ancestor(paths: &[PathBuf]) -> PathBuf {
    let mut iter = paths.iter();
    let Some(first) = iter.next() else {
        return PathBuf::new();
    };
    let mut common: Vec<Component> = first.components().collect();
    for p in iter {
        let n = common
            .iter()
            .zip(p.components())
            .take_while(|(a, b)| **a == *b)
            .count();
        common.truncate(n);
    }
    common.iter().collect()
}

fn strip_root(p: &Path) -> PathBuf {
    p.components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(root: &Path, rel: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b"x").unwrap();
    }

    #[test]
    fn mirrors_the_tree_and_never_collides() {
        let dir = tempfile::tempdir().unwrap();
        for f in [
            "a/clip.mp4",
            "b/clip.mp4",
            "b/deep/x.MKV",
            "b/notes.txt",
            "b/.hidden.mp4",
            ".cache/y.mp4",
        ] {
            touch(dir.path(), f);
        }
        let root = dir.path().to_string_lossy().to_string();
        let flat = discover(std::slice::from_ref(&root), false);
        assert!(flat.files.is_empty());
        assert_eq!(flat.missing.len(), 1);
        let d = discover(&[root], true);
        let rels: Vec<String> = d
            .files
            .iter()
            .map(|f| f.rel.to_string_lossy().to_string())
            .collect();
        assert_eq!(rels, vec!["a/clip.mp4", "b/clip.mp4", "b/deep/x.MKV"]);
        assert!(d.missing.is_empty());
    }

    #[test]
    fn explicit_files_globs_and_missing() {
        let dir = tempfile::tempdir().unwrap();
        for f in [
            "cams/1.mkv",
            "cams/2.mkv",
            "cams/3.mp4",
            "other/clip.mp4",
            "other/readme.md",
        ] {
            touch(dir.path(), f);
        }
        let p = |s: &str| dir.path().join(s).to_string_lossy().to_string();
        let d = discover(
            &[
                p("cams/*.mkv"),
                p("other/readme.md"),
                p("other/clip.mp4"),
                p("nope.mp4"),
            ],
            false,
        );
        let rels: Vec<String> = d
            .files
            .iter()
            .map(|f| f.rel.to_string_lossy().to_string())
            .collect();
        assert_eq!(
            rels,
            vec![
                "cams/1.mkv",
                "cams/2.mkv",
                "other/clip.mp4",
                "other/readme.md"
            ]
        );
        assert_eq!(
            d.missing,
            vec![MissingInput {
                input: p("nope.mp4"),
                cause: "no such file or directory".into()
            }]
        );
    }
}
