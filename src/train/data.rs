//! Labelled clips: a folder per class (`data/<label>/*.mp4`) or a CSV of segments
//! (`path,start_s,end_s,label`), and the held-out split made by source file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::discover;

/// One labelled clip: a whole file or the time range [start_s, end_s) of one.
#[derive(Debug, Clone, PartialEq)]
pub struct Clip {
    pub path: PathBuf,
    pub start_s: Option<f64>,
    pub end_s: Option<f64>,
    /// Index into [`Dataset::labels`].
    pub label: usize,
    /// Where the clip was declared, for messages (`labels.csv:12`, `data/cat/a.mp4`).
    pub origin: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// Sorted class names.
    pub labels: Vec<String>,
    pub clips: Vec<Clip>,
}

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("`{}` line {line}: {message}", .path.display())]
    BadRow {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error("failed to read `{}`: {cause}", .path.display())]
    Read { path: PathBuf, cause: String },
    #[error("no labelled clips found in `{}`\nhint: use a folder per class (`DIR/<label>/*.mp4`) or a CSV with the header `path,start_s,end_s,label`", .0.display())]
    Empty(PathBuf),
    #[error("no video files found in `{}`\nhint: pass a folder with video files (any depth) or a CSV with the header `path,start_s,end_s`", .0.display())]
    NoVideos(PathBuf),
    #[error("need at least 2 classes with at least 2 clips each, found {0}\nhint: add clips, or check the class folder names / the label column")]
    TooFewClasses(usize),
}

impl Dataset {
    /// Reads a class-per-folder directory or a segments CSV.
    pub fn load(path: &Path) -> Result<Dataset, DataError> {
        let read_err = |cause: String| DataError::Read {
            path: path.to_path_buf(),
            cause,
        };
        let meta = fs_err::metadata(path).map_err(|e| read_err(e.to_string()))?;
        let clips = if meta.is_dir() {
            load_folders(path)?
        } else {
            let text = fs_err::read_to_string(path).map_err(|e| read_err(e.to_string()))?;
            let base = path.parent().unwrap_or(Path::new("."));
            parse_csv(&text, path, base)?
        };
        if clips.is_empty() {
            return Err(DataError::Empty(path.to_path_buf()));
        }
        Ok(Dataset::from_named(clips))
    }

    /// Unlabelled footage (`framegpt adapt`): every video file under a folder (any depth,
    /// class folders or not), or a CSV `path,start_s,end_s` (a `label` column is allowed
    /// and ignored). All clips get label 0; an empty set is [`DataError::NoVideos`].
    pub fn load_unlabelled(path: &Path) -> Result<Vec<Clip>, DataError> {
        let read_err = |cause: String| DataError::Read {
            path: path.to_path_buf(),
            cause,
        };
        let meta = fs_err::metadata(path).map_err(|e| read_err(e.to_string()))?;
        let clips: Vec<Clip> = if meta.is_dir() {
            video_files(path)
                .into_iter()
                .map(|p| Clip {
                    origin: p.strip_prefix(path).unwrap_or(&p).display().to_string(),
                    path: p,
                    start_s: None,
                    end_s: None,
                    label: 0,
                })
                .collect()
        } else {
            let text = fs_err::read_to_string(path).map_err(|e| read_err(e.to_string()))?;
            let base = path.parent().unwrap_or(Path::new("."));
            parse_csv_with(&text, path, base, false)?
                .into_iter()
                .map(|(c, _)| c)
                .collect()
        };
        if clips.is_empty() {
            return Err(DataError::NoVideos(path.to_path_buf()));
        }
        Ok(clips)
    }

