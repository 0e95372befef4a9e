"""The page of `facekeypoints serve`: drop photos or a short video, or turn on the webcam, and see
the faces boxed and their keypoints drawn, with the figures and the JSON/CSV to download.

Gradio builds it (image, video and webcam components with no hand-written JavaScript); it is
mounted on the API's FastAPI app, so one server, one port and the same limits serve both."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from ..photos.outputs import csv_text, draw, face_rows, photo_record
from ..photos.reading import PhotoError, decode_photo
from ..photos.tracking import FaceTracker
from .service import KeypointService, RequestError, upload_name

KEEP_RESULTS = 64  # result folders kept for download; older ones are removed


class ResultFolders:
    """Per-request folders for the files the page offers to download, pruned to the newest few
    so that a long-running server does not fill the disk."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="facekeypoints-page-"))
        self.count = 0

    def new(self) -> Path:
        self.count += 1
        folder = self.root / f"{self.count:08d}"
        folder.mkdir()
        for old in sorted(self.root.iterdir())[:-KEEP_RESULTS]:
            shutil.rmtree(old, ignore_errors=True)
        return folder


def summary_line(n_faces: int, width: int, height: int, seconds: float, frames: int = 0) -> str:
    per_face = f" ({seconds / n_faces * 1000:.1f} ms per face)" if n_faces else ""
    what = f"in {frames} frames, " if frames else ""
    return (f"**{n_faces} face{'s' if n_faces != 1 else ''} found** {what}{width} x {height} "
            f"pixels, {seconds * 1000:.0f} ms{per_face}")


