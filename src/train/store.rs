//! Row matrices of f32 that need not be held in memory: the cached windows of a source
//! (read from their safetensors file on demand) and the training inputs of a split (kept in
//! memory up to a budget, beyond it in an unlinked scratch file). Reads go through
//! `pread`, so what is on disk never counts towards the resident memory: a training set of
//! hours of footage needs the memory of its batches, not of its features.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Rows read per `pread` call at most when rows are consecutive.
const RUN_ROWS: usize = 256;

enum Data {
    Memory(Vec<f32>),
    /// An open scratch file, already unlinked (it goes when the matrix is dropped).
    Scratch(File),
    /// A file that stays (the feature cache), opened for each read.
    Cached {
        path: PathBuf,
        offset: u64,
    },
}

/// A [rows, cols] matrix of f32, row-major.
pub struct Matrix {
    rows: usize,
    cols: usize,
    data: Data,
}

impl std::fmt::Debug for Matrix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = match &self.data {
            Data::Memory(_) => "memory".to_string(),
            Data::Scratch(_) => "scratch file".to_string(),
            Data::Cached { path, .. } => format!("`{}`", path.display()),
        };
        write!(f, "Matrix[{}, {}] in {at}", self.rows, self.cols)
    }
}

impl Matrix {
    pub fn in_memory(rows: usize, cols: usize, data: Vec<f32>) -> Self {
        assert_eq!(data.len(), rows * cols, "a matrix holds rows × cols values");
        Matrix {
            rows,
            cols,
            data: Data::Memory(data),
        }
    }

