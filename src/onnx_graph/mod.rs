//! Editing an ONNX file: attach a classification head to a backbone, read and replace
//! the backbone's float initializers (finetuned weights written back by name). The only module that
//! knows the ONNX protobuf layout.
//!
//! The original model is never decoded into structs and re-encoded: a struct-based
//! round trip silently drops every field the structs do not declare (newer ONNX fields,
//! training info, functions). Instead the top-level `ModelProto` is walked at the wire
//! level and copied byte for byte, with two edits:
//!
//! - the `graph` field gets new `node`, `initializer` and `output` entries appended to its
//!   bytes (protobuf semantics: repeated fields of a message are concatenated in order, so
//!   appending entries is the same as adding them);
//! - `metadata_props` entries whose keys we set are dropped, and our entries are appended.
//!
//! Only the new messages are encoded from structs (with `prost`).

use std::collections::BTreeMap;

use prost::Message;

mod motion;

/// ONNX `TensorProto.DataType.FLOAT`.
const FLOAT: i32 = 1;
/// ONNX `TensorProto.DataType.INT64`.
const INT64: i32 = 7;

const MODEL_GRAPH: u32 = 7;
const MODEL_METADATA_PROPS: u32 = 14;
const GRAPH_NODE: u32 = 1;
const GRAPH_INITIALIZER: u32 = 5;
const GRAPH_OUTPUT: u32 = 12;

#[derive(Debug, thiserror::Error)]
pub enum OnnxEditError {
    #[error("not a valid ONNX protobuf: {0}")]
    Malformed(String),
    #[error("the model has no graph")]
    NoGraph,
    #[error("the model already has an output `{0}`\nhint: finetune from a backbone without a head (e.g. the base model)")]
    OutputExists(String),
}

#[derive(Clone, PartialEq, prost::Message)]
struct StringStringEntryProto {
    #[prost(string, tag = "1")]
    key: String,
    #[prost(string, tag = "2")]
    value: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct NodeProto {
    #[prost(string, repeated, tag = "1")]
    input: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    output: Vec<String>,
    #[prost(string, tag = "3")]
    name: String,
    #[prost(string, tag = "4")]
    op_type: String,
    #[prost(message, repeated, tag = "5")]
    attribute: Vec<AttributeProto>,
}

/// An INT attribute (`AttributeProto.AttributeType.INT` = 2).
#[derive(Clone, PartialEq, prost::Message)]
struct AttributeProto {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(int64, tag = "3")]
    i: i64,
    #[prost(int32, tag = "20")]
    r#type: i32,
}

fn int_attribute(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        i: value,
        r#type: 2,
    }
}

#[derive(Clone, PartialEq, prost::Message)]
struct TensorProto {
    #[prost(int64, repeated, tag = "1")]
    dims: Vec<i64>,
    #[prost(int32, tag = "2")]
    data_type: i32,
    #[prost(float, repeated, tag = "4")]
    float_data: Vec<f32>,
    #[prost(int64, repeated, tag = "7")]
    int64_data: Vec<i64>,
    #[prost(string, tag = "8")]
    name: String,
    #[prost(bytes = "vec", tag = "9")]
    raw_data: Vec<u8>,
}

const TENSOR_FLOAT_DATA: u32 = 4;
const TENSOR_RAW_DATA: u32 = 9;

