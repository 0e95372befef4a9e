"""Does the per-keypoint uncertainty mean what it says, and what does it cost?

    python bench/uncertainty.py [--repeats 5]

On the youtube photos (../shared/data/photos/youtube, 487 faces of the 40 test people) each
built-in model runs as `detect` runs it (BlazeFace, the mirror pass). The 40 people are split
into 5 folds; each candidate form of the uncertainty is calibrated (each keypoint's 68% factor)
on 4 folds and scored on the people of the fifth, every fold in turn. Scores, on held-out people:

- coverage: the share of true errors (Euclidean distance, per keypoint, photo pixels) within one
  uncertainty (aim 0.68, 0.60-0.76), overall, its range over the folds and over the keypoints;
- face_rho: Spearman's rank correlation between a face's mean uncertainty over its eye distance
  (NME's units) and its NME (aim >= 0.3); point_rho: the same per keypoint;
- caught: of the 5% worst faces (by NME), how many are among the 10% least certain.

Candidates, with s_k a keypoint's mirror spread and m the face's mean (crop pixels): `spread`
(s_k), `floor F` (sqrt(F^2 + s_k^2)), `shipped F` (sqrt(F^2 + s_k^2 + m^2),
inference/uncertainty.py), and `without mirror`: no mirror pass (`--fast`), its keypoints'
errors, and a constant in crop pixels (photo pixels: it grows as the crop is cut larger).
The shipped calibration (fitted on all 40 people by tools/calibrate_uncertainty.py) is also
checked on the Kaggle test faces (../shared/data/faces: 96x96 grey crops of the same 40
people's frames: another framing and resolution, not other people). Then the cost: the default
pipeline with and without its uncertainty (the same mirror pass; what the uncertainty adds is
its arithmetic), and without the mirror pass too (what the uncertainty would cost if the mirror
pass were cut), alternating photo by photo, medians of --repeats rounds (`--cost-only`: this
alone).

Writes bench/results/uncertainty.csv, uncertainty_cost.csv and docs/uncertainty.png.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from common import PHOTOS, RESULTS, ROOT, kaggle_test_truth, write_table
from scipy.stats import spearmanr

FOLDS = 5
FLOORS = (0.5, 1.5, 3.0, 5.0)  # crop pixels
YOUTUBE = PHOTOS / "youtube"
TRUTH = {"builtin": YOUTUBE / "keypoints15.csv", "builtin68": YOUTUBE / "landmarks68.csv"}


def bases(sample) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each candidate's uncertainty before its per-keypoint factor, crop pixels (faces, points),
    and the errors it is for."""
    from facekeypoints.inference.uncertainty import base

    s, error = sample.spread, sample.error
    found = {"without mirror": (np.ones_like(s), sample.alone), "spread": (s + 1e-6, error)}
    for floor in FLOORS:
        found[f"floor {floor}"] = (np.sqrt(floor ** 2 + s ** 2), error)
    for floor in FLOORS:
        found[f"shipped {floor}"] = (base(s, floor), error)
    return found


def scores(sample, unsure: np.ndarray, error: np.ndarray,
           folds: np.ndarray | None = None) -> dict:
    """The scores of uncertainties (faces, points; crop pixels) against the true errors."""
    within = error <= unsure
    nme = (error / sample.crop_scale[:, None]).mean(axis=1) / sample.interocular
    face = (unsure / sample.crop_scale[:, None]).mean(axis=1) / sample.interocular
    worst = nme >= np.quantile(nme, 0.95)
    least = face >= np.quantile(face, 0.90)
    row = {"faces": len(nme), "coverage": round(float(within.mean()), 3)}
    if folds is not None:
        per_fold = [within[folds == f].mean() for f in range(FOLDS)]
        row["fold_range"] = f"{min(per_fold):.2f}-{max(per_fold):.2f}"
    per_point = within.mean(axis=0)
    row["keypoint_range"] = f"{per_point.min():.2f}-{per_point.max():.2f}"
    row["face_rho"] = round(float(spearmanr(face, nme)[0]), 3)
    row["point_rho"] = round(float(spearmanr(unsure.ravel() / sample.crop_scale.repeat(
        unsure.shape[1]), (error / sample.crop_scale[:, None]).ravel())[0]), 3)
    row["caught"] = f"{int((worst & least).sum())}/{int(worst.sum())}"
    return row


