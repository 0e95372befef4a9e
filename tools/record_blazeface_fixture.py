"""Record MediaPipe's own face detections on real photos, the reference that
tests/test_blazeface.py holds our BlazeFace decoding to.

Runs in MediaPipe's own virtual environment (mediapipe 0.10.21 pins protobuf 4; TensorFlow 2.21
needs a newer one) and imports nothing of ours:

    python3 -m venv /tmp/mpvenv && /tmp/mpvenv/bin/pip install mediapipe==0.10.21
    /tmp/mpvenv/bin/python tools/record_blazeface_fixture.py

MediaPipe's Python solution `mp.solutions.face_detection.FaceDetection` with each
`model_selection` (0: the short range model, 1: the full range one: the same .tflite files that
tools/convert_face_detectors.py converts), on a whole photo, no tiles. In 0.10.21 its
`min_detection_confidence` changes nothing (0.3, 0.5 and 0.7 give the same faces): each graph
keeps its own score threshold, 0.5 for the short range model and 0.6 for the full range one
(our decoding of the same model outputs merges the same detections only at these), recorded in
the fixture as `thresholds`. Photos are read as `facekeypoints.photos.reading.read_photo` reads
them (Pillow, EXIF rotation applied, RGB).

Writes tests/fixtures/blazeface_mediapipe.json: per photo, its path below the shared data folder
and its size, then for each model the faces MediaPipe found, best first, each with its box
(left, top, width, height) and six points (the subject's right eye, left eye, nose tip, mouth
centre, right and left ear tragion) in photo pixels, and its score.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import mediapipe as mp
import numpy as np
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parents[1]
# several faces (dlib's group photos, 375x500 and 480x360: faces of 11-40 px between the eyes),
# one face (youtube frames, 100-300 px), the smallest youtube face, and two turned ones
PHOTOS = ["photos/dlib/2007_007763.jpg", "photos/dlib/2008_001009.jpg",
          "photos/dlib/2008_001322.jpg", "photos/dlib/2008_002079.jpg",
          "photos/youtube/Lincoln_Chafee_52.jpg", "photos/youtube/William_McDonough_22.jpg",
          "photos/youtube/Jacqueline_Gold_00.jpg", "photos/youtube/Mark_Leno_32.jpg",
          "photos/youtube/Nina_Jacobson_30.jpg"]
MODELS = {"short": 0, "full": 1}  # our name: MediaPipe's model_selection
MIN_CONFIDENCE = 0.5  # passed, as the bench does; the graphs' own thresholds apply
THRESHOLDS = {"short": 0.5, "full": 0.6}  # face_detection_{short,full}_range.pbtxt


def detections(detector, rgb: np.ndarray) -> list[dict]:
    height, width = rgb.shape[:2]
    faces = []
    for d in detector.process(rgb).detections or []:
        box = d.location_data.relative_bounding_box
        faces.append({
            "box": [round(v, 2) for v in (box.xmin * width, box.ymin * height,
                                          box.width * width, box.height * height)],
            "points": [[round(p.x * width, 2), round(p.y * height, 2)]
                       for p in d.location_data.relative_keypoints],
            "score": round(float(d.score[0]), 4)})
    return sorted(faces, key=lambda f: -f["score"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data",
                        help="the shared data folder (default: ../shared/data)")
    parser.add_argument("--out", type=Path,
                        default=ROOT / "tests" / "fixtures" / "blazeface_mediapipe.json")
    args = parser.parse_args()
    solution = mp.solutions.face_detection
    detectors = {name: solution.FaceDetection(model_selection=selection,
                                              min_detection_confidence=MIN_CONFIDENCE)
                 for name, selection in MODELS.items()}
    photos = []
    for relative in PHOTOS:
        with Image.open(args.data / relative) as image:
            rgb = np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
        photos.append({"file": relative, "width": rgb.shape[1], "height": rgb.shape[0],
                       **{name: detections(d, rgb) for name, d in detectors.items()}})
    fixture = {
        "command": "/tmp/mpvenv/bin/python tools/record_blazeface_fixture.py "
                   "(python3 -m venv /tmp/mpvenv && /tmp/mpvenv/bin/pip install "
                   f"mediapipe=={mp.__version__})",
        "mediapipe": mp.__version__,
        "solution": "mp.solutions.face_detection.FaceDetection(model_selection=0 (short) or "
                    f"1 (full), min_detection_confidence={MIN_CONFIDENCE}), whole photo",
        "thresholds": THRESHOLDS,
        "points": ["right_eye", "left_eye", "nose_tip", "mouth", "right_ear", "left_ear"],
        "photos": photos}
    args.out.write_text(_compact(fixture) + "\n")
    print(f"wrote {args.out}: {sum(len(p[m]) for p in photos for m in MODELS)} faces on "
          f"{len(photos)} photos (mediapipe {mp.__version__})", file=sys.stderr)


def _compact(fixture: dict) -> str:
    """The fixture as JSON with one face a line."""
    lines = ["{"]
    for key, value in fixture.items():
        if key != "photos":
            lines.append(f" {json.dumps(key)}: {json.dumps(value)},")
    lines.append(' "photos": [')
    for i, photo in enumerate(fixture["photos"]):
        head = {k: v for k, v in photo.items() if k not in MODELS}
        lines.append("  " + json.dumps(head)[:-1] + ",")
        for j, name in enumerate(MODELS):
            faces = ",\n".join(f"    {json.dumps(face)}" for face in photo[name])
            end = "," if j < len(MODELS) - 1 else ""
            lines.append(f'   "{name}": [\n{faces}\n   ]{end}' if faces
                         else f'   "{name}": []{end}')
        lines.append("  }" + ("," if i < len(fixture["photos"]) - 1 else ""))
    lines += [" ]", "}"]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