def build_page(service: KeypointService, runs_folder: str | None = None):
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    results = ResultFolders()
    limits = service.limits

    def on_photo(path: str | None):
        if not path:
            return None, "Drop a photo above.", None, None
        name = upload_name(Path(path).name, "photo")
        try:
            rgb = decode_photo(path, name, limits.max_pixels)
            faces, seconds = service.faces(rgb, deadline=service.deadline())
        except PhotoError as e:
            raise gr.Error(str(e)) from None
        except RequestError as e:
            raise gr.Error(e.message) from None
        record = photo_record(name, rgb, faces, seconds)
        folder = results.new()
        (folder / "keypoints.json").write_text(json.dumps([record], indent=1) + "\n")
        (folder / "keypoints.csv").write_text(csv_text(face_rows(name, faces),
                                                       service.pipeline.model.columns))
        picture = cv2.cvtColor(draw(rgb, faces), cv2.COLOR_BGR2RGB)
        return (picture, summary_line(len(faces), rgb.shape[1], rgb.shape[0], seconds), record,
                [str(folder / "keypoints.json"), str(folder / "keypoints.csv")])

    def on_video(path: str | None):
        if not path:
            return None, "Drop a short video above.", None
        name = upload_name(Path(path).name, "video")
        folder = results.new()
        rows: list[dict] = []
        try:
            record = service.video_file(Path(path), name, folder / "annotated.webm", rows,
                                        deadline=service.deadline())
        except RequestError as e:
            raise gr.Error(e.message) from None
        (folder / "keypoints.csv").write_text(csv_text(rows, service.pipeline.model.columns))
        (folder / "keypoints.json").write_text(json.dumps(record, indent=1) + "\n")
        n_faces = sum(len(f["faces"]) for f in record["frames"])
        text = summary_line(n_faces, record["width"], record["height"], record["seconds"],
                            len(record["frames"]))
        return (str(folder / "annotated.webm"), text,
                [str(folder / "keypoints.json"), str(folder / "keypoints.csv")])

    def on_webcam(frame: np.ndarray | None, tracker: FaceTracker | None):
        """Each browser session follows its faces from frame to frame, as `detect` does."""
        if frame is None:
            return None, "", tracker
        tracker = tracker or FaceTracker(service.pipeline)
        faces, seconds = service.faces(frame, tracker, time.monotonic())
        picture = cv2.cvtColor(draw(frame, faces), cv2.COLOR_BGR2RGB)
        text = summary_line(len(faces), frame.shape[1], frame.shape[0], seconds)
        return picture, text, tracker

    health = service.health()
    with gr.Blocks(title="facekeypoints", delete_cache=(3600, 3600)) as page:
        gr.Markdown(f"# facekeypoints\nFaces and their {len(health['keypoints'])} keypoints "
                    f"(scheme `{health['scheme']}`). Model "
                    f"`{health['model']}` ({health['model_kind']}), detector `{service.detector}`."
                    f" HTTP API: `POST /api/keypoints`, docs at [/docs](/docs).")
        with gr.Tab("Photo"):
            with gr.Row():
                photo_in = gr.File(label="Photo", file_types=["image"], type="filepath",
                                   elem_id="photo-upload")
                photo_out = gr.Image(label="Keypoints", type="numpy", interactive=False,
                                     elem_id="photo-result")
            photo_summary = gr.Markdown(elem_id="photo-summary")
            with gr.Row():
                photo_files = gr.File(label="Download", file_count="multiple",
                                      interactive=False)
                photo_json = gr.JSON(label="keypoints.json record")
            photo_in.change(on_photo, photo_in, [photo_out, photo_summary, photo_json,
                                                 photo_files], concurrency_limit=4)
        with gr.Tab("Video"):
            with gr.Row():
                video_in = gr.File(label=f"Video (up to {limits.video_seconds:g} s)",
                                   file_types=["video"], type="filepath", elem_id="video-upload")
                video_out = gr.Video(label="Keypoints", interactive=False)
            video_summary = gr.Markdown(elem_id="video-summary")
            video_files = gr.File(label="Download", file_count="multiple", interactive=False)
            video_in.change(on_video, video_in, [video_out, video_summary, video_files],
                            concurrency_limit=1)
        with gr.Tab("Webcam"):
            with gr.Row():
                camera = gr.Image(label="Webcam", sources=["webcam"], streaming=True,
                                  type="numpy")
                camera_out = gr.Image(label="Keypoints", type="numpy", interactive=False)
            camera_summary = gr.Markdown(elem_id="camera-summary")
            tracker = gr.State(None)
            camera.stream(on_webcam, [camera, tracker], [camera_out, camera_summary, tracker],
                          stream_every=0.1, concurrency_limit=4, time_limit=limits.timeout_s)
        if runs_folder:
            _runs_tab(gr, Path(runs_folder))
    return page


def _runs_tab(gr, folder: Path) -> None:
    """The runs in a folder: their learning curves and the compare table."""
    from ..inference.evaluation import compare_runs
    from ..plots import learning_curves
    from ..stored.runs import MANIFEST

    def run_folders() -> list[str]:
        if not folder.is_dir():
            return []
        return sorted(str(p) for p in folder.iterdir() if (p / "history.csv").is_file()
                      or (p / MANIFEST).is_file())

    def show(chosen: list[str]):
        chosen = chosen or run_folders()
        if not chosen:
            return None, None
        return learning_curves(chosen), compare_runs(chosen)

    with gr.Tab("Runs"):
        gr.Markdown(f"Runs in `{folder}`: learning curves and the compare table.")
        choice = gr.Dropdown(run_folders(), multiselect=True, label="Runs (none: all)")
        refresh = gr.Button("Show")
        curves = gr.Plot(label="Learning curves", elem_id="runs-curves")
        table = gr.Dataframe(label="compare", elem_id="runs-table")
        refresh.click(show, choice, [curves, table])


def mount_page(app, service: KeypointService, runs_folder: str | None = None) -> None:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    theme = gr.themes.Default(font=["system-ui", "sans-serif"], font_mono=["monospace"])
    gr.mount_gradio_app(app, build_page(service, runs_folder), path="/", ssr_mode=False,
                        max_file_size=service.limits.upload_bytes, theme=theme,
                        footer_links=["api"])

