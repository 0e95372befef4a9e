"""How much of a photo's time is the models' and how much the Python around them.

    python bench/model_share.py            # --photos 200 --repeats 3

`FacePipeline.faces_in` on youtube photos already decoded, the default and `--fast`, with the
time inside the model calls (`LiteRTSession.run`, or ONNX Runtime's `run` where LiteRT is not
installed or FACEKEYPOINTS_RUNTIME=onnx) summed apart: what is left is BlazeFace's decoding, the
framing, the heads, the mirror's bookkeeping and the pose fit. Medians of --repeats passes.
Writes bench/results/model_share.csv.
"""

from __future__ import annotations

import argparse
import statistics
import time

from common import PHOTOS, RESULTS, write_table

import facekeypoints as fk
from facekeypoints import onnx_runtime
from facekeypoints.photos import read_photo


def timed_runs() -> list[float]:
    """Every model call of the process adds its seconds to the list's one number."""
    spent = [0.0]
    classes = [onnx_runtime.LiteRTSession]
    try:
        import onnxruntime

        classes.append(onnxruntime.InferenceSession)
    except ImportError:
        pass
    for cls in classes:
        original = cls.run

        def run(self, *args, _original=original, **kwargs):
            start = time.perf_counter()
            try:
                return _original(self, *args, **kwargs)
            finally:
                spent[0] += time.perf_counter() - start

        cls.run = run
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    spent = timed_runs()
    rgbs = [read_photo(p) for p in sorted((PHOTOS / "youtube").glob("*.jpg"))[:args.photos]]
    rows = []
    for fast in (False, True):
        pipeline = fk.Landmarker(fast=fast).pipeline
        for rgb in rgbs[:5]:  # warm every interpreter
            pipeline.faces_in(rgb)
        totals, models = [], []
        for _ in range(args.repeats):
            spent[0] = 0.0
            start = time.perf_counter()
            for rgb in rgbs:
                pipeline.faces_in(rgb)
            totals.append(1000 * (time.perf_counter() - start) / len(rgbs))
            models.append(1000 * spent[0] / len(rgbs))
        total, model = statistics.median(totals), statistics.median(models)
        rows.append({"mode": "--fast" if fast else "default", "photos": len(rgbs),
                     "ms_per_photo": round(total, 2), "in_models_ms": round(model, 2),
                     "around_them_ms": round(total - model, 2),
                     "runtime": onnx_runtime.OPENED.get("model.onnx", "?")})
        print(rows[-1], flush=True)
    write_table(rows, RESULTS / "model_share.csv")


if __name__ == "__main__":
    main()
