//! Finding and loading the ONNX Runtime shared library (part of [`crate::model`], the
//! one module that names `ort`).
//!
//! `ort` is built with `load-dynamic`, so the library is opened at run time. We never use
//! `ort`'s implicit route (it panics when the library is missing): we look in a fixed list
//! of places, call `ort::init_from`, and turn every failure into an error that says where we
//! looked and what to do.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The ONNX Runtime version `scripts/setup.sh` installs (the `ort` API level is 31).
pub const ORT_VERSION: &str = "1.31.1";

/// Environment variable naming the library file (or the folder holding it).
pub const ORT_LIB_ENV: &str = "FRAMEGPT_ORT_LIB";

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(
        "could not find the ONNX Runtime library (libonnxruntime.so); looked in:\n{}\nhint: run `scripts/setup.sh` (installs ONNX Runtime {ORT_VERSION} from the PyPI wheel), or set {ORT_LIB_ENV}=/path/to/libonnxruntime.so",
        .searched.iter().map(|p| format!("  {}", p.display())).collect::<Vec<_>>().join("\n")
    )]
    NotFound { searched: Vec<PathBuf> },
    #[error("{ORT_LIB_ENV} points to `{}`, which does not exist", .0.display())]
    EnvMissing(PathBuf),
    #[error("failed to load ONNX Runtime from `{}`: {cause}\nhint: framegpt needs ONNX Runtime >= 1.31 (run `scripts/setup.sh`)", .path.display())]
    Load { path: PathBuf, cause: String },
    /// An earlier attempt in this process failed with this message.
    #[error("{0}")]
    Failed(String),
}

/// Where the ONNX Runtime library was loaded from, once loaded.
static LOADED: OnceLock<Result<(PathBuf, ort::environment::Environment), String>> = OnceLock::new();

/// Where `scripts/setup.sh --gpu` puts the `onnxruntime-gpu` library and the CUDA and
/// cuDNN libraries it needs (all from PyPI wheels), under the data folder.
pub const GPU_DIR: &str = "framegpt/onnxruntime-gpu";

/// The CUDA runtime libraries the CUDA execution provider of ONNX Runtime 1.31 links
/// against or opens (sonames, in dependency order; cuDNN's parts are found by pattern).
const CUDA_LIBRARIES: [&str; 6] = [
    "libcudart.so.13",
    "libcublasLt.so.13",
    "libcublas.so.13",
    "libcurand.so.10",
    "libcufft.so.12",
    "libnvrtc.so.13",
];

fn data_home() -> Option<PathBuf> {
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
}

/// Candidate library paths, in search order (CPU build first).
pub fn candidate_paths() -> Vec<PathBuf> {
    candidate_paths_for(false)
}

/// Candidate library paths; with `gpu`, the `onnxruntime-gpu` library of
/// `scripts/setup.sh --gpu` comes first.
pub fn candidate_paths_for(gpu: bool) -> Vec<PathBuf> {
    let names = [
        format!("libonnxruntime.so.{ORT_VERSION}"),
        "libonnxruntime.so".to_string(),
    ];
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            dirs.push(dir.to_path_buf());
            dirs.push(dir.join("lib"));
            dirs.push(dir.join("../lib"));
        }
    }
    if let Some(dir) = std::env::var_os("FRAMEGPT_ORT_DIR") {
        dirs.push(PathBuf::from(dir));
    }
    if let Some(data) = data_home() {
        let gpu_dir = data.join(GPU_DIR).join(ORT_VERSION);
        if gpu {
            dirs.push(gpu_dir.clone());
        }
        dirs.push(data.join("framegpt/onnxruntime").join(ORT_VERSION));
        if !gpu {
            dirs.push(gpu_dir);
        }
    }
    dirs.push(PathBuf::from("/usr/local/lib"));
    dirs.push(PathBuf::from("/usr/lib"));
    dirs.push(PathBuf::from("/usr/lib/x86_64-linux-gnu"));
    dirs.iter()
        .flat_map(|d| names.iter().map(move |n| d.join(n)))
        .collect()
}

/// Resolves the library path: `FRAMEGPT_ORT_LIB` (or `ORT_DYLIB_PATH`) when set, else the
/// first candidate that exists.
pub fn find_library() -> Result<PathBuf, RuntimeError> {
    find_library_for(false)
}

fn find_library_for(gpu: bool) -> Result<PathBuf, RuntimeError> {
    for var in [ORT_LIB_ENV, "ORT_DYLIB_PATH"] {
        if let Some(value) = std::env::var_os(var).filter(|v| !v.is_empty()) {
            let path = PathBuf::from(value);
            if path.is_dir() {
                let file = path.join("libonnxruntime.so");
                return if file.exists() {
                    Ok(file)
                } else {
                    Err(RuntimeError::EnvMissing(file))
                };
            }
            return if path.exists() {
                Ok(path)
            } else {
                Err(RuntimeError::EnvMissing(path))
            };
        }
    }
    let searched = candidate_paths_for(gpu);
    searched
        .iter()
        .find(|p| p.exists())
        .cloned()
        .ok_or(RuntimeError::NotFound { searched })
}

