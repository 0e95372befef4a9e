"""Transfer learning from a face model that has seen far more people than our 237.

MediaPipe's face mesh (Apache-2.0; `pretrained/face_mesh.onnx`, converted by
tools/convert_face_mesh.py) places 468 points on a face. It stays frozen; a ridge regression, the
"head", maps its points to the 15 Kaggle keypoints and is fitted on the user's labels, each
keypoint on every row where it is labelled. The head trains in seconds, so a `mesh` run is one
pass: mesh points for every face (checkpointed), then the fit.

The mesh sees each 96x96 face with a replicated border (it was trained on looser crops) at
192x192 in RGB. Where it finds no face (its face score below 0.5) the head still predicts from
the points it gave; the run's summary counts those faces, and `fk.average` gives them to the
other model alone.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from .data import prepare_data, unscale
from .data import scale as scale_keypoints
from .errors import UserError
from .evaluation import rmse_pixels
from .files import atomic_write, atomic_write_text
from .keypoints import IMAGE_SIZE, MIRROR_X, flip_permutation, mirror_keypoints, x_mask
from .predict import Predictor
from .progress import Progress
from .recipe import Recipe
from .runs import HISTORY_FIELDS, RunFolder, write_data_info

MESH_INPUT = 192
POINTS = 468
BORDER = 24  # pixels of replicated border around the 96x96 face: the mesh's own framing
PHOTO_COPIES = 3  # loosely re-framed copies of each training face for the photo head
# As loosely as a face detector frames faces (degrees, px, relative; as recipes/mesh.toml):
# where measure_mirror_axis frames faces so that no head can read their position in the crop.
LOOSE_FRAMING = {"rotate": 15.0, "shift": 8.0, "zoom": 0.15}


def model_path() -> Path:
    return Path(str(resources.files("facekeypoints") / "pretrained" / "face_mesh.onnx"))


class FaceMesh:
    """The frozen backbone: faces (N, 96, 96, 1) in [0, 1] -> points (N, 468, 2) in the face's
    pixels, and the mesh's face score (N,) in [0, 1]."""

    _session = None

    def __init__(self) -> None:
        if FaceMesh._session is None:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.log_severity_level = 3
            FaceMesh._session = ort.InferenceSession(str(model_path()), options,
                                                     providers=["CPUExecutionProvider"])
        self.session = FaceMesh._session
        self.input = self.session.get_inputs()[0].name

    def __call__(self, X: np.ndarray, progress: str | bool = False) -> tuple[np.ndarray,
                                                                             np.ndarray]:
        points = np.empty((len(X), POINTS, 2), np.float32)
        scores = np.empty(len(X), np.float32)
        side = IMAGE_SIZE + 2 * BORDER
        with Progress(len(X), "face mesh", "face", mode=progress, every=10.0) as bar:
            for i, face in enumerate(np.asarray(X, np.float32)[..., 0]):
                framed = cv2.copyMakeBorder(face, BORDER, BORDER, BORDER, BORDER,
                                            cv2.BORDER_REPLICATE)
                image = cv2.resize(framed, (MESH_INPUT, MESH_INPUT),
                                   interpolation=cv2.INTER_LINEAR)
                rgb = np.repeat(image[None, :, :, None], 3, axis=3)
                raw, score = self.session.run(None, {self.input: rgb})
                # mesh pixels (pixel centres at integers + 0.5 in its own convention) -> ours
                points[i] = raw.reshape(POINTS, 3)[:, :2] * (side / MESH_INPUT) - BORDER
                scores[i] = 1 / (1 + np.exp(-float(np.ravel(score)[0])))
                bar.update(1)
        return points, scores


