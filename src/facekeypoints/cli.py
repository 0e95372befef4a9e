"""The `facekeypoints` command line. User mistakes: one line on stderr, exit code 2."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from .errors import Interrupted, UserError


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="facekeypoints")
def cli() -> None:
    """Facial keypoints: find them on photos, videos and a webcam (detect), in a browser or over
    HTTP (serve), and walk the Kaggle tutorial's nets (train, evaluate, submit, plot).

    Start with: facekeypoints detect photo.jpg (the built-in model, no training needed)."""


# Settings that have an option of their own; the same names work with --set.
SETTING_OPTIONS = ("epochs", "batch_size", "learning_rate", "patience", "seed", "validation",
                   "scheme")


@cli.command()
@click.option("--recipe", "recipe_name", help="Recipe name (see `recipes`) or a .toml file.")
@click.option("--data", "data_path", type=click.Path(),
              help="training.csv, .csv.gz or .zip of 96x96 faces (any scheme's columns), or "
                   "whole photos with their points, each face framed by the detector as detect "
                   "frames it: a COCO keypoints .json, a folder of images with iBUG .pts "
                   "files, or a CSV of photo paths (file) and points.")
@click.option("--scheme", help="The labels' landmark scheme: kaggle15, ibug68, mesh468, mesh478 "
                               "or a .toml file (default: what the data's header says).")
@click.option("--epochs", type=click.IntRange(min=1), help="Total epochs (extends a resumed run).")
@click.option("--batch-size", type=click.IntRange(min=1))
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True))
@click.option("--patience", type=click.IntRange(min=0), help="Early stopping; 0 = off.")
@click.option("--seed", type=click.IntRange(min=0))
@click.option("--validation", type=click.FloatRange(0, 1, max_open=True),
              help="Held-out fraction (split by person where the data names them).")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
              help="Change any recipe setting, e.g. --set dropout=[0.1,0.2,0.3,0.5]")
@click.option("--tensorboard", is_flag=True, default=None,
              help="Also log to RUN/tensorboard (open with: tensorboard --logdir RUN).")
@click.option("--out", type=click.Path(), help="Run folder (default runs/RECIPE).")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its checkpoint.")
@click.option("--take-over", is_flag=True,
              help="With --resume: continue a run whose holder died on a machine that cannot "
                   "be asked (its folder shared); refused while it runs here.")
@click.option("--checkpoint-seconds", default=30.0, show_default=True,
              help="Save a checkpoint at least this often.")
@click.option("--max-minutes", type=click.FloatRange(min=0, min_open=True),
              help="Stop (and save) after this much training time.")
@click.option("--progress", type=click.Choice(["auto", "bar", "lines", "off"]), default="auto",
              show_default=True, help="A bar in a terminal, plain lines in a log.")
def train(recipe_name, data_path, scheme, epochs, batch_size, learning_rate, patience, seed,
          validation, settings, tensorboard, out, resume, take_over, checkpoint_seconds,
          max_minutes, progress) -> None:
    """Train a recipe; writes a run folder with history, checkpoints and model.keras."""
    from . import api
    from .training.recipe import Given, parse_setting

    options = {"batch_size": batch_size, "learning_rate": learning_rate, "patience": patience,
               "seed": seed, "validation": validation, "tensorboard": tensorboard,
               "scheme": scheme}
    given = [parse_setting(pair) for pair in settings]
    given += [Given(key, value, f"--{key.replace('_', '-')}" + ("" if value is True
                                                                 else f" {value}"))
              for key, value in options.items() if value is not None]
    if not resume and not (recipe_name and data_path):
        raise UserError("train needs --recipe NAME and --data FILE (or --out RUN --resume)")
    run = api._train(recipe_name, given, data_path, out, epochs=epochs, resume=resume,
                     max_minutes=max_minutes, checkpoint_seconds=checkpoint_seconds,
                     progress=progress, log=click.echo, epochs_origin=f"--epochs {epochs}",
                     take_over=take_over)
    click.echo(f"run folder: {run.path}")


@cli.command()
@click.argument("model")
@click.option("--data", "data_path", type=click.Path(),
              help="A labelled file: Kaggle's training format or any scheme's columns (.csv, "
                   ".csv.gz, .zip), or whole photos (a COCO keypoints .json, a folder of images "
                   "with iBUG .pts files, a CSV of photo paths). Default: the people the run "
                   "held out.")
@click.option("--train", "on_train", is_flag=True,
              help="Also report RMSE on the run's training set (no dropout, no augmentation).")
def evaluate(model, data_path, on_train) -> None:
    """RMSE in pixels, overall and per keypoint, of MODEL: a run folder (one net, a group of
    specialists, a mesh run), an average, a .keras or .onnx file, or a built-in model.

    With flip test-time augmentation where the model uses it (as `submit` predicts), and the
    figure without it (what history.csv and `compare` log)."""
    from . import api

    click.echo(api.evaluate(model, data_path, details=True, train=on_train).report())


@cli.command()
@click.argument("model")
@click.option("--test", "test_path", required=True, type=click.Path(), help="test.csv[.gz|.zip]")
@click.option("--lookup", "lookup_path", required=True, type=click.Path(),
              help="IdLookupTable.csv")
@click.option("--out", required=True, type=click.Path(), help="Submission CSV to write.")
def submit(model, test_path, lookup_path, out) -> None:
    """Predict the test faces and write a Kaggle submission (RowId,Location)."""
    from . import api

    table = api.submit(model, test_path, lookup_path, out)
    click.echo(f"wrote {out} ({len(table)} rows)")


@cli.command()
@click.argument("submission_path", metavar="SUBMISSION")
@click.option("--solution", required=True, type=click.Path(), help="RowId,Location truth file.")
def score(submission_path, solution) -> None:
    """RMSE in pixels of a submission against a solution file."""
    from .inference import submission

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
    from . import api, plots

    click.echo(f"wrote {plots.save(api.plot_curves(*runs), out)}")


@plot.command("samples")
@click.argument("model")
@click.option("--data", "data_path", required=True, type=click.Path(),
              help="test.csv or training.csv (labels, where present, are drawn in green)")
@click.option("--out", default="samples.png", show_default=True, type=click.Path())
@click.option("--seed", default=0, show_default=True, help="Which 16 faces to draw.")
def plot_samples(model, data_path, out, seed) -> None:
    """A 4x4 grid of faces with the model's keypoints."""
    from . import api, plots

    click.echo(f"wrote {plots.save(api.plot_samples(model, data_path, seed), out, dpi=100)}")