    /// The rows stored little-endian at `offset` of `path` (checked by the caller).
    pub fn in_file(path: &Path, offset: u64, rows: usize, cols: usize) -> Self {
        Matrix {
            rows,
            cols,
            data: Data::Cached {
                path: path.to_path_buf(),
                offset,
            },
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Bytes this matrix keeps in memory.
    pub fn resident_bytes(&self) -> usize {
        match &self.data {
            Data::Memory(v) => v.len() * 4,
            _ => 0,
        }
    }

    /// The values, when in memory.
    pub fn as_slice(&self) -> Option<&[f32]> {
        match &self.data {
            Data::Memory(v) => Some(v),
            _ => None,
        }
    }

    /// The rows `idx`, in that order, concatenated ([idx.len(), cols]).
    pub fn gather(&self, idx: &[usize]) -> Result<Vec<f32>> {
        let c = self.cols;
        if let Some(&bad) = idx.iter().find(|&&i| i >= self.rows) {
            anyhow::bail!("row {bad} of a matrix of {} rows", self.rows);
        }
        let mut out = vec![0f32; idx.len() * c];
        match &self.data {
            Data::Memory(v) => {
                for (o, &i) in out.chunks_exact_mut(c.max(1)).zip(idx) {
                    o.copy_from_slice(&v[i * c..(i + 1) * c]);
                }
            }
            Data::Scratch(file) => read_rows(file, 0, c, idx, &mut out)
                .context("failed to read the training features' scratch file")?,
            Data::Cached { path, offset } => {
                let file = File::open(path)
                    .with_context(|| format!("failed to open `{}`", path.display()))?;
                read_rows(&file, *offset, c, idx, &mut out)
                    .with_context(|| format!("failed to read `{}`", path.display()))?;
            }
        }
        Ok(out)
    }
}

/// Reads the rows `idx` (runs of consecutive rows in one call each).
fn read_rows(
    file: &File,
    offset: u64,
    cols: usize,
    idx: &[usize],
    out: &mut [f32],
) -> std::io::Result<()> {
    let row_bytes = cols * 4;
    let mut buf = Vec::new();
    let mut k = 0;
    while k < idx.len() {
        let mut run = 1;
        while k + run < idx.len() && run < RUN_ROWS && idx[k + run] == idx[k] + run {
            run += 1;
        }
        buf.resize(run * row_bytes, 0);
        file.read_exact_at(&mut buf, offset + (idx[k] * row_bytes) as u64)?;
        for (o, b) in out[k * cols..(k + run) * cols]
            .iter_mut()
            .zip(buf.chunks_exact(4))
        {
            *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        }
        k += run;
    }
    Ok(())
}

/// Builds a matrix row by row: in memory while it fits `budget_bytes`, then in a scratch
/// file created (and at once unlinked) in `dir`.
pub struct MatrixWriter {
    cols: usize,
    rows: usize,
    budget_bytes: usize,
    dir: PathBuf,
    memory: Vec<f32>,
    file: Option<BufWriter<File>>,
}

impl MatrixWriter {
    pub fn new(cols: usize, budget_bytes: usize, dir: &Path) -> Self {
        MatrixWriter {
            cols,
            rows: 0,
            budget_bytes,
            dir: dir.to_path_buf(),
            memory: Vec::new(),
            file: None,
        }
    }

    pub fn push(&mut self, row: &[f32]) -> Result<()> {
        assert_eq!(row.len(), self.cols, "a row of the matrix's width");
        self.rows += 1;
        if self.file.is_none() && (self.memory.len() + row.len()) * 4 > self.budget_bytes {
            let file = tempfile::tempfile_in(&self.dir).with_context(|| {
                format!(
                    "failed to create a scratch file for the training features in `{}`",
                    self.dir.display()
                )
            })?;
            let mut w = BufWriter::with_capacity(1 << 20, file);
            write_f32(&mut w, &self.memory)?;
            self.memory = Vec::new();
            self.file = Some(w);
        }
        match &mut self.file {
            Some(w) => write_f32(w, row),
            None => {
                self.memory.extend_from_slice(row);
                Ok(())
            }
        }
    }

    pub fn finish(self) -> Result<Matrix> {
        let data = match self.file {
            None => Data::Memory(self.memory),
            Some(w) => Data::Scratch(
                w.into_inner()
                    .map_err(|e| e.into_error())
                    .context("failed to write the training features' scratch file")?,
            ),
        };
        Ok(Matrix {
            rows: self.rows,
            cols: self.cols,
            data,
        })
    }
}

fn write_f32(w: &mut impl Write, v: &[f32]) -> Result<()> {
    for x in v {
        w.write_all(&x.to_le_bytes())
            .context("failed to write the training features' scratch file (disk full?)")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(budget: usize, dir: &Path) -> Matrix {
        let mut w = MatrixWriter::new(3, budget, dir);
        for r in 0..700 {
            w.push(&[r as f32, r as f32 + 0.5, -(r as f32)]).unwrap();
        }
        w.finish().unwrap()
    }

    #[test]
    fn memory_and_scratch_file_give_the_same_rows() {
        let dir = tempfile::tempdir().unwrap();
        let mem = filled(usize::MAX, dir.path());
        let disk = filled(100, dir.path());
        assert_eq!(mem.resident_bytes(), 700 * 3 * 4);
        assert_eq!(disk.resident_bytes(), 0);
        // The scratch file is unlinked: nothing is left in the directory.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let idx: Vec<usize> = vec![5, 6, 7, 699, 0, 1, 300, 300]
            .into_iter()
            .chain(10..400)
            .collect();
        let a = mem.gather(&idx).unwrap();
        assert_eq!(a, disk.gather(&idx).unwrap());
        assert_eq!(&a[..3], &[5.0, 5.5, -5.0]);
        assert_eq!(&a[9..12], &[699.0, 699.5, -699.0]);
        assert!(disk.gather(&[700]).is_err());
    }

    #[test]
    fn rows_of_a_file_at_an_offset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.bin");
        let mut bytes = vec![7u8; 13];
        for v in 0..12 {
            bytes.extend((v as f32).to_le_bytes());
        }
        std::fs::write(&path, bytes).unwrap();
        let m = Matrix::in_file(&path, 13, 4, 3);
        assert_eq!(
            m.gather(&[3, 1]).unwrap(),
            vec![9.0, 10.0, 11.0, 3.0, 4.0, 5.0]
        );
        std::fs::remove_file(&path).unwrap();
        let e = format!("{:#}", m.gather(&[0]).unwrap_err());
        assert!(e.contains("m.bin"), "{e}");
    }
}
