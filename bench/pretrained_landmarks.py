"""What a landmark model trained on many more faces adds: dlib's 68 points, mapped by ridge.

    pip install dlib-bin face_recognition_models    # the pretrained model (not a dependency)
    python bench/pretrained_landmarks.py --run runs/fast

On the people the run held out (its own recipe's split of ../shared/data/faces) and on the
Kaggle test people (lookup rows against solution.csv): the run's net (with its test-time
flips), dlib's 68-point shape predictor (trained on the 300-W faces; its licence excludes
commercial use) on the same 96x96 crops, its 68 points mapped to the 15 by a ridge regression
fit on the run's training labels (so it learns the labels' own conventions), and the average of
the two. dlib gets a fixed square box centred on the mean face, its size picked on training
faces, and the average of four views (the face and its mirror image, and boxes 6 px larger and
smaller); crops are upscaled 4x because it places points on whole pixels.
Writes bench/results/pretrained_landmarks.csv.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from common import FACES, RESULTS, write_table
from photos_vs_dlib import to_15

from facekeypoints import keypoints

UPSCALE = 4
# iBUG-68 index of each point's mirror image: jaw, brows, nose, eyes, mouth
MIRROR68 = [*range(16, -1, -1), *range(26, 16, -1), 27, 28, 29, 30, 35, 34, 33, 32, 31,
            45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40,
            54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55, 64, 63, 62, 61, 60, 67, 66, 65]


class Dlib68:
    def __init__(self) -> None:
        import dlib
        import face_recognition_models

        self.dlib = dlib
        model = face_recognition_models.pose_predictor_model_location()
        self.predictor = dlib.shape_predictor(model)

    def __call__(self, faces: np.ndarray, centre: tuple[float, float], size: float,
                 mirror: bool = False) -> np.ndarray:
        """68 (x, y) points per face, in 96x96 pixels."""
        import cv2

        u, (cx, cy) = UPSCALE, centre
        box = self.dlib.rectangle(*(round(v * u) for v in (cx - size / 2, cy - size / 2,
                                                           cx + size / 2, cy + size / 2)))
        out = []
        for face in faces:
            grey = (face[..., 0] * 255).round().astype(np.uint8)
            if mirror:
                grey = np.ascontiguousarray(grey[:, ::-1])
            big = cv2.resize(grey, (96 * u, 96 * u), interpolation=cv2.INTER_CUBIC)
            points = np.array([(p.x, p.y) for p in self.predictor(big, box).parts()], float)
            points = (points + 0.5) / u - 0.5
            if mirror:
                points = points[MIRROR68]
                points[:, 0] = 95 - points[:, 0]
            out.append(points)
        return np.array(out).reshape(len(faces), 68, 2)


def rmse(y: np.ndarray, p: np.ndarray) -> float:
    known = ~np.isnan(y)
    return float(np.sqrt(np.mean((y[known] - p[known]) ** 2)))


def ridge(features: np.ndarray, y: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """Weights (with a bias row) per target column, fit on the rows where it is labelled."""
    a = np.c_[features, np.ones(len(features))]
    w = np.zeros((a.shape[1], y.shape[1]))
    for j in range(y.shape[1]):
        known = ~np.isnan(y[:, j])
        w[:, j] = np.linalg.solve(a[known].T @ a[known] + alpha * np.eye(a.shape[1]),
                                  a[known].T @ y[known, j])
    return w


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, type=Path, help="a training run folder")
    parser.add_argument("--out", default=str(RESULTS / "pretrained_landmarks.csv"))
    args = parser.parse_args()

    from facekeypoints import data
    from facekeypoints.inference import loading, submission
    from facekeypoints.keypoints import COLUMNS
    from facekeypoints.quiet_import import quiet_keras
    from facekeypoints.training.runs import RunFolder

    quiet_keras()
    recipe = RunFolder(args.run).load_recipe()
    train_set, val_set = data.prepare_data(recipe, FACES / "training.csv.gz")
    test_ids, test_X = data.load_test(FACES / "test.csv.gz")
    y_train, y_val = keypoints.unscale(train_set.y), keypoints.unscale(val_set.y)
    net = loading.load(args.run)

    # Kaggle's terms on the test people: the lookup table's rows against solution.csv
    lookup = data.load_lookup(FACES / "IdLookupTable.csv", known_ids=test_ids)
    solution = submission.read_locations(FACES / "solution.csv").loc[lookup["RowId"]].to_numpy()

    def kaggle_rmse(pred: np.ndarray) -> float:
        located = submission.lookup_locations(lookup, test_ids, COLUMNS, pred)
        return rmse(solution, located["Location"].to_numpy())

    dlib68 = Dlib68()
    centre = tuple(np.nanmean(y_train.reshape(-1, 15, 2), axis=(0, 1)))
    sample = train_set.X[:300]

    def fixed_map(points68: np.ndarray) -> np.ndarray:
        return np.array([to_15(p) for p in points68]).reshape(len(points68), 30)

    size = min(range(56, 84, 4),
               key=lambda s: rmse(y_train[:300], fixed_map(dlib68(sample, centre, s))))
    views = [(size, False), (size, True), (size + 6, False), (size - 6, False)]
    start = time.perf_counter()
    feats = [np.mean([dlib68(x, centre, s, m) for s, m in views], axis=0).reshape(len(x), 136)
             for x in (train_set.X, val_set.X, test_X)]
    ms = 1000 * (time.perf_counter() - start) / sum(map(len, feats)) / len(views)
    w = ridge(feats[0], y_train)
    results = {}
    for name, X, f in (("val", val_set.X, feats[1]), ("test", test_X, feats[2])):
        ours = net.predict(X) if len(X) else np.zeros((0, 30))
        mapped = np.clip(np.c_[f, np.ones(len(f))] @ w, 0, 95)
        results[name] = [ours, fixed_map(f.reshape(-1, 68, 2)), mapped, (ours + mapped) / 2]

    methods = [f"{recipe.name} net ({args.run.name})", "dlib 68-point, iBUG points as labelled",
               "dlib 68-point + ridge map", "average of the net and dlib + ridge"]
    rows = []
    for i, method in enumerate(methods):
        rows.append({"method": method,
                     "val_rmse_px": round(rmse(y_val, results["val"][i]), 3) if len(val_set)
                     else "", "kaggle_test_rmse_px": round(kaggle_rmse(results["test"][i]), 3)})
    print(f"{len(val_set)} held-out faces, {len(test_ids)} test faces; dlib box {size} px around "
          f"{np.round(centre, 1)}, {ms:.1f} ms per face and view")
    write_table(rows, args.out)


if __name__ == "__main__":
    main()
