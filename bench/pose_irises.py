"""Head pose, the irises and what they cost, on the 487 youtube photos (one face each, people
held out of every fit).

    /tmp/mpvenv/bin/python bench/mediapipe_anchor.py --all ../shared/data/photos/youtube/*.jpg \
        > /tmp/mesh.json
    python bench/pose_irises.py [--repeats 5] [--mediapipe /tmp/mesh.json]

- pose: each photo turned by +25 and -25 degrees (counter-clockwise, OpenCV's sense, edges
  replicated) and mirrored; how much `roll` turns (aim: 25 +- 3), and |yaw + mirrored yaw|
  where |yaw| >= 8 (aim: median <= 3 degrees); the built-in model (the tuned mesh: a fit of
  the mean face to its 2D points) and mesh468 (the frozen mesh's 3D points);
- eye centres: the built-in model's, mesh478's pupils (m473 the subject's left, m468 the right)
  and the mean of mesh468's 16 eye contour points, each against keypoints15.csv's eye centres
  (which the youtube set derives from its 68 points: the mean of each eye's six contour
  points, not the pupil), as % of the true eye distance;
- cost: the built-in model's whole pipeline (`Landmarker.detect`) a face with pose and without
  (the model told it keeps no mesh: the pipeline as before), alternating photo by photo,
  --repeats rounds; ms a face, medians.

- beside MediaPipe (`--mediapipe mesh.json`, written by bench/mediapipe_anchor.py --all in
  MediaPipe's own environment): its FaceLandmarker's transformation matrix needs a `.task`
  bundle that is not here, so its pose is the same fit (mesh/pose.py) of its own 468 points
  from its full pipeline (whole photo in); the differences in yaw, pitch and roll from ours, and
  its iris centres against ours and against the truth.

Writes bench/results/pose_irises.csv (pose and eye rows) and pose_irises_time.csv.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from common import PHOTOS, RESULTS, write_table

YOUTUBE = PHOTOS / "youtube"


def turned(rgb: np.ndarray, degrees: float) -> np.ndarray:
    h, w = rgb.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return cv2.warpAffine(rgb, matrix, (w, h), borderMode=cv2.BORDER_REPLICATE)


def one_face(landmarker, rgb: np.ndarray):
    """The best scored face, or None."""
    result = landmarker.detect(rgb)
    return max(result, key=lambda f: f.box.score) if len(result) else None


def spread(values: list[float]) -> str:
    q = np.percentile(values, [25, 50, 75])
    return f"{q[1]:.1f} (IQR {q[0]:.1f} to {q[2]:.1f})"


def pose_rows(landmarker, photos: list, label: str) -> list[dict]:
    from facekeypoints.photos import read_photo

    turns: dict[int, list[float]] = {25: [], -25: []}
    other: list[float] = []  # yaw and pitch moves under a turn
    flips, rolls_flipped, missed = [], [], 0
    for path in photos:
        rgb = read_photo(path)
        face = one_face(landmarker, rgb)
        if face is None:
            missed += 1
            continue
        yaw, pitch, roll = face.pose
        for degrees in turns:
            f = one_face(landmarker, turned(rgb, degrees))
            if f is not None:
                turns[degrees].append(f.pose[2] - roll)
                other += [abs(f.pose[0] - yaw), abs(f.pose[1] - pitch)]
        m = one_face(landmarker, np.ascontiguousarray(rgb[:, ::-1]))
        if m is not None:
            rolls_flipped.append(abs(m.pose[2] + roll))
            if abs(yaw) >= 8:
                flips.append(abs(m.pose[0] + yaw))
    rows = []
    for degrees, moved in turns.items():
        within = np.mean(np.abs(np.array(moved) - degrees) <= 3)
        rows.append({"model": label,
                     "measure": f"roll change, photo turned {degrees:+d} degrees",
                     "faces": len(moved), "median (IQR)": spread(moved),
                     "within 3 degrees of the aim": f"{100 * within:.0f}%"})
    rows.append({"model": label, "measure": "|yaw or pitch change| under a turn",
                 "faces": len(other) // 2,
                 "median (IQR)": spread(other), "within 3 degrees of the aim":
                 f"{100 * np.mean(np.array(other) <= 3):.0f}%"})
    rows.append({"model": label, "measure": "|yaw + mirrored yaw|, faces with |yaw| >= 8",
                 "faces": len(flips),
                 "median (IQR)": spread(flips), "within 3 degrees of the aim":
                 f"{100 * np.mean(np.array(flips) <= 3):.0f}%"})
    rows.append({"model": label, "measure": "|roll + mirrored roll|", "faces": len(rolls_flipped),
                 "median (IQR)": spread(rolls_flipped), "within 3 degrees of the aim":
                 f"{100 * np.mean(np.array(rolls_flipped) <= 3):.0f}%"})
    print(f"no face found in {missed} photo(s)")
    return rows


def eye_rows(landmarkers: dict, photos: list) -> list[dict]:
    from facekeypoints import schemes
    from facekeypoints.photos import read_photo

    truth = pd.read_csv(YOUTUBE / "keypoints15.csv").set_index("file")
    mesh = schemes.builtin("mesh468")
    errors: dict[str, list[float]] = {k: [] for k in ("built-in model's eye centres",
                                                      "mesh478's pupils",
                                                      "mesh468's eye contour means")}
    for path in photos:
        if path.name not in truth.index:
            continue
        row = truth.loc[path.name]
        eyes = np.array([[row.left_eye_center_x, row.left_eye_center_y],
                         [row.right_eye_center_x, row.right_eye_center_y]])
        distance = np.linalg.norm(eyes[0] - eyes[1])
        rgb = read_photo(path)
        builtin, irises = (one_face(landmarkers[k], rgb) for k in ("builtin", "mesh478"))
        if builtin is None or irises is None:
            continue
        index = {k: i for i, k in enumerate(builtin.names)}
        found = {"built-in model's eye centres": builtin.keypoints[
                     [index["left_eye_center"], index["right_eye_center"]]],
                 "mesh478's pupils": irises.keypoints[[473, 468]],
                 "mesh468's eye contour means": mesh.eye_centres(irises.keypoints[:468])}
        for k, points in found.items():
            errors[k].append(100 * np.linalg.norm(points - eyes, axis=1).mean() / distance)
    return [{"measure": f"eye centre error: {k}", "faces": len(v),
             "median (IQR)": spread(v), "mean": f"{np.mean(v):.2f}"} for k, v in errors.items()]


def mediapipe_rows(landmarkers: dict, photos: list, found: dict) -> list[dict]:
    """Ours beside MediaPipe's full pipeline, photo by photo where both find one face."""
    from facekeypoints.mesh.pose import head_pose
    from facekeypoints.photos import read_photo

    truth = pd.read_csv(YOUTUBE / "keypoints15.csv").set_index("file")
    moves: dict[str, list[float]] = {k: [] for k in ("yaw", "pitch", "roll")}
    pupils, theirs_error = [], []
    for path in photos:
        faces = found.get(path.name, {}).get("faces", [])
        if len(faces) != 1 or path.name not in truth.index:
            continue
        mesh = np.array(faces[0]["mesh"])
        rgb = read_photo(path)
        ours, irises = (one_face(landmarkers[k], rgb) for k in ("builtin", "mesh478"))
        if ours is None or irises is None:
            continue
        for k, a, b in zip(moves, ours.pose, head_pose(mesh[None, :468])[0], strict=True):
            moves[k].append(a - b)
        row = truth.loc[path.name]
        eyes = np.array([[row.left_eye_center_x, row.left_eye_center_y],
                         [row.right_eye_center_x, row.right_eye_center_y]])
        distance = np.linalg.norm(eyes[0] - eyes[1])
        theirs = mesh[[473, 468], :2]
        pupils.append(100 * np.linalg.norm(irises.keypoints[[473, 468]] - theirs,
                                           axis=1).mean() / distance)
        theirs_error.append(100 * np.linalg.norm(theirs - eyes, axis=1).mean() / distance)
    rows = [{"measure": f"ours - MediaPipe's (same fit on its points): {k}", "faces": len(v),
             "median (IQR)": spread(v), "mean": f"{np.mean(np.abs(v)):.2f} (mean |difference|)"}
            for k, v in moves.items()]
    rows.append({"measure": "mesh478's pupils from MediaPipe's (% eye distance)",
                 "faces": len(pupils), "median (IQR)": spread(pupils),
                 "mean": f"{np.mean(pupils):.2f}"})
    rows.append({"measure": "eye centre error: MediaPipe's own iris centres",
                 "faces": len(theirs_error), "median (IQR)": spread(theirs_error),
                 "mean": f"{np.mean(theirs_error):.2f}"})
    return rows


