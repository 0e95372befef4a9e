"""Do 68 points help the 15? Kaggle's 15 keypoints learnt three ways by `fast`'s net, same people
held out, scored on Kaggle's 15:

  15 targets      on the 15 derived from the 68 (every row complete)
  68 targets      on the 68 (faces68), scored on the 15 derived from its predictions
  68 -> 15 file   the 68-point net's body fine-tuned on the Kaggle-pattern 15-point file (most
                  rows lack 11 of the 15: the tutorial's transfer learning, from a richer task)
  15 file         the Kaggle-pattern file from scratch (the usual `fast` run)

    python bench/fifteen_from_68.py [--epochs 25] [--seeds 42 43 44]

Scores: RMSE in pixels on the held-out people's complete 15 (by person, 20%) and on the Kaggle
test people (Kaggle's lookup table and scoring, faces/solution.csv); medians over the seeds.
Writes bench/results/fifteen_from_68.csv.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from common import FACES, RESULTS, SHARED, write_table


def derived_15_file(folder: Path) -> Path:
    """faces68's rows with Kaggle's 15 derived for every row, in Kaggle's format."""
    from facekeypoints.data.kaggle import write_kaggle15

    return write_kaggle15(SHARED / "faces68" / "training.csv.gz", folder / "training.csv",
                          FACES / "training_sources.csv")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--seeds", type=int, nargs="+", default=[42])
    parser.add_argument("--out", default=str(RESULTS / "fifteen_from_68.csv"))
    args = parser.parse_args()

    import facekeypoints as fk
    from facekeypoints.data import load_training
    from facekeypoints.inference.evaluation import evaluate
    from facekeypoints.training.runs import RunFolder

    work = Path(tempfile.mkdtemp(prefix="fifteen-from-68-"))
    full15 = derived_15_file(work)
    scores: dict[str, list[tuple[float, float, float]]] = {}
    for seed in args.seeds:
        def train(name: str, data: Path, seed: int = seed, **settings):
            start = time.perf_counter()
            run = fk.train("fast", data, work / f"{name}-{seed}", epochs=args.epochs,
                           seed=seed, progress="off", log=lambda s: None, **settings)
            return run, time.perf_counter() - start

        runs = {"15 targets": train("t15", full15),
                "68 targets": train("t68", SHARED / "faces68" / "training.csv.gz")}
        runs["68 -> 15 file"] = train("ft", FACES / "training.csv.gz",
                                      pretrained=str(runs["68 targets"][0].path))
        runs["15 file"] = train("f15", FACES / "training.csv.gz")
        truth = load_training(full15)
        for name, (run, seconds) in runs.items():
            held_out = RunFolder(run.path).data_record()["validation_persons"]
            people = truth.subset(np.flatnonzero(np.isin(truth.persons, held_out)))
            model = fk.load_model(run)
            held = evaluate(model, people).rmse
            fk.submit(model, FACES / "test.csv.gz", FACES / "IdLookupTable.csv",
                      work / "submission.csv", progress=False)
            kaggle = fk.score(work / "submission.csv", FACES / "solution.csv")
            scores.setdefault(name, []).append((held, kaggle, seconds))
            print(f"seed {seed} {name}: held-out {held:.3f} px, Kaggle test {kaggle:.3f} px, "
                  f"{seconds:.0f} s", flush=True)
    rows = [{"targets": name, "seeds": len(v),
             "held_out_rmse_px": round(float(np.median([s[0] for s in v])), 3),
             "kaggle_test_rmse_px": round(float(np.median([s[1] for s in v])), 3),
             "train_seconds": round(float(np.median([s[2] for s in v])))}
            for name, v in scores.items()]
    write_table(rows, args.out)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
