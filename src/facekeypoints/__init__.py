"""facekeypoints: find the 15 Kaggle facial keypoints, from the tutorial's nets to modern ones.

    import facekeypoints as fk
    X, y = fk.load("training.csv")                      # the tutorial's load()
    run = fk.train("fast", "training.csv", epochs=25)   # a run folder, history, model.keras
    fk.plot_curves(run)                                 # learning curves, inline in Jupyter
    fk.evaluate(run).rmse                               # pixels, on held-out people

The names below are the stable API (see `facekeypoints.api`). They load on first use, so
`import facekeypoints` stays quick and the ONNX path never imports TensorFlow.
"""

import os as _os
from typing import TYPE_CHECKING as _TYPE_CHECKING

# Quiet TensorFlow's C++ log lines and pick its backend unless the user chose another. Errors
# too: its graph optimiser reports a fusion it gave up on (harmless, the graph runs unfused)
# for every compiled function of the face mesh rebuilt in Keras (its PReLU after an Add).
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
_os.environ.setdefault("KERAS_BACKEND", "tensorflow")

__version__ = "0.1.0"

__all__ = [
    "COLUMNS", "KEYPOINTS", "Evaluation", "Predictor", "Recipe", "Run", "build_model",
    "compare", "detect", "evaluate", "export", "get_recipe", "load", "load_frame",
    "load_model", "plot_curves", "plot_faces", "plot_model", "recipes", "score", "submit",
    "synthetic_data", "train", "validation_set", "average", "plot_samples", "detect_files",
    "detect_many", "Landmarker",
]

if _TYPE_CHECKING:  # for type checkers and editors; at run time, __getattr__ below
    from .api import (
        COLUMNS,
        KEYPOINTS,
        Evaluation,
        Landmarker,
        Predictor,
        Recipe,
        Run,
        average,
        build_model,
        compare,
        detect,
        detect_files,
        detect_many,
        evaluate,
        export,
        get_recipe,
        load,
        load_frame,
        load_model,
        plot_curves,
        plot_faces,
        plot_model,
        plot_samples,
        recipes,
        score,
        submit,
        synthetic_data,
        train,
        validation_set,
    )


def __getattr__(name: str):
    if name in __all__:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'facekeypoints' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*__all__, "__version__"])
