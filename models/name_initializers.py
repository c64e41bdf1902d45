#!/usr/bin/env python3
"""Re-export a constant-folded framegpt ONNX file (initializers named like `onnx::MatMul_123`,
Linear weights transposed) with its PyTorch state_dict names, for `finetune --unfreeze`.

    ~/.cache/framegpt-train-venv/bin/python models/name_initializers.py IN.onnx OUT.onnx

How: a FrameGPT with a distinct random value in every parameter is exported the same way
(constant folding on); its initializers are matched to its parameters by value (as is or
transposed), which gives the map from folded initializer names to state_dict names; that
map reads the weights out of IN, they are loaded into FrameGPT and exported with
`do_constant_folding=False`; IN's metadata is copied. Checked: ONNX Runtime outputs of IN
and OUT on random windows (max abs diff printed). A stopgap until the base model itself is
exported with names (models/train.py).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train  # noqa: E402


def export(model: torch.nn.Module, path: Path, fold: bool) -> None:
    dummy = torch.zeros(2, train.T_CONTEXT, train.N_PATCHES, train.C)
    torch.onnx.export(
        model, (dummy,), str(path), dynamo=False, opset_version=train.OPSET,
        input_names=["patches"], output_names=["next_patches", "embeddings"],
        dynamic_axes={"patches": {0: "batch", 1: "time"}, "next_patches": {0: "batch", 1: "time"},
                      "embeddings": {0: "batch", 1: "time"}},
        do_constant_folding=fold,
    )


def main(src: Path, dst: Path) -> None:
    base = onnx.load(str(src))
    arch = json.loads({p.key: p.value for p in base.metadata_props}["framegpt.provenance"]).get("architecture", {})
    kwargs = {k: arch[k] for k in ("d", "heads", "spatial_layers", "temporal_layers", "decoder_layers") if k in arch}
    probe = train.FrameGPT(**kwargs).eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in probe.parameters():
            p.copy_(torch.rand(p.shape, generator=g) + 1.0)  # distinct, nonzero
    tmp = dst.with_suffix(".probe.onnx")
    export(probe, tmp, fold=True)
    folded = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(tmp)).graph.initializer}
    tmp.unlink()
    params = {n: p.detach().numpy() for n, p in probe.named_parameters()}
    mapping = {}
    for iname, arr in folded.items():
        for pname, p in params.items():
            if arr.shape == p.shape and np.array_equal(arr, p):
                mapping[pname] = (iname, False)
            elif p.ndim == 2 and arr.shape == p.T.shape and np.array_equal(arr, p.T):
                mapping[pname] = (iname, True)
    missing = sorted(set(params) - set(mapping))
    if missing:
        sys.exit(f"error: no folded initializer for {missing}")
    weights = {i.name: numpy_helper.to_array(i) for i in base.graph.initializer}
    model = train.FrameGPT(**kwargs).eval()
    state = {n: torch.from_numpy(np.ascontiguousarray(weights[i].T if t else weights[i]).copy())
             for n, (i, t) in mapping.items()}
    model.load_state_dict(state, strict=False)
    export(model, dst, fold=False)
    m = onnx.load(str(dst))
    m.ir_version = base.ir_version
    m.producer_name = base.producer_name
    del m.metadata_props[:]
    m.metadata_props.extend(base.metadata_props)
    onnx.checker.check_model(m, full_check=True)
    onnx.save_model(m, str(dst), save_as_external_data=False)
    x = np.random.default_rng(0).normal(size=(3, 8, 64, 192)).astype(np.float32)
    a = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).run(None, {"patches": x})
    b = ort.InferenceSession(str(dst), providers=["CPUExecutionProvider"]).run(None, {"patches": x})
    diff = max(float(np.abs(u - v).max()) for u, v in zip(a, b))
    print(f"wrote {dst}: {len(mapping)} named parameters; ONNX Runtime outputs vs {src.name}: max abs diff {diff:.2e}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