@plot.command("model")
@click.argument("model")
@click.option("--out", default="model.png", show_default=True, type=click.Path())
def plot_model(model, out) -> None:
    """The architecture of MODEL (run folder, .keras file) or of a recipe (name or .toml)."""
    from . import api, plots

    click.echo(f"wrote {plots.save(api.plot_model(model), out)}")


@cli.command()
@click.argument("name", required=False)
def recipes(name) -> None:
    """List the built-in recipes, or print one (copy it, edit it, pass it to --recipe)."""
    from .training import recipe as recipe_mod

    if name:
        click.echo(recipe_mod.builtin_text(name), nl=False)
        return
    names = recipe_mod.builtin_names()
    width = max(len(n) for n in names)
    for n in names:
        r = recipe_mod.load(n)
        length = "  one pass" if r.model == "mesh" else f"{r.epochs:>5} epochs"
        click.echo(f"{n:<{width}} {length}  {r.description}")


@cli.command()
@click.argument("runs", nargs=-1, required=True)
def compare(runs) -> None:
    """A table comparing runs: best and last validation RMSE, epochs, seconds per epoch."""
    from . import api
    from .inference.evaluation import compare_table

    click.echo(compare_table(api.compare(*runs)))


@cli.command()
@click.argument("models", nargs=-1, required=True)
@click.option("--out", required=True, type=click.Path(), help="Folder for the averaged model.")
@click.option("--weights", help="Comma-separated weights (default: fitted on the held-out people).")
def average(models, out, weights) -> None:
    """Average MODELS (e.g. runs/fast and runs/mesh) as one model that evaluate, submit and
    detect take; the weights are fitted on the people the runs held out."""
    from . import api

    if weights is not None:
        try:
            weights = [float(w) for w in weights.split(",")]
        except ValueError:
            raise UserError(f"--weights {weights}: expected numbers separated by commas") from None
    model = api.average(*models, out=out, weights=weights)
    click.echo(f"wrote {out}: " + ", ".join(f"{m.name} {w:.2f}" for m, w in
                                          zip(model.members, model.weights, strict=True)))


