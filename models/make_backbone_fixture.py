#!/usr/bin/env python3
"""Test fixture for the Rust backbone (src/train/backbone.rs): a small FrameGPT (the class
in train.py, d = 32, 4 heads, the base model's layer counts) with seeded random weights in
*every* parameter (also the delta head and the gate, which train.py initialises to zero /
a constant), exported like the base model but with `do_constant_folding=False`, so each
initializer carries its PyTorch state_dict name and Linear weights stay [out, in].

    ~/.cache/framegpt-train-venv/bin/python models/make_backbone_fixture.py
    # -> tests/fixtures/models/framegpt-tiny-named.onnx (~0.35 MB)

Needs torch and onnx (models/requirements.txt). Re-running gives the same weights.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train  # noqa: E402  (the backbone's definition; importing it runs nothing)

D, HEADS = 32, 4
OUT = Path(__file__).resolve().parent.parent / "tests/fixtures/models/framegpt-tiny-named.onnx"


def main() -> None:
    import onnx

    torch.manual_seed(0)
    model = train.FrameGPT(d=D, heads=HEADS)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("ln1.weight", "ln2.weight", "_ln.weight")) or name == "frame_ln.weight":
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            elif p.dim() >= 2 and not name.endswith("pos"):
                p.copy_(torch.randn(p.shape, generator=g) / p.shape[-1] ** 0.5)
            else:
                p.copy_(0.3 * torch.randn(p.shape, generator=g))
    model.eval()
    dummy = torch.zeros(2, train.T_CONTEXT, train.N_PATCHES, train.C)
    tmp = OUT.with_suffix(".tmp.onnx")
    torch.onnx.export(
        model, (dummy,), str(tmp), dynamo=False, opset_version=train.OPSET,
        input_names=["patches"], output_names=["next_patches", "embeddings"],
        dynamic_axes={"patches": {0: "batch", 1: "time"}, "next_patches": {0: "batch", 1: "time"},
                      "embeddings": {0: "batch", 1: "time"}},
        do_constant_folding=False,
    )
    m = onnx.load(str(tmp))
    tmp.unlink()
    m.ir_version = train.IR_VERSION
    m.producer_name = "framegpt-make-backbone-fixture"
    del m.metadata_props[:]
    onnx.helper.set_model_props(m, {
        "framegpt.contract": "1",
        "framegpt.frame_size": f"{train.FRAME}x{train.FRAME}",
        "framegpt.patch_size": str(train.PATCH),
        "framegpt.context_frames": str(train.T_CONTEXT),
        "framegpt.mean": ",".join(str(v) for v in train.MEAN),
        "framegpt.std": ",".join(str(v) for v in train.STD),
        "framegpt.embedding_dim": str(D),
        "framegpt.provenance": json.dumps({
            "fixture": "models/make_backbone_fixture.py: random weights, not trained",
            "architecture": {"d": D, "heads": HEADS},
        }),
    })
    onnx.checker.check_model(m, full_check=True)
    onnx.save_model(m, str(OUT), save_as_external_data=False)
    names = [i.name for i in m.graph.initializer]
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {len(names)} initializers, e.g. {names[:3]})")


if __name__ == "__main__":
    main()