#[derive(Clone, PartialEq, prost::Message)]
struct ValueInfoProto {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(message, optional, tag = "2")]
    r#type: Option<TypeProto>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct TypeProto {
    #[prost(message, optional, tag = "1")]
    tensor_type: Option<TypeProtoTensor>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct TypeProtoTensor {
    #[prost(int32, tag = "1")]
    elem_type: i32,
    #[prost(message, optional, tag = "2")]
    shape: Option<TensorShapeProto>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct TensorShapeProto {
    #[prost(message, repeated, tag = "1")]
    dim: Vec<Dimension>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Dimension {
    #[prost(int64, optional, tag = "1")]
    dim_value: Option<i64>,
    #[prost(string, optional, tag = "2")]
    dim_param: Option<String>,
}

/// A dense layer `y = x · weight + bias`, `weight` row-major [inputs, outputs].
#[derive(Debug, Clone, PartialEq)]
pub struct DenseLayer {
    pub inputs: usize,
    pub outputs: usize,
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
}

/// The head as a graph: dense layers with ReLU between them, from `input` to `output`.
#[derive(Debug, Clone)]
pub struct HeadGraph {
    pub input: String,
    pub output: String,
    pub layers: Vec<DenseLayer>,
    /// With N > 0 the layers see [e_t, e_t − e_{max(t−N, 0)}] (concatenated on the last
    /// axis), computed inside each window of `frames` steps.
    pub temporal_lag: usize,
    /// Steps per window (T), for `temporal_lag` and `motion`.
    pub frames: usize,
    /// With (input, spec) the layers see the embeddings with the camera-motion features
    /// of `train::motion` appended, computed from the model input `input` (before the
    /// temporal change, which then covers them too).
    pub motion: Option<(String, crate::train::motion::MotionSpec)>,
    /// Declared output shape: `None` is a symbolic dimension.
    pub output_shape: Vec<Option<i64>>,
}

/// One top-level field of a protobuf message, as a byte range of the original.
struct RawField<'a> {
    number: u32,
    /// The whole field: tag and value.
    bytes: &'a [u8],
    /// The payload of a length-delimited field.
    payload: Option<&'a [u8]>,
}

fn read_varint(buf: &[u8], pos: &mut usize) -> Result<u64, OnnxEditError> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *buf
            .get(*pos)
            .ok_or_else(|| OnnxEditError::Malformed("truncated varint".into()))?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(OnnxEditError::Malformed("varint too long".into()))
}

fn split_fields(buf: &[u8]) -> Result<Vec<RawField<'_>>, OnnxEditError> {
    let mut fields = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let start = pos;
        let tag = read_varint(buf, &mut pos)?;
        let number = (tag >> 3) as u32;
        let mut payload = None;
        match tag & 7 {
            0 => {
                read_varint(buf, &mut pos)?;
            }
            1 => pos += 8,
            2 => {
                let len = read_varint(buf, &mut pos)? as usize;
                let end = pos
                    .checked_add(len)
                    .filter(|&e| e <= buf.len())
                    .ok_or_else(|| OnnxEditError::Malformed("field runs past the end".into()))?;
                payload = Some(&buf[pos..end]);
                pos = end;
            }
            5 => pos += 4,
            w => return Err(OnnxEditError::Malformed(format!("wire type {w}"))),
        }
        if pos > buf.len() {
            return Err(OnnxEditError::Malformed("field runs past the end".into()));
        }
        fields.push(RawField {
            number,
            bytes: &buf[start..pos],
            payload,
        });
    }
    Ok(fields)
}

fn put_len_field(out: &mut Vec<u8>, number: u32, payload: &[u8]) {
    prost::encoding::encode_key(number, prost::encoding::WireType::LengthDelimited, out);
    prost::encoding::encode_varint(payload.len() as u64, out);
    out.extend_from_slice(payload);
}

/// The model's `metadata_props` as a map.
pub fn read_metadata(model: &[u8]) -> Result<BTreeMap<String, String>, OnnxEditError> {
    let mut map = BTreeMap::new();
    for f in split_fields(model)? {
        if f.number == MODEL_METADATA_PROPS {
            let e = StringStringEntryProto::decode(f.payload.unwrap_or_default())
                .map_err(|e| OnnxEditError::Malformed(e.to_string()))?;
            map.insert(e.key, e.value);
        }
    }
    Ok(map)
}

/// Names of the graph's declared outputs.
pub fn graph_outputs(model: &[u8]) -> Result<Vec<String>, OnnxEditError> {
    let graph = split_fields(model)?
        .into_iter()
        .find(|f| f.number == MODEL_GRAPH)
        .and_then(|f| f.payload)
        .ok_or(OnnxEditError::NoGraph)?;
    let mut names = Vec::new();
    for f in split_fields(graph)? {
        if f.number == GRAPH_OUTPUT {
            let v = ValueInfoProto::decode(f.payload.unwrap_or_default())
                .map_err(|e| OnnxEditError::Malformed(e.to_string()))?;
            names.push(v.name);
        }
    }
    Ok(names)
}

