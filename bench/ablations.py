"""What each part of the `fast` recipe is worth: `fast` against variants, the same budget each.

    python bench/ablations.py                      # every variant below, 25 epochs each
    python bench/ablations.py --only fast "tutorial body"

Each variant is `fast` with a few settings changed, trained from scratch on the same people
(validation: the held-out people's complete faces) one after the other, nothing else running.
Reports seconds per epoch, the seconds to 1.5 px and the final RMSE with flip TTA.
Writes bench/results/ablations.csv.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from common import FACES, RESULTS, write_table

GEOMETRIC = {"rotate": 3.0, "shift": 2.0, "zoom": 0.05}
VARIANTS: dict[str, dict] = {
    "fast": {},
    "mild rotate/shift/zoom (1 deg, 0.5 px, 2%)": {"rotate": 1.0, "shift": 0.5, "zoom": 0.02},
    "rotate/shift/zoom (3 deg, 2 px, 5%)": GEOMETRIC,
    "no brightness/contrast": {"brightness": 0.0, "contrast": 0.0},
    "no batch norm": {"batch_norm": False},
    "no batch norm, 36 epochs": {"batch_norm": False, "epochs": 36},
    "learning rate 0.001": {"learning_rate": 0.001},
    "tutorial body at 96x96, 8 epochs": {"space_to_depth": 1, "padding": "valid",
                                         "conv": [[32, 3], [64, 2], [128, 2]], "epochs": 8},
    "previous fast (tutorial body, lr 0.001, 3 deg/2 px/5%), 8 epochs": {
        "space_to_depth": 1, "padding": "valid", "conv": [[32, 3], [64, 2], [128, 2]],
        "learning_rate": 0.001, "epochs": 8} | GEOMETRIC,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=list(VARIANTS), metavar="VARIANT")
    parser.add_argument("--keep", default="/tmp/bench-ablations", help="run folders")
    parser.add_argument("--out", default=str(RESULTS / "ablations.csv"))
    args = parser.parse_args()

    from facekeypoints.quiet_import import quiet_keras

    quiet_keras()
    from time_to_accuracy import analyse

    from facekeypoints.training import loop
    from facekeypoints.training import recipe as recipe_mod
    from facekeypoints.training.runs import RunFolder

    rows = []
    for label in args.only:
        recipe = recipe_mod.load("fast", VARIANTS[label])
        out = Path(args.keep) / f"variant{list(VARIANTS).index(label)}"
        shutil.rmtree(out, ignore_errors=True)
        loop.train(recipe, FACES / "training.csv.gz", out, log=lambda _: None)
        history = RunFolder(out).read_history()
        measured = analyse(out)
        rows.append({
            "variant": label, "epochs": recipe.epochs,
            "s_per_epoch": round(history[-1]["elapsed"] / len(history), 2),
            "s_to_1.5px": measured["s_to_1.5px"],
            "seconds": round(history[-1]["elapsed"]),
            "final_px_with_tta": measured["final_px_with_tta"],
        })
        print(rows[-1], flush=True)
    write_table(rows, args.out)


if __name__ == "__main__":
    main()
