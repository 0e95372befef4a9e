"""Which runtime runs each of the package's models fastest: ONNX Runtime, as the package opens it
and with the settings worth a try, against LiteRT (`ai-edge-litert`, XNNPACK) on the original
`.tflite` files, per stage (BlazeFace short and full range, the face mesh, the built-in tuned
mesh) at batch 1, 2 and 8.

    pip install ai-edge-litert
    python bench/runtimes.py                   # --rounds 15

Inputs are real: the youtube photos letterboxed for BlazeFace, their faces at 192x192 for the
mesh. Every round runs every runtime once on every (stage, batch), in turn, so that the load
of this shared 2-core machine falls on all alike; each figure is the median over rounds of ms
per image (a call of 8 images counts 8). Also the largest difference from the package's ONNX
Runtime outputs, in the model's own pixels. Writes bench/results/runtimes.csv.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
from common import PHOTOS, RESULTS, write_table

from facekeypoints import onnx_runtime
from facekeypoints.photos import read_photo

PRETRAINED = Path(onnx_runtime.__file__).parent / "pretrained"
STAGES = {  # stage -> (file, input side, whether the package lets its threads spin)
    "blazeface short": ("blazeface_short.onnx", 128, False),
    "blazeface full": ("blazeface_full.onnx", 192, False),
    "face mesh": ("face_mesh.onnx", 192, True),
    "tuned mesh (built-in)": ("builtin/model.onnx", 192, True),  # the same crops as the mesh
}
MESHES = ("face mesh", "tuned mesh (built-in)")
BATCHES = (1, 2, 8)


def ort_variants(path: Path, spinning: bool) -> dict:
    """ONNX Runtime as the package opens it, and the settings worth a try."""
    import onnxruntime as ort

    def opened(threads: int = 0, spin: bool = spinning, level=None, sequential=True):
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        if level is not None:
            options.graph_optimization_level = level
        if not sequential:
            options.execution_mode = ort.ExecutionMode.ORT_PARALLEL
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    return {
        "onnxruntime (the package's)": onnx_runtime.onnx_session(path, spinning),
        f"onnxruntime, spinning {'off' if spinning else 'on'}": opened(spin=not spinning),
        "onnxruntime, 1 thread": opened(threads=1),
        "onnxruntime, basic graph optimisation": opened(
            level=ort.GraphOptimizationLevel.ORT_ENABLE_BASIC),
        "onnxruntime, parallel executor": opened(sequential=False),
    }


def litert_variants(path: Path) -> dict:
    """LiteRT through the package's opener (2 threads on this machine), and on one thread."""
    import os

    tflite = path.with_suffix(".tflite")
    out = {"litert, 2 threads (the package's)": onnx_runtime.LiteRTSession(tflite, path)}
    os.environ[onnx_runtime.THREADS] = "1"
    try:
        out["litert, 1 thread"] = onnx_runtime.LiteRTSession(tflite, path)
    finally:
        del os.environ[onnx_runtime.THREADS]
    return out


def inputs(side: int, mesh: bool, n: int) -> np.ndarray:
    """n real inputs: youtube photos letterboxed (BlazeFace's [-1, 1]), or their centres as the
    mesh's faces ([0, 1])."""
    out = []
    for path in sorted((PHOTOS / "youtube").glob("*.jpg"))[:n]:
        rgb = read_photo(path)
        if mesh:
            h, w = rgb.shape[:2]
            s = min(h, w) // 2
            face = rgb[h // 2 - s // 2:h // 2 + s // 2, w // 2 - s // 2:w // 2 + s // 2]
            out.append(cv2.resize(face, (side, side)).astype(np.float32) / 255)
        else:
            out.append(cv2.resize(rgb, (side, side)).astype(np.float32) / 127.5 - 1)
    return np.stack(out)


def ms_per_image(opened, name: str, batch: np.ndarray, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        opened.run(None, {name: batch})
    return 1000 * (time.perf_counter() - start) / (calls * len(batch))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--images", type=int, default=16, help="images timed per cell a round")
    parser.add_argument("--out", default=str(RESULTS / "runtimes.csv"))
    args = parser.parse_args()
    cells = {}  # (stage, batch) -> runtime -> [ms per image, one per round]
    sessions, data = {}, {}
    for stage, (file, side, spinning) in STAGES.items():
        path = PRETRAINED / file
        sessions[stage] = {**ort_variants(path, spinning), **litert_variants(path)}
        data[stage] = inputs(side, stage in MESHES, 8)
    diffs = {}
    for stage, opened in sessions.items():
        reference = opened["onnxruntime (the package's)"]
        name = reference.get_inputs()[0].name
        for batch in BATCHES:
            want = reference.run(None, {name: data[stage][:batch]})
            for label, s in opened.items():
                got = s.run(None, {name: data[stage][:batch]})
                diffs[stage, batch, label] = max(float(np.abs(a - b).max())
                                                 for a, b in zip(want, got, strict=True))
                ms_per_image(s, name, data[stage][:batch], 2)  # warm up every shape
    for r in range(args.rounds):
        for stage, opened in sessions.items():
            name = next(iter(opened.values())).get_inputs()[0].name
            for batch in BATCHES:
                calls = max(1, args.images // batch)
                for label, s in opened.items():
                    cells.setdefault((stage, batch), {}).setdefault(label, []).append(
                        ms_per_image(s, name, data[stage][:batch], calls))
        print(f"round {r + 1}/{args.rounds}", flush=True)
    rows = []
    for (stage, batch), by_label in cells.items():
        base = statistics.median(by_label["onnxruntime (the package's)"])
        for label, times in by_label.items():
            ms = statistics.median(times)
            rows.append({"stage": stage, "batch": batch, "runtime": label,
                         "ms_per_image": round(ms, 2), "vs_package_ort": round(ms / base, 2),
                         "max_abs_diff_model_px": f"{diffs[stage, batch, label]:.1e}",
                         "rounds": len(times)})
    write_table(rows, args.out)


if __name__ == "__main__":
    main()
