"""The Python API: the tutorial's whole path in a notebook, and what the command line calls.

Everything here is importable from the package top level (`import facekeypoints as fk`).
Keypoints come in pixels of the 96x96 face unless a name says "scaled" ((pixel - 48) / 48, what
the nets learn). Every example below runs in the tests (tests/test_api.py), on the built-in
synthetic faces: `tmp` is a scratch folder, `tmp_faces` the files `fk.synthetic_data` wrote, and
`trained` a model1 run trained two epochs on them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Callable, Iterator, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import data as data_mod
from .data import Faces
from .data.labelled import set_framer
from .data.photos import is_photo_data
from .errors import UserError
from .inference.evaluation import Evaluation
from .inference.predictor import Predictor
from .keypoints import COLUMNS, KEYPOINTS, columns_of, unscale
from .photos.landmarker import Landmarker, LandmarkerInputError, LandmarkerResult
from .quiet_import import quiet_keras
from .training import recipe as recipe_mod
from .training.recipe import Given, Recipe
from .training.runs import HISTORY_FIELDS, MANIFEST, RunFolder, free_folder

if TYPE_CHECKING:
    import keras
    import pandas as pd
    from matplotlib.figure import Figure

    from .photos.pipeline import FacePipeline

__all__ = [
    "COLUMNS", "KEYPOINTS", "Evaluation", "Predictor", "Recipe", "Run", "build_model",
    "compare", "detect", "evaluate", "export", "get_recipe", "load", "load_frame",
    "load_model", "plot_curves", "plot_faces", "plot_model", "recipes", "score", "submit",
    "synthetic_data", "train", "validation_set", "average", "plot_samples", "detect_files",
    "Landmarker",
]

ModelLike = str | Path | Predictor  # a run folder, a .keras or .onnx file, or a loaded model


def _frame_photo(image: Path, faces: list) -> list:
    """Labelled photos' faces framed by the detector, as `detect` frames them (read only when
    photo data is: the detector stays unloaded otherwise)."""
    from .photos.labelled import frame_photo

    return frame_photo(image, faces)


set_framer(_frame_photo)  # whole photos given as training data are framed by the detector


# ----------------------------------------------------------------------------- data


def load(path: str | Path, columns: Sequence[str] | None = None,
         dropna: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """The tutorial's `load()`: faces X (N, 96, 96, 1) in [0, 1] and keypoints y scaled to
    [-1, 1], from a Kaggle training or test file (.csv, .csv.gz or .zip); y is None for a test
    file. `columns` picks keypoints (names such as "nose_tip" or columns such as "nose_tip_x");
    `dropna` keeps only the rows where all of them are labelled, as the tutorial did.

    >>> files = fk.synthetic_data(tmp / "faces")
    >>> X, y = fk.load(files["training.csv"])
    >>> X.shape[1:], y.shape[1], bool(np.abs(y).max() <= 1)
    ((96, 96, 1), 30, True)
    >>> X, y = fk.load(files["training.csv"], columns=["nose_tip"], dropna=True)
    >>> y.shape[1]
    2
    >>> X_test, nothing = fk.load(files["test.csv"])
    >>> X_test.shape, nothing
    ((100, 96, 96, 1), None)
    """
    if not is_photo_data(path) and data_mod.kind_of(path) == "test":
        return data_mod.load_test(path)[1], None
    faces = data_mod.load_training(path)  # any scheme's columns, or a folder with .pts files
    if columns is not None:
        faces = faces.select(_columns(columns), dropna)
    elif dropna:
        faces = faces.select(faces.columns, dropna)
    return faces.X, faces.y


def load_frame(path: str | Path) -> pd.DataFrame:
    """A Kaggle file as a DataFrame, checked as the command line checks it: keypoint columns in
    pixels (NaN where missing) and `Image` as 96x96 arrays in [0, 1] (training), or `ImageId`
    and `Image` (test); `person` where a training_sources.csv sits beside the data.

    >>> frame = fk.load_frame(fk.synthetic_data(tmp / "faces")["training.csv"])
    >>> frame["Image"].iloc[0].shape, int(frame["left_eye_center_x"].notna().sum())
    ((96, 96), 800)
    >>> bool(frame.count().min() < len(frame))  # most rows lack some keypoints, as in Kaggle's
    True
    """
    import pandas as pd

    if not is_photo_data(path) and data_mod.kind_of(path) == "test":
        ids, X = data_mod.load_test(path)
        return pd.DataFrame({"ImageId": ids, "Image": list(X[..., 0])})
    faces = data_mod.load_training(path)
    frame = pd.DataFrame(unscale(faces.y), columns=list(faces.columns))
    frame["Image"] = list(faces.X[..., 0])
    if faces.persons is not None:
        frame["person"] = faces.persons
    return frame


def synthetic_data(folder: str | Path, n_train: int = 800, n_test: int = 100,
                   seed: int = 0) -> dict[str, Path]:
    """Write SYNTHETIC cartoon faces with exact keypoints in Kaggle's formats, for trying things
    where no real data is at hand: training.csv, test.csv, IdLookupTable.csv, solution.csv and
    training_sources.csv. Returns their paths by name.

    >>> sorted(fk.synthetic_data(tmp / "faces"))[:2]
    ['IdLookupTable.csv', 'solution.csv']
    """
    from .data import synthetic

    return synthetic.write_kaggle_files(folder, n_train=n_train, n_test=n_test, seed=seed)


def _columns(names: Sequence[str]) -> list[str]:
    if isinstance(names, str):
        names = [names]
    out = []
    for name in names:  # any scheme's: the data file says whether it has them
        if isinstance(name, str) and name.endswith(("_x", "_y")) and name[:-2].isidentifier():
            out.append(name)
        elif isinstance(name, str) and name.isidentifier():
            out += columns_of([name])
        else:
            raise UserError(f"columns: {name!r} is not a keypoint or column name; expected "
                            f"names such as {KEYPOINTS[0]!r} or {COLUMNS[0]!r}")
    return list(dict.fromkeys(out))


# ----------------------------------------------------------------------------- recipes


def recipes() -> list[str]:
    """The built-in recipes, from the tutorial's model1 to our fast.

    >>> fk.recipes()[:3], "fast" in fk.recipes()
    (['fast', 'mesh', 'masked'], True)
    """
    return recipe_mod.builtin_names()


def get_recipe(source: str | Path | Recipe, **settings: Any) -> Recipe:
    """A recipe by name or .toml file, with any settings changed; every value is checked as a
    recipe file's own values are.

    >>> r = fk.get_recipe("model4", epochs=200, learning_rate=0.02)
    >>> r.epochs, r.learning_rate, r.momentum_end
    (200, 0.02, 0.999)
    >>> fk.get_recipe("model5").changes_from(fk.get_recipe("model4"))
    {'dropout': [0.1, 0.2, 0.3, 0.5]}
    """
    given = [Given(k, v, f"{k}={v!r}") for k, v in settings.items()]
    return _resolve(source, given)


def _resolve(source: str | Path | Recipe, given: list[Given]) -> Recipe:
    """One merge of settings for every route: options, `--set`, keyword arguments."""
    values, origins = recipe_mod.merge(given)
    if isinstance(source, Recipe):
        return recipe_mod.from_dict(dataclasses.asdict(source) | values, source.name, origins)
    return recipe_mod.load(str(source), values, origins)


def build_model(recipe: str | Path | Recipe, **settings: Any) -> keras.Model:
    """The Keras net a recipe trains (untrained), to look at or to train your own way: for
    Kaggle's 30 columns unless the recipe names its columns.

    >>> fk.build_model("model1").count_params()
    924730
    """
    quiet_keras()
    from .training import models

    r = get_recipe(recipe, **settings)
    return models.build(r, len(r.columns or COLUMNS))


# ----------------------------------------------------------------------------- training


class Run(RunFolder):
    """A run folder (`RunFolder`: its files, `recipe`, `status`, `members`) with what the layers
    above it give: its `history` as a table, its trained `model`, `evaluate()` and
    `plot_curves()`. `train()` returns one; `Run(path)` opens an existing folder.

    >>> run = fk.Run(trained)
    >>> run.history.columns[:4].tolist()
    ['epoch', 'train_loss', 'val_loss', 'val_rmse']
    >>> run.recipe.name, len(run.history), run.status, run.recipe_file.name
    ('model1', 2, 'finished', 'recipe.toml')
    """

    def __init__(self, path: str | Path):
        super().__init__(path)
        # a run (recipe.toml), or a specialist of a group not started yet (status "new")
        if not (self.recipe_file.is_file() or (self.path.parent / MANIFEST).is_file()):
            raise UserError(f"{self.path}: not a run folder (no recipe.toml)")

    @property
    def history(self) -> pd.DataFrame:
        """One row per epoch (a `member` column for groups): losses, validation RMSE in pixels
        (no flip TTA), learning rate, momentum, seconds."""
        import pandas as pd

        frames = []
        for member in self.members:
            frame = pd.DataFrame(member.read_history(), columns=HISTORY_FIELDS)
            frame["epoch"] = frame["epoch"].astype(int)
            if member is not self:
                frame.insert(0, "member", member.path.name)
            frames.append(frame)
        return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]

    @cached_property
    def model(self) -> Predictor:
        """The trained model (best weights where early stopping restored them)."""
        return load_model(self.path)

    def evaluate(self, data: str | Path | None = None, tta: bool | None = None) -> Evaluation:
        return evaluate(self.model, data if data is not None else self, tta)

    def plot_curves(self, title: str = "") -> Figure:
        return plot_curves(self, title=title)


def train(recipe: str | Path | Recipe | None, data: str | Path | None = None,
          out: str | Path | None = None, *, epochs: int | None = None, resume: bool = False,
          max_minutes: float | None = None, checkpoint_seconds: float = 30.0,
          progress: str | bool = "auto", log: Callable[[str], None] | None = print,
          devices: list[str] | None = None, take_over: bool = False, **settings: Any) -> Run:
    """Train a recipe on a Kaggle training file into a run folder (default runs/NAME, or the
    next free runs/NAME-2 ...): history, checkpoints, model.keras; killed runs resume with
    `resume=True` (`take_over=True` where its holder died on another machine sharing the
    folder), which also extends a finished run to `epochs`. Any recipe setting can be
    changed by keyword (`tensorboard=True` logs to RUN/tensorboard). Specialist recipes
    (model8, model9) train one net per keypoint group into one group folder.

    >>> run = fk.train("model1", fk.synthetic_data(tmp / "faces")["training.csv"], tmp / "run",
    ...             epochs=2, learning_rate=0.05, progress=False, log=None)
    >>> run.history["epoch"].tolist(), run.recipe.learning_rate
    ([1, 2], 0.05)
    >>> run = fk.train(None, out=tmp / "run", resume=True, epochs=3, progress=False, log=None)
    >>> len(run.history)
    3
    """
    given = [Given(k, v, f"{k}={v!r}") for k, v in settings.items()]
    return _train(recipe, given, data, out, epochs=epochs, resume=resume,
                  max_minutes=max_minutes, checkpoint_seconds=checkpoint_seconds,
                  progress=progress, log=log or (lambda line: None), devices=devices,
                  take_over=take_over)


def _train(recipe: str | Path | Recipe | None, given: list[Given], data: str | Path | None,
           out: str | Path | None, *, epochs: int | None, resume: bool,
           max_minutes: float | None, checkpoint_seconds: float, progress: str | bool,
           log: Callable[[str], None], devices: list[str] | None = None,
           epochs_origin: str = "epochs", take_over: bool = False) -> Run:
    """The one training path, for the command line (which names its options in `given`) and
    for `train()`. `take_over`: resume a run whose holder is dead but cannot be asked (on
    another machine sharing the folder, silent for less than a minute)."""
    max_seconds = max_minutes * 60 if max_minutes else None
    if take_over and not resume:
        raise UserError("--take-over goes with --resume: it continues a dead run's folder")
    if resume:
        if out is None:
            raise UserError("--resume needs --out RUN_DIR, the run folder to continue")
        if take_over:
            RunFolder(out).take_over()
        if given:
            raise UserError(f"{given[0].origin}: a resumed run keeps its recipe; only the epochs "
                            "can change (start a new run to change settings)")
        out = Path(out)
        resolved = RunFolder.claim(out, resume=True).load_recipe()
    else:
        if recipe is None or data is None:
            raise UserError("train needs a recipe and a data file (--recipe NAME --data FILE), "
                            "or a run folder to resume")
        if epochs is not None:
            given = [*given, Given("epochs", epochs, epochs_origin)]
        resolved = _resolve(recipe, given)  # every setting checked before TensorFlow loads
        out = Path(out) if out is not None else free_folder(Path("runs") / resolved.name)
        RunFolder.claim(out)  # a folder in use is refused before any data is read
    if resolved.model == "mesh":  # the pretrained mesh and its heads: no TensorFlow involved
        from .mesh import fit

        return Run(fit.train(None if resume else resolved, data, out, resume, log,
                              progress).path)
    quiet_keras()
    from .training import loop, specialists

    if resolved.groups:
        run = specialists.train_group(None if resume else resolved, data, out, resume=resume,
                                      epochs=epochs if resume else None,
                                      checkpoint_seconds=checkpoint_seconds,
                                      max_seconds=max_seconds, log=log, progress=progress)
    else:  # one net, started from a pretrained one's body where the recipe names one
        prepare = specialists.transfer(specialists.load_base(resolved.pretrained),
                                       resolved.pretrained) if resolved.pretrained else None
        run = loop.train(None if resume else resolved, data, out, resume=resume,
                         epochs=epochs if resume else None,
                         checkpoint_seconds=checkpoint_seconds, max_seconds=max_seconds,
                         log=log, progress=progress, devices=devices, prepare=prepare)
    return Run(run.path)


# ----------------------------------------------------------------------------- models


def load_model(model: ModelLike | Run | None = None) -> Predictor:
    """Any trained model as one predictor: a run folder (one net, a group of specialists, a
    mesh run or an average), a .keras or an .onnx file, or with no model the built-in one (the
    face mesh fine-tuned on the shared faces, exported; no TensorFlow). `predict(X)` gives
    keypoints in pixels, one column per name in `columns`; `net` is the Keras model where
    there is one.

    >>> model = fk.load_model(trained)
    >>> X, _ = fk.load(tmp_faces["test.csv"])
    >>> model.predict(X[:5]).shape, model.columns[0]
    ((5, 30), 'left_eye_center_x')
    """
    from .inference.loading import load

    return load(model)


def evaluate(model: ModelLike | Run, data: str | Path | Run | Faces | None = None,
             tta: bool | None = None, *, details: bool = False,
             train: bool = False) -> Evaluation:
    """RMSE in pixels, overall and per keypoint, on a labelled file or `Faces`, or where `data`
    is None on the run's own held-out people (an average's too). `tta` turns flip test-time
    augmentation on or off (default: as the model was trained); what history.csv and
    `compare` log is without it. `details` adds what `facekeypoints evaluate` prints beside the
    table: the figure without flip TTA, and on held-out people the mean-shape baseline;
    `train` adds the RMSE on the faces the run trained on.

    >>> result = fk.evaluate(trained)
    >>> result.faces > 0 and 0 < result.rmse < 48, result.tta
    (True, False)
    >>> fk.evaluate(trained, tmp_faces["training.csv"]).labels > result.labels
    True
    >>> fk.evaluate(trained, fk.validation_set(trained)).rmse == result.rmse
    True
    >>> full = fk.evaluate(trained, details=True, train=True)
    >>> full.mean_shape_rmse > 0 and full.train_rmse > 0
    True
    """
    from .inference.evaluation import evaluate as run_eval
    from .inference.evaluation import mean_shape_rmse

    predictor = load_model(model)
    train_set = None
    if isinstance(data, Faces):
        faces, title = data, f"{len(data)} faces"
    elif data is None or isinstance(data, RunFolder):
        run = data if data is not None else model
        train_set, faces = _split(run)
        title = f"validation set of {getattr(run, 'path', run)} ({len(faces)} faces)"
    else:
        faces, title = _labelled(data, predictor), str(data)
    result = run_eval(predictor, faces, tta)
    if details:
        result.title = title
        if result.tta:
            result.rmse_without_tta = run_eval(predictor, faces, tta=False).rmse
        if train_set is not None:
            result.mean_shape_rmse = mean_shape_rmse(train_set, faces)
    if train:
        if train_set is None:
            raise UserError("--train reports the RMSE on the faces a run trained on: give a "
                            "run folder and no --data")
        result.train_rmse = run_eval(predictor, train_set).rmse
    return result


def average(*models: str | Path | Run, out: str | Path,
            weights: Sequence[float] | None = None) -> Predictor:
    """Several models averaged as one (our `fast` net and the face `mesh`, say), saved as a small
    folder that evaluate, submit, detect and `load_model` take like any model. The weights are
    fitted on the people the runs held out (they must hold out the same people), never on a
    test file; or give them. Where the mesh finds no face, the others predict it alone.

    >>> other = fk.train("model1", tmp_faces["training.csv"], tmp / "other", epochs=1,
    ...                  learning_rate=0.05, progress=False, log=None)
    >>> both = fk.average(trained, other, out=tmp / "both")
    >>> len(both.weights), round(float(sum(both.weights)), 6)
    (2, 1.0)
    >>> fk.load_model(tmp / "both").predict(fk.load(tmp_faces["test.csv"])[0][:2]).shape
    (2, 30)
    """
    from .inference import ensemble

    if len(models) < 2:
        raise UserError("average: give two or more models")
    paths = [Path(getattr(m, "path", m)) for m in models]
    predictor = ensemble.AveragePredictor([load_model(p) for p in paths], [1.0] * len(paths),
                                             Path(out).name)
    if weights is None:
        held_out = [RunFolder(p).held_out() for p in paths]
        if any(h is None for h in held_out) or any(h != held_out[0] for h in held_out):
            raise UserError("average: the weights are fitted on the people the runs held out, so "
                            "give run folders trained with the same split (seed, validation), "
                            "or give the weights")
        faces = validation_set(paths[0])
        preds, seen = predictor.member_predictions(faces.X)
        weights = ensemble.fit_weights(preds, seen, faces.y)
        people = len(set(faces.persons)) if faces.persons is not None else "unnamed"
        fitted_on = f"{len(faces)} held-out faces of {people} people"
    else:
        if len(weights) != len(paths) or min(weights) < 0 or sum(weights) <= 0:
            raise UserError(f"average: weights {list(weights)}: expected {len(paths)} numbers of "
                            "at least 0, not all 0")
        weights = [w / sum(weights) for w in weights]
        fitted_on = "given"
    ensemble.write(out, paths, list(weights), fitted_on)
    return load_model(out)


def validation_set(run: str | Path | Run, on: str = "validation") -> Faces:
    """The faces a run held out (whole people, complete labels), or with on="train" the faces
    it trained on, as it chose them: `.X`, `.y` (scaled), `.columns`, `.persons`. For an
    average of runs, those its members held out (the same people, or it would not have been
    fitted).

    >>> held_out = fk.validation_set(trained)
    >>> held_out.X.shape[1:], len(set(held_out.persons) & set(fk.validation_set(trained, "train")
    ...                                                     .persons))
    ((96, 96, 1), 0)
    """
    train_set, val_set = _split(run)
    return train_set if on == "train" else val_set


def _labelled(data: str | Path, predictor: Predictor) -> Faces:
    """A labelled file to evaluate on, read with the model's own scheme where the model's is a
    user's and the file has its columns (the header alone names only built-in schemes)."""
    from . import schemes

    scheme = predictor.scheme
    if scheme is not None and not schemes.is_builtin(scheme) and Path(data).is_file():
        header = set(data_mod.read_csv(data, nrows=1).columns)
        if set(scheme.columns) <= header:
            return data_mod.load_training(data, scheme=scheme)
    return data_mod.load_training(data)


