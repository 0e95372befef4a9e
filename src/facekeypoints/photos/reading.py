"""Photos read as a person sees them (EXIF rotation applied, any bit depth or mode to 8-bit RGB),
with a pixel limit checked before decoding, and the files a batch of inputs names."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..errors import UserError

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".pgm",
                  ".ppm"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"}
# Pillow's formats for PHOTO_SUFFIXES (a camera's MPO opens as JPEG)
FORMATS = ("JPEG", "PNG", "BMP", "TIFF", "WEBP", "GIF", "PPM")
MAX_PIXELS = 250_000_000  # larger than any camera's photo, 200 MP phones included: a bomb's guard


class PhotoError(UserError):
    """A photo that cannot be used; reported, and the rest of a batch goes on."""


class PhotoTooLarge(PhotoError):
    """A photo over the pixel limit, refused before its pixels are decoded."""


def read_photo(path: str | Path) -> np.ndarray:
    """8-bit RGB pixels as displayed: EXIF rotation applied; 16-bit, grey, RGBA, CMYK converted."""
    path = Path(path)
    if not path.is_file():
        raise PhotoError(f"{path}: no such file")
    return decode_photo(path, str(path))


def decode_photo(source: str | Path | BinaryIO, name: str, max_pixels: int = MAX_PIXELS,
                 admit: Callable[[int, int, str], None] | None = None) -> np.ndarray:
    """`read_photo` for a file or an open binary stream (an upload), with a pixel limit that is
    checked from the header, before any pixels are decoded; errors name the photo `name`, never
    `source`. `admit(width, height, mode)`, called after that check and before decoding, may
    refuse the photo or wait for room (a server's memory budget). Any failure of the decoder is
    a PhotoError: a malformed file must not surface as a TypeError from inside Pillow."""
    from PIL import Image, ImageOps

    max_pixels = min(max_pixels, MAX_PIXELS)
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # Pillow's own guard (errors at twice this) a backstop
    with _decoder_errors(name), warnings.catch_warnings():
        # over Pillow's limit it warns on stderr; our own limit below says it in one line
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        # the header only: formats whose opening decodes the whole image (ICO holds a PNG of
        # any size behind a 16x16 entry) are not read at all
        Image.init()  # every plugin of FORMATS registered (open() loads only the commonest)
        image = Image.open(source, formats=FORMATS)
    with image:
        width, height = image.size
        if width * height > max_pixels:
            raise PhotoTooLarge(f"{name}: image is {width}x{height} = {width * height:,} "
                                f"pixels; the limit is {max_pixels:,}")
        if admit is not None:
            admit(width, height, image.mode)
        with _decoder_errors(name):
            image.load()
            # in place: no copy of the whole image when there is nothing to turn
            ImageOps.exif_transpose(image, in_place=True)
            return _to_rgb8(image)


def only_our_formats() -> None:
    """Pillow in this process opens FORMATS only (a server: Gradio opens uploads itself before
    our handlers see them, and an ICO decodes the whole picture as it opens)."""
    from PIL import Image

    Image.init()
    for name in [f for f in Image.ID if f not in FORMATS]:
        Image.ID.remove(name)
        Image.OPEN.pop(name, None)


@contextmanager
def _decoder_errors(name: str) -> Iterator[None]:
    """Whatever the decoder raises on a malformed file as one PhotoError naming `name`."""
    from PIL import Image, UnidentifiedImageError

    try:
        yield
    except UnidentifiedImageError:
        raise PhotoError(f"{name}: not an image file (or an image format Pillow cannot read)") \
            from None
    except Image.DecompressionBombError:
        raise PhotoTooLarge(f"{name}: image is larger than {MAX_PIXELS:,} pixels") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise PhotoError(f"{name}: unreadable or truncated image ({_reason(e)})") from None
    except MemoryError:
        raise PhotoTooLarge(f"{name}: not enough memory to decode this image") from None
    except Exception as e:  # noqa: BLE001 - Pillow's decoders also raise TypeError, KeyError...
        raise PhotoError(f"{name}: unreadable image (the decoder failed: "
                         f"{type(e).__name__})") from None


def _reason(e: BaseException) -> str:
    """The decoder's words, without a file path in them (the caller names the photo)."""
    text = str(e)
    filename = getattr(e, "filename", None)
    if filename:
        text = text.replace(str(filename), "").replace(": ''", "").strip(" :")
    return text or type(e).__name__


GREY_BLOCK = 1 << 20  # pixels converted at a time: float temporaries of 8 MB, not of the image


def _grey8(pixels: np.ndarray, top: float, offset: float) -> np.ndarray:
    """`clip(pixels / top * 255 + offset)` as uint8, one block of rows at a time, so that a
    large 16-bit or float image never gets a float64 copy of its own size."""
    out = np.empty(pixels.shape, np.uint8)
    rows = max(1, GREY_BLOCK // max(1, pixels.shape[1]))
    for start in range(0, pixels.shape[0], rows):
        block = pixels[start:start + rows].astype(np.float64)
        block /= top  # the same operations, in the same order, as on the whole image before
        block *= 255.0
        block += offset
        np.clip(block, 0, 255, out=block)
        out[start:start + rows] = block
    return out


def _to_rgb8(image) -> np.ndarray:
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        pixels = np.asarray(image)
        top = 65535.0 if pixels.size and pixels.max() > 255 else 255.0
        grey = _grey8(pixels, top, 0.5)
        return np.repeat(grey[..., None], 3, axis=2)
    if image.mode == "F":
        pixels = np.asarray(image)
        peak = float(pixels.max()) if pixels.size else 0.0
        grey = _grey8(pixels, peak if peak > 1 else 1.0, 0.0)
        return np.repeat(grey[..., None], 3, axis=2)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
        from PIL import Image

        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image)
    # convert("RGB") of an RGB image would be a whole copy for nothing
    return np.asarray(image if image.mode == "RGB" else image.convert("RGB"))


def expand_inputs(inputs: list[str | Path], exclude: str | Path | None = None
                  ) -> tuple[list[Path], list[str]]:
    """Files and folders -> the files to process, problems. Folders are searched to any depth
    for photos and videos, in sorted order, hidden files and folders skipped, `exclude` (a
    job's own output folder) and links to folders not entered; a file named twice (a folder and
    a file in it) is read once."""
    skip = os.path.abspath(exclude) if exclude is not None else None
    files, problems, seen = [], [], set()
    for item in map(Path, inputs):
        if item.is_dir():
            found = _search(item, skip)
            if not found:
                problems.append(f"{item}: folder holds no photos or videos")
        elif item.exists():
            found = [item]
        else:
            problems.append(f"{item}: no such file or folder")
            found = []
        for path in found:
            key = os.path.abspath(path)
            if key not in seen:
                seen.add(key)
                files.append(path)
    return files, problems


def _search(folder: Path, skip: str | None) -> list[Path]:
    found = []
    for top, dirs, names in os.walk(folder):
        # not a job's own output folder (this one's, or an earlier job's: its drawn copies)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                         and os.path.abspath(os.path.join(top, d)) != skip
                         and not os.path.isfile(os.path.join(top, d, "parts", "manifest.json")))
        found += [Path(top) / n for n in sorted(names) if not n.startswith(".")
                  and Path(n).suffix.lower() in PHOTO_SUFFIXES | VIDEO_SUFFIXES]
    return sorted(found, key=lambda p: p.relative_to(folder).parts)