def held_out(base: np.ndarray, error: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """Uncertainties for each fold's faces, with factors fitted on the other folds' people."""
    from facekeypoints.inference.uncertainty import COVERAGE

    unsure = np.zeros_like(base)
    for f in range(FOLDS):
        train, test = folds != f, folds == f
        factor = np.quantile(error[train] / base[train], COVERAGE, axis=0)
        unsure[test] = base[test] * factor
    return unsure


def kaggle_sample(model):
    """The Kaggle test faces, as photos with their true keypoints, through `collect`."""
    import cv2
    import pandas as pd

    from facekeypoints.keypoints import COLUMNS
    from facekeypoints.photos.uncertainty import collect

    X, truth = kaggle_test_truth()
    with tempfile.TemporaryDirectory() as tmp:
        names = [f"face{i:03d}.png" for i in range(len(X))]
        for name, x in zip(names, X, strict=True):
            cv2.imwrite(str(Path(tmp) / name), (x[..., 0] * 255).round().astype(np.uint8))
        frame = pd.DataFrame(truth.reshape(len(X), -1), columns=list(COLUMNS))
        frame.insert(0, "file", names)
        frame.to_csv(Path(tmp) / "truth.csv", index=False)
        return collect(model, tmp, Path(tmp) / "truth.csv")


def figure(samples: dict, out: Path) -> None:
    """Calibration curves (share of errors within k uncertainties) and uncertainty vs NME."""
    from matplotlib.figure import Figure

    from facekeypoints.plots import save

    fig = Figure(figsize=(11, 4.5))
    curve, scatter = fig.subplots(1, 2)
    k = np.linspace(0, 3, 61)
    for name, (sample, unsure, error) in samples.items():
        ratio = (error / unsure).ravel()
        curve.plot(k, [(ratio <= v).mean() for v in k], label=name)
        if name.startswith("builtin,") and "shipped" in name:  # two clouds stay readable
            face = (unsure / sample.crop_scale[:, None]).mean(axis=1) / sample.interocular
            nme = (error / sample.crop_scale[:, None]).mean(axis=1) / sample.interocular
            scatter.scatter(100 * face, 100 * nme, s=6, alpha=0.5, label=name)
    curve.axvline(1, color="grey", lw=0.8)
    curve.axhline(0.68, color="grey", lw=0.8, ls="--")
    curve.set(xlabel="k (uncertainties)", ylabel="share of true errors within k uncertainties",
              title="calibration, people held out (5 folds)")
    curve.legend(fontsize=8)
    scatter.set(xscale="log", yscale="log", xlabel="face's mean uncertainty, % of eye distance",
                ylabel="face's NME, %", title="uncertainty against true error, per face")
    scatter.legend(fontsize=8)
    fig.tight_layout()
    save(fig, out)


def cost(repeats: int) -> list[dict]:
    """ms a face: the default pipeline with its uncertainty, without it, without the mirror
    pass; the same photos, alternating, medians of `repeats` rounds."""
    from facekeypoints.inference.loading import load
    from facekeypoints.photos.pipeline import FacePipeline
    from facekeypoints.photos.reading import read_photo

    photos = [read_photo(p) for p in sorted(YOUTUBE.glob("*.jpg"))[:120]]
    with_u = FacePipeline(load("builtin"))
    without = FacePipeline(load("builtin"))
    without.calibration = None
    no_mirror = FacePipeline(load("builtin"))
    no_mirror.calibration, no_mirror.tta = None, False
    pipelines = {"default, with uncertainty": with_u, "default, without uncertainty": without,
                 "no mirror pass, no uncertainty": no_mirror}
    times: dict[str, list[float]] = {k: [] for k in pipelines}
    faces = {}
    for p in pipelines.values():  # warm-up
        p.faces_in(photos[0])
    for round_ in range(repeats):
        # alternating photo by photo (in turn first), so that the machine's load, which
        # drifts over seconds, falls on each alike
        spent, n = dict.fromkeys(pipelines, 0.0), dict.fromkeys(pipelines, 0)
        for i, rgb in enumerate(photos):
            names = list(pipelines)
            for name in names[(i + round_) % 3:] + names[:(i + round_) % 3]:
                start = time.perf_counter()
                n[name] += len(pipelines[name].faces_in(rgb))
                spent[name] += time.perf_counter() - start
        for name in pipelines:
            times[name].append(1000 * spent[name] / n[name])
            faces[name] = n[name]
    base = float(np.median(times["default, without uncertainty"]))
    rows = [{"pipeline": k, "faces": faces[k], "ms_per_face": round(float(np.median(v)), 2),
             "ratio_to_default_without": round(float(np.median(v)) / base, 3),
             "runs": len(v)} for k, v in times.items()]
    # the uncertainty's own work a face, timed alone: the spread (a subtraction and a norm)
    # and the calibration, as _predict_seen and predict_spread do them on one face
    calibration, spread = with_u.calibration, np.random.default_rng(0).random((1, 15))
    y, back = np.random.default_rng(1).random((2, 1, 30)).astype(np.float32)
    rounds = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(2000):
            np.linalg.norm((y - back).reshape(1, -1, 2), axis=2)
            calibration(spread, 1)[0] / 0.9
        rounds.append(1000 * (time.perf_counter() - start) / 2000)
    arithmetic = float(np.median(rounds))
    rows.append({"pipeline": "the uncertainty's own arithmetic", "faces": 1,
                 "ms_per_face": round(arithmetic, 4),
                 "ratio_to_default_without": round(arithmetic / base, 5), "runs": repeats})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="0: no timing")
    parser.add_argument("--cost-only", action="store_true", help="the timing alone")
    args = parser.parse_args()
    if args.cost_only:
        write_table(cost(args.repeats), RESULTS / "uncertainty_cost.csv")
        return
    from facekeypoints.inference.loading import load
    from facekeypoints.inference.uncertainty import FLOOR
    from facekeypoints.photos.uncertainty import collect, person

    rows, curves = [], {}
    for name, truth in TRUTH.items():
        model = load(name)
        sample = collect(model, YOUTUBE, truth)
        people = sorted({person(f) for f in sample.files})
        folds = np.array([people.index(person(f)) % FOLDS for f in sample.files])
        for candidate, (base, error) in bases(sample).items():
            unsure = held_out(base, error, folds)
            rows.append({"model": name, "data": "youtube, people held out",
                         "candidate": candidate, **scores(sample, unsure, error, folds)})
            if candidate in (f"shipped {FLOOR}", "without mirror"):
                curves[f"{name}, {candidate}, held out"] = (sample, unsure, error)
        if name == "builtin":  # the shipped calibration on another framing of the same people
            kaggle = kaggle_sample(model)
            for candidate, spread, error in ((f"shipped {FLOOR}", kaggle.spread, kaggle.error),
                                             ("without mirror", None, kaggle.alone)):
                unsure = model.calibration(spread, len(error))
                rows.append({"model": name, "data": "Kaggle test faces (96x96), as shipped",
                             "candidate": candidate, **scores(kaggle, unsure, error)})
                if spread is not None:
                    curves[f"builtin, shipped {FLOOR}, Kaggle faces"] = (kaggle, unsure, error)
    write_table(rows, RESULTS / "uncertainty.csv")
    figure(curves, ROOT / "docs" / "uncertainty.png")
    if args.repeats:
        write_table(cost(args.repeats), RESULTS / "uncertainty_cost.csv")


if __name__ == "__main__":
    main()
