"""The web page in a real browser: `facekeypoints serve` started as a user starts it, headless
Chromium (Debian's `chromium`, driven by playwright) uploads a real group photo and must show as
many faces as the HTTP API returns for the same photo. Needs ../shared/data and Chromium (.ci/run
installs it); without the browser this test fails, it does not skip."""

import os
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from PIL import Image

from .conftest import SHARED
from .serving import serve_process

GROUP_PHOTO = SHARED / "photos" / "dlib" / "2008_002079.jpg"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]  # this machine has no internet: no background connections


@contextmanager
def _page(url: str, extra_args: tuple[str, ...] = (), camera: bool = False):
    """A fresh headless Chromium on `url`, closed afterwards."""
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).is_file(), (f"the browser tests need Chromium at {CHROMIUM}: "
                                      "apt-get install chromium (.ci/run does)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM,
                                             args=[*CHROMIUM_ARGS, *extra_args])
        try:
            context = browser.new_context(viewport={"width": 1100, "height": 760},
                                          permissions=["camera"] if camera else [])
            page = context.new_page()
            blocked = []  # the page must work under its own content security policy
            page.on("console", lambda m: blocked.append(m.text)
                    if "Content Security Policy" in m.text else None)
            page.goto(url)
            yield page
            assert not blocked, f"the page broke its content security policy: {blocked[:3]}"
        finally:
            browser.close()


@pytest.fixture(scope="module")
def server(tiny_onnx, tiny_run, tmp_path_factory):
    """`facekeypoints serve` in its own process, as a user runs it; its URL once it serves."""
    model = os.environ.get("FACEKEYPOINTS_MODEL") or str(tiny_onnx)
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with serve_process("--model", model, "--runs", str(tiny_run.path.parent),
                       log=log) as (_, url):
        yield url


def test_the_page_shows_as_many_faces_as_the_api_returns(server, tmp_path):
    with GROUP_PHOTO.open("rb") as photo:
        api = httpx.post(f"{server}/api/keypoints", files={"image": photo}, timeout=60)
    assert api.status_code == 200, api.text
    n_faces = len(api.json()["faces"])
    assert n_faces >= 6

    with _page(server) as page:
        upload = page.locator("#photo-upload input[type=file]")
        upload.wait_for(state="attached", timeout=60_000)
        page.set_input_files("#photo-upload input[type=file]", str(GROUP_PHOTO))
        summary = page.locator("#photo-summary")
        summary.filter(has_text="found").wait_for(timeout=60_000)
        text = summary.inner_text()
        page.locator("#photo-result img").wait_for(timeout=30_000)  # the drawn photo shows
        shot = tmp_path / "page.png"
        page.screenshot(path=str(shot), animations="disabled")  # fades finished
    assert text.startswith(f"{n_faces} faces found"), text
    assert Image.open(shot).size == (1100, 760)
    if os.environ.get("FACEKEYPOINTS_SCREENSHOT"):  # docs/web-app.png is made this way
        small = Image.open(shot).convert("RGB").resize((880, 608), Image.LANCZOS)
        small.quantize(128).save(os.environ["FACEKEYPOINTS_SCREENSHOT"], optimize=True)


def _fake_camera(path: Path, frames: int = 20) -> Path:
    """A Y4M clip Chromium plays as its camera: a real face (a youtube photo) on a 640x480
    frame, moving a little each frame."""
    import cv2
    import numpy as np

    from facekeypoints.photos import read_photo

    face = read_photo(SHARED / "photos" / "youtube" / "Lincoln_Chafee_52.jpg")
    face = cv2.resize(face, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    h, w = face.shape[:2]
    with path.open("wb") as out:
        out.write(b"YUV4MPEG2 W640 H480 F10:1 Ip A1:1 C420jpeg\n")
        for i in range(frames):
            frame = np.full((480, 640, 3), 100, np.uint8)
            frame[60:60 + h, 150 + i:150 + i + w] = face
            out.write(b"FRAME\n" + cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420).tobytes())
    return path


def test_the_webcam_tab_shows_keypoints_on_a_camera_face(server, tmp_path):
    """The live path: Chromium's camera plays a clip of a real face; the page streams its
    frames to the server, which follows the face and draws it."""
    camera = _fake_camera(tmp_path / "camera.y4m")
    fake = ("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={camera}")
    with _page(server, fake, camera=True) as page:
        page.get_by_role("tab", name="Webcam").click()
        page.get_by_text("Click to Access Webcam").click()
        page.get_by_role("button", name="capture photo").click()  # start streaming
        summary = page.locator("#camera-summary")
        summary.filter(has_text="1 face found").wait_for(timeout=60_000)
        assert "640 x 480 pixels" in summary.inner_text()


def test_the_runs_tab_shows_the_runs_of_a_folder(server):
    with _page(server) as page:
        page.get_by_role("tab", name="Runs").click()
        page.get_by_role("button", name="Show").click()
        # the run's recipe, in the compare table (a locator: the page's content security
        # policy forbids the eval behind wait_for_function's string predicates)
        page.locator("#runs-table").filter(has_text="model2").wait_for(timeout=60_000)
        page.locator("#runs-curves img, #runs-curves canvas, #runs-curves svg").first \
            .wait_for(timeout=30_000)  # and its learning curves


def test_the_video_tab_draws_every_frame(server, tmp_path):
    import cv2
    import numpy as np

    from facekeypoints.photos import read_photo

    rgb = read_photo(SHARED / "photos" / "youtube" / "Lincoln_Chafee_52.jpg")
    clip = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10, rgb.shape[1::-1])
    for shift in range(6):
        writer.write(cv2.cvtColor(np.roll(rgb, shift, axis=1), cv2.COLOR_RGB2BGR))
    writer.release()
    with _page(server) as page:
        page.get_by_role("tab", name="Video").click()
        page.set_input_files("#video-upload input[type=file]", str(clip))
        summary = page.locator("#video-summary")
        summary.filter(has_text="found").wait_for(timeout=60_000)
        text = summary.inner_text()
    assert text.startswith("6 faces found in 6 frames"), text