/// A float initializer of the graph: its name, shape and values (row-major).
#[derive(Debug, Clone, PartialEq)]
pub struct FloatTensor {
    pub dims: Vec<usize>,
    pub data: Vec<f32>,
}

fn graph_payload(model: &[u8]) -> Result<&[u8], OnnxEditError> {
    split_fields(model)?
        .into_iter()
        .find(|f| f.number == MODEL_GRAPH)
        .and_then(|f| f.payload)
        .ok_or(OnnxEditError::NoGraph)
}

/// The graph's float initializers by name (`raw_data` or `float_data`; other types and
/// external data are skipped).
pub fn read_float_initializers(
    model: &[u8],
) -> Result<BTreeMap<String, FloatTensor>, OnnxEditError> {
    let mut out = BTreeMap::new();
    for f in split_fields(graph_payload(model)?)? {
        if f.number != GRAPH_INITIALIZER {
            continue;
        }
        let t = TensorProto::decode(f.payload.unwrap_or_default())
            .map_err(|e| OnnxEditError::Malformed(e.to_string()))?;
        if t.data_type != FLOAT {
            continue;
        }
        let dims: Vec<usize> = t.dims.iter().map(|&d| d.max(0) as usize).collect();
        let n: usize = dims.iter().product();
        let data: Vec<f32> = if !t.raw_data.is_empty() {
            t.raw_data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        } else {
            t.float_data
        };
        if data.len() != n {
            continue;
        }
        out.insert(t.name, FloatTensor { dims, data });
    }
    Ok(out)
}

/// Returns `model` with the values of the float initializers named in `values` replaced
/// (same element count); every other byte is kept. Inside a replaced `TensorProto` every
/// field but the data is copied as it was, and the data is written as `raw_data`.
pub fn replace_initializers(
    model: &[u8],
    values: &BTreeMap<String, Vec<f32>>,
) -> Result<Vec<u8>, OnnxEditError> {
    let current = read_float_initializers(model)?;
    for (name, v) in values {
        let have = current.get(name).ok_or_else(|| {
            OnnxEditError::Malformed(format!("no float initializer named `{name}`"))
        })?;
        if have.data.len() != v.len() {
            return Err(OnnxEditError::Malformed(format!(
                "initializer `{name}` has {} values, the replacement {}",
                have.data.len(),
                v.len()
            )));
        }
    }
    let mut out = Vec::with_capacity(model.len());
    for f in split_fields(model)? {
        if f.number != MODEL_GRAPH {
            out.extend_from_slice(f.bytes);
            continue;
        }
        let mut graph = Vec::with_capacity(f.payload.unwrap_or_default().len());
        for g in split_fields(f.payload.unwrap_or_default())? {
            let payload = g.payload.unwrap_or_default();
            let replacement = (g.number == GRAPH_INITIALIZER)
                .then(|| TensorProto::decode(payload).ok())
                .flatten()
                .and_then(|t| values.get(&t.name));
            let Some(new) = replacement else {
                graph.extend_from_slice(g.bytes);
                continue;
            };
            let mut tensor = Vec::with_capacity(payload.len());
            for t in split_fields(payload)? {
                if t.number != TENSOR_FLOAT_DATA && t.number != TENSOR_RAW_DATA {
                    tensor.extend_from_slice(t.bytes);
                }
            }
            let raw: Vec<u8> = new.iter().flat_map(|v| v.to_le_bytes()).collect();
            put_len_field(&mut tensor, TENSOR_RAW_DATA, &raw);
            put_len_field(&mut graph, GRAPH_INITIALIZER, &tensor);
        }
        put_len_field(&mut out, MODEL_GRAPH, &graph);
    }
    Ok(out)
}

/// A node's tensor names (other fields are skipped when decoding).
#[derive(Clone, PartialEq, prost::Message)]
struct NodeNames {
    #[prost(string, repeated, tag = "1")]
    input: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    output: Vec<String>,
}

