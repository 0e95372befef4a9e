"""A built-in model against another (the one it replaced) on the youtube photos, as `detect`
runs them (BlazeFace, the default pipeline): faces found, NME and ms per face with detection
included, the two alternating photo by photo's folder, --repeats rounds, medians.

    cp -r src/facekeypoints/pretrained/builtin /tmp/old-builtin    # before replacing it
    python bench/builtin_vs_old.py --old /tmp/old-builtin
    python bench/builtin_vs_old.py --new builtin68 --old /tmp/old-builtin68 \
        --truth landmarks68.csv --out bench/results/builtin68_vs_old.csv

Writes bench/results/builtin_vs_old.csv (default).
"""

from __future__ import annotations

import argparse

import numpy as np
from common import PHOTOS, RESULTS, write_table
from photos_vs_dlib import pipeline_faces, score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new", default="builtin", help="default: the built-in model")
    parser.add_argument("--old", required=True, help="the model it replaced (a folder or file)")
    parser.add_argument("--truth", default="keypoints15.csv", help="in photos/youtube")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(RESULTS / "builtin_vs_old.csv"))
    args = parser.parse_args()

    from facekeypoints.inference import loading
    from facekeypoints.photos import FacePipeline

    folder = PHOTOS / "youtube"
    methods = {label: pipeline_faces(FacePipeline(loading.load(m)))
               for label, m in (("new", args.new), ("old", args.old))}
    rounds = [{label: score(folder, folder / args.truth, fn) for label, fn in methods.items()}
              for _ in range(args.repeats)]
    rows = []
    for label, model in (("new", args.new), ("old", args.old)):
        first = rounds[0][label]
        rows.append({"model": f"{label}: {model}", "faces": first["faces"],
                     "detected_pct": first["detected_pct"], "nme_pct": first["nme_pct"],
                     "ms_per_face": round(float(np.median(
                         [r[label]["ms_per_face"] for r in rounds])), 1),
                     "ms_each_round": " / ".join(str(r[label]["ms_per_face"]) for r in rounds)})
    write_table(rows, args.out)


if __name__ == "__main__":
    main()
