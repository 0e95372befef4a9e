"""A folder of face images with iBUG `.pts` landmark files beside them (300-W's layout: `a.jpg`
and `a.pts`), read as labelled photos: `data.labelled` frames each face by the detector, as
`detect` does (never from its own labels, which would teach a net where that framing puts
the points).

A .pts file:

    version: 1
    n_points: 68
    {
    x y
    ...
    }

Its coordinates count pixels from 1, as 300-W's annotations do (Matlab's convention): (1, 1) is
the centre of the top-left pixel, which is (0, 0) here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError, UserError
from ..schemes import Scheme, builtin
from .labelled import LabelledFace

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
ORIGIN = 1.0  # the coordinate of the first pixel's centre in .pts files


def read_pts(path: str | Path) -> np.ndarray:
    """(n_points, 2) pixel coordinates (0-based pixel centres) from a .pts file."""
    path = Path(path)
    try:
        lines = [line.strip() for line in path.read_text().splitlines()]
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(path, f"unreadable ({type(e).__name__})") from None
    if "{" not in lines:
        raise DataError(path, "no '{' line opening the points; expected iBUG's .pts layout")
    number = lines.index("{") + 1  # the points start after it
    header = {k.strip(): v.strip() for k, _, v in (line.partition(":")
                                                    for line in lines[:number - 1])}
    try:
        count = int(header.get("n_points", ""))
    except ValueError:
        raise DataError(path, "expected an 'n_points: N' line before '{'") from None
    points = []
    for row, line in enumerate(lines[number:], start=number + 1):
        if line == "}":
            break
        parts = line.split()
        try:
            if len(parts) != 2:
                raise ValueError
            points.append((float(parts[0]), float(parts[1])))
        except ValueError:
            raise DataError(path, f"expected two numbers 'x y', found {line[:40]!r}",
                            row) from None
    else:
        raise DataError(path, "no '}' line closing the points")
    if len(points) != count:
        raise DataError(path, f"n_points says {count}, the file holds {len(points)}")
    values = np.asarray(points, np.float64) - ORIGIN
    if not np.isfinite(values).all():
        raise DataError(path, "a coordinate is not a finite number")
    return values


def write_pts(path: str | Path, points: np.ndarray) -> None:
    """Points (0-based pixel centres) as a .pts file, as 300-W writes them."""
    body = "".join(f"{x + ORIGIN:.3f} {y + ORIGIN:.3f}\n" for x, y in np.asarray(points))
    Path(path).write_text(f"version: 1\nn_points: {len(points)}\n{{\n{body}}}\n")


def pts_pairs(folder: Path) -> list[tuple[Path, Path]]:
    """(image, .pts) pairs of a folder, recursively, in name order; a .pts with no image beside
    it is an error naming it."""
    pairs = []
    for pts in sorted(folder.rglob("*.pts")):
        image = next((pts.with_suffix(s) for s in IMAGE_SUFFIXES
                      if pts.with_suffix(s).is_file()), None)
        if image is None:
            raise DataError(pts, f"no image beside it (expected {pts.stem}.jpg, .png, ...)")
        pairs.append((image, pts))
    if not pairs:
        raise UserError(f"{folder}: a folder with no .pts files; expected images with iBUG "
                        ".pts landmark files beside them (or a .csv training file)")
    return pairs


def read_folder(folder: Path, scheme: Scheme | None = None
                ) -> tuple[list[LabelledFace], Scheme]:
    """The faces of a folder of images and .pts files (a face an image; no one named, so held
    out by photo); the scheme is iBUG's 68 for 68-point files, else it must be given."""
    pairs = pts_pairs(folder)
    first = read_pts(pairs[0][1])
    scheme = scheme or (builtin("ibug68") if len(first) == 68 else None)
    if scheme is None:
        raise UserError(f"{pairs[0][1]}: {len(first)} points a face; give the scheme's .toml "
                        "file with --scheme (iBUG's 68 is known)")
    faces = []
    for row, (image, pts) in enumerate(pairs, start=1):
        points = read_pts(pts)
        if len(points) != len(scheme.points):
            raise DataError(pts, f"{len(points)} points; scheme {scheme.name} has "
                                 f"{len(scheme.points)}")
        faces.append(LabelledFace(image, points, row=row))
    return faces, scheme