fn log_bridge(
    level: ort::logging::LogLevel,
    category: &str,
    _id: &str,
    location: &str,
    message: &str,
) {
    use ort::logging::LogLevel;
    match level {
        LogLevel::Fatal | LogLevel::Error => {
            tracing::info!(target: "onnxruntime", "{category} {location}: {message}")
        }
        LogLevel::Warning => {
            tracing::debug!(target: "onnxruntime", "{category} {location}: {message}")
        }
        LogLevel::Info | LogLevel::Verbose => {
            tracing::trace!(target: "onnxruntime", "{category} {location}: {message}")
        }
    }
}

/// Turns ONNX Runtime's telemetry off for this process. Since 1.2x its Linux build queues
/// events (executable path, OS, CPU, a device id) in
/// `~/.cache/Microsoft/DeveloperTools/.onnxruntime/onnxruntime.db` as soon as the library
/// starts, and `DisableTelemetryEvents` (ort's `with_telemetry(false)`) comes too late to
/// stop that; the library's `ORT_DISABLE_TELEMETRY` variable does. Call it first thing in
/// `main`, while the process has one thread (setting the environment is not thread-safe).
pub fn disable_telemetry() {
    std::env::set_var("ORT_DISABLE_TELEMETRY", "1");
}

/// Loads ONNX Runtime (once per process) and returns its environment.
pub fn environment() -> Result<&'static ort::environment::Environment, RuntimeError> {
    environment_for(false)
}

/// As [`environment`]; `gpu` (a CUDA device was asked for) prefers the `onnxruntime-gpu`
/// library when it is the first call in the process.
pub fn environment_for(gpu: bool) -> Result<&'static ort::environment::Environment, RuntimeError> {
    let loaded = LOADED.get_or_init(|| {
        let path = find_library_for(gpu).map_err(|e| e.to_string())?;
        let env = load(&path).map_err(|e| e.to_string())?;
        Ok((path, env))
    });
    match loaded {
        Ok((_, env)) => Ok(env),
        Err(message) => Err(RuntimeError::Failed(message.clone())),
    }
}

/// The path ONNX Runtime was loaded from, if it was.
pub fn loaded_path() -> Option<&'static Path> {
    match LOADED.get() {
        Some(Ok((path, _))) => Some(path.as_path()),
        _ => None,
    }
}

/// Opens the CUDA and cuDNN libraries found next to the loaded ONNX Runtime library (where
/// `scripts/setup.sh --gpu` puts them) with `RTLD_GLOBAL`, so that the CUDA execution
/// provider finds them by soname without `LD_LIBRARY_PATH`. Libraries that are not there
/// are left to the system's search path; returns how many were opened.
pub fn preload_cuda_libraries() -> usize {
    static OPENED: OnceLock<usize> = OnceLock::new();
    *OPENED.get_or_init(|| {
        let Some(dir) = loaded_path().and_then(Path::parent) else {
            return 0;
        };
        let mut pending: Vec<PathBuf> = CUDA_LIBRARIES.iter().map(|n| dir.join(n)).collect();
        if let Ok(entries) = std::fs::read_dir(dir) {
            let mut cudnn: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("libcudnn") && n.ends_with(".so.9"))
                })
                .collect();
            cudnn.sort();
            pending.extend(cudnn);
        }
        pending.retain(|p| p.exists());
        // Several passes: a library whose dependencies are not open yet fails with RTLD_NOW
        // and is tried again once they are; what still fails after a pass that opened
        // nothing is left to the system's search path (its last error is logged).
        let mut opened = 0;
        loop {
            let before = pending.len();
            let mut failed = Vec::new();
            for path in pending {
                match open_global(&path) {
                    Ok(()) => opened += 1,
                    Err(e) => failed.push((path, e)),
                }
            }
            if failed.is_empty() || failed.len() == before {
                for (path, e) in &failed {
                    tracing::debug!("could not open {}: {e}", path.display());
                }
                break;
            }
            pending = failed.into_iter().map(|(p, _)| p).collect();
        }
        tracing::debug!(dir = %dir.display(), opened, "CUDA libraries opened");
        opened
    })
}

// dlopen has no safe form (see the `unsafe_code` lint in Cargo.toml).
#[allow(unsafe_code)]
fn open_global(path: &Path) -> Result<(), libloading::Error> {
    use libloading::os::unix::{Library, RTLD_GLOBAL, RTLD_NOW};
    // SAFETY: these are NVIDIA's CUDA/cuDNN libraries; their initializers only register
    // themselves. The handle is kept open for the life of the process on purpose.
    let lib = unsafe { Library::open(Some(path), RTLD_NOW | RTLD_GLOBAL) }?;
    std::mem::forget(lib);
    Ok(())
}

fn load(path: &Path) -> Result<ort::environment::Environment, RuntimeError> {
    let builder = ort::init_from(path).map_err(|e| RuntimeError::Load {
        path: path.to_path_buf(),
        cause: e.to_string(),
    })?;
    let env = builder
        .with_name("framegpt")
        // Telemetry off here too (see `disable_telemetry`, which must come first).
        .with_telemetry(false)
        // ONNX Runtime's own logger writes ANSI colour even when stderr is a file; its
        // lines go through `tracing` instead (its errors also come back as the error of
        // the call, which is what the user sees: the log line is detail, -v shows it).
        .with_logger(std::sync::Arc::new(log_bridge))
        .build()
        .map_err(|e| RuntimeError::Load {
            path: path.to_path_buf(),
            cause: e.to_string(),
        })?;
    tracing::debug!(path = %path.display(), "loaded ONNX Runtime");
    Ok(env)
}