def _split(run: str | Path | Run) -> tuple[Faces, Faces]:
    """A run's training faces and held-out faces, split once."""
    path = Path(getattr(run, "path", run)) if not isinstance(run, Predictor) else None
    if path is not None and (path / "average.json").is_file():
        from .inference import ensemble

        members, _ = ensemble.read(path)
        return _split(members[0])
    if path is None or not (path / "data.json").is_file():
        raise UserError(f"MODEL {path or run}: not a run folder, so give a labelled data file "
                        "to evaluate on")
    folder = RunFolder(path)
    data_path = folder.data_path()
    if not Path(data_path).exists():
        raise UserError(f"{folder.data_file}: the run's data file {data_path} is gone; give --data "
                        "FILE")
    return data_mod.prepare_data(folder.load_recipe(), data_path, folder.own_scheme())


def compare(*runs: str | Path | Run) -> pd.DataFrame:
    """A table of runs (each specialist on its own row): epochs, best and last validation RMSE
    as logged (no flip TTA), median seconds per epoch, minutes.

    >>> fk.compare(trained)[["recipe", "epochs"]].values.tolist()
    [['model1', 2]]
    """
    from .inference.evaluation import compare_runs

    return compare_runs([Path(getattr(r, "path", r)) for r in runs])


def export(model: ModelLike | Run, out: str | Path | None = None) -> Path:
    """The model as an ONNX file (columns and flip TTA kept as metadata) for ONNX Runtime:
    no TensorFlow at inference, fast cold start. Default: model.onnx beside the model. A group
    of specialists or an average exports each member's net beside it, and gives its folder.

    >>> onnx_path = fk.export(trained, tmp / "model1.onnx")
    >>> X, _ = fk.load(tmp_faces["test.csv"])
    >>> onnx_model, keras_model = fk.load_model(onnx_path), fk.load_model(trained)
    >>> bool(np.allclose(onnx_model.predict(X[:3]), keras_model.predict(X[:3]), atol=1e-3))
    True
    """
    from .inference.export import export_onnx

    path = Path(getattr(model, "path", model)) if not isinstance(model, Predictor) else None
    if path is not None and _members_of(path) is not None:
        if out is not None:
            raise UserError(f"export: {path} is a group of specialists or an average, exported "
                            "into its members' own folders (each its model.onnx); leave out "
                            "--out")
        _export_members(path)
        return path
    if out is None:
        if path is None:
            raise UserError("export: give `out`, the .onnx file to write")
        out = path / "model.onnx" if path.is_dir() else path.with_suffix(".onnx")
    return export_onnx(load_model(model), out)


