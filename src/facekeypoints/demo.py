"""The main job on built-in SYNTHETIC faces: each step of the tutorial's path, in about a minute."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from . import plots, predict, submission, synthetic
from . import recipe as recipe_mod
from . import train as train_mod
from .data import load_test
from .errors import UserError
from .evaluate import evaluate, mean_shape_rmse


def run_demo(out: Path, cnn_epochs: int = 20, fast_epochs: int = 15,
             log: Callable[[str], None] = print) -> None:
    if out.exists() and any(out.iterdir()):
        raise UserError(f"--out {out}: folder exists and is not empty; choose another")
    log("== SYNTHETIC data: no data given, so the demo draws cartoon faces with exact keypoints")
    files = synthetic.write_kaggle_files(out / "synthetic-data", n_train=800, n_test=100)
    log(f"   wrote {', '.join(p.name for p in files.values())} to {out / 'synthetic-data'}")

    runs = []
    for name, epochs in (("model1", 100), ("model2", cnn_epochs), ("fast", fast_epochs)):
        log(f"== train {name} ({epochs} epochs) on the synthetic faces")
        recipe = recipe_mod.load(name, {"epochs": epochs})
        runs.append(train_mod.train(recipe, files["training.csv"], out / name,
                                    log=log).path)

    curves = plots.learning_curves(runs, out / "curves.png", "SYNTHETIC faces: learning curves")
    log(f"== learning curves: {curves}")
    for run in runs:
        recipe = train_mod.RunFolder(run).load_recipe()
        train_set, val_set = train_mod.prepare_data(recipe, files["training.csv"])
        model = predict.load(run)
        result = evaluate(model, val_set)
        log(f"== {run.name}: validation RMSE {result.rmse:.3f} px (mean-shape baseline "
            f"{mean_shape_rmse(train_set, val_set):.3f} px)")

    best = runs[-1]
    model = predict.load(best)
    _, X = load_test(files["test.csv"])
    grid = plots.face_grid(X, model.predict(X), out / "test-samples.png",
                           title=f"SYNTHETIC test faces: {best.name} predictions")
    log(f"== test faces with predicted keypoints: {grid}")
    sub_path = out / "submission.csv"
    submission.write(submission.predict_lookup(model, files["test.csv"],
                                               files["IdLookupTable.csv"]), sub_path)
    rmse, rows = submission.score(sub_path, files["solution.csv"])
    log(f"== submission {sub_path}: RMSE {rmse:.3f} px over {rows} rows (SYNTHETIC test faces)")
    log(f"   compare runs: facekeypoints compare {' '.join(map(str, runs))}")