@cli.command()
@click.option("--out", type=click.Path(), help="Output folder (default: runs/demo, or the next "
              "free runs/demo-N).")
@click.option("--epochs", default=20, show_default=True, help="Epochs of the tutorial CNN.")
@click.option("--fast-epochs", default=15, show_default=True, help="Epochs of the fast recipe.")
def demo(out, epochs, fast_epochs) -> None:
    """The whole pipeline on built-in SYNTHETIC faces: train, plot, evaluate, submit, score."""
    from .demo import run_demo
    from .training.runs import free_folder

    run_demo(Path(out) if out else free_folder(Path("runs") / "demo"), epochs, fast_epochs,
             click.echo)


MODEL_HELP = ("Run folder, .keras or .onnx model, or a built-in one: builtin (Kaggle's 15 "
              "keypoints), builtin68 (iBUG's 68 points), mesh468 (the face mesh's 468) or "
              "mesh478 (those and 5 points per iris). "
              "Default: $FACEKEYPOINTS_MODEL, else builtin.")


def _model_option(func):
    return click.option("--model", envvar="FACEKEYPOINTS_MODEL", help=MODEL_HELP)(func)


def _detector_option(func):
    return click.option(
        "--detector", default="blazeface", show_default=True,
        type=click.Choice(["blazeface", "hog", "haar"]),
        help="blazeface: MediaPipe's BlazeFace (small faces in large photos too); hog: dlib's "
             "HOG detector (pip install 'facekeypoints[hog]'); haar: OpenCV's cascade.")(func)


def _fast_option(func):
    return click.option("--fast", is_flag=True,
                        help="One pass per face, without its mirror image: about 0.7 of the "
                             "time, a little less accurate (docs/photos.md).")(func)


@cli.command()
@click.argument("inputs", nargs=-1)
@_model_option
@_detector_option
@_fast_option
@click.option("--out", type=click.Path(),
              help="A new or empty folder for keypoints.json, keypoints.csv and the drawn "
                   "copies in annotated/ (default: detections, or the first free "
                   "detections-N); with --resume, the job's folder.")
@click.option("--resume", is_flag=True,
              help="Finish the killed or stopped job in --out (either engine), skipping what "
                   "it has done.")
@click.option("--min-score", type=click.FloatRange(0, 1),
              help="Drop faces the detector scores lower (BlazeFace finds from 0.5).")
@click.option("--max-faces", type=click.IntRange(min=1), metavar="N",
              help="At most N faces a photo or frame, the best scored.")
@click.option("--format", "out_format", type=click.Choice(["json", "coco"]), default="json",
              show_default=True,
              help="coco: also OUT/keypoints.coco.json, a COCO keypoints file of the photos' "
                   "faces, to correct in CVAT or Label Studio and train on (docs/schemes.md).")
@click.option("--no-draw", is_flag=True, help="Skip the drawn pictures and videos.")
@click.option("--progress", type=click.Choice(["auto", "bar", "lines", "off"]), default="auto",
              show_default=True, help="A bar in a terminal, plain lines in a log.")
@click.option("--no-smooth", is_flag=True,
              help="Videos: raw keypoints per frame, without the One Euro filter.")
@click.option("--webcam", type=click.IntRange(min=0), metavar="N",
              help="Read camera N (0: the first) instead of files, until Ctrl+C.")
@click.option("--max-frames", type=click.IntRange(min=1), help="Stop the webcam after N frames.")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="ray: the same job on Ray Data (pip install 'facekeypoints[ray]'), for "
                   "many machines or object storage (docs/scale.md).")
@click.option("--address", metavar="auto|HOST:PORT",
              help="--engine ray: join the Ray cluster there (default: start Ray here).")
