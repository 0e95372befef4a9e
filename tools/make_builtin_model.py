"""Make a built-in model and place it in the package: the `mesh-tuned` recipe (MediaPipe's face
mesh rebuilt in Keras and fine-tuned, its photo head fitted after) on every label the shared
data holds, exported for inference without TensorFlow.

    python tools/make_builtin_model.py [--name builtin|builtin68] [--epochs 20]
                                       [--run DIR] [--limit N] [--out DIR]

`builtin` learns Kaggle's 15 keypoints derived from ../shared/data/faces68 (all 2,885 rows
complete; faces/ masks most of them as Kaggle does), `builtin68` the 68 points of faces68. No one
is held out (validation = 0): the faces the built-in models are judged on, the Kaggle test people
and the youtube photos, are other people.

The run's net, with its body's mesh points as a second output and its photo head in the
metadata (`TunedMeshPredictor.export_net`), is written as model.onnx (ONNX Runtime, what the
package loads) and model.tflite (LiteRT, the same input and outputs in the same order, checked
against the ONNX file here: TOLERANCE_PX), with a NOTICE that records the data, this command, the
score on the shared test faces and each file's sha256 (tests/test_builtin.py checks both).

`--run DIR` keeps the run folder (and reuses it if it holds a finished run); `--limit N` fits on
the first N rows only and `--out` writes elsewhere than the package: a quick check of this path.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import tempfile
import textwrap
from functools import partial
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
FACES68 = SHARED / "faces68" / "training.csv.gz"
SOURCES = SHARED / "faces" / "training_sources.csv"
TEST, TEST_TRUTH = SHARED / "faces" / "test.csv.gz", SHARED / "faces" / "test_keypoints.csv"
PRETRAINED = ROOT / "src" / "facekeypoints" / "pretrained"
RECIPE = "mesh-tuned"
RECIPE_EPOCHS = 20  # the recipe's own
SHIPPED = ("model.onnx", "model.tflite")
POINTS = {"builtin": "Kaggle's 15 keypoints", "builtin68": "iBUG 300-W's 68 points"}
# LiteRT against ONNX Runtime, px: the net's mesh points agree to 1e-4; the keypoints, a dense
# layer over 936 standardised points in float32, differ by about 2e-3 between any two runtimes
# (builtin68 measured: Keras against ONNX Runtime 2.4e-3, against LiteRT 1.2e-3)
TOLERANCE_PX = {"keypoints": 5e-3, "points": 1e-3}


def training_file(name: str, work: Path, limit: int | None = None) -> Path:
    """The labels `name` learns, as a Kaggle-format file in `work` (sources beside it)."""
    from facekeypoints.data.kaggle import write_kaggle15

    if name == "builtin":
        return write_kaggle15(FACES68, work / "training.csv", SOURCES, limit)
    if limit is None:
        shutil.copyfile(SOURCES, work / "training_sources.csv")
        return FACES68
    import pandas as pd

    pd.read_csv(FACES68, nrows=limit).to_csv(work / "training.csv", index=False)
    pd.read_csv(SOURCES, nrows=limit).to_csv(work / "training_sources.csv", index=False)
    return work / "training.csv"


def fit(data: Path, run: Path, epochs: int | None = None, validation: float = 0.0) -> Path:
    """A `mesh-tuned` run folder fitted on `data` (a finished one in `run` is kept)."""
    import facekeypoints as fk

    if (run / "photo_head.npz").is_file() and (run / "model.keras").is_file():
        return run
    return fk.train(RECIPE, data, run, epochs=epochs, validation=validation,
                    progress="lines").path


def export(run: Path, target: Path) -> None:
    """model.onnx (tf2onnx, as `facekeypoints export` writes it) and model.tflite (TensorFlow's
    converter on the same net) in `target`."""
    import keras
    import tensorflow as tf

    from facekeypoints.inference.export import export_onnx
    from facekeypoints.inference.loading import load

    target.mkdir(parents=True, exist_ok=True)
    predictor = load(run)
    export_onnx(predictor, target / "model.onnx")
    net, _ = predictor.export_net()
    want = [tuple(o.shape[1:]) for o in net.outputs]
    for outputs in (net.outputs[::-1], net.outputs):
        # TensorFlow 2.21's converter lists a two-output net's outputs last first (so that order
        # is tried first: each conversion takes about 20 s); the opener
        # (onnx_runtime.session) takes them in the order the .tflite lists them
        image = keras.Input(net.input_shape[1:], name="image")
        blob = tf.lite.TFLiteConverter.from_keras_model(
            keras.Model(image, keras.Model(net.input, outputs)(image))).convert()
        if _output_shapes(blob) == want:
            (target / "model.tflite").write_bytes(blob)
            return
    raise SystemExit(f"LiteRT: TensorFlow's converter gives outputs {_output_shapes(blob)}, "
                     f"expected {want} as in model.onnx")


def _output_shapes(blob: bytes) -> list[tuple[int, ...]]:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=blob)
    return [tuple(int(n) for n in d["shape"][1:]) for d in interpreter.get_output_details()]


def litert_gap_px(folder: Path, X: np.ndarray) -> dict[str, float]:
    """The largest difference, in pixels of the 96x96 face, between model.tflite on LiteRT and
    model.onnx on ONNX Runtime on faces X, for each output (keypoints, mesh points)."""
    from ai_edge_litert.interpreter import Interpreter

    from facekeypoints import onnx_runtime
    from facekeypoints.mesh.backbone import frame

    X = frame(X)  # the exported net takes faces framed as the mesh sees them
    session = onnx_runtime.onnx_session(folder / "model.onnx")  # not its LiteRT twin
    want = session.run(None, {session.get_inputs()[0].name: X})
    interpreter = Interpreter(model_path=str(folder / "model.tflite"))
    interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], X.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], X)
    interpreter.invoke()
    got = [interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()]
    if [g.shape for g in got] != [w.shape for w in want]:
        raise AssertionError(f"LiteRT gives outputs {[g.shape for g in got]}, ONNX Runtime "
                             f"{[w.shape for w in want]}")
    # the keypoints are scaled by 48 (keypoints.scale), the mesh points are already pixels
    return {"keypoints": float(np.abs(got[0] - want[0]).max()) * 48,
            "points": float(np.abs(got[1] - want[1]).max())}


def test_rmse(model) -> float:
    """RMSE in pixels of a built-in model on the shared test faces against all their 15 true
    keypoints (a 68-point model: Kaggle's 15 derived from its points)."""
    import pandas as pd

    import facekeypoints as fk
    from facekeypoints.data.kaggle import load_test
    from facekeypoints.keypoints import COLUMNS

    predictor = fk.load_model(model)
    ids, X = load_test(TEST)
    pred = predictor.predict(X)
    pred, columns = predictor.scheme.to_kaggle15(pred, predictor.columns)
    truth = pd.read_csv(TEST_TRUTH).set_index("ImageId").loc[ids, list(COLUMNS)].to_numpy()
    pred = pred[:, [columns.index(c) for c in COLUMNS]]
    return float(np.sqrt(np.mean((pred - truth) ** 2)))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def notice(name: str, rmse: float, digests: dict[str, str], epochs: int,
           limit: int | None, gap: dict[str, float]) -> str:
    """The NOTICE of a built-in folder: what it is, its data, how it was made, how to refit."""
    command = "python tools/make_builtin_model.py" + ("" if name == "builtin" else
                                                      f" --name {name}")
    if epochs != RECIPE_EPOCHS or limit is not None:
        command += f" --epochs {epochs}"
    if limit is not None:
        command += f" --limit {limit}"
    labels = ("Kaggle's 15 keypoints derived from each face's 68 points (eye centres the mean "
              "of the six eye points, the rest one point each, as ../shared/data/README.md "
              "says): every row complete, where faces/training.csv.gz masks most labels as "
              "Kaggle does" if name == "builtin" else
              "all 68 points of every face (iBUG 300-W's scheme, p0..p67, 0-based)")
    own = "your_training.csv" if name == "builtin" else "your_faces68.csv"
    outputs = 2 * (15 if name == "builtin" else 68)
    wrap = partial(textwrap.fill, width=96, break_on_hyphens=False)
    return "\n\n".join([
        wrap(f"The built-in model `{name}` of facekeypoints ({POINTS[name]}): what "
             f"`facekeypoints detect`, `serve`, `evaluate-photos`, `submit`, `fk.detect` and "
             f"`fk.Landmarker` use " + ("when no model is given." if name == "builtin" else
                                       f"with the model `{name}`.")),
        wrap(f"What it is: MediaPipe's face mesh (../face_mesh.onnx, Apache License 2.0; see "
             f"../NOTICE and ../LICENSE-mediapipe), rebuilt as a Keras net and fine-tuned by "
             f"this project with the `{RECIPE}` recipe, {epochs} epoch{'s' * (epochs != 1)}: "
             f"the mesh's body learns the labels below while its head, started from a ridge fit "
             f"of the frozen mesh's 468 points, is held; then a photo head for faces cut from "
             f"photographs is fitted on the tuned body's points. The tuned weights are a "
             f"modified version of MediaPipe's, distributed under the same Apache License 2.0."),
        f"""\
  model.onnx    the net: input `image` (N, 192, 192, 3), each 96x96 grey face in [0, 1] framed
                as the mesh sees it (a 24-pixel replicated border, resized, in three channels:
                facekeypoints.mesh.backbone.frame, which the package applies); outputs the
                keypoints (N, {outputs}) scaled to [-1, 1], then the body's 468 mesh points
                (N, 936) in the 96x96 face's pixels; its metadata holds the columns, the
                scheme, the flip axis and the photo head. ONNX Runtime runs it, without
                TensorFlow.
  model.tflite  the same net for LiteRT (ai-edge-litert): the same input, the same outputs in
                the same order, float32. On 64 test faces it gives model.onnx's mesh points
                to {gap["points"]:.1e} px and its keypoints to {gap["keypoints"]:.1e} px (a dense
                layer over 936 points in float32: Keras and ONNX Runtime differ as much).""",
        wrap(f"What it was fitted on: the 2,885 training faces of 237 people in "
             f"../shared/data/faces68, {labels}. They are frames of the YouTube Faces dataset "
             f"(Wolf, Hassner, Maoz, CVPR 2011) with the landmarks published in the "
             f"MIT-licensed Udacity repository udacity/P1_Facial_Keypoints. No one was held out "
             f"(validation = 0); no test person and no photo it is scored on in docs/ is among "
             f"them. It uses neither dlib's 68-point model nor its training data (iBUG 300-W)."
             + (f" This one is a check of the tool: the first {limit} rows only."
                if limit is not None else "")),
        wrap(f"Score on the shared test faces (../shared/data/faces/test.csv.gz, 487 faces of "
             f"40 other people, against all 15 keypoints of test_keypoints.csv"
             f"{'' if name == 'builtin' else ', the 15 derived from its 68'}): "
             f"RMSE {rmse:.4f} px."),
        wrap("How it was made, and how to make it again (the training takes about 7 minutes "
             "on a quiet 2-core CPU):") + f"\n\n    {command}",
        wrap(f"which trains `{RECIPE}` on those labels with validation = 0 "
             f"(`facekeypoints train --recipe {RECIPE} --set validation=0`), exports the run as "
             f"`facekeypoints export` does (tf2onnx) and with TensorFlow's LiteRT converter, "
             f"checks one against the other and writes this file. Training is not bit-for-bit "
             f"repeatable across machines; tests/test_builtin.py checks the shipped files "
             f"against the digests and the score recorded here."),
        "sha256:\n" + "\n".join(f"  {digests[f]}  {f}" for f in SHIPPED),
        wrap("Your own labels: train the same recipe on your own file (Kaggle's format; for 68 "
             "points p0_x .. p67_y, or a folder of images with iBUG .pts files) and pass the run "
             "folder, or its `facekeypoints export` file, as the model (or set "
             "FACEKEYPOINTS_MODEL to it):") +
        f"\n\n    facekeypoints train --recipe {RECIPE} --data {own} --out runs/mine"
        "\n    facekeypoints detect photo.jpg --model runs/mine",
        wrap(f"uncertainty.json, apart from the model's files: the calibration of each "
             f"keypoint's uncertainty (docs/uncertainty.md), fitted on the 487 faces of the 40 "
             f"test people in ../shared/data/photos/youtube "
             f"({'keypoints15.csv' if name == 'builtin' else 'landmarks68.csv'}), none of them "
             f"among the people the model was fitted on. A refit removes it (it belongs to the "
             f"model it was calibrated for); remake it with python "
             f"tools/calibrate_uncertainty.py --name {name}."),
        wrap("The code that fitted it is licensed with this project, under its MIT licence."),
    ]) + "\n"


def make(name: str, target: Path, run: Path | None = None, epochs: int | None = None,
         limit: int | None = None) -> dict[str, object]:
    """Fit, export, check and record one built-in model in `target`; what it measured."""
    from facekeypoints.stored.recipe import load as load_recipe

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = training_file(name, work, limit)
        folder = fit(data, run or work / "run", epochs)
        staging = work / "export"
        export(folder, staging)
        from facekeypoints.data.kaggle import load_test

        gap = litert_gap_px(staging, load_test(TEST)[1][:64])
        if any(gap[k] > TOLERANCE_PX[k] for k in gap):
            raise SystemExit(f"{name}: LiteRT and ONNX Runtime differ by {gap} px (at most "
                             f"{TOLERANCE_PX})")
        rmse = test_rmse(staging / "model.onnx")
        target.mkdir(parents=True, exist_ok=True)
        for old in target.iterdir():
            if old.name not in SHIPPED and old.name != "NOTICE":
                old.unlink()  # the `mesh` recipe's heads, from before
        for file in SHIPPED:
            shutil.copyfile(staging / file, target / file)
        digests = {f: sha256(target / f) for f in SHIPPED}
        done = load_recipe(str(folder / "recipe.toml")).epochs
        (target / "NOTICE").write_text(notice(name, rmse, digests, done, limit, gap))
    return {"rmse_px": rmse, "litert_gap_px": gap, "epochs": done,
            "sizes": {f: (target / f).stat().st_size for f in SHIPPED}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", choices=sorted(POINTS), default="builtin")
    parser.add_argument("--epochs", type=int, help="default: the recipe's (20)")
    parser.add_argument("--run", type=Path, help="keep the run folder here (a finished one is "
                        "reused)")
    parser.add_argument("--limit", type=int, help="fit on the first N rows only (a check)")
    parser.add_argument("--out", type=Path, help="default: the package's pretrained/NAME")
    args = parser.parse_args()
    made = make(args.name, args.out or PRETRAINED / args.name, args.run, args.epochs, args.limit)
    print(f"{args.name}: {made}", file=sys.stderr)


if __name__ == "__main__":
    main()
