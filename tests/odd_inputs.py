"""A folder of the files a photo library really holds, beside good photos: each odd in its own
way (shape, depth, mode, container, damage), made from a real photograph."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from facekeypoints.photos import reading

from .conftest import SHARED

PHOTO = SHARED / "photos" / "youtube" / "Lincoln_Chafee_52.jpg"
# the files that decode to a picture of the face: each must give one face
FACES = ("good.jpg", "deep16.png", "cmyk.jpg", "palette.png", "rgba.png", "animated.gif",
         "rotated.jpg")
# the files that cannot be read: each must be an error record naming it
BROKEN = ("empty.jpg", "truncated.jpg", "notes.jpg", "noframes.mp4", "claims20000.png")
# readable, but no face can be in them: no error, no face
FACELESS = ("row.png", "column.png")


def _png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG whose header claims `width` x `height` and holds one byte of pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"IDAT", zlib.compress(b"\x00")) + chunk(b"IEND", b""))


def make_odd_folder(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rgb = reading.read_photo(PHOTO)
    Image.fromarray(rgb).save(folder / "good.jpg", quality=95)
    grey16 = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.uint16) * 257
    cv2.imwrite(str(folder / "deep16.png"), grey16)
    Image.fromarray(rgb).convert("CMYK").save(folder / "cmyk.jpg")
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE).save(folder / "palette.png")
    Image.fromarray(rgb).convert("RGBA").save(folder / "rgba.png")
    frames = [Image.fromarray(rgb), Image.fromarray(255 - rgb)]
    frames[0].save(folder / "animated.gif", save_all=True, append_images=frames[1:],
                   duration=100, loop=0)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned; "rotate 90 degrees clockwise to display"
    Image.fromarray(rgb).transpose(Image.Transpose.ROTATE_90).save(
        folder / "rotated.jpg", quality=95, exif=exif)
    Image.fromarray(np.full((1, 4000, 3), 128, np.uint8)).save(folder / "row.png")
    Image.fromarray(np.full((4000, 1, 3), 128, np.uint8)).save(folder / "column.png")
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "truncated.jpg").write_bytes((folder / "good.jpg").read_bytes()[:700])
    (folder / "notes.jpg").write_text("not a picture\n")
    writer = cv2.VideoWriter(str(folder / "noframes.mp4"), cv2.VideoWriter_fourcc(*"mp4v"),
                             10, (64, 48))
    writer.release()  # a container with no frame in it
    _png_header_only(folder / "claims20000.png", 20000, 20000)
    return folder
