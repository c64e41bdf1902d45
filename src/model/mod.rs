//! The model: an ONNX file run by ONNX Runtime through `ort`. The only module that names
//! `ort` types (library loading included, in [`runtime`]); the rest of the crate sees
//! [`ModelContract`], [`Device`], [`ModelOutput`] and [`run_windows`]'s [`BatchScores`].

pub mod batch;
pub mod contract;
pub mod locate;
pub mod runtime;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ndarray::{Array3, Array4, ArrayView4};
use ort::ep::{self, ExecutionProvider};
use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};
use ort::session::Session;
use ort::value::{TensorRef, ValueType};

pub use batch::{run_windows, BatchScores, StepScore};
pub use contract::{ContractViolations, ModelContract, TensorDecl};
pub use locate::{default_model, LocateError, BASE_MODEL_FILE};

use runtime::RuntimeError;

/// Where inference runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    Cpu,
    Cuda(u32),
    /// CUDA device 0 when it loads, else the CPU with a warning.
    Auto,
}

impl std::str::FromStr for Device {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cpu" => Ok(Device::Cpu),
            "auto" => Ok(Device::Auto),
            "cuda" => Ok(Device::Cuda(0)),
            _ => match s.strip_prefix("cuda:").map(str::parse::<u32>) {
                Some(Ok(n)) => Ok(Device::Cuda(n)),
                _ => Err(format!(
                    "invalid device `{s}`: expected `cpu`, `cuda`, `cuda:N` or `auto`"
                )),
            },
        }
    }
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Device::Cpu => write!(f, "cpu"),
            Device::Cuda(n) => write!(f, "cuda:{n}"),
            Device::Auto => write!(f, "auto"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("failed to read model `{}`: {cause}", .path.display())]
    Open { path: PathBuf, cause: String },
    #[error("model `{}` does not meet the framegpt model contract:\n{violations}\nhint: `framegpt inspect {}` shows what the file declares", .path.display(), .path.display())]
    Contract {
        path: PathBuf,
        violations: ContractViolations,
    },
    #[error(
        "--device {device} asked for CUDA, but the ONNX Runtime library `{}` has no CUDA execution provider (available: {available})\nhint: use --device cpu, or --device auto to fall back to the CPU; for CUDA point {} at the libonnxruntime.so of the `onnxruntime-gpu` wheel",
        .library.display(), runtime::ORT_LIB_ENV
    )]
    CudaUnavailable {
        device: Device,
        library: PathBuf,
        available: String,
    },
    #[error(
        "--device {device}: the CUDA execution provider failed to load: {cause}\nhint: {hint}"
    )]
    CudaFailed {
        device: Device,
        cause: String,
        hint: &'static str,
    },
    #[error("inference failed: {0}")]
    Run(String),
}

/// What one `run` returns, in our own types.
#[derive(Debug, Clone)]
pub struct ModelOutput {
    /// [B, T, N, C]: at step t the prediction of frame t+1.
    pub next_patches: Array4<f32>,
    /// [B, T, D].
    pub embeddings: Array3<f32>,
    /// [B, T, K] when the model has a head.
    pub logits: Option<Array3<f32>>,
    /// [B, T, 2] (cut, gradual probabilities) for contract-v2 models.
    pub boundary: Option<Array3<f32>>,
}

/// How to open a session.
#[derive(Debug, Clone, Copy)]
pub struct SessionOptions {
    pub device: Device,
    /// ONNX Runtime intra-op threads (spinning is always off: it fights FFmpeg for cores).
    pub threads: usize,
}

/// A loaded, contract-checked model with its own ONNX Runtime session.
pub struct Model {
    session: Session,
    contract: ModelContract,
    device_used: Device,
}

/// What a model file declares, whether or not it meets the contract (for `inspect`).
#[derive(Debug, Clone)]
pub struct ModelDescription {
    pub metadata: BTreeMap<String, String>,
    pub inputs: Vec<TensorDecl>,
    pub outputs: Vec<TensorDecl>,
    pub producer: Option<String>,
    pub contract: Result<ModelContract, ContractViolations>,
}

