"""Calibrate a model's per-keypoint uncertainty and write it into the model's folder, as
`uncertainty.json` (apart from the model's own files: a refit model is recalibrated by running
this again).

    python tools/calibrate_uncertainty.py                      # both built-in models
    python tools/calibrate_uncertainty.py --name builtin68
    python tools/calibrate_uncertainty.py --model runs/mine --photos FOLDER --truth FILE.csv

It runs the model as `detect` does (BlazeFace, the mirror pass) on the photos, and fits each
keypoint's factor so that 68% of the true errors fall within one uncertainty
(inference/uncertainty.py). The photos must be of people the model was not fitted on: the
built-in models' defaults are ../shared/data/photos/youtube, the 40 test people (the built-in
heads were fitted on the 237 training people). bench/uncertainty.py measures the calibration on
people held out from it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
YOUTUBE = ROOT.parent / "shared" / "data" / "photos" / "youtube"
TRUTH = {"builtin": YOUTUBE / "keypoints15.csv", "builtin68": YOUTUBE / "landmarks68.csv"}


def calibrate(model: str | Path, folder: Path, truth: Path) -> Path:
    """The model's calibration, fitted on every face of the truth, written into its folder."""
    from facekeypoints.inference.loading import builtin_path, load
    from facekeypoints.inference.uncertainty import FILE, Calibration
    from facekeypoints.photos.uncertainty import collect, person

    target = builtin_path(str(model)) if str(model) in TRUTH else Path(model)
    if not target.is_dir():
        raise SystemExit(f"--model {model}: expected a model folder (a run), which the "
                         "calibration is written into")
    (target / FILE).unlink(missing_ok=True)  # remade from scratch: an old one is not read
    predictor = load(target)
    sample = collect(predictor, folder, truth)
    people = len({person(f) for f in sample.files})
    where = f"{len(sample.files)} faces of {people} people in {folder.name}/{truth.name}"
    calibration = Calibration.fit(tuple(predictor.keypoints), sample.spread, sample.error,
                                  sample.alone,
                                  calibrated_on=f"{where}, by tools/calibrate_uncertainty.py")
    calibration.save(target / FILE)
    return target / FILE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", choices=sorted(TRUTH), action="append",
                        help="a built-in model (default: both)")
    parser.add_argument("--model", type=Path, help="a model folder of your own instead")
    parser.add_argument("--photos", type=Path, default=YOUTUBE)
    parser.add_argument("--truth", type=Path, help="default: the youtube truth of its scheme")
    args = parser.parse_args()
    if args.model is not None:
        if args.truth is None:
            parser.error("--model needs --truth (and --photos)")
        print(f"wrote {calibrate(args.model, args.photos, args.truth)}")
        return
    for name in args.name or sorted(TRUTH):
        print(f"wrote {calibrate(name, args.photos, args.truth or TRUTH[name])}")


if __name__ == "__main__":
    main()