@click.option("--workers", type=click.IntRange(min=1),
              help="--engine ray: workers, one CPU each (default: every CPU).")
def detect(inputs, model, detector, fast, out, resume, min_score, max_faces, out_format, no_draw,
           progress, no_smooth, webcam, max_frames, engine, address, workers) -> None:
    """Faces and their keypoints (the model's: Kaggle's 15 with the built-in model, iBUG's 68
    with builtin68, ...) in photos, folders of photos (searched to any depth), videos, or a
    webcam.

    Writes OUT/keypoints.json (a record per input), OUT/keypoints.csv (a row per face, and per
    face and frame of a video, with its time in seconds) and drawn copies in OUT/annotated/,
    named by their path below the inputs (videos as .webm, which browsers play). Each part of
    the job is kept as it is done: a killed job is finished with --out OUT --resume, with the
    same files as one never killed.

    Videos are tracked: faces are found once and followed from frame to frame (the detector
    runs again when one is lost), keypoints smoothed over time unless --no-smooth.

    Exit code 0: every input was read; 3: some could not be (each is named above and has its
    error in keypoints.json; the rest are written as usual); 2: a usage error, or nothing to
    process at all; 130: stopped by Ctrl+C or SIGTERM (what was done is kept)."""
    from . import api
    from .errors import SomeInputsUnreadable

    if bool(inputs) == (webcam is not None):
        raise UserError("detect needs photos, folders or videos to read, or --webcam N "
                        "(one of the two)")
    log = lambda line: click.echo(line, err=True)  # noqa: E731
    if engine != "ray":
        given = [o for o, v in (("--address", address), ("--workers", workers)) if v]
        if given:
            raise UserError(f"{given[0]} goes with --engine ray")
    elif webcam is not None:
        raise UserError("--webcam runs in this process; it does not go with --engine ray")
    if resume and out is None:
        raise UserError("--resume needs --out, the folder of the job to finish")
    if max_frames is not None and webcam is None:
        raise UserError("--max-frames goes with --webcam (a file's frames are all read)")
    if webcam is not None and out_format != "json":
        raise UserError("--format coco goes with photos, not --webcam")
    if webcam is not None and resume:
        raise UserError("--resume goes with photos and videos, not --webcam (a camera's "
                        "frames cannot be read again)")
    if webcam is not None:
        from .photos.detect import run_webcam
        from .photos.landmarker import Landmarker

        landmarker = Landmarker(model, detector=detector, fast=fast, min_score=min_score,
                                max_faces=max_faces, smooth=not no_smooth)
        run_webcam(webcam, landmarker, Path(out) if out else None, not no_draw, log, max_frames,
                   not no_smooth)
        return
    options = {"detector": detector, "fast": fast, "min_score": min_score,
               "max_faces": max_faces, "draw": not no_draw, "smooth": not no_smooth,
               "progress": progress, "log": log, "resume": resume, "format": out_format}
    if engine == "ray":
        summary = api.detect_many(inputs, model, out, address=address, workers=workers,
                                  **options)
    else:
        summary = api.detect_files(inputs, model, out, **options)
    failed = summary["unreadable"] + len(summary["skipped"])
    if failed:
        total = summary["files"] + len(summary["skipped"])
        rest = ("none went through" if failed == total
                else f"the other {total - failed} are written (see above)")
        where = "each named above" + (", and each file's error in keypoints.json"
                                      if summary["unreadable"] else "")
        raise SomeInputsUnreadable(f"{failed} of {total} input(s) could not be read or drawn "
                                   f"({where}); {rest}")


@cli.command("evaluate-photos")
@click.argument("folder", type=click.Path())
@click.option("--truth", required=True, type=click.Path(),
              help="The true points, a row per face: file, face, the box and any scheme's "
                   "columns (the shared photos' keypoints15.csv or landmarks68.csv); or a COCO "
                   "keypoints .json (its photos named relative to it or absolute, and in FOLDER).")