def _members_of(path: Path) -> list[Path] | None:
    """The members of a group of specialists or of an average; None for any other model."""
    from .inference import ensemble

    if not path.is_dir():
        return None
    if RunFolder(path).is_group:
        return [m.path for m in RunFolder(path).members]
    if (path / ensemble.MANIFEST).is_file():
        return [Path(m) for m in ensemble.read(path)[0]]
    return None


def _export_members(path: Path, done: set[Path] | None = None) -> None:
    """Each member with a Keras net exported beside it (an ONNX file or a mesh run needs none),
    once, so that the group or average loads without TensorFlow (detect's Ray workers)."""
    done = done if done is not None else set()
    for member in _members_of(path) or []:
        if member.resolve() in done:
            continue
        done.add(member.resolve())
        if _members_of(member) is not None:
            _export_members(member, done)
        elif load_model(member).export_net()[0] is not None:
            export(member)


# ----------------------------------------------------------------------------- Kaggle


def submit(model: ModelLike | Run, test: str | Path, lookup: str | Path,
           out: str | Path | None = None, progress: str | bool = "auto") -> pd.DataFrame:
    """Kaggle's submission (RowId, Location) for every row of the lookup table, keypoints
    clipped to the image; written (atomically, as Kaggle expects it) where `out` is given.

    >>> sub = fk.submit(trained, tmp_faces["test.csv"], tmp_faces["IdLookupTable.csv"],
    ...                 tmp / "submission.csv", progress=False)
    >>> sub.columns.tolist(), len(sub) == len(open(tmp / "submission.csv").readlines()) - 1
    (['RowId', 'Location'], True)
    """
    from .inference import submission

    table = submission.predict_lookup(load_model(model), test, lookup, progress)
    if out is not None:
        submission.write(table, out)
    return table


