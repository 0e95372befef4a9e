"""The `facekeypoints` command line. User mistakes: one line on stderr, exit code 2."""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import tomllib
from pathlib import Path

import click

from .errors import UserError


def quiet_keras() -> None:
    """Import Keras/TensorFlow with their start-up banner hidden (shown again if import fails)."""
    if "keras" in sys.modules:
        return
    with tempfile.TemporaryFile() as captured:
        saved = os.dup(2)
        os.dup2(captured.fileno(), 2)
        try:
            import keras  # noqa: F401
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    # TensorFlow's retracing notices (predicting batches of several sizes) are not for users.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)


def _overrides(pairs: tuple[str, ...]) -> dict:
    values = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep:
            raise UserError(f"--set {pair}: expected KEY=VALUE, e.g. --set dropout=[0.1,0.2]")
        try:
            values[key.strip()] = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            values[key.strip()] = text  # a bare word is a string
    return values


def _default_out(name: str) -> Path:
    base = Path("runs") / name
    out, k = base, 1
    while out.exists():
        k += 1
        out = base.with_name(f"{base.name}-{k}")
    return out


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="facekeypoints")
def cli() -> None:
    """Find the 15 Kaggle facial keypoints: train, evaluate, submit, plot."""


@cli.command()
@click.option("--recipe", "recipe_name", help="Recipe name (see `recipes`) or a .toml file.")
@click.option("--data", "data_path", type=click.Path(), help="training.csv, .csv.gz or .zip")
@click.option("--epochs", type=click.IntRange(min=1), help="Total epochs (extends a resumed run).")
@click.option("--batch-size", type=click.IntRange(min=1))
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True))
@click.option("--patience", type=click.IntRange(min=0), help="Early stopping; 0 = off.")
@click.option("--seed", type=int)
@click.option("--validation", type=click.FloatRange(0, 1, max_open=True),
              help="Held-out fraction (split by person where the data names them).")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
              help="Override any recipe setting, e.g. --set dropout=[0.1,0.2,0.3,0.5]")
@click.option("--out", type=click.Path(), help="Run folder (default runs/RECIPE).")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its checkpoint.")
@click.option("--checkpoint-seconds", default=30.0, show_default=True,
              help="Save a checkpoint at least this often.")
@click.option("--max-minutes", type=click.FloatRange(min=0, min_open=True),
              help="Stop (and save) after this much training time.")
def train(recipe_name, data_path, epochs, batch_size, learning_rate, patience, seed, validation,
          settings, out, resume, checkpoint_seconds, max_minutes) -> None:
    """Train a recipe; writes a run folder with history, checkpoints and model.keras."""
    from . import recipe as recipe_mod

    if resume:
        if not out:
            raise UserError("--resume needs --out RUN_DIR, the run folder to continue")
        group_recipe = Path(out) / "recipe.toml"
        recipe = recipe_mod.load(str(group_recipe)) if (Path(out) / "specialists.json").is_file() \
            else None
    else:
        if not recipe_name or not data_path:
            raise UserError("train needs --recipe NAME and --data FILE (or --out RUN --resume)")
        overrides = _overrides(settings) | {
            "epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate,
            "patience": patience, "seed": seed, "validation": validation}
        recipe = recipe_mod.load(recipe_name, overrides)
    quiet_keras()
    from . import train as train_mod

    if recipe is not None and recipe.groups:
        from . import specialists

        run = specialists.train_group(recipe, data_path, out or _default_out(recipe.name),
                                      epochs=epochs, checkpoint_seconds=checkpoint_seconds,
                                      max_seconds=max_minutes * 60 if max_minutes else None)
    else:
        run = train_mod.train(recipe, data_path, out or _default_out(recipe.name), resume=resume,
                              epochs=epochs, checkpoint_seconds=checkpoint_seconds,
                              max_seconds=max_minutes * 60 if max_minutes else None)
    click.echo(f"run folder: {run.path}")


@cli.command()
@click.argument("model")
@click.option("--data", "data_path", type=click.Path(),
              help="A labelled file (Kaggle training format). Default: the run's validation set.")
@click.option("--train", "on_train", is_flag=True,
              help="Also report RMSE on the run's training set (no dropout, no augmentation).")
