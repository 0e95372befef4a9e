"""Time to accuracy: wall-clock seconds until validation RMSE first reaches each target.

    python bench/time_to_accuracy.py --train model2 model3 fast --minutes 10
    python bench/time_to_accuracy.py --runs runs/model2 runs/fast          # existing run folders
    python bench/time_to_accuracy.py --merge --runs runs/fast   # replace one row, keep the rest

Validation is the held-out people's complete faces (the same faces for every recipe, see
`training.prepare_data`); times are the runs' own training clocks (`elapsed` in history.csv,
validation included). For each run: the first time RMSE <= 2.5, 2.0, 1.7, 1.5, 1.3 and 1.1 px,
the best RMSE within 2, 10, 15 and 30 minutes, and the final RMSE of the whole predictor (with
test-time flips where the recipe uses them). Writes bench/results/time_to_accuracy.csv.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from common import FACES, RESULTS, write_table

from facekeypoints import data

TARGETS = (2.5, 2.0, 1.7, 1.5, 1.3, 1.1)
BUDGETS_MIN = (2, 10, 15, 30)


def analyse(run_dir: Path) -> dict:
    from facekeypoints.inference import loading
    from facekeypoints.inference.evaluation import evaluate
    from facekeypoints.training.runs import RunFolder

    run = RunFolder(run_dir)
    recipe = run.load_recipe()
    history = run.read_history()
    row = {"run": run_dir.name, "recipe": recipe.name, "epochs": int(history[-1]["epoch"]),
           "minutes": round(history[-1]["elapsed"] / 60, 1)}
    for target in TARGETS:
        hit = next((r["elapsed"] for r in history if r["val_rmse"] <= target), None)
        row[f"s_to_{target}px"] = round(hit) if hit is not None else ""
    for budget in BUDGETS_MIN:
        within = [r["val_rmse"] for r in history if r["elapsed"] <= budget * 60]
        row[f"best_px_{budget}min"] = round(min(within), 3) if within else ""
    data_path = json.loads(run.data_file.read_text())["data"]
    _, val = data.prepare_data(recipe, data_path)
    row["final_px_with_tta" if recipe.tta else "final_px"] = round(
        evaluate(loading.load(run_dir), val).rmse, 3)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", nargs="*", default=[], metavar="RECIPE")
    parser.add_argument("--minutes", type=float, default=10.0, help="budget per trained recipe")
    parser.add_argument("--runs", nargs="*", default=[], metavar="RUN_DIR")
    parser.add_argument("--keep", default="/tmp/bench-time-to-accuracy", help="run folders")
    parser.add_argument("--out", default=str(RESULTS / "time_to_accuracy.csv"))
    parser.add_argument("--merge", action="store_true",
                        help="keep the rows of other runs already in --out")
    args = parser.parse_args()

    from facekeypoints.quiet_import import quiet_keras

    quiet_keras()
    from facekeypoints.training import loop
    from facekeypoints.training import recipe as recipe_mod

    runs = [Path(r) for r in args.runs]
    for name in args.train:
        out = Path(args.keep) / name
        loop.train(recipe_mod.load(name), FACES / "training.csv.gz", out,
                    max_seconds=args.minutes * 60)
        runs.append(out)
    rows = [analyse(r) for r in runs]
    if args.merge and Path(args.out).is_file():  # keep earlier rows of runs not measured now
        with open(args.out, newline="") as f:
            kept = [r for r in csv.DictReader(f) if r["run"] not in {x["run"] for x in rows}]
        rows = kept + rows
    write_table(rows, args.out)


if __name__ == "__main__":
    main()
