"""The main job on built-in SYNTHETIC faces: each step of the tutorial's path, in about a minute.

Written against the public API (api.py), as a user's own script would be.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from . import api, plots
from .errors import UserError


def run_demo(out: Path, cnn_epochs: int = 20, fast_epochs: int = 15,
             log: Callable[[str], None] = print) -> None:
    if out.exists() and any(out.iterdir()):
        raise UserError(f"--out {out}: folder exists and is not empty; choose another")
    log("== SYNTHETIC data: no data given, so the demo draws cartoon faces with exact keypoints")
    files = api.synthetic_data(out / "synthetic-data", n_train=800, n_test=100)
    log(f"   wrote {', '.join(p.name for p in files.values())} to {out / 'synthetic-data'}")

    runs = []
    for name, epochs in (("model1", 100), ("model2", cnn_epochs), ("fast", fast_epochs)):
        log(f"== train {name} ({epochs} epochs) on the synthetic faces")
        runs.append(api.train(name, files["training.csv"], out / name, epochs=epochs, log=log))

    curves = plots.save(api.plot_curves(*runs, title="SYNTHETIC faces: learning curves"),
                        out / "curves.png")
    log(f"== learning curves: {curves}")
    for run in runs:
        result = api.evaluate(run, details=True)
        log(f"== {run.path.name}: validation RMSE {result.rmse:.3f} px "
            f"({'with' if result.tta else 'no'} flip TTA; mean-shape baseline "
            f"{result.mean_shape_rmse:.3f} px)")

    best = runs[-1]
    X, _ = api.load(files["test.csv"])
    grid = plots.save(api.plot_faces(X, best.model.predict(X),
                                     title=f"SYNTHETIC test faces: {best.path.name} predictions"),
                      out / "test-samples.png", dpi=100)
    log(f"== test faces with predicted keypoints: {grid}")
    sub_path = out / "submission.csv"
    api.submit(best, files["test.csv"], files["IdLookupTable.csv"], sub_path)
    rmse = api.score(sub_path, files["solution.csv"])
    log(f"== submission {sub_path}: RMSE {rmse:.3f} px (SYNTHETIC test faces)")
    log(f"   compare runs: facekeypoints compare {' '.join(str(r.path) for r in runs)}")