const NODE_INPUT: u32 = 1;
const NODE_OUTPUT: u32 = 2;
const NODE_NAME: u32 = 3;
const TENSOR_NAME: u32 = 8;

/// Suffix of the tensors and initializers of the branch that keeps the base weights.
pub const BASE_SUFFIX: &str = "/framegpt_base";

/// What `keep_outputs_on_base` changes: per node (in graph order) whether it is copied
/// (needed by a kept output and by another one) or renamed in place (needed by the kept
/// outputs only), and the trained initializers the branch needs copies of.
struct BaseBranch {
    copy: Vec<bool>,
    rename: Vec<bool>,
    renamed: std::collections::HashSet<String>,
}

fn base_branch(
    nodes: &[NodeNames],
    outputs: &[String],
    trained: &std::collections::BTreeSet<String>,
    keep: &[&str],
) -> BaseBranch {
    use std::collections::{HashMap, HashSet};
    // Forward: nodes whose result depends on a trained initializer.
    let mut tainted: HashSet<&str> = trained.iter().map(String::as_str).collect();
    let mut node_tainted = vec![false; nodes.len()];
    for (i, n) in nodes.iter().enumerate() {
        if n.input.iter().any(|t| tainted.contains(t.as_str())) {
            node_tainted[i] = true;
            tainted.extend(n.output.iter().map(String::as_str));
        }
    }
    // Backward: the nodes each set of outputs needs.
    let producer: HashMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .flat_map(|(i, n)| n.output.iter().map(move |o| (o.as_str(), i)))
        .collect();
    let needed = |targets: Vec<&str>| -> Vec<bool> {
        let mut need = vec![false; nodes.len()];
        let mut stack = targets;
        while let Some(t) = stack.pop() {
            if let Some(&i) = producer.get(t) {
                if !need[i] {
                    need[i] = true;
                    stack.extend(nodes[i].input.iter().map(String::as_str));
                }
            }
        }
        need
    };
    let kept = needed(keep.to_vec());
    let rest = needed(
        outputs
            .iter()
            .map(String::as_str)
            .filter(|o| !keep.contains(o))
            .collect(),
    );
    let copy: Vec<bool> = (0..nodes.len())
        .map(|i| node_tainted[i] && kept[i] && rest[i])
        .collect();
    let rename: Vec<bool> = (0..nodes.len())
        .map(|i| node_tainted[i] && kept[i] && !rest[i])
        .collect();
    let mut renamed: HashSet<String> = HashSet::new();
    for (i, n) in nodes.iter().enumerate() {
        if copy[i] {
            renamed.extend(n.output.iter().cloned());
        }
        if copy[i] || rename[i] {
            renamed.extend(n.input.iter().filter(|t| trained.contains(*t)).cloned());
        }
    }
    BaseBranch {
        copy,
        rename,
        renamed,
    }
}

/// A message with its string fields `numbers` mapped by `f` (other fields kept as bytes).
fn map_strings(
    payload: &[u8],
    numbers: &[u32],
    f: impl Fn(u32, &str) -> String,
) -> Result<Vec<u8>, OnnxEditError> {
    let mut out = Vec::with_capacity(payload.len() + 64);
    for field in split_fields(payload)? {
        match field.payload {
            Some(p) if numbers.contains(&field.number) => {
                let s = std::str::from_utf8(p)
                    .map_err(|e| OnnxEditError::Malformed(format!("a name is not UTF-8: {e}")))?;
                put_len_field(&mut out, field.number, f(field.number, s).as_bytes());
            }
            _ => out.extend_from_slice(field.bytes),
        }
    }
    Ok(out)
}