impl Model {
    /// Opens `path`, checks the contract and creates a session on the requested device.
    pub fn load(path: &Path, options: SessionOptions) -> Result<Model, ModelError> {
        let env = runtime::environment_for(options.device != Device::Cpu)?;
        let open_err = |cause: String| ModelError::Open {
            path: path.to_path_buf(),
            cause,
        };
        let threads = options.threads.max(1);
        let err = |e: ort::Error<SessionBuilder>| open_err(e.to_string());
        let builder = Session::builder(env).map_err(|e| open_err(e.to_string()))?;
        let builder = builder
            .with_optimization_level(GraphOptimizationLevel::All)
            .map_err(err)?;
        let builder = builder.with_intra_threads(threads).map_err(err)?;
        let builder = builder.with_inter_threads(1).map_err(err)?;
        let builder = builder.with_intra_op_spinning(false).map_err(err)?;
        let mut builder = builder.with_inter_op_spinning(false).map_err(err)?;
        let device_used = match options.device {
            Device::Cpu => Device::Cpu,
            Device::Cuda(id) => {
                register_cuda(&mut builder, options.device, id)?;
                Device::Cuda(id)
            }
            Device::Auto => match register_cuda(&mut builder, options.device, 0) {
                Ok(()) => Device::Cuda(0),
                Err(e) => {
                    tracing::warn!(
                        "--device auto: CUDA unavailable, running on the CPU ({})",
                        first_line(&e.to_string())
                    );
                    Device::Cpu
                }
            },
        };
        let bytes = fs_err::read(path).map_err(|e| open_err(e.to_string()))?;
        let session = builder
            .commit_from_memory(&bytes)
            .map_err(|e| open_err(e.to_string()))?;
        let mut session = session;
        let description = describe_session(&mut session)?;
        let contract = description
            .contract
            .map_err(|violations| ModelError::Contract {
                path: path.to_path_buf(),
                violations,
            })?;
        Ok(Model {
            session,
            contract,
            device_used,
        })
    }

    pub fn contract(&self) -> &ModelContract {
        &self.contract
    }

    pub fn device(&self) -> Device {
        self.device_used
    }

    /// Runs one batch of windows: `patches` is [B, T, N, C].
    pub fn run(&mut self, patches: ArrayView4<'_, f32>) -> Result<ModelOutput, ModelError> {
        let run_err = |e: ort::Error| ModelError::Run(e.to_string());
        let input = TensorRef::from_array_view(patches).map_err(run_err)?;
        let outputs = self
            .session
            .run(ort::inputs![contract::INPUT_PATCHES => input])
            .map_err(run_err)?;
        let next = outputs[contract::OUTPUT_NEXT_PATCHES]
            .try_extract_array::<f32>()
            .map_err(run_err)?;
        let emb = outputs[contract::OUTPUT_EMBEDDINGS]
            .try_extract_array::<f32>()
            .map_err(run_err)?;
        let shape_err =
            |what: &str| ModelError::Run(format!("output `{what}` has an unexpected shape"));
        let next_patches = next
            .to_owned()
            .into_dimensionality::<ndarray::Ix4>()
            .map_err(|_| shape_err(contract::OUTPUT_NEXT_PATCHES))?;
        let embeddings = emb
            .to_owned()
            .into_dimensionality::<ndarray::Ix3>()
            .map_err(|_| shape_err(contract::OUTPUT_EMBEDDINGS))?;
        let logits = if self.contract.labels.is_some() {
            let l = outputs[contract::OUTPUT_LOGITS]
                .try_extract_array::<f32>()
                .map_err(run_err)?;
            Some(
                l.to_owned()
                    .into_dimensionality::<ndarray::Ix3>()
                    .map_err(|_| shape_err(contract::OUTPUT_LOGITS))?,
            )
        } else {
            None
        };
        let boundary = if self.contract.boundary.is_some() {
            let b = outputs[contract::OUTPUT_BOUNDARY]
                .try_extract_array::<f32>()
                .map_err(run_err)?;
            Some(
                b.to_owned()
                    .into_dimensionality::<ndarray::Ix3>()
                    .map_err(|_| shape_err(contract::OUTPUT_BOUNDARY))?,
            )
        } else {
            None
        };
        Ok(ModelOutput {
            next_patches,
            embeddings,
            logits,
            boundary,
        })
    }
}

/// Reads a model file's metadata and tensors without requiring it to meet the contract.
pub fn describe(path: &Path) -> Result<ModelDescription, ModelError> {
    let env = runtime::environment()?;
    let open_err = |cause: String| ModelError::Open {
        path: path.to_path_buf(),
        cause,
    };
    let bytes = fs_err::read(path).map_err(|e| open_err(e.to_string()))?;
    let mut session = Session::builder(env)
        .map_err(|e| open_err(e.to_string()))?
        .with_intra_threads(1)
        .map_err(|e| open_err(e.to_string()))?
        .commit_from_memory(&bytes)
        .map_err(|e| open_err(e.to_string()))?;
    describe_session(&mut session)
}

