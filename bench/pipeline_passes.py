"""Which passes of the photo pipeline pay for themselves, on each runtime: the mirror pass (flip
TTA; `--fast` leaves it out) and BlazeFace's full-range model and tiles on a large photo whose
faces the short-range model already finds.

    python bench/pipeline_passes.py            # the built-in model, --repeats 5

On ../shared/data/photos: youtube (487 faces, photos under 384 px: short range only) and the
group photos (18 faces, 500 px: short range, full range and tiles). Each choice is a
FacePipeline of its own, its models opened on LiteRT or on ONNX Runtime (FACEKEYPOINTS_RUNTIME);
every round runs every choice once, in turn (this 2-core machine is shared and loaded); ms per
face with detection included, the median over rounds. Writes bench/results/pipeline_passes.csv.
"""

from __future__ import annotations

import argparse
import os
import statistics

from common import PHOTOS, RESULTS, write_table

from facekeypoints import onnx_runtime


def pipelines(runtime: str) -> dict:
    """The choices, their models opened on `runtime`."""
    from facekeypoints.inference import loading
    from facekeypoints.photos import FacePipeline
    from facekeypoints.photos.blazeface import BlazeFace

    os.environ[onnx_runtime.RUNTIME] = runtime
    BlazeFace._models = {}  # opened afresh on this runtime (the mesh's session is kept per runtime)
    try:
        model = loading.load(None, prefer_onnx=True)
        default = FacePipeline(model, "blazeface")
        fast = FacePipeline(model, "blazeface", fast=True)
        short_first = FacePipeline(model, "blazeface")
        short_first.detector.full_always = False
    finally:
        del os.environ[onnx_runtime.RUNTIME]
        BlazeFace._models = {}
    name = "LiteRT" if runtime == "litert" else "ONNX Runtime"
    return {f"default (mirror pass), {name}": default,
            f"no mirror pass (--fast), {name}": fast,
            f"default, full range only where short range finds none, {name}": short_first}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=str(RESULTS / "pipeline_passes.csv"))
    args = parser.parse_args()

    from facekeypoints.photos.scores import evaluate_photos

    choices = {**pipelines("litert"), **pipelines("onnx")}
    folders = {"youtube": PHOTOS / "youtube", "group": PHOTOS / "dlib"}
    rounds = []
    for r in range(args.repeats):
        rounds.append({(label, f): evaluate_photos(p, folder, folder / "keypoints15.csv")
                       for label, p in choices.items() for f, folder in folders.items()})
        print(f"round {r + 1} of {args.repeats}", flush=True)
    rows = []
    for label in choices:
        row: dict = {"choice": label}
        for f in folders:
            first = rounds[0][label, f]
            row[f"{f}_found"] = f"{first.detected}/{first.faces}"
            row[f"{f}_nme_pct"] = round(100 * first.nme, 2)
            row[f"{f}_ms_per_face"] = round(
                statistics.median(r[label, f].ms_per_face for r in rounds), 2)
        rows.append(row)
        print(row, flush=True)
    write_table(rows, args.out)


if __name__ == "__main__":
    main()