/// Returns `model` where the outputs `keep` are computed with the current values of the
/// initializers `trained`, whatever values those initializers get later: every node that
/// a kept output needs and that depends on a trained initializer is either copied (when
/// another output needs it too) onto copies of those initializers (`name` + [`BASE_SUFFIX`])
/// or, when only the kept outputs need it, rewired to them. Then [`replace_initializers`]
/// changes what the other outputs see and nothing the kept ones do (finetune with
/// `--unfreeze`: `boundary` and `next_patches` stay the base model's). Every other byte is
/// kept; copies follow their originals, so the graph stays topologically sorted.
pub fn keep_outputs_on_base(
    model: &[u8],
    trained: &std::collections::BTreeSet<String>,
    keep: &[&str],
) -> Result<Vec<u8>, OnnxEditError> {
    let graph = graph_payload(model)?;
    let fields = split_fields(graph)?;
    let nodes: Vec<NodeNames> = fields
        .iter()
        .filter(|f| f.number == GRAPH_NODE)
        .map(|f| {
            NodeNames::decode(f.payload.unwrap_or_default())
                .map_err(|e| OnnxEditError::Malformed(e.to_string()))
        })
        .collect::<Result<_, _>>()?;
    let branch = base_branch(&nodes, &graph_outputs(model)?, trained, keep);
    let base_name = |t: &str| {
        if branch.renamed.contains(t) {
            format!("{t}{BASE_SUFFIX}")
        } else {
            t.to_string()
        }
    };
    let mut new_graph = Vec::with_capacity(graph.len() + graph.len() / 8);
    let mut i = 0;
    for g in &fields {
        let payload = g.payload.unwrap_or_default();
        if g.number == GRAPH_NODE {
            if branch.rename[i] {
                let node = map_strings(payload, &[NODE_INPUT], |_, t| base_name(t))?;
                put_len_field(&mut new_graph, GRAPH_NODE, &node);
            } else {
                new_graph.extend_from_slice(g.bytes);
            }
            if branch.copy[i] {
                let node = map_strings(payload, &[NODE_INPUT, NODE_OUTPUT, NODE_NAME], |n, t| {
                    if n == NODE_INPUT {
                        base_name(t)
                    } else {
                        format!("{t}{BASE_SUFFIX}")
                    }
                })?;
                put_len_field(&mut new_graph, GRAPH_NODE, &node);
            }
            i += 1;
            continue;
        }
        new_graph.extend_from_slice(g.bytes);
        if g.number == GRAPH_INITIALIZER {
            let t = TensorProto::decode(payload)
                .map_err(|e| OnnxEditError::Malformed(e.to_string()))?;
            if trained.contains(&t.name) && branch.renamed.contains(&t.name) {
                let copy =
                    map_strings(payload, &[TENSOR_NAME], |_, n| format!("{n}{BASE_SUFFIX}"))?;
                put_len_field(&mut new_graph, GRAPH_INITIALIZER, &copy);
            }
        }
    }
    let mut out = Vec::with_capacity(model.len() + new_graph.len() - graph.len());
    for f in split_fields(model)? {
        if f.number == MODEL_GRAPH {
            put_len_field(&mut out, MODEL_GRAPH, &new_graph);
        } else {
            out.extend_from_slice(f.bytes);
        }
    }
    Ok(out)
}

/// Returns `model` with `metadata` set (replacing entries with the same keys); every other
/// byte is kept (`framegpt adapt`: same graph, new weights, new provenance).
pub fn set_metadata(
    model: &[u8],
    metadata: &BTreeMap<String, String>,
) -> Result<Vec<u8>, OnnxEditError> {
    let mut out = Vec::with_capacity(model.len() + 4096);
    for f in split_fields(model)? {
        if f.number == MODEL_METADATA_PROPS {
            let e = StringStringEntryProto::decode(f.payload.unwrap_or_default())
                .map_err(|e| OnnxEditError::Malformed(e.to_string()))?;
            if metadata.contains_key(&e.key) {
                continue;
            }
        }
        out.extend_from_slice(f.bytes);
    }
    for (key, value) in metadata {
        let entry = StringStringEntryProto {
            key: key.clone(),
            value: value.clone(),
        };
        put_len_field(&mut out, MODEL_METADATA_PROPS, &entry.encode_to_vec());
    }
    Ok(out)
}

