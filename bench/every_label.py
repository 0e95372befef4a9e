"""Every label used, three ways, against the best model that drops incomplete rows.

    python bench/every_label.py --epochs 20 --masked-epochs 6 --specialist-epochs 5 \
        --transfer-epochs 3

On ../shared/data/faces/training.csv.gz (its missing labels follow Kaggle's pattern), trains:
  dropna       model7: complete rows only (861 of 2,885)
  specialists  model8: six group nets from scratch, each on every row with its keypoints
  transfer     model9: the six groups started from the dropna net, body frozen for 2 epochs
  masked       one model7 net on every row, the loss skipping missing labels
All four hold out the same people and share --set overrides (default: Adam, which converges in
the minutes a CPU allows, without dropout; see DEFAULT_SETTINGS). Reports RMSE per keypoint on
the held-out people's complete faces, the Kaggle score on test.csv.gz (40 other people) and
training minutes; writes bench/results/every_label.csv.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
from pathlib import Path

from common import FACES, RESULTS

from facekeypoints import data

# Adam, and no dropout: with Adam, the tutorial's dropout made this net predict far worse with
# dropout off than on (a variance shift measured on the dropna run: 4.2 px vs 3.0 px on its own
# training faces), which would hide what the labels contribute.
DEFAULT_SETTINGS = ["optimizer=adamw", "learning_rate=0.001", "batch_size=32", "patience=5",
                    "dropout=[]"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--masked-epochs", type=int, default=6)
    parser.add_argument("--specialist-epochs", type=int, default=5)
    parser.add_argument("--transfer-epochs", type=int, default=3)
    parser.add_argument("--set", dest="settings", action="append", default=None,
                        metavar="KEY=VALUE")
    parser.add_argument("--runs", help="keep run folders here")
    parser.add_argument("--out", default=str(RESULTS / "every_label.csv"))
    args = parser.parse_args()

    from facekeypoints.quiet_import import quiet_keras

    quiet_keras()
    from facekeypoints.inference import loading, submission
    from facekeypoints.inference.evaluation import evaluate
    from facekeypoints.training import loop, specialists
    from facekeypoints.training import recipe as recipe_mod
    from facekeypoints.training.runs import RunFolder

    data_path = FACES / "training.csv.gz"
    runs = Path(args.runs or tempfile.mkdtemp(prefix="bench-every-label-"))
    common = recipe_mod.merge([recipe_mod.parse_setting(s)
                              for s in args.settings or DEFAULT_SETTINGS])[0]

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    plans = [
        ("dropna", "model7", {"epochs": args.epochs}),
        ("masked", "masked", {"epochs": args.masked_epochs}),
        ("specialists", "model8", {"epochs": args.specialist_epochs}),
        ("transfer", "model9", {"epochs": args.transfer_epochs, "freeze": "until:2",
                                "body_learning_rate": None,
                                "pretrained": str(runs / "dropna")}),
    ]
    results = {}
    for label, name, extra in plans:
        recipe = recipe_mod.load(name, common | extra)
        recipe = recipe.replace(**{k: v for k, v in extra.items() if v is None})  # unset these
        log(f"===== {label}: recipe {name}")
        if recipe.groups:
            specialists.train_group(recipe, data_path, runs / label, log=log)
            minutes = sum(m.read_history()[-1]["elapsed"]
                          for m in RunFolder(runs / label).members) / 60
        else:
            run = loop.train(recipe, data_path, runs / label, log=log)
            minutes = run.read_history()[-1]["elapsed"] / 60
        model = loading.load(runs / label)
        _, val = data.prepare_data(recipe.replace(dropna=True, groups={}), data_path)
        result = evaluate(model, val)
        sub = runs / label / "submission.csv"
        submission.write(submission.predict_lookup(model, FACES / "test.csv.gz",
                                                   FACES / "IdLookupTable.csv"), sub)
        results[label] = (result, submission.score(sub, FACES / "solution.csv")[0], minutes)

    keypoints = list(next(iter(results.values()))[0].per_keypoint)
    header = ["keypoint", *results]
    rows = [[k, *(f"{r[0].per_keypoint[k]:.3f}" for r in results.values())] for k in keypoints]
    rows.append(["overall (held-out people)", *(f"{r[0].rmse:.3f}" for r in results.values())])
    rows.append(["Kaggle score on test people", *(f"{r[1]:.3f}" for r in results.values())])
    rows.append(["training minutes", *(f"{r[2]:.1f}" for r in results.values())])
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(f"run folders in {runs}")


if __name__ == "__main__":
    main()
