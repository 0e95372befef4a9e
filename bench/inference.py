"""Inference speed: faces per second for batch prediction of 96x96 faces, Keras vs ONNX Runtime.

    python bench/inference.py runs/fast            # a run folder (exported to ONNX on the fly)

Predicts ../shared/data/faces/test.csv.gz (487 faces) in batches of 1, 32 and 487, alternating
the two engines, medians of --repeats runs; checks that they agree to 1e-4. Cold start: seconds
for a fresh `facekeypoints detect` process on one photo with each model file. Writes
bench/results/inference.csv.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import RESULTS, SHARED, write_table


def timed(fn, repeats: int) -> float:
    fn()  # warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def cold_start(model: Path, out: Path) -> float:
    photo = SHARED / "photos" / "youtube" / "Lincoln_Chafee_52.jpg"
    out = out / f"run-{time.perf_counter_ns()}"  # detect never writes into a used folder
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "facekeypoints.cli", "detect", str(photo), "--model",
                    str(model), "--no-draw", "--out", str(out)], check=True,
                   capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="run folder or .keras file")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=str(RESULTS / "inference.csv"))
    args = parser.parse_args()

    from facekeypoints.quiet_import import quiet_keras

    quiet_keras()
    from facekeypoints.data import load_test
    from facekeypoints.inference import loading
    from facekeypoints.inference.export import export_onnx

    _, X = load_test(SHARED / "faces" / "test.csv.gz")
    keras_model = loading.load(args.model)
    tmp = Path(tempfile.mkdtemp(prefix="bench-inference-"))
    onnx_path = export_onnx(keras_model, tmp / "model.onnx")
    onnx_model = loading.load(onnx_path)
    gap = float(np.abs(keras_model.predict_scaled(X) - onnx_model.predict_scaled(X)).max())
    print(f"largest difference Keras vs ONNX: {gap:.2e} (scaled units)")
    rows = []
    for batch in (1, 32, len(X)):
        row = {"batch": batch}
        for label, model in (("keras", keras_model), ("onnx", onnx_model)):
            def run(model=model, batch=batch):
                for i in range(0, len(X), batch):
                    model.predict(X[i:i + batch])

            row[f"{label}_faces_per_s"] = round(len(X) / timed(run, args.repeats), 1)
        row["onnx_speedup"] = round(row["onnx_faces_per_s"] / row["keras_faces_per_s"], 2)
        rows.append(row)
        print(row, flush=True)
    keras_file = Path(args.model) / "model.keras" if Path(args.model).is_dir() else Path(args.model)
    for label, path in (("keras", keras_file), ("onnx", onnx_path)):
        seconds = statistics.median(cold_start(path, tmp / f"cold-{label}") for _ in range(3))
        rows.append({"batch": f"cold detect, {label}", f"{label}_faces_per_s": "",
                     "onnx_speedup": "", "seconds": round(seconds, 2)})
        print(rows[-1], flush=True)
    print(f"max |Keras - ONNX| = {gap:.2e}")
    write_table(rows, args.out)


if __name__ == "__main__":
    main()