/// Returns `model` with `head` attached to its graph and `metadata` set (replacing entries
/// with the same keys); every other byte of the original is kept.
pub fn attach_head(
    model: &[u8],
    head: &HeadGraph,
    metadata: &BTreeMap<String, String>,
) -> Result<Vec<u8>, OnnxEditError> {
    if graph_outputs(model)?.contains(&head.output) {
        return Err(OnnxEditError::OutputExists(head.output.clone()));
    }
    let addition = encode_head(head);
    let mut out = Vec::with_capacity(model.len() + addition.len() + 4096);
    let mut graphs = 0;
    for f in split_fields(model)? {
        match f.number {
            MODEL_GRAPH => {
                graphs += 1;
                let mut graph = f.payload.unwrap_or_default().to_vec();
                if graphs == 1 {
                    graph.extend_from_slice(&addition);
                }
                put_len_field(&mut out, MODEL_GRAPH, &graph);
            }
            MODEL_METADATA_PROPS => {
                let e = StringStringEntryProto::decode(f.payload.unwrap_or_default())
                    .map_err(|e| OnnxEditError::Malformed(e.to_string()))?;
                if !metadata.contains_key(&e.key) {
                    out.extend_from_slice(f.bytes);
                }
            }
            _ => out.extend_from_slice(f.bytes),
        }
    }
    if graphs == 0 {
        return Err(OnnxEditError::NoGraph);
    }
    for (key, value) in metadata {
        let entry = StringStringEntryProto {
            key: key.clone(),
            value: value.clone(),
        };
        put_len_field(&mut out, MODEL_METADATA_PROPS, &entry.encode_to_vec());
    }
    Ok(out)
}

/// The graph fields (nodes, initializers, the output) of the head, encoded.
fn encode_head(head: &HeadGraph) -> Vec<u8> {
    let prefix = format!("framegpt_head/{}", head.output);
    let mut nodes = Vec::new();
    let mut inits = Vec::new();
    let mut current = head.input.clone();
    if let Some((input, spec)) = &head.motion {
        let m = motion::push_motion(&prefix, input, head.frames, spec, &mut nodes, &mut inits);
        let both = format!("{prefix}/motion/with_embeddings");
        nodes.push(NodeProto {
            input: vec![current, m],
            output: vec![both.clone()],
            name: both.clone(),
            op_type: "Concat".into(),
            attribute: vec![int_attribute("axis", 2)],
        });
        current = both;
    }
    if head.temporal_lag > 0 {
        current = push_temporal(head, &prefix, current, &mut nodes, &mut inits);
    }
    for (i, layer) in head.layers.iter().enumerate() {
        let last = i + 1 == head.layers.len();
        current = push_dense(
            head, &prefix, i, layer, last, current, &mut nodes, &mut inits,
        );
    }
    let mut out = Vec::new();
    for n in &nodes {
        put_len_field(&mut out, GRAPH_NODE, &n.encode_to_vec());
    }
    for t in &inits {
        put_len_field(&mut out, GRAPH_INITIALIZER, &t.encode_to_vec());
    }
    put_len_field(&mut out, GRAPH_OUTPUT, &output_info(head).encode_to_vec());
    out
}

/// [e_t, e_t − e_(t−lag)] by Gather/Sub/Concat; returns the name of the result.
fn push_temporal(
    head: &HeadGraph,
    prefix: &str,
    current: String,
    nodes: &mut Vec<NodeProto>,
    inits: &mut Vec<TensorProto>,
) -> String {
    let idx = format!("{prefix}/temporal/prev_index");
    inits.push(TensorProto {
        dims: vec![head.frames as i64],
        data_type: INT64,
        int64_data: (0..head.frames)
            .map(|t| t.saturating_sub(head.temporal_lag) as i64)
            .collect(),
        name: idx.clone(),
        ..Default::default()
    });
    let prev = format!("{prefix}/temporal/prev");
    let delta = format!("{prefix}/temporal/delta");
    let both = format!("{prefix}/temporal/concat");
    nodes.push(NodeProto {
        input: vec![current.clone(), idx],
        output: vec![prev.clone()],
        name: prev.clone(),
        op_type: "Gather".into(),
        attribute: vec![int_attribute("axis", 1)],
    });
    nodes.push(NodeProto {
        input: vec![current.clone(), prev],
        output: vec![delta.clone()],
        name: delta.clone(),
        op_type: "Sub".into(),
        ..Default::default()
    });
    nodes.push(NodeProto {
        input: vec![current, delta],
        output: vec![both.clone()],
        name: both.clone(),
        op_type: "Concat".into(),
        attribute: vec![int_attribute("axis", 2)],
    });
    both
}

