//! Output files, each written to a temporary name in its final folder and renamed into
//! place when complete, so a final name never holds a partial file: [`AtomicFile`] (the one
//! helper every whole-file write goes through), [`write_atomic`] for bytes,
//! [`write_csv_atomic`] and [`CsvStream`] for the rows of [`crate::rows`]. Dropping a
//! writer without `finish`/`commit` discards its file.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;
use tempfile::NamedTempFile;

use crate::rows::{self, PYSCENEDETECT_HEADER};
use crate::shots::Shot;

/// A file written under a temporary name next to its final path.
pub struct AtomicFile {
    tmp: NamedTempFile,
    path: PathBuf,
}

impl AtomicFile {
    pub fn create(path: &Path) -> Result<Self> {
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        fs_err::create_dir_all(dir)?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".tmp")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .tempfile_in(dir)
            .with_context(|| format!("failed to create a temporary file in `{}`", dir.display()))?;
        Ok(AtomicFile {
            tmp,
            path: path.to_path_buf(),
        })
    }

    pub fn file(&mut self) -> &mut std::fs::File {
        self.tmp.as_file_mut()
    }

    /// The final path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The temporary file's path, for a program that writes the file itself (ffmpeg).
    pub fn temp_path(&self) -> &Path {
        self.tmp.path()
    }

    /// Flushes and syncs the data to disk, then renames into place. Any failure (a full
    /// disk shows up at flush or sync) is an error naming the final path, and the final
    /// name is left untouched.
    pub fn commit(mut self) -> Result<()> {
        let path = self.path.clone();
        let failed = || format!("failed to write `{}`", path.display());
        self.tmp.as_file_mut().flush().with_context(failed)?;
        self.tmp.as_file().sync_data().with_context(failed)?;
        self.tmp
            .persist(&self.path)
            .map_err(|e| e.error)
            .with_context(failed)?;
        Ok(())
    }
}

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = AtomicFile::create(path)?;
    f.file()
        .write_all(bytes)
        .with_context(|| format!("failed to write `{}`", path.display()))?;
    f.commit()
}

/// Writes an 8-bit RGB image as a PNG, atomically.
pub fn write_png(path: &Path, width: u32, height: u32, rgb: &[u8]) -> Result<()> {
    let mut png_bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut png_bytes, width, height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(rgb)?;
        writer.finish()?;
    }
    write_atomic(path, &png_bytes)
}

/// Removes temporary files an earlier run left behind when it was killed (SIGKILL, power
/// loss): `.NAME.XXXXXX.tmp`, the pattern [`AtomicFile`] uses, and nothing else.
pub fn remove_stale_temporaries(dir: &Path) {
    for entry in walkdir::WalkDir::new(dir).into_iter().flatten() {
        let name = entry.file_name().to_string_lossy();
        if entry.file_type().is_file() && is_temporary_name(&name) {
            if let Err(e) = std::fs::remove_file(entry.path()) {
                tracing::warn!("cannot remove stale `{}`: {e}", entry.path().display());
            }
        }
    }
}

/// Removes `dir` and its parents up to (not including) `stop` while they are empty, so an
/// input that left no file leaves no folder either.
pub fn remove_empty_dirs(dir: &Path, stop: &Path) {
    let mut dir = dir;
    while dir != stop && dir.starts_with(stop) {
        if std::fs::remove_dir(dir).is_err() {
            break;
        }
        match dir.parent() {
            Some(parent) => dir = parent,
            None => break,
        }
    }
}

pub fn is_temporary_name(name: &str) -> bool {
    let Some(stem) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) else {
        return false;
    };
    stem.rsplit_once('.').is_some_and(|(base, rand)| {
        !base.is_empty() && rand.len() == 6 && rand.chars().all(|c| c.is_ascii_alphanumeric())
    })
}

/// Writes a whole CSV atomically: `header`, then one record per row.
pub fn write_csv_atomic<R: Serialize>(path: &Path, header: &[&str], rows: &[R]) -> Result<()> {
    let mut file = AtomicFile::create(path)?;
    write_csv(file.file(), csv::WriterBuilder::new(), None, header, rows)
        .with_context(|| format!("failed to write `{}`", path.display()))?;
    file.commit()
}

/// Writes PySceneDetect's scene list (its first line is the timecode list, then the table).
pub fn write_pyscenedetect(path: &Path, shots: &[Shot]) -> Result<()> {
    let (first, rows) = rows::scene_rows(shots);
    let mut file = AtomicFile::create(path)?;
    let mut builder = csv::WriterBuilder::new();
    builder.terminator(csv::Terminator::CRLF);
    write_csv(
        file.file(),
        builder,
        Some(&first),
        &PYSCENEDETECT_HEADER,
        &rows,
    )
    .with_context(|| format!("failed to write `{}`", path.display()))?;
    file.commit()
}

fn write_csv<R: Serialize>(
    file: &mut std::fs::File,
    mut builder: csv::WriterBuilder,
    first_line: Option<&str>,
    header: &[&str],
    rows: &[R],
) -> Result<()> {
    let mut buf = std::io::BufWriter::new(file);
    if let Some(line) = first_line {
        writeln!(buf, "{line}")?;
    }
    let mut w = builder.has_headers(false).from_writer(buf);
    w.write_record(header)?;
    for r in rows {
        w.serialize(r)?;
    }
    w.flush()?;
    Ok(())
}

/// Streams rows into a CSV that appears under its final name only when finished.
pub struct CsvStream {
    writer: csv::Writer<std::io::BufWriter<std::fs::File>>,
    file: AtomicFile,
}

impl CsvStream {
    pub fn create(path: &Path, header: &[&str]) -> Result<Self> {
        let mut file = AtomicFile::create(path)?;
        let handle = file.file().try_clone()?;
        let mut writer = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(std::io::BufWriter::new(handle));
        writer.write_record(header)?;
        Ok(CsvStream { writer, file })
    }

    pub fn row<R: Serialize>(&mut self, row: &R) -> Result<()> {
        self.writer.serialize(row)?;
        Ok(())
    }

    pub fn finish(mut self) -> Result<()> {
        self.writer
            .flush()
            .with_context(|| format!("failed to write `{}`", self.file.path().display()))?;
        drop(self.writer);
        self.file.commit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names_are_recognised() {
        let dir = tempfile::tempdir().unwrap();
        let file = AtomicFile::create(&dir.path().join("frames.csv")).unwrap();
        let name = file
            .tmp
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_string();
        assert!(is_temporary_name(&name), "{name}");
        for other in [
            "frames.csv",
            ".hidden",
            ".x.tmp",
            ".frames.csv.abc.tmp",
            "a.frames.csv.abcdef.tmp",
        ] {
            assert!(!is_temporary_name(other), "{other}");
        }
        std::mem::forget(file); // as if killed
        remove_stale_temporaries(dir.path());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn dropped_stream_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("frames.csv");
        let mut s = CsvStream::create(&path, &rows::FRAMES_HEADER).unwrap();
        s.row(&["a", "1", "0.0", "", "", "0", "0", "", "", "0", "", "", ""])
            .unwrap();
        drop(s);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn write_atomic_replaces_whole_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.json");
        write_atomic(&path, b"first, longer").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_failed_write_names_the_file_and_keeps_what_was_there() {
        // The final name is a non-empty folder: the rename fails, the error names the
        // path, and the folder is untouched (no temporary left next to it either).
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clips.csv");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("keep"), b"x").unwrap();
        let err = write_atomic(&path, b"rows").unwrap_err();
        assert!(format!("{err:#}").contains("clips.csv`"), "{err:#}");
        assert!(path.join("keep").is_file());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
