"""What `detect`, the server and the page give back: keypoints drawn on the photo, the JSON
record of a photo, CSV rows (one per face, one column per keypoint coordinate)."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import cv2
import numpy as np

from ..errors import UserError
from ..files import atomic_write
from ..keypoints import COLUMNS
from ..mesh.pose import axes
from .pipeline import Face

FIELDS = ["file", "frame", "time", "face", "box_left", "box_top", "box_width", "box_height",
          "score"]


def draw(rgb: np.ndarray, faces: list[Face]) -> np.ndarray:
    """The photo with each face's box and keypoints drawn, sized to the face."""
    out = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    for face in faces:
        b = face.box
        thick = max(1, int(round(b.width / 80)))
        cv2.rectangle(out, (int(b.left), int(b.top)), (int(b.left + b.width),
                                                       int(b.top + b.height)), (255, 160, 0),
                      thick)
        # points sized to the face and to how many there are: the mesh's 468 stay points on a
        # small face instead of running into one blob
        radius = max(1, int(math.ceil(b.width / 60 * min(1.0, 15 / len(face.keypoints)))))
        if face.lines:  # a scheme with outlines (iBUG's 68): thinner points on its lines
            radius = max(1, radius // 2)
            for line in face.lines:
                path = np.round(face.keypoints[list(line)]).astype(np.int32)
                cv2.polylines(out, [path], False, (0, 220, 0), max(1, thick // 2), cv2.LINE_AA)
        for x, y in face.keypoints:
            if radius == 1 and len(face.keypoints) > 100:  # a dense scheme: a pixel a point
                cv2.drawMarker(out, (int(round(x)), int(round(y))), (0, 0, 255),
                               cv2.MARKER_SQUARE, 1)
            else:
                cv2.circle(out, (int(round(x)), int(round(y))), radius, (0, 0, 255), -1,
                           cv2.LINE_AA)
        if face.pose is not None:
            draw_pose(out, face, thick)
    return out


# the head's axes as drawn (BGR): toward the subject's left, up, and out of the face
POSE_AXES = (((0, 0, 255), 0, 1.0), ((0, 200, 0), 1, -1.0), ((255, 0, 0), 2, -1.0))


def draw_pose(out: np.ndarray, face: Face, thick: int) -> None:
    """The head's axes from the keypoints' centre, half the box long (seen from the camera,
    orthographically): red toward the subject's left ear, green up through the crown, blue out
    of the face (the way the nose points). docs/schemes.md has the angles' signs."""
    origin = face.keypoints.mean(axis=0)
    length = face.box.width / 2
    rows = axes(*face.pose)
    for colour, axis, sign in POSE_AXES:
        tip = origin + sign * length * rows[axis, :2]
        cv2.arrowedLine(out, tuple(int(round(v)) for v in origin),
                        tuple(int(round(v)) for v in tip), colour, max(1, thick), cv2.LINE_AA,
                        tipLength=0.15)


def photo_record(name: str, rgb: np.ndarray, faces: list[Face], seconds: float) -> dict:
    """One photo's entry in keypoints.json, as `detect`, the API and the page give it."""
    return {"file": name, "width": int(rgb.shape[1]), "height": int(rgb.shape[0]),
            "faces": [f.as_dict() for f in faces], "seconds": round(seconds, 4)}


def face_rows(file: str, faces: list[Face], frame: int | str = "",
              time: float | None = None) -> list[dict]:
    """A photo's faces (`frame` and `time` empty), or a video frame's (its index and its time
    in seconds from the video's start)."""
    rows = []
    for i, face in enumerate(faces):
        b = face.box
        row = {"file": file, "frame": frame, "time": "" if time is None else f"{time:.3f}",
               "face": i, "box_left": f"{b.left:.1f}",
               "box_top": f"{b.top:.1f}", "box_width": f"{b.width:.1f}",
               "box_height": f"{b.height:.1f}", "score": f"{b.score:.4f}"}
        columns = [f"{k}_{axis}" for k in face.names for axis in ("x", "y")]
        row.update({c: f"{v:.2f}" for c, v in zip(columns, face.keypoints.reshape(-1),
                                                   strict=True)})
        if face.uncertainty is not None:  # else empty: the model has no calibrated uncertainty
            row.update({f"{k}_u": f"{u:.2f}" for k, u in zip(face.names, face.uncertainty,
                                                             strict=True)})
        row.update(extra_columns(face))
        rows.append(row)
    return rows


def extra_columns(face: Face) -> dict[str, str]:
    """A face's record beyond its keypoints, as CSV columns after theirs: `yaw`, `pitch`,
    `roll`; each keypoint's depth as NAME_z; each iris's radius (its pupil is a keypoint)."""
    extras = face.extras()
    row = {k: f"{v:.1f}" for k, v in extras.get("pose", {}).items()}
    row.update({f"{k}_z": f"{v:.2f}" for k, v in extras.get("z", {}).items()})
    row.update({f"{eye}_iris_radius": f"{iris['radius']:.2f}"
                for eye, iris in extras.get("irises", {}).items()})
    return row


def csv_text(rows: list[dict], columns: list[str] | tuple[str, ...] = COLUMNS) -> str:
    """keypoints.csv: a row per face, the model's keypoint columns after the box and score,
    then each keypoint's uncertainty (NAME_u, pixels; empty where the model has none), and
    after them whatever else the rows carry (pose, depth: `extra_columns`), in their order."""
    buffer = io.StringIO()
    known = [*FIELDS, *columns, *uncertainty_columns(columns)]
    extra = dict.fromkeys(k for row in rows for k in row if k not in set(known))
    writer = csv.DictWriter(buffer, [*known, *extra], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def uncertainty_columns(columns: list[str] | tuple[str, ...]) -> list[str]:
    """NAME_u for each keypoint of the columns (NAME_x, NAME_y), in their order."""
    return [f"{c[:-2]}_u" for c in columns if c.endswith("_x")]


def write_jpeg(path: Path, bgr: np.ndarray) -> None:
    ok, encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 92])
    if not ok:
        raise UserError(f"{path}: could not encode the annotated picture")
    atomic_write(path, lambda tmp: tmp.write_bytes(encoded.tobytes()), suffix=".jpg")