/// Dense layer `i` (MatMul + Add, then Relu unless it is the last); returns the name of
/// its output.
#[allow(clippy::too_many_arguments)]
fn push_dense(
    head: &HeadGraph,
    prefix: &str,
    i: usize,
    layer: &DenseLayer,
    last: bool,
    current: String,
    nodes: &mut Vec<NodeProto>,
    inits: &mut Vec<TensorProto>,
) -> String {
    let w = format!("{prefix}/dense{i}/weight");
    let b = format!("{prefix}/dense{i}/bias");
    inits.push(TensorProto {
        dims: vec![layer.inputs as i64, layer.outputs as i64],
        data_type: FLOAT,
        float_data: layer.weight.clone(),
        name: w.clone(),
        ..Default::default()
    });
    inits.push(TensorProto {
        dims: vec![layer.outputs as i64],
        data_type: FLOAT,
        float_data: layer.bias.clone(),
        name: b.clone(),
        ..Default::default()
    });
    let mm = format!("{prefix}/dense{i}/matmul");
    nodes.push(NodeProto {
        input: vec![current, w],
        output: vec![mm.clone()],
        name: mm.clone(),
        op_type: "MatMul".into(),
        ..Default::default()
    });
    let sum = if last {
        head.output.clone()
    } else {
        format!("{prefix}/dense{i}/add")
    };
    nodes.push(NodeProto {
        input: vec![mm, b],
        output: vec![sum.clone()],
        name: format!("{prefix}/dense{i}/add"),
        op_type: "Add".into(),
        ..Default::default()
    });
    if last {
        return sum;
    }
    let relu = format!("{prefix}/dense{i}/relu");
    nodes.push(NodeProto {
        input: vec![sum],
        output: vec![relu.clone()],
        name: relu.clone(),
        op_type: "Relu".into(),
        ..Default::default()
    });
    relu
}