def evaluate(model, data_path, on_train) -> None:
    """RMSE in pixels, overall and per keypoint, of MODEL (a run folder or .keras file)."""
    quiet_keras()
    from . import data, predict
    from .evaluate import evaluate as run_eval
    from .evaluate import mean_shape_rmse

    predictor = predict.load(model)
    if data_path:
        faces = data.load_training(data_path)
        click.echo(f"{data_path}:")
        click.echo(run_eval(predictor, faces).table())
        return
    from . import train as train_mod

    run = train_mod.RunFolder(Path(model))
    if not run.data.is_file():
        raise UserError(f"MODEL {model}: not a run folder, so give --data FILE to evaluate on")
    recipe = run.load_recipe()
    train_set, val_set = train_mod.prepare_data(recipe, _run_data_path(run))
    click.echo(f"validation set of {run.path} ({len(val_set)} faces):")
    click.echo(run_eval(predictor, val_set).table())
    baseline = mean_shape_rmse(train_set, val_set)
    click.echo(f"mean-shape baseline on the same faces: {baseline:.3f} px")
    if on_train:
        click.echo(f"training RMSE (no dropout, no augmentation): "
                   f"{run_eval(predictor, train_set).rmse:.3f} px")


def _run_data_path(run) -> str:
    import json

    path = json.loads(run.data.read_text())["data"]
    if not Path(path).exists():
        raise UserError(f"{run.data}: the run's data file {path} is gone; give --data FILE")
    return path


@cli.command()
@click.argument("model")
@click.option("--test", "test_path", required=True, type=click.Path(), help="test.csv[.gz|.zip]")
@click.option("--lookup", "lookup_path", required=True, type=click.Path(),
              help="IdLookupTable.csv")
@click.option("--out", required=True, type=click.Path(), help="Submission CSV to write.")
def submit(model, test_path, lookup_path, out) -> None:
    """Predict the test faces and write a Kaggle submission (RowId,Location)."""
    quiet_keras()
    from . import predict, submission

    table = submission.predict_lookup(predict.load(model), test_path, lookup_path)
    submission.write(table, out)
    click.echo(f"wrote {out} ({len(table)} rows)")


@cli.command()
@click.argument("submission_path", metavar="SUBMISSION")
@click.option("--solution", required=True, type=click.Path(), help="RowId,Location truth file.")
def score(submission_path, solution) -> None:
    """RMSE in pixels of a submission against a solution file."""
    from . import submission

    rmse, rows = submission.score(submission_path, solution)
    click.echo(f"RMSE {rmse:.4f} px over {rows} rows")


@cli.group()
def plot() -> None:
    """Learning curves, faces with keypoints, architecture diagrams."""


@plot.command("curves")
@click.argument("runs", nargs=-1, required=True)
@click.option("--out", default="curves.png", show_default=True, type=click.Path())
def plot_curves(runs, out) -> None:
    """Train/validation loss and validation RMSE of one or more runs, in one figure."""
    quiet_keras()
    from . import plots

    click.echo(f"wrote {plots.learning_curves(list(runs), out)}")


@plot.command("samples")
@click.argument("model")
@click.option("--data", "data_path", required=True, type=click.Path(),
              help="test.csv or training.csv (labels, where present, are drawn in green)")
@click.option("--out", default="samples.png", show_default=True, type=click.Path())
@click.option("--seed", default=0, show_default=True, help="Which 16 faces to draw.")
def plot_samples(model, data_path, out, seed) -> None:
    """A 4x4 grid of faces with the model's keypoints."""
    quiet_keras()
    import numpy as np

    from . import data, plots, predict

    predictor = predict.load(model)
    truth = None
    try:
        _, X = data.load_test(data_path)
    except UserError:
        faces = data.load_training(data_path)
        X, truth = faces.X, data.unscale(faces.y[:, [faces.columns.index(c)
                                                     for c in predictor.columns]])
    pick = np.sort(np.random.default_rng(seed).permutation(len(X))[:16])
    title = f"{predictor.name}: predicted (red)" + (", labelled (green)" if truth is not None
                                                   else "")
    if "synthetic" in str(data_path).lower():
        title = "SYNTHETIC faces - " + title
    plots.face_grid(X[pick], predictor.predict(X[pick]), out,
                    None if truth is None else truth[pick], title)
    click.echo(f"wrote {out}")


@plot.command("model")
@click.argument("model")
@click.option("--out", default="model.png", show_default=True, type=click.Path())
def plot_model(model, out) -> None:
    """The architecture of MODEL (run folder, .keras file) or of a recipe (name or .toml)."""
    quiet_keras()
    from . import models, plots, predict
    from . import recipe as recipe_mod

    if Path(model).exists() and not str(model).endswith(".toml"):
        net = predict.load(model).net
        if net is None:
            raise UserError(f"MODEL {model}: no single Keras net to draw (a group of "
                            "specialists or an ONNX file); give a run folder or .keras file")
    else:
        r = recipe_mod.load(model)
        net = models.build(r, len(r.columns))
    path, note = plots.architecture(net, out)
    if note:
        click.echo(f"note: {note}")
    click.echo(f"wrote {path}")


