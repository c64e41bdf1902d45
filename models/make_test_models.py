#!/usr/bin/env python3
"""Build the tiny ONNX fixtures used by the Rust tests (tests/fixtures/models/).

Only the `onnx` package and numpy are needed (no torch). Weights are random but seeded,
so re-running this script reproduces the files byte for byte.

    python models/make_test_models.py            # writes tests/fixtures/models/*.onnx

Fixtures (all follow contract v1 except where the name says otherwise):

- tiny-valid.onnx           valid contract-v1 model with a minimal network: 64x64 frames,
                            8x8 patches, T=8, D=8. next_patches = patches + low-rank linear
                            map of patches (per frame, so trivially causal); embeddings =
                            mean over patches of a linear projection (per frame).
- bad-contract-version.onnx same graph, framegpt.contract = "99".
- missing-output.onnx       same metadata, but the graph has no `next_patches` output.
- wrong-shape.onnx          metadata says patch_size 8 (so C should be 192) but the input's
                            last dim is 48 (= 3*4*4).
- no-metadata.onnx          the tiny-valid graph without any framegpt.* metadata.
- lying-context.onnx        metadata says context_frames 9; inputs and outputs leave the
                            time axis symbolic (shape inference cannot see through the
                            graph), but a per-frame offset is gathered from an 8-row table,
                            so it only runs on 8 frames (a model that lies).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8
FRAME = 64
PATCH = 8
T = 8
N = (FRAME // PATCH) ** 2  # 64
C = 3 * PATCH * PATCH  # 192
D = 8
RANK = 4
MEAN = "0.45,0.45,0.45"
STD = "0.225,0.225,0.225"


def contract_metadata(contract: str = "1", embedding_dim: int = D, context: int = T) -> dict[str, str]:
    return {
        "framegpt.contract": contract,
        "framegpt.frame_size": f"{FRAME}x{FRAME}",
        "framegpt.patch_size": str(PATCH),
        "framegpt.context_frames": str(context),
        "framegpt.mean": MEAN,
        "framegpt.std": STD,
        "framegpt.embedding_dim": str(embedding_dim),
        "framegpt.provenance": json.dumps(
            {
                "kind": "test fixture",
                "weights": "random (numpy seed 1234)",
                "made_by": "models/make_test_models.py",
                "onnx": onnx.__version__,
            },
            sort_keys=True,
        ),
    }


def build_graph(
    c: int = C, with_next: bool = True, name: str = "framegpt_tiny", static_time: bool = True
) -> onnx.GraphProto:
    rng = np.random.default_rng(1234)
    a = (rng.standard_normal((c, RANK)) * 0.05).astype(np.float32)
    b = (rng.standard_normal((RANK, c)) * 0.05).astype(np.float32)
    e = (rng.standard_normal((c, D)) * 0.1).astype(np.float32)
    inits = [
        numpy_helper.from_array(a, "delta_a"),
        numpy_helper.from_array(b, "delta_b"),
        numpy_helper.from_array(e, "embed_w"),
    ]
    nodes = []
    source = "patches"
    if not static_time:
        # offset[t] = table[t] for t < frames: a T-row table, so only T-frame windows run.
        inits += [
            numpy_helper.from_array(np.zeros((T, 1, 1), np.float32), "time_table"),
            numpy_helper.from_array(np.array(1, np.int64), "one"),
            numpy_helper.from_array(np.array(0, np.int64), "zero"),
        ]
        nodes += [
            helper.make_node("Shape", ["patches"], ["patches_shape"]),
            helper.make_node("Gather", ["patches_shape", "one"], ["frames"], axis=0),
            helper.make_node("Range", ["zero", "frames", "one"], ["frame_ids"]),
            helper.make_node("Gather", ["time_table", "frame_ids"], ["time_offset"], axis=0),
            helper.make_node("Add", ["patches", "time_offset"], ["patches_t"]),
        ]
        source = "patches_t"
    nodes += [
        # embeddings[b, t] = mean_n(patches[b, t, n] @ E)
        helper.make_node("MatMul", [source, "embed_w"], ["proj"]),
        helper.make_node("ReduceMean", ["proj"], ["embeddings"], axes=[2], keepdims=0),
    ]
    outputs = []
    if with_next:
        nodes += [
            helper.make_node("MatMul", [source, "delta_a"], ["low"]),
            helper.make_node("MatMul", ["low", "delta_b"], ["delta"]),
            helper.make_node("Add", [source, "delta"], ["next_patches"]),
        ]
    t = T if static_time else "time"
    if with_next:
        outputs.append(helper.make_tensor_value_info("next_patches", TensorProto.FLOAT, ["batch", t, N, c]))
    outputs.append(helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, ["batch", t, D]))
    inputs = [helper.make_tensor_value_info("patches", TensorProto.FLOAT, ["batch", t, N, c])]
    return helper.make_graph(nodes, name, inputs, outputs, initializer=inits)


def make_model(graph: onnx.GraphProto, metadata: dict[str, str] | None) -> onnx.ModelProto:
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="framegpt-make-test-models",
    )
    model.ir_version = IR_VERSION
    if metadata:
        helper.set_model_props(model, metadata)
    onnx.checker.check_model(model, full_check=True)
    return model


def main() -> None:
    repo = Path(__file__).resolve().parent.parent
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=repo / "tests" / "fixtures" / "models")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    fixtures = {
        "tiny-valid.onnx": make_model(build_graph(), contract_metadata()),
        "bad-contract-version.onnx": make_model(build_graph(), contract_metadata(contract="99")),
        "missing-output.onnx": make_model(build_graph(with_next=False), contract_metadata()),
        "wrong-shape.onnx": make_model(build_graph(c=3 * 4 * 4), contract_metadata()),
        "no-metadata.onnx": make_model(build_graph(), None),
        "lying-context.onnx": make_model(build_graph(static_time=False), contract_metadata(context=9)),
    }
    for name, model in fixtures.items():
        path = args.out / name
        onnx.save_model(model, str(path))
        print(f"wrote {path} ({path.stat().st_size} bytes)")

    # Self-check: the valid fixture runs in ONNX Runtime when it is installed.
    try:
        import onnxruntime as ort
    except ImportError:
        return
    sess = ort.InferenceSession(str(args.out / "tiny-valid.onnx"), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((2, T, N, C)).astype(np.float32)
    nxt, emb = sess.run(["next_patches", "embeddings"], {"patches": x})
    assert nxt.shape == (2, T, N, C) and emb.shape == (2, T, D), (nxt.shape, emb.shape)
    print(f"tiny-valid.onnx runs in onnxruntime {ort.__version__}: next_patches {nxt.shape}, embeddings {emb.shape}")


if __name__ == "__main__":
    main()