def score(submission_file: str | Path, solution: str | Path) -> float:
    """RMSE in pixels of a submission file against a solution file (RowId, Location).

    >>> _ = fk.submit(trained, tmp_faces["test.csv"], tmp_faces["IdLookupTable.csv"],
    ...               tmp / "mine.csv", progress=False)
    >>> 0 < fk.score(tmp / "mine.csv", tmp_faces["solution.csv"]) < 48
    True
    """
    from .inference import submission

    return submission.score(submission_file, solution)[0]


# ----------------------------------------------------------------------------- plots


def plot_curves(*runs: str | Path | Run, title: str = "") -> Figure:
    """Train and validation loss (log scale) and validation RMSE of several runs, one figure.

    >>> len(fk.plot_curves(trained).axes)
    2
    """
    from . import plots

    return plots.learning_curves([Path(getattr(r, "path", r)) for r in runs], title)


def plot_faces(X: np.ndarray, keypoints: np.ndarray | None = None,
               truth: np.ndarray | None = None, title: str = "", columns: int = 4,
               lines: Sequence[Sequence[int]] = ()) -> Figure:
    """Up to columns x columns faces with keypoints in pixels ((N, 2 x points) x, y pairs, as
    `predict` gives them): predicted in red, `truth` as green crosses (NaN where missing);
    `lines` (index lists, as `Predictor.scheme_lines()` gives) joins predicted points.

    >>> X, y = fk.load(tmp_faces["training.csv"])
    >>> fig = fk.plot_faces(X[:8], fk.load_model(trained).predict(X[:8]), truth=y[:8] * 48 + 48)
    >>> len([ax for ax in fig.axes if ax.images])
    8
    """
    from . import plots

    return plots.face_grid(X, keypoints, truth, title, columns, lines)


