#!/usr/bin/env python3
"""Inference time of ONNX files on the same batch, interleaved run by run (so a load change
hits every file alike): ONNX Runtime, 1 intra-op thread, spinning off, one batch of 8 windows
of random normalized patches, median of 21 runs after one warm-up.

    ~/.cache/framegpt-train-venv/bin/python models/ort_timing.py A.onnx B.onnx ...
"""
import sys
import time

import numpy as np
import onnxruntime as ort


def session(path: str) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def main() -> None:
    files = sys.argv[1:]
    if not files:
        sys.exit(__doc__)
    sessions = [session(f) for f in files]
    x = np.random.default_rng(0).standard_normal((8, 8, 64, 192)).astype(np.float32)
    for s in sessions:
        s.run(None, {"patches": x})
    times = [[] for _ in files]
    for _ in range(21):
        for s, t in zip(sessions, times):
            t0 = time.perf_counter()
            s.run(None, {"patches": x})
            t.append(time.perf_counter() - t0)
    for f, t in zip(files, times):
        print(f"{f}: median {1000 * np.median(t):.1f} ms (8 windows, 1 thread, 21 interleaved runs)")


if __name__ == "__main__":
    main()
