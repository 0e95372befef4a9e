"""Fit a built-in model and place it in the package: the face mesh's heads (plain and photo)
fitted with the `mesh` recipe on every person of ../shared/data/faces (Kaggle's 15 keypoints,
`builtin`) or ../shared/data/faces68 (iBUG's 68, `builtin68`); no one held out: the faces it
is judged on, the youtube photos and the Kaggle test people, are other people.

    python tools/make_builtin_model.py [--name builtin|builtin68] [--data FILE]

It runs `facekeypoints train --recipe mesh --data DATA --set validation=0` into a scratch
folder, then keeps what a mesh run needs to predict (recipe.toml, scheme.json, head.npz,
photo_head.npz), the heads' arrays as float32 (half the size; predictions move by under 1e-4 px),
in src/facekeypoints/pretrained/NAME/. tests/test_builtin.py refits it the same way and checks
the shipped heads against the refit.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
DATA = {"builtin": SHARED / "faces" / "training.csv.gz",
        "builtin68": SHARED / "faces68" / "training.csv.gz"}
PRETRAINED = ROOT / "src" / "facekeypoints" / "pretrained"
KEPT = ("recipe.toml", "scheme.json", "head.npz", "photo_head.npz")


def fit(data: Path, out: Path) -> Path:
    """The built-in model's run folder, fitted on `data` into `out`."""
    import facekeypoints as fk

    return fk.train("mesh", data, out, validation=0.0, progress="lines").path


def shrink(run: Path, target: Path) -> None:
    """The files a mesh run predicts with, its heads' arrays as float32."""
    target.mkdir(parents=True, exist_ok=True)
    for name in KEPT:
        if name.endswith(".npz"):
            with np.load(run / name) as f:
                np.savez(target / name, **{k: f[k].astype(np.float32) for k in f.files})
        else:
            shutil.copyfile(run / name, target / name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", choices=sorted(DATA), default="builtin")
    parser.add_argument("--data", type=Path, help="default: the shared faces of its scheme")
    args = parser.parse_args()
    target = PRETRAINED / args.name
    with tempfile.TemporaryDirectory() as tmp:
        run = fit(args.data or DATA[args.name], Path(tmp) / args.name)
        shrink(run, target)
    print(f"wrote {', '.join(KEPT)} to {target}")


if __name__ == "__main__":
    main()