def plot_samples(model: ModelLike | Run, data: str | Path, seed: int = 0) -> Figure:
    """Sixteen faces of a training or test file (chosen by `seed`) with the model's keypoints
    in red, and the labels, where the file has them, as green crosses.

    >>> fig = fk.plot_samples(trained, tmp_faces["training.csv"])
    >>> len([ax for ax in fig.axes if ax.images]), "labelled" in fig.texts[0].get_text()
    (16, True)
    """
    predictor = load_model(model)
    if is_photo_data(data) or data_mod.kind_of(data) == "training":
        faces = data_mod.load_training(data)
        X, truth = faces.X, unscale(faces.select(predictor.columns, dropna=False).y)
    else:
        X, truth = load(data, dropna=False)
    pick = np.sort(np.random.default_rng(seed).permutation(len(X))[:16])
    title = f"{predictor.name}: predicted (red)" + (", labelled (green)" if truth is not None
                                                   else "")
    if "synthetic" in str(data).lower():
        title = "SYNTHETIC faces - " + title
    return plot_faces(X[pick], predictor.predict(X[pick]),
                      None if truth is None else truth[pick], title,
                      lines=predictor.scheme_lines())


def plot_model(model: ModelLike | Run | Recipe | keras.Model) -> Figure:
    """The architecture of a trained model, a recipe (name, file or Recipe) or a Keras model:
    Keras' diagram where graphviz is installed, else its layer summary.

    >>> fig = fk.plot_model("model2")
    >>> bool(fig.get_size_inches()[1] > 1)
    True
    """
    from . import plots

    return plots.architecture(_net_of(model))


