"""MediaPipe's own face mesh on whole photos, as a reference for bench/photos_vs_dlib.py.

Runs in its own virtual environment (mediapipe 0.10.21 pins protobuf 4; TensorFlow 2.21 needs a
newer one), so it imports nothing of ours:

    python3 -m venv /tmp/mpvenv && /tmp/mpvenv/bin/pip install mediapipe==0.10.21
    /tmp/mpvenv/bin/python bench/mediapipe_anchor.py PHOTO... > faces.json
    /tmp/mpvenv/bin/python bench/mediapipe_anchor.py --all PHOTO... > mesh.json  # 478 x, y, z

MediaPipe's full pipeline (its detector, then the mesh with the iris points,
`refine_landmarks=True`), whole photo in. Its points for our 15, in Kaggle's column order, are
the mesh indices below (eye centres: the iris centres). Prints JSON: for each photo, the faces'
15 points (photo pixels), boxes around them, and the seconds it took; with `--all`, each face's
478 points as x, y, z in photo pixels too (MediaPipe's z is in units of the image's width; it
is multiplied by it), for bench/pose_irises.py.
"""

from __future__ import annotations

import json
import sys
import time

import cv2
import mediapipe as mp

INDICES = [473, 468, 362, 263, 133, 33, 285, 276, 55, 46, 4, 291, 61, 0, 17]


def main() -> None:
    mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=20,
                                           refine_landmarks=True, min_detection_confidence=0.5)
    out = {}
    every = "--all" in sys.argv[1:]
    for path in [a for a in sys.argv[1:] if a != "--all"]:
        rgb = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
        h, w = rgb.shape[:2]
        start = time.perf_counter()
        result = mesh.process(rgb)
        seconds = time.perf_counter() - start
        faces = []
        for landmarks in result.multi_face_landmarks or []:
            xy = [(p.x * w, p.y * h) for p in landmarks.landmark]
            xs, ys = [x for x, _ in xy], [y for _, y in xy]
            faces.append({"points": [xy[i] for i in INDICES],
                          "box": [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]})
            if every:
                faces[-1]["mesh"] = [(p.x * w, p.y * h, p.z * w) for p in landmarks.landmark]
        out[path] = {"faces": faces, "seconds": seconds}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
