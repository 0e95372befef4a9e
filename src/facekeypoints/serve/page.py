"""The page of `facekeypoints serve`: drop photos or a short video, or turn on the webcam, and see
the faces boxed and their keypoints drawn, with the figures and the JSON/CSV to download.

Gradio builds it (image, video and webcam components with no hand-written JavaScript); it is
mounted on the API's FastAPI app, so one server, one port and the same limits serve both.

Its handlers take file paths from the browser's requests, so each one is checked: a handler
opens only a file that was uploaded to this server, in this server's own upload folder, and
reads pictures through the service's one decode path (pixel limit, memory budget)."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2

from ..inference.loading import BUILTIN_MODELS
from ..photos.outputs import csv_text, draw, face_rows, photo_record
from ..photos.reading import PhotoError
from ..photos.tracking import FaceTracker
from .service import KeypointService, RequestError, upload_name

# what the handlers write (then cached by Gradio beside the uploads)
RESULT_NAMES = frozenset({"keypoints.json", "keypoints.csv", "keypoints.jpg", "annotated.webm"})
KEEP_RESULTS = 64  # result folders kept for download; older ones are removed
KEEP_SECONDS = 3600  # and none longer than this (Gradio's copies go with its delete_cache)
WEBCAM_WAIT_S = 1.0  # a live frame waits this long for room in the memory budget, then is skipped


class ResultFolders:
    """Per-request folders, inside the server's own folder, for the files the page offers to
    download. A folder is kept while its request runs (a video writes for a while); done ones
    are pruned to the newest KEEP_RESULTS, none older than KEEP_SECONDS, so that a long-running
    server does not fill the disk. Names come from `mkdtemp` (unique without a shared counter)
    and sort by creation time."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._running: set[Path] = set()
        self._lock = threading.Lock()

    @contextmanager
    def new(self) -> Iterator[Path]:
        with self._lock:  # made and marked running at once: no prune can see it in between
            folder = Path(tempfile.mkdtemp(prefix=f"{time.time_ns():020d}-", dir=self.root))
            self._running.add(folder)
        try:
            yield folder
        finally:
            with self._lock:
                self._running.discard(folder)
                self._prune()

    def _prune(self) -> None:
        done = sorted(p for p in self.root.iterdir() if p not in self._running)
        too_old = time.time() - KEEP_SECONDS
        for old in done[:-KEEP_RESULTS] + [p for p in done[-KEEP_RESULTS:]
                                           if _mtime(p) < too_old]:
            shutil.rmtree(old, ignore_errors=True)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def summary_line(n_faces: int, width: int, height: int, seconds: float, frames: int = 0) -> str:
    per_face = f" ({seconds / n_faces * 1000:.1f} ms per face)" if n_faces else ""
    what = f"in {frames} frames, " if frames else ""
    return (f"**{n_faces} face{'s' if n_faces != 1 else ''} found** {what}{width} x {height} "
            f"pixels, {seconds * 1000:.0f} ms{per_face}")


def _one_line_errors(what: str) -> Callable:
    """A handler's refusals and failures as one line on the page (a gr.Error), never a raw
    exception or a server path; unexpected ones also go to the server's log in full."""

    def wrap(handler: Callable) -> Callable:
        @functools.wraps(handler)
        def wrapped(*args):
            import gradio as gr

            try:
                return handler(*args)
            except gr.Error:
                raise
            except RequestError as e:
                raise gr.Error(e.message) from None
            except PhotoError as e:
                raise gr.Error(str(e)) from None
            except Exception as e:  # noqa: BLE001 - the page shows one line; the log has it all
                traceback.print_exc(file=sys.stderr)
                raise gr.Error(f"could not process this {what} ({type(e).__name__})") from None

        return wrapped

    return wrap