    fn from_named(named: Vec<(Clip, String)>) -> Dataset {
        let labels: Vec<String> = named
            .iter()
            .map(|(_, l)| l.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let clips = named
            .into_iter()
            .map(|(mut c, l)| {
                c.label = labels.binary_search(&l).expect("label collected");
                c
            })
            .collect();
        Dataset { labels, clips }
    }

    /// Clips per class.
    pub fn counts(&self) -> Vec<usize> {
        let mut n = vec![0; self.labels.len()];
        for c in &self.clips {
            n[c.label] += 1;
        }
        n
    }

    /// Drops classes with fewer than `min_clips` clips; returns the dropped names.
    pub fn drop_small_classes(&mut self, min_clips: usize) -> Vec<(String, usize)> {
        let counts = self.counts();
        let dropped: Vec<(String, usize)> = self
            .labels
            .iter()
            .zip(&counts)
            .filter(|(_, &n)| n < min_clips)
            .map(|(l, &n)| (l.clone(), n))
            .collect();
        if dropped.is_empty() {
            return dropped;
        }
        let keep: Vec<(Clip, String)> = self
            .clips
            .drain(..)
            .filter(|c| counts[c.label] >= min_clips)
            .map(|c| {
                let l = self.labels[c.label].clone();
                (c, l)
            })
            .collect();
        *self = Dataset::from_named(keep);
        dropped
    }

    /// Keeps the clips whose `keep` entry is true (class names unchanged).
    pub fn retain_clips(&mut self, keep: &[bool]) {
        let mut i = 0;
        self.clips.retain(|_| {
            i += 1;
            keep[i - 1]
        });
    }

    /// Keeps only the classes named in `labels` (in that order), for a test set that must
    /// use the training set's label indices; returns the clips whose label is unknown.
    pub fn align_to(&mut self, labels: &[String]) -> Vec<Clip> {
        let mut unknown = Vec::new();
        let mut kept = Vec::new();
        for mut c in self.clips.drain(..) {
            match labels.iter().position(|l| *l == self.labels[c.label]) {
                Some(k) => {
                    c.label = k;
                    kept.push(c);
                }
                None => unknown.push(c),
            }
        }
        self.labels = labels.to_vec();
        self.clips = kept;
        unknown
    }
}

fn load_folders(root: &Path) -> Result<Vec<(Clip, String)>, DataError> {
    let read_err = |p: &Path, cause: String| DataError::Read {
        path: p.to_path_buf(),
        cause,
    };
    let mut out = Vec::new();
    let mut classes: Vec<PathBuf> = fs_err::read_dir(root)
        .map_err(|e| read_err(root, e.to_string()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir() && !is_hidden(p))
        .collect();
    classes.sort();
    for class_dir in classes {
        let label = class_dir
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        for path in video_files(&class_dir) {
            let origin = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .display()
                .to_string();
            out.push((
                Clip {
                    path,
                    start_s: None,
                    end_s: None,
                    label: 0,
                    origin,
                },
                label.clone(),
            ));
        }
    }
    Ok(out)
}

/// The video files under `dir` (recursively, hidden ones skipped), sorted.
fn video_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .filter_map(Result::ok)
        .map(|e| e.into_path())
        .filter(|p| p.is_file() && !is_hidden(p) && discover::is_video_name(p))
        .collect();
    files.sort();
    files
}

fn is_hidden(p: &Path) -> bool {
    p.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
}

/// Parses `path,start_s,end_s,label` rows (header required); relative paths are relative
/// to `base`. Errors name the 1-based line.
pub fn parse_csv(
    text: &str,
    csv_path: &Path,
    base: &Path,
) -> Result<Vec<(Clip, String)>, DataError> {
    parse_csv_with(text, csv_path, base, true)
}

/// [`parse_csv`]; with `labelled` false the header may also be `path,start_s,end_s`
/// (labels are then empty, and an empty label is no error).
pub fn parse_csv_with(
    text: &str,
    csv_path: &Path,
    base: &Path,
    labelled: bool,
) -> Result<Vec<(Clip, String)>, DataError> {
    let bad = |line: u64, message: String| DataError::BadRow {
        path: csv_path.to_path_buf(),
        line,
        message,
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| bad(1, e.to_string()))?
        .iter()
        .map(str::to_string)
        .collect();
    let three = !labelled && header == ["path", "start_s", "end_s"];
    if header != ["path", "start_s", "end_s", "label"] && !three {
        let want = if labelled {
            "`path,start_s,end_s,label`"
        } else {
            "`path,start_s,end_s` (or `path,start_s,end_s,label`)"
        };
        return Err(bad(
            1,
            format!("expected the header {want}, found `{}`", header.join(",")),
        ));
    }
    let fields = header.len();
    let mut out = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            bad(line, e.to_string())
        })?;
        let line = record.position().map_or(0, |p| p.line());
        if record.iter().all(str::is_empty) {
            continue;
        }
        if record.len() != fields {
            return Err(bad(
                line,
                format!(
                    "expected {fields} fields ({}), found {}",
                    header.join(","),
                    record.len()
                ),
            ));
        }
        let time = |i: usize, name: &str| -> Result<Option<f64>, DataError> {
            let s = &record[i];
            if s.is_empty() {
                return Ok(None);
            }
            match s.parse::<f64>() {
                Ok(v) if v.is_finite() && v >= 0.0 => Ok(Some(v)),
                _ => Err(bad(
                    line,
                    format!("{name} must be empty or a number of seconds >= 0, found `{s}`"),
                )),
            }
        };
        let (start_s, end_s) = (time(1, "start_s")?, time(2, "end_s")?);
        if let (Some(s), Some(e)) = (start_s, end_s) {
            if e <= s {
                return Err(bad(
                    line,
                    format!("end_s ({e}) must be after start_s ({s})"),
                ));
            }
        }
        if record[0].is_empty() {
            return Err(bad(line, "empty path".into()));
        }
        let label = record.get(3).unwrap_or_default().to_string();
        if label.is_empty() && labelled {
            return Err(bad(line, "empty label".into()));
        }
        let p = PathBuf::from(&record[0]);
        let path = if p.is_absolute() { p } else { base.join(p) };
        out.push((
            Clip {
                path,
                start_s,
                end_s,
                label: 0,
                origin: format!("{}:{line}", csv_path.display()),
            },
            label,
        ));
    }
    Ok(out)
}