def _net_of(model):
    if hasattr(model, "layers") and hasattr(model, "count_params"):
        return model
    if isinstance(model, Recipe) or (isinstance(model, str) and model in recipes()) \
            or str(model).endswith(".toml"):
        return build_model(model)
    net = load_model(model).net
    if net is None:
        raise UserError(f"MODEL {model}: no single Keras net to draw (a group of specialists or "
                        "an ONNX file); give a run folder or .keras file")
    return net


# ----------------------------------------------------------------------------- photos


# fk.detect's landmarkers, by model and settings: each loads once (a file changed on disk loads
# anew); the last few kept
# each thread its own landmarkers: one holds detectors (OpenCV's cascades among them) that are
# not safe to share between threads
_THREAD = threading.local()
_KEPT = 4


def _kept() -> dict[tuple, tuple[Any, Landmarker]]:
    """This thread's landmarkers, by model and settings, the oldest first."""
    return _THREAD.__dict__.setdefault("landmarkers", {})


def _landmarker(model: ModelLike | Run | FacePipeline | Landmarker | None, detector: str,
                fast: bool, min_score: float | None = None,
                max_faces: int | None = None) -> Landmarker:
    """The landmarker for `model` and these settings: made on first use in this thread, then
    reused."""
    from .photos.pipeline import FacePipeline

    if isinstance(model, Landmarker | FacePipeline):
        given = {"detector": detector != "blazeface", "fast": fast,
                 "min_score": min_score is not None, "max_faces": max_faces is not None}
        if any(given.values()):
            raise LandmarkerInputError(
                f"{', '.join(k for k, v in given.items() if v)}: a landmarker keeps its own "
                "settings; make it with them, fk.Landmarker(model, ...)")
        return Landmarker.of(model)
    if isinstance(model, RunFolder):  # a run stands for its folder; a loaded model for itself
        model = model.path
    if isinstance(model, str | Path) and Path(model).exists():
        path = Path(model).resolve()
        which: Any = (str(path), path.stat().st_mtime_ns)
    elif isinstance(model, str | Path | None):  # a built-in name (or a missing file's error)
        which = model
    else:  # a loaded model: kept in the cache, so its id is not another's meanwhile
        which = ("object", id(model))
    key = (which, detector, fast, min_score, max_faces)
    kept = _kept()
    if key not in kept:
        kept[key] = (model, Landmarker(model, detector=detector, fast=fast,
                                       min_score=min_score, max_faces=max_faces))
        while len(kept) > _KEPT:
            del kept[next(iter(kept))]
    return kept[key][1]