class Similarity:
    """Per face, the scale, rotation and shift that best put its mesh on the reference mesh
    (least squares; as complex numbers, z -> a (z - centre) + ref_centre)."""

    def __init__(self, points: np.ndarray, reference: np.ndarray):
        z = points[..., 0] + 1j * points[..., 1]
        ref = reference[:, 0] + 1j * reference[:, 1]
        self.centre, self.ref_centre = z.mean(axis=1, keepdims=True), ref.mean()
        zc = z - self.centre
        self.a = (np.conj(zc) * (ref - self.ref_centre)).sum(axis=1, keepdims=True) \
            / (np.abs(zc) ** 2).sum(axis=1, keepdims=True)

    def to_reference(self, xy: np.ndarray) -> np.ndarray:
        z = self.a * (xy[..., 0] + 1j * xy[..., 1] - self.centre) + self.ref_centre
        return np.stack([z.real, z.imag], axis=-1)

    def to_crop(self, xy: np.ndarray) -> np.ndarray:
        z = (xy[..., 0] + 1j * xy[..., 1] - self.ref_centre) / self.a + self.centre
        return np.stack([z.real, z.imag], axis=-1)


class MeshHead:
    """Mesh points -> keypoints: ridge regression per keypoint column on the standardised
    points, fitted on the rows where that column is labelled. `reference` is the mean mesh of
    the training faces: where training faces sit in their crops."""

    def __init__(self, reference: np.ndarray, mean: np.ndarray, scale: np.ndarray,
                 weights: np.ndarray, bias: np.ndarray, mirror_axis=MIRROR_X):
        self.reference, self.mean, self.scale = reference, mean, scale
        self.weights, self.bias = weights, bias
        self.mirror_axis = np.broadcast_to(np.asarray(mirror_axis, np.float64), bias.shape)

    @classmethod
    def fit(cls, points: np.ndarray, y: np.ndarray, alpha: float) -> MeshHead:
        """`points` (N, 468, 2) crop pixels; `y` (N, C) scaled keypoints, NaN where missing."""
        F = _features(points)
        mean, scale = F.mean(axis=0), F.std(axis=0) + 1e-8
        A = (F - mean) / scale
        weights = np.zeros((F.shape[1], y.shape[1]))
        bias = np.zeros(y.shape[1])
        ridge = alpha * np.eye(F.shape[1])
        for j in range(y.shape[1]):
            rows = ~np.isnan(y[:, j])
            if rows.sum() < 2:
                raise UserError(f"column {j}: fewer than two labelled faces to fit the head on")
            bias[j] = y[rows, j].mean()
            weights[:, j] = np.linalg.solve(A[rows].T @ A[rows] + ridge,
                                            A[rows].T @ (y[rows, j] - bias[j]))
        return cls(points.mean(axis=0), mean, scale, weights, bias)

    def __call__(self, points: np.ndarray) -> np.ndarray:
        """Scaled keypoints (N, C) for mesh points (N, 468, 2)."""
        return (((_features(points) - self.mean) / self.scale) @ self.weights
                + self.bias).astype(np.float32)

    def save(self, path: Path) -> None:
        atomic_write(path, lambda tmp: np.savez(
            tmp, reference=self.reference, mean=self.mean, scale=self.scale,
            weights=self.weights, bias=self.bias, mirror_axis=self.mirror_axis), suffix=".npz")

    @classmethod
    def load(cls, path: Path) -> MeshHead:
        with np.load(path) as f:  # runs from before the axis was measured mirror about MIRROR_X
            axis = f["mirror_axis"] if "mirror_axis" in f.files else MIRROR_X
            return cls(f["reference"], f["mean"], f["scale"], f["weights"], f["bias"], axis)


def _features(points: np.ndarray) -> np.ndarray:
    return np.asarray(points, np.float64).reshape(len(points), -1)


class PhotoHead(MeshHead):
    """The head for faces cut from photographs. The Kaggle-format faces were each scaled and
    shifted onto the mean shape, so where a face sits in its crop tells the plain head about
    the labels; a detector's crop carries no such hint, and a face larger, smaller, turned or
    moved in it must move its keypoints along. This head works in the frame that puts each
    mesh on the reference mesh (Similarity), so it is equivariant by construction."""

    @classmethod
    def fit(cls, points: np.ndarray, y: np.ndarray, alpha: float) -> PhotoHead:
        reference = points.mean(axis=0)
        frame = Similarity(points, reference)
        target = frame.to_reference(unscale(y).reshape(len(y), -1, 2)).reshape(len(y), -1)
        head = MeshHead.fit(frame.to_reference(points), scale_keypoints(target), alpha)
        return cls(reference, head.mean, head.scale, head.weights, head.bias, head.mirror_axis)

    def __call__(self, points: np.ndarray) -> np.ndarray:
        frame = Similarity(points, self.reference)
        framed = unscale(super().__call__(frame.to_reference(points)))
        return scale_keypoints(frame.to_crop(framed.reshape(len(points), -1, 2))
                               .reshape(len(points), -1))