/// What keeps clips together in the train/validation split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    /// The source file's path: all clips of one file land on the same side.
    File,
    /// The source file's name without its folder: `static/seg_3.mp4` and `pan/seg_3.mp4`
    /// (the same footage rendered into two classes) land on the same side.
    Name,
}

/// Train and validation clip indices, split by source file (all clips of one file — or,
/// with [`GroupBy::Name`], of one file name — land on the same side), stratified so each class with at least 2 source files gets about
/// `val_fraction` of its files in validation, and keeps at least one for training.
pub fn split_by_source(
    clips: &[Clip],
    val_fraction: f64,
    seed: u64,
    group_by: GroupBy,
) -> (Vec<usize>, Vec<usize>) {
    let mut by_source: BTreeMap<&Path, Vec<usize>> = BTreeMap::new();
    for (i, c) in clips.iter().enumerate() {
        let key = match group_by {
            GroupBy::File => c.path.as_path(),
            GroupBy::Name => c.path.file_name().map_or(c.path.as_path(), Path::new),
        };
        by_source.entry(key).or_default().push(i);
    }
    let mut sources: Vec<Vec<usize>> = by_source.into_values().collect();
    sources.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let classes = clips.iter().map(|c| c.label + 1).max().unwrap_or(0);
    let labels_of =
        |s: &[usize]| -> BTreeSet<usize> { s.iter().map(|&i| clips[i].label).collect() };
    let mut sources_left = vec![0usize; classes];
    for s in &sources {
        for l in labels_of(s) {
            sources_left[l] += 1;
        }
    }
    let target: Vec<usize> = sources_left
        .iter()
        .map(|&n| {
            if n < 2 || val_fraction <= 0.0 {
                0
            } else {
                ((n as f64 * val_fraction).round() as usize).clamp(1, n - 1)
            }
        })
        .collect();
    let mut in_val = vec![0usize; classes];
    let (mut train, mut val) = (Vec::new(), Vec::new());
    for s in &sources {
        let ls = labels_of(s);
        let wanted = ls.iter().any(|&l| in_val[l] < target[l]);
        let safe = ls
            .iter()
            .all(|&l| sources_left[l] - in_val[l] > 1 && in_val[l] < target[l].max(1));
        if wanted && safe {
            for &l in &ls {
                in_val[l] += 1;
            }
            val.extend_from_slice(s);
        } else {
            train.extend_from_slice(s);
        }
    }
    train.sort_unstable();
    val.sort_unstable();
    (train, val)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlabelled_csv_takes_three_columns_and_labelled_does_not() {
        let text = "path,start_s,end_s\na.mp4,1,2\nb.mp4,,\n";
        let rows = parse_csv_with(text, Path::new("/d/n.csv"), Path::new("/d"), false).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].0.start_s, Some(1.0));
        assert_eq!(rows[1].0.path, Path::new("/d/b.mp4"));
        let err = parse_csv(text, Path::new("/d/n.csv"), Path::new("/d")).unwrap_err();
        assert!(
            err.to_string().contains("path,start_s,end_s,label"),
            "{err}"
        );
        let bad = "path,start_s,end_s\na.mp4,1\n";
        let err = parse_csv_with(bad, Path::new("n.csv"), Path::new("."), false).unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    #[test]
    fn csv_rows_parse_and_resolve_relative_paths() {
        let text = "path,start_s,end_s,label\na.mp4,0,1.5,cat\n/abs/b.mp4,,,dog\n";
        let rows = parse_csv(text, Path::new("/d/l.csv"), Path::new("/d")).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].0.path, Path::new("/d/a.mp4"));
        assert_eq!(rows[0].0.end_s, Some(1.5));
        assert_eq!(rows[1].0.path, Path::new("/abs/b.mp4"));
        assert_eq!(rows[1].0.start_s, None);
        assert_eq!(rows[1].1, "dog");
    }

    #[test]
    fn csv_bad_rows_name_their_line() {
        for (text, line, needle) in [
            (
                "path,start_s,end_s,label\na.mp4,0,1,cat\nb.mp4,x,1,dog\n",
                3,
                "start_s",
            ),
            ("path,start_s,end_s,label\na.mp4,2,1,cat\n", 2, "after"),
            ("path,start_s,end_s,label\na.mp4,0,1\n", 2, "4 fields"),
            ("path,start_s,end_s,label\na.mp4,0,1,\n", 2, "empty label"),
            ("file,label\n", 1, "header"),
        ] {
            let err = parse_csv(text, Path::new("l.csv"), Path::new(".")).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(&format!("line {line}")), "{msg}");
            assert!(msg.contains(needle), "{msg}");
        }
    }

    fn clip(path: &str, label: usize) -> Clip {
        Clip {
            path: path.into(),
            start_s: None,
            end_s: None,
            label,
            origin: path.into(),
        }
    }

    #[test]
    fn split_never_shares_a_source_file() {
        let mut clips = Vec::new();
        for f in 0..10 {
            for seg in 0..3 {
                let _ = seg;
                clips.push(clip(&format!("f{f}.mp4"), f % 2));
            }
        }
        let (train, val) = split_by_source(&clips, 0.2, 7, GroupBy::File);
        assert_eq!(train.len() + val.len(), clips.len());
        let tp: BTreeSet<_> = train.iter().map(|&i| &clips[i].path).collect();
        let vp: BTreeSet<_> = val.iter().map(|&i| &clips[i].path).collect();
        assert!(tp.is_disjoint(&vp));
        // 5 files per class, 20 % → one file per class in validation.
        assert_eq!(vp.len(), 2);
        assert_eq!(split_by_source(&clips, 0.2, 7, GroupBy::File), (train, val));
    }

    #[test]
    fn split_by_name_keeps_renderings_of_one_segment_together() {
        let mut clips = Vec::new();
        for class in 0..3 {
            for seg in 0..5 {
                clips.push(clip(&format!("c{class}/seg{seg}.mp4"), class));
            }
        }
        let (train, val) = split_by_source(&clips, 0.2, 3, GroupBy::Name);
        let names = |ix: &[usize]| -> BTreeSet<_> {
            ix.iter()
                .map(|&i| clips[i].path.file_name().unwrap())
                .collect()
        };
        assert!(names(&train).is_disjoint(&names(&val)));
        assert_eq!(val.len(), 3);
    }
}
