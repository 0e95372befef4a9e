"""Accuracy and speed of each recipe on the real faces, side by side, in one process.

    python bench/recipes.py --epochs 100 model1 model2 model3 model4 model5 model6 model7

Trains each recipe (its schedule compressed to --epochs, --minutes as a cap) on
../shared/data/faces/training.csv.gz, holding out the same people for every recipe, then reports:
- val_rmse: RMSE in pixels on the held-out people's faces with all 15 keypoints labelled
  (the same faces for every recipe, whether it trained on complete rows or on every label);
- test_rmse: the Kaggle score of its submission for test.csv.gz against solution.csv (40 other
  people);
- s_per_epoch: median seconds per epoch; train_minutes: total.
Writes the table to bench/results/recipes.csv.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from common import FACES, RESULTS, write_table

from facekeypoints import data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipes", nargs="+")
    parser.add_argument("--epochs", type=int, help="epochs for each recipe (default: its own)")
    parser.add_argument("--minutes", type=float, default=None, help="time cap per recipe")
    parser.add_argument("--patience", type=int, help="override early-stopping patience")
    parser.add_argument("--set", dest="settings", action="append", default=[],
                        metavar="KEY=VALUE", help="override a setting of every recipe")
    parser.add_argument("--out", default=str(RESULTS / "recipes.csv"))
    parser.add_argument("--runs", help="keep run folders here (default: a temporary folder)")
    args = parser.parse_args()

    from facekeypoints.quiet_import import quiet_keras

    quiet_keras()
    from facekeypoints.inference import loading, submission
    from facekeypoints.inference.evaluation import evaluate
    from facekeypoints.training import loop
    from facekeypoints.training import recipe as recipe_mod

    data_path = FACES / "training.csv.gz"
    runs_dir = Path(args.runs or tempfile.mkdtemp(prefix="bench-recipes-"))
    rows = []
    for name in args.recipes:
        given = [recipe_mod.parse_setting(pair) for pair in args.settings]
        overrides = recipe_mod.merge(given)[0] | {"epochs": args.epochs,
                                                  "patience": args.patience}
        recipe = recipe_mod.load(name, overrides)
        run = loop.train(recipe, data_path, runs_dir / name, log=_progress,
                             max_seconds=args.minutes * 60 if args.minutes else None)
        model = loading.load(run.path)
        # The same held-out people for every recipe: their complete faces.
        _, val_complete = data.prepare_data(
            recipe.replace(dropna=True, columns=model.columns), data_path)
        table = submission.predict_lookup(model, FACES / "test.csv.gz",
                                          FACES / "IdLookupTable.csv")
        sub_path = run.path / "submission.csv"
        submission.write(table, sub_path)
        history = run.read_history()
        rows.append({
            "recipe": name,
            "epochs": int(history[-1]["epoch"]),
            "val_rmse": round(evaluate(model, val_complete).rmse, 3),
            "test_rmse": round(submission.score(sub_path, FACES / "solution.csv")[0], 3),
            "s_per_epoch": round(statistics.median(r["seconds"] for r in history), 3),
            "train_minutes": round(history[-1]["elapsed"] / 60, 2),
        })
        print(rows[-1], flush=True)
    print(f"run folders in {runs_dir}")
    write_table(rows, args.out)


def _progress(line: str) -> None:
    if "epoch" in line and "/" in line:
        print("\r" + line[:110].ljust(110), end="", file=sys.stderr, flush=True)
    else:
        print(line, file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