class MeshPredictor(Predictor):
    """Face mesh + head as one predictor: what evaluate, submit, detect and the API take. It
    needs no TensorFlow (ONNX Runtime and NumPy)."""

    def __init__(self, head: MeshHead, columns: list[str], tta: bool, name: str,
                 photo_head: PhotoHead):
        super().__init__(None, columns, tta, name)
        self.head, self.photo_head, self.mesh = head, photo_head, FaceMesh()
        self.mirror_axis = head.mirror_axis
        self.photos = False
        self.last_scores: np.ndarray | None = None

    def run(self, X: np.ndarray) -> np.ndarray:
        points, self.last_scores = self.mesh(X)
        return (self.photo_head if self.photos else self.head)(points)

    def for_photos(self) -> MeshPredictor:
        """The same model with the head for crops cut from photographs (see PhotoHead)."""
        twin = MeshPredictor(self.head, self.columns, self.tta, self.name, self.photo_head)
        twin.photos, twin.mirror_axis = True, self.photo_head.mirror_axis
        return twin


def train(recipe: Recipe, data_path: str | Path, out: str | Path,
          log: Callable[[str], None] = print, progress: str | bool = "auto") -> RunFolder:
    """Mesh points for every training and held-out face (kept in the run folder, so a killed
    run does not compute them again), the head fitted, the run folder written."""
    run = RunFolder(Path(out))
    resume = (run.path / "recipe.toml").is_file()
    if run.path.exists() and any(run.path.iterdir()) and not resume:
        raise UserError(f"--out {run.path}: folder exists and is not empty; choose another")
    train_set, val_set = prepare_data(recipe, data_path)
    run.path.mkdir(parents=True, exist_ok=True)
    if not resume:
        atomic_write_text(run.recipe, recipe.to_toml())
        write_data_info(run, data_path, recipe.columns, train_set, val_set)
    log(f"training {recipe.name}: face mesh on {len(train_set)} faces (and their mirror images)"
        f", head on every label; validating on {len(val_set)}; run folder {run.path}")
    start = time.perf_counter()
    mesh = FaceMesh()
    cache = run.checkpoint / "mesh_points.npz"
    if cache.is_file():
        with np.load(cache) as f:
            points, scores = f["points"], f["scores"]
        log(f"resuming {run.path}: mesh points read from {cache}")
    else:
        faces = [train_set.X, val_set.X]
        if recipe.flip:
            faces.append(np.ascontiguousarray(train_set.X[:, :, ::-1, :]))
        points, scores = mesh(np.concatenate(faces), progress)
        run.checkpoint.mkdir(exist_ok=True)
        atomic_write(cache, lambda tmp: np.savez(tmp, points=points, scores=scores),
                     suffix=".npz")
    n, m = len(train_set), len(val_set)
    P, y = points[:n], train_set.y
    photo_points, photo_y = P, y
    if recipe.rotate or recipe.shift or recipe.zoom:
        photo_points, photo_y = _reframed_points(recipe, train_set, mesh, run, log, progress)
    axis = photo_axis = np.full(len(recipe.columns), float(MIRROR_X))
    if recipe.flip:  # the mirror images, with their keypoints mirrored and left/right swapped
        mirrored = points[n + m:]
        if len(photo_points) == len(photo_y):  # no re-framed copies: the faces as they are
            photo_points = np.concatenate([photo_points, mirrored])
        half = len(photo_y)
        if recipe.mirror == "measured":
            axis = mirror_axis(MeshHead, P, y, mirrored, recipe.columns, recipe.ridge)
            photo_axis = mirror_axis(PhotoHead, photo_points[:half], photo_y,
                                     photo_points[half:], recipe.columns, recipe.ridge)
        is_x = x_mask(recipe.columns)
        log(f"{recipe.name}: the labels' x mirrors about {np.mean(axis[is_x]):.2f} for the head, "
            f"{np.mean(photo_axis[is_x]):.2f} for the photo head ({recipe.mirror}; the "
            f"pixel-centre convention puts it at {MIRROR_X})")
        P = np.concatenate([P, mirrored])
        y = np.concatenate([y, mirrored_labels(y, recipe.columns, axis)])
        photo_y = np.concatenate([photo_y, mirrored_labels(photo_y, recipe.columns, photo_axis)])
    head = MeshHead.fit(P, y, recipe.ridge)
    photo_head = PhotoHead.fit(photo_points, photo_y, recipe.ridge)
    head.mirror_axis, photo_head.mirror_axis = axis, photo_axis
    photo_head.save(run.path / "photo_head.npz")
    head.save(run.path / "head.npz")
    train_pred = head(points[:n])
    val_pred = head(points[n:n + m])
    seconds = time.perf_counter() - start
    row = {"epoch": 1,
           "train_loss": float(np.nanmean((train_pred - train_set.y) ** 2)),
           "val_loss": float(np.nanmean((val_pred - val_set.y) ** 2)) if m else float("nan"),
           "val_rmse": rmse_pixels(val_set.y, val_pred) if m else float("nan"),
           "learning_rate": 0.0, "momentum": 0.0, "seconds": seconds, "elapsed": seconds}
    atomic_write_text(run.history, ",".join(HISTORY_FIELDS) + "\n" + ",".join(
        str(row[k]) if k == "epoch" else f"{row[k]:.6g}" for k in HISTORY_FIELDS) + "\n")
    no_face = int((scores[:n + m] < 0.5).sum())
    atomic_write_text(run.path / "summary.json", json.dumps({
        "epoch": 1, "elapsed": seconds, "best_epoch": 1, "best_val_loss": row["val_loss"],
        "best_val_rmse": row["val_rmse"], "faces_without_mesh_face": no_face,
        "faces": n + m}, indent=1))
    log(f"{recipe.name}: validation RMSE {row['val_rmse']:.3f} px (no flip TTA) in "
        f"{seconds:.0f} s; the mesh found no face in {no_face} of {n + m} faces")
    return run


