"""How far each model's keypoints sit off the truth on average, on the Kaggle test crops: a
model whose flips mirror the labels about the wrong axis is off in x for every face.

    python bench/mirror_axis.py --model runs/fast runs/photos runs/mesh

For each model (and the mesh's photo head): mean signed error in x and y (pixels of the 96x96
crop), RMSE and NME (% of the eye distance) on ../shared/data/faces/test.csv.gz against
test_keypoints.csv, with and without flip TTA, and the mirror axis the model uses (mean over the
x columns). Writes bench/results/mirror_axis.csv.
"""

from __future__ import annotations

import argparse

import numpy as np
from common import RESULTS, kaggle_test_truth, write_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", nargs="+", required=True)
    parser.add_argument("--out", default=str(RESULTS / "mirror_axis.csv"))
    args = parser.parse_args()

    from facekeypoints.inference import loading
    from facekeypoints.keypoints import x_mask

    X, truth = kaggle_test_truth()
    eyes = np.linalg.norm(truth[:, 0] - truth[:, 1], axis=1)
    rows = []
    for path in args.model:
        model = loading.load(path)
        heads = [("", model)]
        if hasattr(model, "for_photos"):
            heads.append((" (photo head)", model.for_photos()))
        for label, head in heads:
            axis = np.broadcast_to(head.mirror_axis, len(head.columns))[x_mask(head.columns)]
            for tta in (False, True):
                error = head.predict(X, tta=tta).reshape(truth.shape) - truth
                rows.append({"model": path + label, "tta": tta,
                             "mirror_axis": round(float(axis.mean()), 2),
                             "mean_dx_px": round(float(error[..., 0].mean()), 3),
                             "mean_dy_px": round(float(error[..., 1].mean()), 3),
                             "rmse_px": round(float(np.sqrt((error ** 2).mean())), 3),
                             "nme_pct": round(float(100 * (np.linalg.norm(error, axis=2)
                                                           .mean(axis=1) / eyes).mean()), 2)})
                print(rows[-1], flush=True)
    write_table(rows, args.out)


if __name__ == "__main__":
    main()