def time_rows(landmarker, photos: list, repeats: int) -> list[dict]:
    """ms a face of the whole pipeline with pose and without (the model told it gives no mesh:
    the pipeline as it was, no mesh kept, mirrored back or fitted), alternating photo by
    photo."""
    from facekeypoints.photos import read_photo

    model = landmarker.pipeline.model
    with_mesh = model.run_3d

    def without_mesh(X):  # the model's own call, its mesh points dropped: no pose follows
        return (*with_mesh(X)[:2], None)

    images = [read_photo(p) for p in photos]
    rounds: dict[str, list[float]] = {"with pose": [], "without pose": []}
    for _ in range(repeats):
        spent = {k: 0.0 for k in rounds}
        faces = {k: 0 for k in rounds}
        for rgb in images:
            for label, mesh in (("without pose", False), ("with pose", True)):
                model.run_3d = with_mesh if mesh else without_mesh
                t0 = time.perf_counter()
                faces[label] += len(landmarker.detect(rgb))
                spent[label] += time.perf_counter() - t0
        for k in rounds:
            rounds[k].append(1000 * spent[k] / max(1, faces[k]))
    model.run_3d = with_mesh
    base = statistics.median(rounds["without pose"])
    return [{"pipeline": f"built-in model, {k}", "ms a face (median)":
             f"{statistics.median(v):.2f}", "rounds": " ".join(f"{x:.2f}" for x in v),
             "against without": f"{statistics.median(v) / base:.3f}"}
            for k, v in rounds.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--limit", type=int, default=None, help="the first N photos only")
    parser.add_argument("--mediapipe", type=Path, help="bench/mediapipe_anchor.py --all's JSON")
    args = parser.parse_args()
    import facekeypoints as fk

    photos = sorted(YOUTUBE.glob("*.jpg"))[:args.limit]
    landmarkers = {"builtin": fk.Landmarker(), "mesh478": fk.Landmarker("mesh478")}
    rows = [row for label, landmarker in (("builtin", landmarkers["builtin"]),
                                          ("builtin --fast", fk.Landmarker(fast=True)),
                                          ("mesh478 (frozen mesh, 3D)", landmarkers["mesh478"]))
            for row in pose_rows(landmarker, photos, label)] + eye_rows(landmarkers, photos)
    if args.mediapipe:
        found = {Path(k).name: v for k, v in json.loads(args.mediapipe.read_text()).items()}
        rows += mediapipe_rows(landmarkers, photos, found)
    write_table(rows, RESULTS / "pose_irises.csv")
    write_table(time_rows(landmarkers["builtin"], photos, args.repeats),
                RESULTS / "pose_irises_time.csv")


if __name__ == "__main__":
    main()