def mirrored_labels(y: np.ndarray, columns: list[str], axis=MIRROR_X) -> np.ndarray:
    """Scaled labels of the mirror images: mirrored, left and right swapped, missing kept."""
    perm = flip_permutation(columns)
    mirrored = mirror_keypoints(np.nan_to_num(y), perm, x_mask(columns), axis=axis)
    mirrored[np.isnan(y[:, perm])] = np.nan
    return mirrored


def mirror_axis(head: type[MeshHead], points: np.ndarray, y: np.ndarray,
                mirrored_points: np.ndarray, columns: list[str], alpha: float) -> np.ndarray:
    """Where each column's x mirrors for this kind of head, measured: the head fitted on the
    faces as they are predicts their mirror images, and the labels' own convention comes along.
    Labels that follow the pixel-centre convention mirror about MIRROR_X; labels counted from 1
    (as our source's seem to be) sit about a pixel right of it, and mirroring about MIRROR_X
    would teach a flip-trained head half of that offset the wrong way, for every face. The plain
    head also reads where a face sits in its crop, which mirroring moves, so each head measures
    its own. A left/right pair shares its axis."""
    predicted = unscale(head.fit(points, y, alpha)(mirrored_points))
    perm = flip_permutation(columns)
    axis = np.nanmedian(predicted + unscale(y)[:, perm], axis=0)
    axis = (axis + axis[perm]) / 2
    return np.where(x_mask(columns), axis, MIRROR_X)


