"""Load the weights of an exported framegpt backbone ONNX file back into `train.FrameGPT`.

The TorchScript exporter folds each Linear's weight into a transposed initializer with a
generated name (`onnx::MatMul_NNN`). Those names are deterministic for a given model
definition, so the mapping back to state_dict names is recovered by exporting a probe model
whose parameters are all distinct and matching its initializers against its own state_dict.
Files exported without constant folding carry the state_dict names directly.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper

import train as T


def _probe_mapping(model_kwargs: dict) -> dict[str, tuple[str, bool]]:
    torch.manual_seed(12345)
    probe = T.FrameGPT(**model_kwargs)
    with torch.no_grad():
        for p in probe.parameters():
            p.copy_(torch.randn_like(p))
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "probe.onnx"
        T.export_onnx(probe, path, {"probe": "1"}, fold_constants=True)
        pm = onnx.load(str(path))
    sd = {k: v.detach().numpy() for k, v in probe.state_dict().items()}
    mapping: dict[str, tuple[str, bool]] = {}
    for init in pm.graph.initializer:
        a = numpy_helper.to_array(init)
        if init.name in sd:
            mapping[init.name] = (init.name, False)
            continue
        hit = [k for k, v in sd.items() if v.ndim == 2 and v.T.shape == a.shape and np.allclose(v.T, a)]
        if len(hit) != 1:
            raise ValueError(f"cannot map initializer {init.name}: candidates {hit}")
        mapping[init.name] = (hit[0], True)
    return mapping


def load_backbone(path: Path, model: T.FrameGPT, model_kwargs: dict | None = None) -> None:
    """Copies every backbone weight of the ONNX file at `path` into `model` (strict)."""
    m = onnx.load(str(path))
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    sd = model.state_dict()
    if all(k in inits for k in sd):
        new = {k: torch.from_numpy(inits[k].copy()) for k in sd}
    else:
        mapping = _probe_mapping(model_kwargs or {})
        new = {}
        for name, (key, transposed) in mapping.items():
            if name not in inits:
                raise ValueError(f"`{path}` has no initializer `{name}`: not this architecture")
            a = inits[name]
            new[key] = torch.from_numpy((a.T if transposed else a).copy())
    missing = set(sd) - set(new)
    if missing:
        raise ValueError(f"`{path}` lacks weights for {sorted(missing)}")
    model.load_state_dict(new, strict=True)
