"""Tracked video: speed on a 640x480 stream, and jitter with and without smoothing.

    python bench/video.py                      # the built-in model, BlazeFace
    python bench/video.py --model runs/photos-wide/model.onnx runs/mesh --detector hog

The stream: a real face (each of a few youtube photos of ../shared/data/photos in turn, 90 frames
each) on a 640x480 frame, still for 30 frames, then gliding 2 px a frame, with camera noise
(Gaussian, 4 grey levels) on every frame. For each model: frames per second and ms per face of
`detect`'s frame loop (FaceTracker: the detector on the first frame and when a face is lost),
against finding faces in every frame (the photo pipeline), as `detect` runs it and with
`--fast` (one crop per face and frame, no mirror image); and jitter, the mean frame-to-frame
motion of the keypoints of a still face, in per cent of its eye distance, raw and smoothed
(One Euro); and NME, the mean keypoint error in per cent of the true eye distance over every
frame, against each photo's true keypoints moved with it. Timings are the medians of --repeats
runs (3), each on a fresh pipeline: this 2-core machine varies by a fifth from run to run.
Writes bench/results/video.csv.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from common import PHOTOS, RESULTS, write_table

FACES = ["Lincoln_Chafee_52.jpg", "Condoleezza_Rice_20.jpg", "Marc_Shaiman_10.jpg"]


def stream(seed: int = 0):
    """(frame, still, true keypoints) triples: 640x480 RGB frames of a real face, still then
    moving."""
    from facekeypoints.photos import read_photo
    from facekeypoints.photos.scores import load_truth

    truth = {t.file: t.points for t in load_truth(PHOTOS / "youtube" / "keypoints15.csv")}
    rng = np.random.default_rng(seed)
    for name in FACES:
        face = read_photo(PHOTOS / "youtube" / name)
        h, w = face.shape[:2]
        for i in range(90):
            x = 120 + (0 if i < 30 else 2 * (i - 30))
            frame = np.full((480, 640, 3), 110, np.float32)
            frame[100:100 + h, x:x + w] = face
            frame += rng.normal(0, 4, frame.shape)
            yield np.clip(frame, 0, 255).astype(np.uint8), i < 30, truth[name] + (x, 100)


def eye_distance(points: np.ndarray) -> float:
    return float(np.linalg.norm(points[0] - points[1]))


def run(model_path: str | None, frames: list, smooth: bool, track: bool, detector: str,
        fast: bool, passes: int | None) -> dict:
    from facekeypoints.inference.loading import load
    from facekeypoints.photos import FacePipeline
    from facekeypoints.photos.tracking import FaceTracker

    pipeline = FacePipeline(load(model_path, prefer_onnx=True), detector, fast=fast)
    tracker = FaceTracker(pipeline, smooth=smooth, passes=passes)
    times, faces, jitter, errors, last = [], 0, [], [], None
    for i, (frame, still, truth) in enumerate(frames):
        start = time.perf_counter()
        found = tracker(frame, i / 30) if track else pipeline.faces_in(frame)
        times.append(time.perf_counter() - start)
        faces += len(found)
        points = found[0].keypoints if found else None
        if points is not None:
            errors.append(np.linalg.norm(points - truth, axis=1).mean() / eye_distance(truth))
        if still and points is not None and last is not None and i % 90 > 5:
            jitter.append(np.linalg.norm(points - last, axis=1).mean() / eye_distance(points))
        last = points
    busy = sum(times)
    return {"model": model_path or "built-in", "detector": detector,
            "mode": ("tracked" if track else "detect every frame")
            + (", smoothed" if smooth and track else "") + (", --fast" if fast else "")
            + (f", {tracker.passes} pass{'es' if tracker.passes > 1 else ''}" if track else ""),
            "frames": len(frames), "faces": faces,
            "frames_per_second": round(len(frames) / busy, 1),
            "ms_per_face": round(1000 * busy / max(faces, 1), 2),
            "median_frame_ms": round(1000 * statistics.median(times), 2),
            "detector_frames": tracker.detections if track else len(frames),
            "still_jitter_pct": round(100 * float(np.mean(jitter)), 3),
            "nme_pct": round(100 * float(np.mean(errors)), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", nargs="+", default=[None], help="default: the built-in one")
    parser.add_argument("--detector", default="blazeface")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--passes", type=int, nargs="+", default=[None],
                        help="crops per tracked face and frame (default: the tracker's)")
    args = parser.parse_args()
    frames = list(stream())
    rows = []
    timings = ("frames_per_second", "ms_per_face", "median_frame_ms")
    for model in args.model:
        modes = [(False, False, False, None), (False, False, True, None)]
        modes += [(smooth, True, fast, passes) for passes in args.passes
                  for smooth, fast in [(False, False), (True, False), (True, True)]]
        for smooth, track, fast, passes in modes:
            runs = [run(model, frames, smooth, track, args.detector, fast, passes)
                    for _ in range(args.repeats)]
            rows.append(runs[0] | {k: statistics.median(r[k] for r in runs) for k in timings})
            print(rows[-1], [r["ms_per_face"] for r in runs], flush=True)
    write_table(rows, RESULTS / "video.csv")


if __name__ == "__main__":
    main()