def reframe(X: np.ndarray, y: np.ndarray, rng: np.random.Generator, rotate: float,
            shift: float, zoom: float) -> tuple[np.ndarray, np.ndarray]:
    """Each face turned, moved and scaled at random about its centre (edges replicated), its
    keypoints (pixels, NaN where missing) moved along: crops framed as loosely as a detector
    frames faces, so that where a face sits in its crop no longer tells where its keypoints are."""
    n = len(X)
    angle = np.deg2rad(rng.uniform(-rotate, rotate, n))
    size = rng.uniform(1 - zoom, 1 + zoom, n)
    move = rng.uniform(-shift, shift, (n, 2))
    centre = np.array([IMAGE_SIZE / 2 - 0.5] * 2)
    out_X, out_y = np.empty_like(X), np.empty_like(y)
    for i in range(n):
        c, s = size[i] * np.cos(angle[i]), size[i] * np.sin(angle[i])
        linear = np.array([[c, -s], [s, c]])
        matrix = np.hstack([linear, (centre - linear @ centre + move[i])[:, None]])
        out_X[i, ..., 0] = cv2.warpAffine(X[i, ..., 0], matrix, (IMAGE_SIZE, IMAGE_SIZE),
                                          flags=cv2.INTER_LINEAR,
                                          borderMode=cv2.BORDER_REPLICATE)
        out_y[i] = (y[i].reshape(-1, 2) @ linear.T + matrix[:, 2]).reshape(-1)
    return out_X, out_y


def measure_mirror_axis(faces, columns: list[str], seed: int, progress: str | bool = False,
                        ridge: float = 0.3) -> np.ndarray:
    """`mirror_axis` for any flip-trained model, with the mesh as the measuring instrument: the
    faces framed loosely (so the head cannot read a position prior) and their mirror images."""
    X, y = reframe(faces.X, unscale(faces.y), np.random.default_rng(seed), **LOOSE_FRAMING)
    points, mirrored = _points_and_mirrors(FaceMesh(), X, progress)
    return mirror_axis(PhotoHead, points, scale_keypoints(y), mirrored, columns, ridge)


def _points_and_mirrors(mesh: FaceMesh, X: np.ndarray, progress) -> tuple[np.ndarray,
                                                                          np.ndarray]:
    """Mesh points of the faces and of their mirror images."""
    points, _ = mesh(X, progress)
    mirrored, _ = mesh(np.ascontiguousarray(X[:, :, ::-1, :]), progress)
    return points, mirrored


def _reframed_points(recipe: Recipe, train_set, mesh: FaceMesh, run: RunFolder,
                     log: Callable[[str], None], progress) -> tuple[np.ndarray, np.ndarray]:
    """Mesh points and keypoints of PHOTO_COPIES loosely re-framed copies of every training face
    (cached in the run's checkpoint folder): the photo head's data. With `flip`, the points of
    their mirror images follow those of the copies; the labels are the copies' only."""
    cache = run.checkpoint / "mesh_points_photo.npz"
    if cache.is_file():
        with np.load(cache) as f:
            return f["points"], f["y"]
    rng = np.random.default_rng(recipe.seed)
    faces = np.concatenate([train_set.X] * PHOTO_COPIES)
    labels = np.concatenate([unscale(train_set.y)] * PHOTO_COPIES)
    X, y = reframe(faces, labels, rng, recipe.rotate, recipe.shift, recipe.zoom)
    y = scale_keypoints(y)
    log(f"{recipe.name}: the photo head's faces, {PHOTO_COPIES} loosely framed copies of each "
        f"(rotate {recipe.rotate:g} degrees, shift {recipe.shift:g} px, zoom {recipe.zoom:g})")
    if recipe.flip:
        points = np.concatenate(_points_and_mirrors(mesh, X, progress))
    else:
        points, _ = mesh(X, progress)
    atomic_write(cache, lambda tmp: np.savez(tmp, points=points, y=y), suffix=".npz")
    return points, y


def load(run: RunFolder, recipe: Recipe) -> MeshPredictor:
    head = run.path / "head.npz"
    if not head.is_file():
        raise UserError(f"{run.path}: the mesh run has no head.npz yet (resume it with "
                        f"facekeypoints train --out {run.path} --resume)")
    return MeshPredictor(MeshHead.load(head), recipe.columns, recipe.tta, recipe.name,
                         PhotoHead.load(run.path / "photo_head.npz"))