def detect(photo: Any, model: ModelLike | Run | FacePipeline | Landmarker | None = None,
           detector: str = "blazeface", fast: bool = False, min_score: float | None = None,
           max_faces: int | None = None) -> LandmarkerResult:
    """Faces and their keypoints in a photograph: a file path, a PIL image, or an RGB
    (H, W, 3) / grey (H, W) uint8 array, with the built-in model unless `model` is given
    ("builtin68": iBUG's 68 points, "mesh468": the mesh's own, "mesh478": with the irises). The
    result is a list of faces, each with `box`, `keypoints` (points, 2) in the photo's pixels,
    their `names` (the model's scheme's) and, for the mesh-based models, `pose` (yaw, pitch,
    roll in degrees) and, for mesh468 and mesh478, `z` (each point's depth); it has `.points`,
    `.boxes`, `.scores` over all of them and `as_dict()`, detect's JSON record (see
    `Landmarker`, which this uses: one per model and settings, loaded on the first call).
    `detector`: blazeface, hog or haar; `fast`: one pass per face, no mirror image (about 0.7
    of the time, a little less accurate); `min_score`: drop faces the detector scores lower
    (BlazeFace: 0 to 1, finds from 0.5); `max_faces`: keep at most this many, the best scored.

    >>> import facekeypoints as fk
    >>> faces = fk.detect("../shared/data/photos/dlib/2007_007763.jpg")
    >>> len(faces), faces[0].keypoints.shape
    (7, (15, 2))
    >>> len(fk.detect("../shared/data/photos/dlib/2007_007763.jpg", max_faces=2))
    2
    >>> fk.detect("../shared/data/photos/youtube/Lincoln_Chafee_52.jpg", "builtin68")[0].names[:3]
    ('p0', 'p1', 'p2')
    """
    return _landmarker(model, detector, fast, min_score, max_faces).detect(photo)


def detect_files(inputs: str | Path | Sequence[str | Path],
                 model: ModelLike | Run | FacePipeline | None = None,
                 out: str | Path | None = None, *, resume: bool = False,
                 detector: str = "blazeface", fast: bool = False,
                 min_score: float | None = None, max_faces: int | None = None,
                 draw: bool = True, smooth: bool = True, progress: str | bool = "auto",
                 log: Callable[[str], None] | None = print, format: str = "json") -> dict:
    """What `facekeypoints detect` does: every photo and video in `inputs` (files, or folders
    searched to any depth) into the folder `out` (default: `detections`, or the first free
    `detections-N`): keypoints.json (a record per input), keypoints.csv (a row per face, and
    per face and frame of a video, with its time) and drawn copies under `out`/annotated/,
    named by their path below the inputs. Whatever one input raises is its error record, and
    the rest go on; the summary counts them (`unreadable`, `skipped`). A folder that holds
    anything is never written into, one that holds a killed job only with `resume=True`,
    which finishes it (the same files as a run never killed). An exported run loads from its
    ONNX file. `format="coco"` also writes `out`/keypoints.coco.json, a COCO keypoints file
    of the photos' faces (pre-labels for CVAT or Label Studio; its path is the summary's
    "coco").

    >>> summary = fk.detect_files([SHARED / "photos" / "dlib"], trained, tmp / "found",
    ...                           draw=False, progress=False, log=None)
    >>> summary["files"] > 0, (tmp / "found" / "keypoints.json").is_file()
    (True, True)
    """
    from .photos.local_job import run_detect

    inputs = [inputs] if isinstance(inputs, str | Path) else inputs  # one path, not its letters
    landmarker = _landmarker(model, detector, fast, min_score, max_faces)
    _check_format(format)
    out, made = _detect_out(out, resume)
    with _gone_unless_begun(out, made):
        summary = run_detect([str(i) for i in inputs], landmarker, out, draw,
                             log or (lambda line: None), progress, smooth, resume=resume,
                             made_out=made)
    return _with_coco(summary, out, format, landmarker.model.scheme, log)