fn describe_session(session: &mut Session) -> Result<ModelDescription, ModelError> {
    let meta_err = |e: ort::Error| ModelError::Run(format!("cannot read model metadata: {e}"));
    let md = session.metadata().map_err(meta_err)?;
    let mut metadata = BTreeMap::new();
    for key in md.custom_keys().map_err(meta_err)? {
        if let Some(v) = md.custom(&key) {
            metadata.insert(key, v);
        }
    }
    let producer = md.producer();
    let decl = |o: &ort::value::Outlet| match o.dtype() {
        ValueType::Tensor { ty, shape, .. } => TensorDecl {
            name: o.name().to_string(),
            is_f32: *ty == ort::value::TensorElementType::Float32,
            shape: shape.iter().copied().collect(),
        },
        _ => TensorDecl {
            name: o.name().to_string(),
            is_f32: false,
            shape: vec![],
        },
    };
    let inputs: Vec<TensorDecl> = session.inputs().iter().map(decl).collect();
    let outputs: Vec<TensorDecl> = session.outputs().iter().map(decl).collect();
    drop(md);
    let contract =
        contract::check(&metadata, &inputs, &outputs).and_then(|c| probe(session, &c).map(|()| c));
    Ok(ModelDescription {
        metadata,
        inputs,
        outputs,
        producer,
        contract,
    })
}

/// Runs the graph once on a zero window of the declared size: metadata that contradicts
/// the graph where its declared shapes are symbolic (context_frames 9, but the graph only
/// runs on 8 frames) is found here, not as an error on every input.
fn probe(session: &mut Session, c: &ModelContract) -> Result<(), ContractViolations> {
    let (t, n, p) = (c.context_frames, c.num_patches(), c.patch_dim());
    let window = format!("a [1, {t}, {n}, {p}] window (metadata `framegpt.context_frames` = {t})");
    let zeros = Array4::<f32>::zeros((1, t, n, p));
    let fail = |msg: String| ContractViolations(vec![msg]);
    let input = TensorRef::from_array_view(zeros.view())
        .map_err(|e| fail(format!("cannot build {window}: {e}")))?;
    let outputs = session
        .run(ort::inputs![contract::INPUT_PATCHES => input])
        .map_err(|e| {
            fail(format!(
                "the graph does not run on {window}: {}",
                first_line(&e.to_string())
            ))
        })?;
    let mut expected = vec![
        (contract::OUTPUT_NEXT_PATCHES, vec![1, t, n, p]),
        (contract::OUTPUT_EMBEDDINGS, vec![1, t, c.embedding_dim]),
    ];
    if let Some(labels) = &c.labels {
        expected.push((contract::OUTPUT_LOGITS, vec![1, t, labels.len()]));
    }
    let mut errs = Vec::new();
    for (name, want) in expected {
        let got: Vec<usize> = match outputs[name].try_extract_array::<f32>() {
            Ok(a) => a.shape().to_vec(),
            Err(e) => {
                errs.push(format!("output `{name}` on {window}: {e}"));
                continue;
            }
        };
        if got != want {
            errs.push(format!(
                "output `{name}` on {window}: expected shape {want:?}, the graph gives {got:?}"
            ));
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(ContractViolations(errs))
    }
}

fn register_cuda(
    builder: &mut ort::session::builder::SessionBuilder,
    device: Device,
    id: u32,
) -> Result<(), ModelError> {
    let library = runtime::loaded_path()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    runtime::preload_cuda_libraries();
    if !ep::CUDA::is_available().unwrap_or(false) {
        return Err(ModelError::CudaUnavailable {
            device,
            library,
            available: available_providers().join(", "),
        });
    }
    let cuda = ep::CUDA::default()
        .with_device_id(id as i32)
        .build()
        .error_on_failure();
    cuda.register(builder).map_err(|e| {
        let cause = e.to_string();
        let hint = if cause.contains("libcuda.so") {
            "this machine has no NVIDIA driver (libcuda.so.1 comes with it, not with CUDA); use --device cpu"
        } else {
            "`scripts/setup.sh --gpu` installs the CUDA and cuDNN libraries this ONNX Runtime needs; or use --device cpu"
        };
        ModelError::CudaFailed {
            device,
            cause,
            hint,
        }
    })
}

/// Execution providers compiled into the loaded ONNX Runtime library.
pub fn available_providers() -> Vec<&'static str> {
    let mut names = Vec::new();
    macro_rules! probe {
        ($($ep:ident => $name:literal),*) => {$(
            if ep::$ep::is_available().unwrap_or(false) { names.push($name); }
        )*};
    }
    probe!(CPU => "CPU", CUDA => "CUDA", TensorRT => "TensorRT");
    names
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}