def build_page(service: KeypointService, folder: Path, runs_folder: str | None = None):
    """The page's Blocks; `folder`: the server's own, for uploads (Gradio's cache) and results."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    uploads = folder / "uploads"
    uploads.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Gradio reads its upload and cache folder from here when the Blocks, its components and
    # its app are made (below and in mount_page): this server's, not the /tmp/gradio that
    # every Gradio app of every user on the host shares.
    os.environ["GRADIO_TEMP_DIR"] = str(uploads)
    results = ResultFolders(folder / "results")
    limits = service.limits

    def uploaded(path: str, what: str, listed: bool = True) -> Path:
        """`path`, if it is a file uploaded to this server: inside its upload folder (links
        followed) and, for `listed` kinds, in Gradio's record of this page's uploads. Anything
        else is refused in words that name no path."""
        real = Path(os.path.realpath(path))
        inside = real.is_relative_to(os.path.realpath(uploads)) and real.is_file()
        # a page's results are cached beside the uploads: never a frame another session sends
        result = real.name in RESULT_NAMES
        if not inside or result or (listed and path not in page.upload_file_set):
            raise gr.Error(f"this {what} was not uploaded to this page: drop it here again")
        return real

    @_one_line_errors("photo")
    def on_photo(path: str | None):
        if not path:
            return None, "Drop a photo above.", None, None
        name = upload_name(Path(path).name, "photo")
        source = uploaded(path, "photo")
        deadline = service.deadline()
        with service.admission(name, deadline) as admit, results.new() as out:
            rgb = service.decode(source, name, admit)
            faces, seconds = service.faces(rgb, deadline=deadline)
            record = photo_record(name, rgb, faces, seconds)
            (out / "keypoints.json").write_text(json.dumps([record], indent=1) + "\n")
            (out / "keypoints.csv").write_text(csv_text(face_rows(name, faces),
                                                       service.pipeline.model.columns))
            # drawn and encoded here, inside the request's memory budget (not by Gradio later)
            cv2.imwrite(str(out / "keypoints.jpg"), draw(rgb, faces),
                        [cv2.IMWRITE_JPEG_QUALITY, 92])
            text = summary_line(len(faces), rgb.shape[1], rgb.shape[0], seconds)
        return (str(out / "keypoints.jpg"), text, record,
                [str(out / "keypoints.json"), str(out / "keypoints.csv")])

    @_one_line_errors("video")
    def on_video(path: str | None):
        if not path:
            return None, "Drop a short video above.", None
        name = upload_name(Path(path).name, "video")
        source = uploaded(path, "video")
        rows: list[dict] = []
        with results.new() as out:  # kept while the video is drawn into it
            record = service.video_file(source, name, out / "annotated.webm", rows,
                                        deadline=service.deadline())
            (out / "keypoints.csv").write_text(csv_text(rows, service.pipeline.model.columns))
            (out / "keypoints.json").write_text(json.dumps(record, indent=1) + "\n")
        n_faces = sum(len(f["faces"]) for f in record["frames"])
        text = summary_line(n_faces, record["width"], record["height"], record["seconds"],
                            len(record["frames"]))
        return (str(out / "annotated.webm"), text,
                [str(out / "keypoints.json"), str(out / "keypoints.csv")])

    @_one_line_errors("webcam frame")
    def on_webcam(path: str | None, tracker: FaceTracker | None):
        """Each browser session follows its faces from frame to frame, as `detect` does. A
        frame is a picture like any other: the same pixel limit and memory budget."""
        if not path:
            return None, "", tracker
        source = uploaded(path, "webcam frame", listed=False)
        tracker = tracker or service.landmarker.tracker()
        deadline = service.deadline()
        try:
            with service.admission("webcam frame", deadline, WEBCAM_WAIT_S) as admit:
                rgb = service.decode(source, "webcam frame", admit)
                faces, seconds = service.faces(rgb, tracker, time.monotonic(), deadline)
                picture = cv2.cvtColor(draw(rgb, faces), cv2.COLOR_BGR2RGB)
        except RequestError as e:
            if e.status != 503:
                raise
            return gr.skip(), "The server is busy: frames are skipped.", tracker
        finally:
            # Gradio wrote this frame from the request's data URL, into a folder of its own:
            # gone once read, or ten frames a second would fill the disk within the hour
            if path not in page.upload_file_set:
                with contextlib.suppress(OSError):
                    source.unlink()
                    source.parent.rmdir()
        text = summary_line(len(faces), rgb.shape[1], rgb.shape[0], seconds)
        return picture, text, tracker

    health = service.health()
    kind = (f"built-in: {BUILTIN_MODELS[health['model']]}" if service.builtin
            else health["model_kind"])
    with gr.Blocks(title="facekeypoints", delete_cache=(600, KEEP_SECONDS)) as page:
        gr.Markdown(f"# facekeypoints\nFaces and their {len(health['keypoints'])} keypoints "
                    f"(scheme `{health['scheme']}`). Model "
                    f"`{health['model']}` ({kind}), detector `{service.detector}`."
                    f" HTTP API: `POST /api/keypoints`, `POST /api/video`, docs at [/docs](/docs).")
        with gr.Tab("Photo"):
            with gr.Row():
                photo_in = gr.File(label="Photo", file_types=["image"], type="filepath",
                                   elem_id="photo-upload")
                photo_out = gr.Image(label="Keypoints", type="filepath", interactive=False,
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
                # type "filepath" and no image_mode: Gradio hands over the frame undecoded
                # (it would otherwise decode it itself, with no pixel limit), and we read it
                # as every other picture is read
                camera = gr.Image(label="Webcam", sources=["webcam"], streaming=True,
                                  type="filepath", image_mode=None)
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
        # only runs of the folder the server was started with, whatever the request names
        known = run_folders()
        chosen = [c for c in chosen or [] if c in known] or known
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


def mount_page(app, service: KeypointService, folder: Path,
               runs_folder: str | None = None) -> None:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    theme = gr.themes.Default(font=["system-ui", "sans-serif"], font_mono=["monospace"])
    page = build_page(service, folder, runs_folder)
    # show_error=False: only our one-line gr.Error messages reach the browser; Gradio's own
    # exceptions (which can name server paths) stay in the server's log
    gr.mount_gradio_app(app, page, path="/", ssr_mode=False, show_error=False,
                        max_file_size=service.limits.upload_bytes, theme=theme,
                        footer_links=["api"])
    # Gradio checks that a file named in a request was uploaded only once `launch()` has set
    # this; mounted, the check was skipped and a request could name any path on the disk.
    page.has_launched = True
