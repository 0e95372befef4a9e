"""The face mesh (transfer learning) frozen and fine-tuned, beside `fast`, and averages, on
people none of the models saw: the held-out people of ../shared/data/faces and, on Kaggle's
terms, the 40 test people (submit + score against solution.csv). Milliseconds per face for each.

    python bench/mesh.py --seeds 0 1 2 [--fast-runs runs/fast ...] [--runs runs/bench-mesh]
                         [--tuned]

`fast` (and with --tuned, `mesh-tuned`) is trained once per seed, the same people held out
(split_seed 42); the frozen mesh's head has no randomness and is trained once. Each average's
weights are fitted on the held-out people. Writes bench/results/mesh.csv.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from common import FACES, RESULTS, write_table


def ms_per_face(model, X, rounds: int = 3) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        model.predict(X)
        times.append((time.perf_counter() - start) / len(X) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--fast-runs", nargs="*", default=[], help="use these fast runs")
    parser.add_argument("--runs", default="runs/bench-mesh", help="run folders go here")
    parser.add_argument("--tuned", action="store_true", help="also mesh-tuned, per seed")
    parser.add_argument("--out", default=str(RESULTS / "mesh.csv"))
    args = parser.parse_args()

    import facekeypoints as fk

    data = FACES / "training.csv.gz"
    runs = Path(args.runs)

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    mesh_dir = runs / "mesh"
    mesh = fk.Run(mesh_dir) if (mesh_dir / "head.npz").is_file() else \
        fk.train("mesh", data, mesh_dir, progress=False, log=log)
    def trained(recipe: str, seed: int):
        folder = runs / f"{recipe}-seed{seed}"
        if (folder / "model.keras").is_file() and fk.Run(folder).status == "finished":
            return fk.Run(folder)
        if (folder / "recipe.toml").is_file():  # an interrupted run: finish it
            return fk.train(None, out=folder, resume=True, progress=False, log=log)
        start = time.perf_counter()
        run = fk.train(recipe, data, folder, seed=seed, split_seed=42, progress=False, log=log)
        log(f"{folder}: trained in {time.perf_counter() - start:.0f} s")
        return run

    fast_runs = [fk.Run(p) for p in args.fast_runs] or [trained("fast", s) for s in args.seeds]
    tuned_runs = [trained("mesh-tuned", s) for s in args.seeds] if args.tuned else []
    X_test, _ = fk.load(FACES / "test.csv.gz")
    rows = []

    def measure(label: str, model_path) -> dict:
        model = fk.load_model(model_path)
        sub = runs / f"{label}-submission.csv"
        fk.submit(model, FACES / "test.csv.gz", FACES / "IdLookupTable.csv", sub, progress=False)
        row = {"model": label, "held_out_px": round(fk.evaluate(model, fast_runs[0]).rmse, 3),
               "kaggle_test_px": round(fk.score(sub, FACES / "solution.csv"), 3),
               "ms_per_face": round(ms_per_face(model, X_test), 2)}
        log(str(row))
        return row

    def averaged(*members) -> dict:
        both_dir = runs / "average-{}".format("-".join(m.path.name for m in members))
        if not (both_dir / "average.json").is_file():
            fk.average(*members, out=both_dir)
        row = measure(" + ".join(m.path.name for m in members), both_dir)
        row["weights"] = "/".join(f"{w:.2f}" for w in fk.load_model(both_dir).weights)
        return row

    rows.append(measure("mesh", mesh.path))
    kinds = {"fast": [], "fast + mesh": [], "mesh-tuned": [], "mesh-tuned + fast": [],
             "mesh-tuned + fast + mesh": []}
    for i, run in enumerate(fast_runs):
        kinds["fast"].append(measure(run.path.name, run.path))
        kinds["fast + mesh"].append(averaged(run, mesh))
        if tuned_runs:
            kinds["mesh-tuned"].append(measure(tuned_runs[i].path.name, tuned_runs[i].path))
            kinds["mesh-tuned + fast"].append(averaged(tuned_runs[i], run))
            kinds["mesh-tuned + fast + mesh"].append(averaged(tuned_runs[i], run, mesh))
    for picked in kinds.values():
        rows.extend(picked)
    for label, picked in kinds.items():
        if picked:
            rows.append({"model": f"median of {label}",
                         "held_out_px": statistics.median(r["held_out_px"] for r in picked),
                         "kaggle_test_px": statistics.median(r["kaggle_test_px"] for r in picked),
                         "ms_per_face": statistics.median(r["ms_per_face"] for r in picked)})
    write_table(rows, args.out)


if __name__ == "__main__":
    main()