@cli.command()
@click.argument("name", required=False)
def recipes(name) -> None:
    """List the built-in recipes, or print one (copy it, edit it, pass it to --recipe)."""
    from . import recipe as recipe_mod

    if name:
        click.echo(recipe_mod.builtin_text(name), nl=False)
        return
    for n in recipe_mod.builtin_names():
        r = recipe_mod.load(n)
        click.echo(f"{n:<8} {r.epochs:>5} epochs  {r.description}")


@cli.command()
@click.argument("runs", nargs=-1, required=True)
def compare(runs) -> None:
    """A table comparing runs: best and last validation RMSE, epochs, seconds per epoch."""
    quiet_keras()
    from .evaluate import compare_runs

    click.echo(compare_runs(list(runs)))


@cli.command()
@click.option("--out", type=click.Path(), help="Output folder (default: runs/demo, or the next "
              "free runs/demo-N).")
@click.option("--epochs", default=20, show_default=True, help="Epochs of the tutorial CNN.")
@click.option("--fast-epochs", default=15, show_default=True, help="Epochs of the fast recipe.")
def demo(out, epochs, fast_epochs) -> None:
    """The whole pipeline on built-in SYNTHETIC faces: train, plot, evaluate, submit, score."""
    quiet_keras()
    from .demo import run_demo

    run_demo(Path(out) if out else _default_out("demo"), epochs, fast_epochs, click.echo)


def _load_model(model: str):
    """A predictor; an .onnx model loads without importing TensorFlow (fast cold start)."""
    from . import predict

    if not str(model).endswith(".onnx"):
        quiet_keras()
    return predict.load(model)


MODEL_HELP = "Run folder, .keras or .onnx model (default: $FACEKEYPOINTS_MODEL)."


def _model_option(func):
    return click.option("--model", envvar="FACEKEYPOINTS_MODEL", help=MODEL_HELP)(func)


def _require_model(model: str | None) -> str:
    if not model:
        raise UserError("--model is needed: a run folder, .keras or .onnx file; train one with "
                        "`facekeypoints train --recipe fast --data training.csv`")
    return model


@cli.command()
@click.argument("inputs", nargs=-1, required=True)
@_model_option
@click.option("--detector", default="hog", show_default=True, type=click.Choice(["hog", "haar"]),
              help="hog: dlib's HOG detector; haar: OpenCV's cascade.")
@click.option("--out", default="detections", show_default=True, type=click.Path(),
              help="Folder for keypoints.json, keypoints.csv, annotated pictures and videos.")
@click.option("--no-draw", is_flag=True, help="Skip the annotated pictures and videos.")
def detect(inputs, model, detector, out, no_draw) -> None:
    """Faces and their 15 keypoints in photos, folders of photos, or videos."""
    from .detect import run_detect
    from .photos import FacePipeline

    pipeline = FacePipeline(_load_model(_require_model(model)), detector)
    run_detect(list(inputs), pipeline, Path(out), not no_draw,
               lambda line: click.echo(line, err=True))


@cli.command("evaluate-photos")
@click.argument("folder", type=click.Path())
@click.option("--truth", required=True, type=click.Path(), help="keypoints15.csv")
@_model_option
@click.option("--detector", default="hog", show_default=True, type=click.Choice(["hog", "haar"]))
def evaluate_photos(folder, truth, model, detector) -> None:
    """Detection rate, normalised mean error per keypoint, and ms per face on photographs."""
    from .photo_eval import evaluate_photos as run
    from .photos import FacePipeline

    pipeline = FacePipeline(_load_model(_require_model(model)), detector)
    scores = run(pipeline, folder, truth)
    for problem in scores.unreadable:
        click.echo(f"skipped: {problem}", err=True)
    click.echo(scores.table())


@cli.command()
@click.argument("model")
@click.option("--out", type=click.Path(), help="The .onnx file (default: beside the model).")
def export(model, out) -> None:
    """Write MODEL as ONNX (columns and test-time flips kept as metadata); .keras stays."""
    from .export import export_onnx

    predictor = _load_model(model)
    target = Path(out) if out else (Path(model) / "model.onnx" if Path(model).is_dir()
                                    else Path(model).with_suffix(".onnx"))
    click.echo(f"wrote {export_onnx(predictor, target)}")


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.UsageError as e:
        command = e.ctx.command_path if e.ctx else "facekeypoints"
        click.echo(f"facekeypoints: error: {e.format_message()} (see {command} --help)", err=True)
        sys.exit(2)
    except click.ClickException as e:
        click.echo(f"facekeypoints: error: {e.format_message()}", err=True)
        sys.exit(2)
    except UserError as e:
        click.echo(f"facekeypoints: error: {e}", err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
