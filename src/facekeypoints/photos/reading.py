"""Photos read as a person sees them (EXIF rotation applied, any bit depth or mode to 8-bit RGB),
with a pixel limit checked before decoding, and the files a batch of inputs names."""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..errors import UserError

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".pgm",
                  ".ppm"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"}
MAX_PIXELS = 400_000_000  # larger than any camera; protects memory from a decompression bomb


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


def decode_photo(source: str | Path | BinaryIO, name: str,
                 max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """`read_photo` for a file or an open binary stream (an upload), with a pixel limit that is
    checked from the header, before any pixels are decoded; errors name the photo `name`."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = max(MAX_PIXELS, max_pixels)  # Pillow's own guard stays a backstop
    try:
        with Image.open(source) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise PhotoTooLarge(f"{name}: image is {width}x{height} = {width * height:,} "
                                    f"pixels; the limit is {max_pixels:,}")
            image.load()
            image = ImageOps.exif_transpose(image)
            return _to_rgb8(image)
    except UnidentifiedImageError:
        raise PhotoError(f"{name}: not an image file (or an image format Pillow cannot read)") \
            from None
    except Image.DecompressionBombError:
        raise PhotoError(f"{name}: image is larger than {MAX_PIXELS:,} pixels") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise PhotoError(f"{name}: unreadable or truncated image ({e})") from None


def _to_rgb8(image) -> np.ndarray:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        pixels = np.asarray(image, dtype=np.float64)
        top = 65535.0 if pixels.max() > 255 else 255.0
        grey = np.clip(pixels / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if image.mode == "F":
        pixels = np.asarray(image, dtype=np.float64)
        top = pixels.max() if pixels.max() > 1 else 1.0
        grey = np.clip(pixels / top * 255.0, 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
        from PIL import Image

        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image)
    return np.asarray(image.convert("RGB"))


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
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                         and os.path.abspath(os.path.join(top, d)) != skip)
        found += [Path(top) / n for n in sorted(names) if not n.startswith(".")
                  and Path(n).suffix.lower() in PHOTO_SUFFIXES | VIDEO_SUFFIXES]
    return sorted(found, key=lambda p: p.relative_to(folder).parts)