/// The declaration of the head's output (float, the given shape; unknown dims named).
fn output_info(head: &HeadGraph) -> ValueInfoProto {
    let dim = head
        .output_shape
        .iter()
        .enumerate()
        .map(|(i, d)| match d {
            Some(v) => Dimension {
                dim_value: Some(*v),
                dim_param: None,
            },
            None => Dimension {
                dim_value: None,
                dim_param: Some(format!("{}_dim{i}", head.output)),
            },
        })
        .collect();
    ValueInfoProto {
        name: head.output.clone(),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor {
                elem_type: FLOAT,
                shape: Some(TensorShapeProto { dim }),
            }),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_model() -> Vec<u8> {
        // ir_version 8, an unknown field 99 (must survive), a graph with one output, metadata.
        let mut m = Vec::new();
        prost::encoding::encode_key(1, prost::encoding::WireType::Varint, &mut m);
        prost::encoding::encode_varint(8, &mut m);
        let mut graph = Vec::new();
        let out = ValueInfoProto {
            name: "embeddings".into(),
            r#type: None,
        };
        put_len_field(&mut graph, GRAPH_OUTPUT, &out.encode_to_vec());
        put_len_field(&mut m, MODEL_GRAPH, &graph);
        put_len_field(&mut m, 99, b"keep me");
        for (k, v) in [("a", "1"), ("framegpt.labels", "old")] {
            let e = StringStringEntryProto {
                key: k.into(),
                value: v.into(),
            };
            put_len_field(&mut m, MODEL_METADATA_PROPS, &e.encode_to_vec());
        }
        m
    }

    #[test]
    fn attach_keeps_unknown_fields_and_replaces_metadata() {
        let model = tiny_model();
        let head = HeadGraph {
            input: "embeddings".into(),
            output: "logits".into(),
            layers: vec![DenseLayer {
                inputs: 2,
                outputs: 3,
                weight: vec![0.0; 6],
                bias: vec![0.0; 3],
            }],
            temporal_lag: 0,
            motion: None,
            frames: 8,
            output_shape: vec![None, Some(8), Some(3)],
        };
        let md = BTreeMap::from([("framegpt.labels".to_string(), "[\"x\"]".to_string())]);
        let edited = attach_head(&model, &head, &md).unwrap();
        let meta = read_metadata(&edited).unwrap();
        assert_eq!(meta["a"], "1");
        assert_eq!(meta["framegpt.labels"], "[\"x\"]");
        assert!(split_fields(&edited)
            .unwrap()
            .iter()
            .any(|f| f.number == 99 && f.payload == Some(b"keep me".as_slice())));
        assert_eq!(graph_outputs(&edited).unwrap(), ["embeddings", "logits"]);
        assert!(matches!(
            attach_head(&edited, &head, &md),
            Err(OnnxEditError::OutputExists(_))
        ));
    }

    #[test]
    fn replaced_initializers_read_back_and_the_rest_is_kept() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/models/framegpt-tiny-named.onnx"
        );
        let model = std::fs::read(path).unwrap();
        let before = read_float_initializers(&model).unwrap();
        let w = &before["temporal.1.attn.qkv.weight"];
        assert_eq!(w.dims, [96, 32]);
        let new: Vec<f32> = (0..w.data.len()).map(|i| i as f32 * 0.5).collect();
        let values = BTreeMap::from([("temporal.1.attn.qkv.weight".to_string(), new.clone())]);
        let edited = replace_initializers(&model, &values).unwrap();
        let after = read_float_initializers(&edited).unwrap();
        assert_eq!(after["temporal.1.attn.qkv.weight"].data, new);
        assert_eq!(after["temporal.1.attn.qkv.weight"].dims, w.dims);
        for (k, v) in &before {
            if k != "temporal.1.attn.qkv.weight" {
                assert_eq!(&after[k], v, "{k}");
            }
        }
        assert_eq!(
            read_metadata(&edited).unwrap(),
            read_metadata(&model).unwrap()
        );
        let wrong = BTreeMap::from([("temporal.1.attn.qkv.weight".to_string(), vec![0.0; 3])]);
        assert!(replace_initializers(&model, &wrong).is_err());
        let missing = BTreeMap::from([("nope".to_string(), vec![0.0])]);
        assert!(replace_initializers(&model, &missing).is_err());
    }

    /// On the shipped base model: every field of the original survives byte for byte (the
    /// graph's original bytes are a prefix of the new graph), metadata included.
    #[test]
    fn attaching_to_the_base_model_drops_nothing() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/models/framegpt-base.onnx");
        let model = std::fs::read(path).unwrap();
        let head = HeadGraph {
            input: "embeddings".into(),
            output: "logits".into(),
            layers: vec![DenseLayer {
                inputs: 4,
                outputs: 2,
                weight: vec![0.5; 8],
                bias: vec![0.0; 2],
            }],
            temporal_lag: 1,
            motion: None,
            frames: 8,
            output_shape: vec![None, Some(8), Some(2)],
        };
        let md = BTreeMap::from([("framegpt.labels".to_string(), "[\"a\",\"b\"]".to_string())]);
        let edited = attach_head(&model, &head, &md).unwrap();
        let before = split_fields(&model).unwrap();
        let after = split_fields(&edited).unwrap();
        let others = |f: &[RawField<'_>]| -> Vec<Vec<u8>> {
            f.iter()
                .filter(|f| f.number != MODEL_GRAPH && f.number != MODEL_METADATA_PROPS)
                .map(|f| f.bytes.to_vec())
                .collect()
        };
        assert_eq!(others(&before), others(&after));
        let graph = |f: &[RawField<'_>]| {
            f.iter()
                .find(|f| f.number == MODEL_GRAPH)
                .unwrap()
                .payload
                .unwrap()
                .to_vec()
        };
        assert!(graph(&after).starts_with(&graph(&before)));
        let (old, new) = (
            read_metadata(&model).unwrap(),
            read_metadata(&edited).unwrap(),
        );
        for (k, v) in &old {
            assert_eq!(new.get(k), Some(v), "{k}");
        }
        assert_eq!(new["framegpt.labels"], "[\"a\",\"b\"]");
    }
}