@contextlib.contextmanager
def _gone_unless_begun(out: Path | str, made: bool) -> Iterator[None]:
    """A `detections-N` folder made for a job that stops before it begins (nothing to
    process, a missing extra) is removed, so that retries do not leave empty ones."""
    try:
        yield
    except BaseException:
        if made and Path(out).is_dir() and not any(Path(out).iterdir()):
            Path(out).rmdir()
        raise


def _check_format(format: str) -> None:
    if format not in ("json", "coco"):
        raise UserError(f"--format {format}: expected json or coco")


def _with_coco(summary: dict, out: str | Path, format: str, scheme,
               log: Callable[[str], None] | None) -> dict:
    """The job's summary, with keypoints.coco.json written beside its keypoints.json where
    `format` is coco."""
    if format != "coco":
        return summary
    if "://" in str(out):
        raise UserError(f"--format coco: writes a local folder's keypoints.coco.json, not "
                        f"{out}'s")
    from .photos.coco_out import job_coco

    path = job_coco(out, scheme)
    if log:
        log(f"wrote {path} (COCO keypoints: pre-labels to correct in CVAT or Label Studio)")
    return {**summary, "coco": str(path)}


def _detect_out(out: str | Path | None, resume: bool) -> tuple[Path | str, bool]:
    """A job's folder: the one given, else a new one (`detections`, or the next free
    `detections-N`), and whether it was made for this job."""
    from .photos.job import new_folder

    if out is not None:
        return out, False
    if resume:
        raise UserError("--resume needs --out, the folder of the job to finish")
    return new_folder("detections"), True


def detect_many(inputs: str | Path | Sequence[str | Path], model: str | Path | None = None,
                out: str | Path | None = None, *, address: str | None = None,
                workers: int | None = None, resume: bool = False, detector: str = "blazeface",
                fast: bool = False, min_score: float | None = None,
                max_faces: int | None = None, draw: bool = True, smooth: bool = True,
                part_size: int | None = None, progress: str | bool = "auto",
                log: Callable[[str], None] | None = print, format: str = "json") -> dict:
    """`detect_files` as a batch job on Ray Data: the same job (either engine resumes the
    other's) and the same keypoints.json and keypoints.csv, byte for byte, from workers that
    each load the model once (ONNX or a mesh run: no TensorFlow). Each task's results are kept
    as a part under `out`/parts, so a killed job loses at most the parts in flight:
    `resume=True` finishes it. `address`: a cluster's (`"auto"` or HOST:PORT; default: Ray
    started on this machine); inputs and `out` may also be URLs pyarrow opens (s3://...). The
    summary is `detect_files`' plus "ray": parts run, their timing and each worker's. Needs
    `pip install 'facekeypoints[ray]'`.

    >>> many = fk.detect_many([SHARED / "photos" / "dlib"], out=tmp / "many", workers=2,
    ...                       draw=False, progress=False, log=None)
    >>> one = fk.detect_files([SHARED / "photos" / "dlib"], out=tmp / "one", draw=False,
    ...                       progress=False, log=None)
    >>> {k: many[k] for k in one} == one, (tmp / "many" / "keypoints.csv").read_text() == (
    ...     tmp / "one" / "keypoints.csv").read_text()
    (True, True)
    >>> # the parts, and the files of each worker (which also has its node and peak memory)
    >>> many["ray"]["parts"], sum(w["files"] for w in many["ray"]["workers"])
    (4, 4)
    """
    try:
        from .batch.ray_job import run_ray
    except ImportError as e:
        raise UserError(f"--engine ray needs Ray ({e.name} is not installed): pip install "
                        "'facekeypoints[ray]'") from None
    model = getattr(model, "path", model)  # a Run stands for its folder
    inputs = [inputs] if isinstance(inputs, str | Path) else inputs  # one path, not its letters
    if model is not None and not isinstance(model, str | Path):
        raise UserError(f"detect_many takes MODEL as a name or a path (workers load it "
                        f"themselves), not a {type(model).__name__}")
    _check_format(format)
    out, made = _detect_out(out, resume)
    with _gone_unless_begun(out, made):
        summary = run_ray(inputs, model, out,
                          address=address, workers=workers, resume=resume, detector=detector,
                          fast=fast, min_score=min_score, max_faces=max_faces, draw=draw,
                          smooth=smooth, part_size=part_size, progress=progress,
                          log=log or (lambda line: None), made_out=made)
    return _with_coco(summary, out, format, None, log)