@_model_option
@_detector_option
@_fast_option
def evaluate_photos(folder, truth, model, detector, fast) -> None:
    """Detection rate, normalised mean error per keypoint, and ms per face on photographs."""
    from .inference.loading import load
    from .photos.pipeline import FacePipeline
    from .photos.scores import evaluate_photos as run

    pipeline = FacePipeline(load(model), detector, fast=fast)
    scores = run(pipeline, folder, truth)
    for problem in scores.unreadable:
        click.echo(f"skipped: {problem}", err=True)
    click.echo(scores.table())


@cli.command()
@_model_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; 0.0.0.0 exposes it beyond this machine (set --token).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@_detector_option
@click.option("--token", envvar="FACEKEYPOINTS_TOKEN",
              help="Access token every request must carry (default: $FACEKEYPOINTS_TOKEN).")
@click.option("--allow-host", "allow_hosts", multiple=True, metavar="NAME",
              help="A host name clients use (a reverse proxy's), besides --host; repeatable.")
@click.option("--runs", "runs_folder", type=click.Path(file_okay=False),
              help="A folder of runs to show (learning curves, compare) on the page.")
@click.option("--upload-mb", default=50.0, show_default=True,
              type=click.FloatRange(min=0, min_open=True), help="Largest request body.")
@click.option("--max-pixels", default=40_000_000, show_default=True,
              type=click.IntRange(1, 250_000_000),
              help="Largest photo or video frame, width x height.")
@click.option("--video-seconds", default=60.0, show_default=True,
              type=click.FloatRange(min=0, min_open=True),
              help="Longest video, its frames counted at its rate up to 30 a second.")
@click.option("--timeout", default=120.0, show_default=True,
              type=click.FloatRange(min=0, min_open=True), help="Seconds a request may take.")
@click.option("--read-timeout", default=60.0, show_default=True,
              type=click.FloatRange(min=0, min_open=True),
              help="Seconds a client has to send a whole request; idle connections close.")
@click.option("--memory-mb", default=1536.0, show_default=True,
              type=click.FloatRange(min=0, min_open=True),
              help="Memory for the pictures of all requests in flight; more wait or get 503.")
@click.option("--no-page", is_flag=True, help="The HTTP API only, without the web page.")
def serve(model, host, port, detector, token, allow_hosts, runs_folder, upload_mb, max_pixels,
          video_seconds, timeout, read_timeout, memory_mb, no_page) -> None:
    """A local web page and HTTP API: POST /api/keypoints (multipart field `image`), POST
    /api/video (field `video`), GET /api/health, docs at /docs, the page at /."""
    try:
        from .serve.app import serve as run_server
        from .serve.service import Limits
    except ImportError as e:
        raise UserError(f"serve needs its web packages ({e.name} is missing): pip install "
                        "'facekeypoints[serve]' (or 'facekeypoints[all]' for everything)") \
            from None

    limits = Limits(upload_mb=upload_mb, max_pixels=max_pixels, video_seconds=video_seconds,
                    timeout_s=timeout, memory_mb=memory_mb, read_timeout_s=read_timeout)
    run_server(model, host, port, detector, limits, token, not no_page, runs_folder,
               allow_hosts, log=lambda line: click.echo(line, err=True))


@cli.command()
@click.argument("model")
@click.option("--out", type=click.Path(), help="The .onnx file (default: beside the model).")
def export(model, out) -> None:
    """Write MODEL as ONNX (columns and test-time flips kept as metadata); .keras stays."""
    from . import api

    click.echo(f"wrote {api.export(model, out)}")


def main() -> None:
    os.environ.setdefault("MPLBACKEND", "Agg")  # pictures go to files; no window is wanted
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
    except Interrupted as e:
        click.echo(f"facekeypoints: {e}", err=True)
        sys.exit(e.exit_code)
    except UserError as e:
        click.echo(f"facekeypoints: error: {e}", err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except ModuleNotFoundError as e:  # a package of an extra this install left out
        from .extras import is_missing_extra, missing

        if not is_missing_extra(e):
            raise
        command = next((a for a in sys.argv[1:] if not a.startswith("-")), "this command")
        click.echo(f"facekeypoints: error: {missing(e.name, command)}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
