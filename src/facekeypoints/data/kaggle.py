"""Kaggle-format face files in, validated arrays out.

`X` is (N, 96, 96, 1) float32 in [0, 1]; `y` is (N, len(columns)) float32 scaled to [-1, 1] by
(y - 48) / 48, with NaN where a label is missing. Rows are numbered from 1, not counting the header.
A training file's keypoint columns may be any scheme's (`schemes`): the header says which.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError, UserError
from ..extras import optional
from ..keypoints import COLUMNS, IMAGE_SIZE, PIXELS, scale
from ..schemes import Scheme, for_columns
from ..schemes import load as load_scheme
from .faces import Faces

pd = optional("pandas", "reading Kaggle's CSV files")  # the base install reads photos only

# ----------------------------------------------------------------------------- reading files


def read_csv(path: str | Path, nrows: int | None = None) -> pd.DataFrame:
    """A CSV, .csv.gz or a Kaggle .zip holding one CSV, all columns as text."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file")
    if path.is_dir():
        raise UserError(f"{path}: is a folder, expected a .csv, .csv.gz or .zip file")
    try:
        with _open_text(path) as handle:
            frame = pd.read_csv(handle, dtype=str, keep_default_na=False, na_filter=False,
                                nrows=nrows)
    except pd.errors.EmptyDataError:
        raise DataError(path, "the file is empty, expected a CSV header and rows") from None
    except (EOFError, OSError, zipfile.BadZipFile, zlib.error, UnicodeDecodeError) as e:
        raise DataError(path, f"unreadable or truncated file ({type(e).__name__}: {e})") from None
    except pd.errors.ParserError as e:
        raise DataError(path, f"not a valid CSV ({_first_line(e)})") from None
    if frame.empty:
        raise DataError(path, "the file has a header but no rows")
    return frame


def _open_text(path: Path) -> io.TextIOBase:
    with open(path, "rb") as probe:
        magic = probe.read(4)
    if magic[:2] == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    if magic == b"PK\x03\x04" or path.suffix.lower() == ".zip":
        archive = zipfile.ZipFile(path)
        members = [m for m in archive.namelist() if m.lower().endswith(".csv")]
        if len(members) != 1:
            raise DataError(path, f"expected a zip holding one .csv, found {members or 'none'}")
        return io.TextIOWrapper(archive.open(members[0]), encoding="utf-8")
    if path.suffix.lower() == ".gz":
        raise DataError(path, "unreadable or truncated file (not a gzip archive)")
    return open(path, encoding="utf-8", newline="")


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0]


def check_columns(frame: pd.DataFrame, expected: list[str], path: str | Path,
                  what: str = "as in Kaggle's file") -> None:
    missing = [c for c in expected if c not in frame.columns]
    extra = [c for c in frame.columns if c not in expected]
    if missing:
        raise DataError(path, f"missing column(s) {', '.join(missing)}; expected {len(expected)} "
                              f"columns {what}", row=None)
    if extra:
        raise DataError(path, f"unexpected column(s) {', '.join(map(str, extra))}")


def parse_numbers(frame: pd.DataFrame, columns: list[str], path: str | Path,
                  low: float, high: float, allow_missing: bool) -> np.ndarray:
    """Numeric columns as float32, each value checked to lie in [low, high]."""
    out = np.empty((len(frame), len(columns)), dtype=np.float32)
    for j, col in enumerate(columns):
        text = frame[col].str.strip()
        values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
        blank = text.eq("").to_numpy()
        bad = np.isnan(values) & ~blank
        if bad.any():
            i = int(np.argmax(bad))
            raise DataError(path, f"expected a number, found {text.iloc[i]!r}", i + 1, col)
        if blank.any() and not allow_missing:
            raise DataError(path, "value is missing", int(np.argmax(blank)) + 1, col)
        outside = ~np.isnan(values) & ((values < low) | (values > high) | ~np.isfinite(values))
        if outside.any():
            i = int(np.argmax(outside))
            raise DataError(path, f"value {values[i]:g} is outside the image, expected {low:g} to "
                                  f"{high:g}", i + 1, col)
        out[:, j] = values
    return out


def parse_images(strings: pd.Series | list[str], path: str | Path = "",
                 column: str = "Image") -> np.ndarray:
    """Space-separated pixel strings to a (N, 96, 96) uint8 array, strict about every token."""
    strings = list(strings)
    images = np.empty((len(strings), PIXELS), dtype=np.uint8)
    with warnings.catch_warnings():
        # numpy warns (instead of failing) when a token does not parse: make that an error.
        warnings.simplefilter("error", DeprecationWarning)
        for i, text in enumerate(strings):
            try:
                row = np.fromstring(text, dtype=np.int32, sep=" ")
            except (DeprecationWarning, ValueError):
                row = None
            if row is None or row.size != PIXELS or row.min() < 0 or row.max() > 255:
                _raise_bad_row(text, path, column, i + 1)
            images[i] = row
    return images.reshape(-1, IMAGE_SIZE, IMAGE_SIZE)


def _raise_bad_row(text: str, path: str | Path, column: str, row: int) -> None:
    """Slow path, only on error: say exactly what is wrong with this row's pixels."""
    tokens = text.split()
    for token in tokens:
        if not re.fullmatch(r"\d+", token) or int(token) > 255:
            try:
                float(token)
            except ValueError:
                raise DataError(path, f"non-numeric pixel value {token[:20]!r}, expected integers "
                                      "0-255", row, column) from None
            raise DataError(path, f"pixel value {token[:20]} is not an integer from 0 to 255",
                            row, column)
    raise DataError(path, f"expected {PIXELS} pixel values (96x96), found {len(tokens)}", row,
                    column)


# ----------------------------------------------------------------------------- Kaggle files


def load_training(path: str | Path, sources: str | Path | None = None,
                  scheme: Scheme | str | None = None) -> Faces:
    """Kaggle's training.csv: keypoint columns (blank = missing) and an Image column. The
    columns are Kaggle's 30, or any scheme's x/y pairs (iBUG's 68: p0_x, ..., p67_y); `scheme`
    names it where the header alone cannot (a user's own).

    The arrays are read-only and the last few files read are kept: a notebook, the specialists
    and evaluate read one file many times, and parsing 7,049 Kaggle rows takes seconds."""
    scheme = None if scheme is None else load_scheme(scheme)
    key = _file_key(path, sources)
    if key is not None:
        key = (*key, scheme.to_json() if scheme else "")
    return cached_faces(key, lambda: _parse_training(path, sources, scheme))


_TRAINING_CACHE: dict[tuple, Faces] = {}


def cached_faces(key: tuple | None, read) -> Faces:
    """The faces `read` gives, read-only, kept for the last two keys (files as they are now)."""
    if key is not None and key in _TRAINING_CACHE:
        return _TRAINING_CACHE[key]
    faces = read()
    for array in (faces.X, faces.y, faces.rows):
        array.flags.writeable = False
    if key is not None:
        _TRAINING_CACHE[key] = faces
        while len(_TRAINING_CACHE) > 2:
            _TRAINING_CACHE.pop(next(iter(_TRAINING_CACHE)))
    return faces


def _file_key(path: str | Path, sources: str | Path | None) -> tuple | None:
    """Identity of the files' current contents: path, size and modification time of each."""
    files = [Path(path), Path(sources) if sources else Path(path).parent / "training_sources.csv"]
    try:
        stats = [(str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns) if f.exists()
                 else (str(f), None, None) for f in files]
    except OSError:
        return None
    return tuple(stats)


def _parse_training(path: str | Path, sources: str | Path | None,
                    scheme: Scheme | None) -> Faces:
    frame = read_csv(path)
    scheme = scheme or scheme_of(list(frame.columns), path)
    columns = scheme.columns
    check_columns(frame, [*columns, "Image"], path,
                  "as in Kaggle's file" if scheme.name == "kaggle15"
                  else f"(scheme {scheme.name}: its points' x and y, then Image)")
    low, high = scheme.bounds
    y = parse_numbers(frame, columns, path, low, high, allow_missing=True)
    images = parse_images(frame["Image"], path)
    X = (images[..., None].astype(np.float32) / 255.0)
    persons = load_persons(path, len(frame), sources, frame["Image"])
    return Faces(X, scale(y), columns, np.arange(1, len(frame) + 1), persons, str(path),
                 scheme)


def scheme_of(header: list[str], path: str | Path) -> Scheme:
    """The built-in scheme a file's keypoint columns (NAME_x, NAME_y) belong to; other columns
    are left for the caller's check to name."""
    points = [c for c in header if c.endswith(("_x", "_y"))]
    if not points:
        raise DataError(path, f"no keypoint columns; expected Kaggle's ({COLUMNS[0]}, ..., "
                              "Image) or another scheme's (p0_x, ... for iBUG's 68)")
    return for_columns(points, str(path))


def kind_of(path: str | Path) -> str:
    """"training" (keypoint columns) or "test" (ImageId, Image), from the header alone."""
    header = list(read_csv(path, nrows=1).columns)
    if "ImageId" in header:
        return "test"
    if any(c in header for c in COLUMNS) or any(c.endswith("_x") for c in header):
        return "training"
    raise DataError(path, f"neither Kaggle's training format ({COLUMNS[0]}, ..., Image) nor its "
                          f"test format (ImageId, Image); found columns {', '.join(header[:5])}")


def load_test(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Kaggle's test.csv: ImageId and Image. Returns (ids, X)."""
    frame = read_csv(path)
    check_columns(frame, ["ImageId", "Image"], path)
    ids = parse_numbers(frame, ["ImageId"], path, 1, np.inf, allow_missing=False)[:, 0]
    ids = ids.astype(np.int64)
    dup = pd.Series(ids).duplicated().to_numpy()
    if dup.any():
        i = int(np.argmax(dup))
        raise DataError(path, f"duplicate ImageId {ids[i]}", i + 1, "ImageId")
    images = parse_images(frame["Image"], path)
    return ids, images[..., None].astype(np.float32) / 255.0


def load_lookup(path: str | Path, known_ids: np.ndarray | None = None) -> pd.DataFrame:
    """Kaggle's IdLookupTable.csv: which (ImageId, FeatureName) each RowId asks for."""
    frame = read_csv(path)
    expected = ["RowId", "ImageId", "FeatureName", "Location"]
    if "Location" not in frame.columns:
        expected = expected[:3]
    check_columns(frame, expected, path)
    numbers = parse_numbers(frame, ["RowId", "ImageId"], path, 1, np.inf, allow_missing=False)
    unknown = ~frame["FeatureName"].isin(COLUMNS).to_numpy()
    if unknown.any():
        i = int(np.argmax(unknown))
        raise DataError(path, f"unknown feature {frame['FeatureName'].iloc[i]!r}, expected one "
                              "of the 30 Kaggle keypoint columns", i + 1, "FeatureName")
    image_ids = numbers[:, 1].astype(np.int64)
    if known_ids is not None:
        missing = ~np.isin(image_ids, known_ids)
        if missing.any():
            i = int(np.argmax(missing))
            raise DataError(path, f"ImageId {image_ids[i]} is not in the test file", i + 1,
                            "ImageId")
    row_ids = numbers[:, 0].astype(np.int64)
    dup = pd.Series(row_ids).duplicated().to_numpy()
    if dup.any():
        i = int(np.argmax(dup))
        raise DataError(path, f"duplicate RowId {row_ids[i]}", i + 1, "RowId")
    return pd.DataFrame({"RowId": row_ids, "ImageId": image_ids,
                         "FeatureName": frame["FeatureName"].to_numpy()})


# ----------------------------------------------------------------------------- people


def person_of(filename: str) -> str:
    """'Abdullah_Gul_50.jpg' -> 'Abdullah_Gul': frames of one person share the name."""
    stem = Path(filename).stem
    return re.sub(r"_\d+$", "", stem)


def load_persons(data_path: str | Path, rows: int, sources: str | Path | None = None,
                 images: pd.Series | None = None) -> np.ndarray | None:
    """Person of each row from training_sources.csv beside the data (or given), if there is one;
    `images` (the data's Image column) lets a sibling folder's copy of the faces lend its own."""
    if sources is None:
        sources = _sources_near(Path(data_path), rows, images)
        if sources is None:
            return None
    frame = read_csv(sources)
    check_columns(frame, ["row", "source_file"], sources)
    if len(frame) != rows:
        raise DataError(sources, f"has {len(frame)} rows but the data file has {rows}")
    return np.array([person_of(f) for f in frame["source_file"]])


def _sources_near(data_path: Path, rows: int, images: pd.Series | None = None) -> Path | None:
    """training_sources.csv beside the data, or beside a sibling folder's copy of the same faces
    (faces68/ shares faces/'s): one whose folder holds a training file with the very images of
    ours, in our order. A stranger's file with as many rows says nothing about our people."""
    beside = data_path.parent / "training_sources.csv"
    if beside.exists():
        return beside
    if images is None:
        return None
    ours = None
    for candidate in sorted(data_path.parent.parent.glob("*/training_sources.csv")):
        with open(candidate, "rb") as f:
            if sum(1 for _ in f) - 1 != rows:
                continue
        for data in sorted(candidate.parent.glob("training.*")):
            if data.resolve() == data_path.resolve() or not data.is_file():
                continue
            try:
                theirs = read_csv(data)
            except (UserError, DataError):
                continue
            if "Image" not in theirs.columns or len(theirs) != rows:
                continue
            ours = ours if ours is not None else _digest(images)
            if _digest(theirs["Image"]) == ours:
                return candidate
    return None


def _digest(images: pd.Series) -> str:
    return hashlib.sha256("\n".join(images).encode()).hexdigest()


def write_kaggle15(path: str | Path, out: str | Path, sources: str | Path | None = None,
                   limit: int | None = None) -> Path:
    """A 68-point training file (faces68's) as Kaggle's 15 keypoints derived from every row's
    points (the scheme's [kaggle15] table, as ../shared/data derives faces/ from faces68/): every
    row complete, where Kaggle's own pattern masks most. `limit`: the first rows only.
    `sources` (a training_sources.csv) is copied beside `out`: validation splits by person."""
    faces = load_training(path)
    y, columns = faces.scheme.to_kaggle15(faces.y * 48 + 48, faces.columns)
    frame = pd.DataFrame(y, columns=columns).round(4)
    frame["Image"] = pd.read_csv(path, usecols=["Image"])["Image"]
    out = Path(out)
    frame.head(limit).to_csv(out, index=False)
    if sources is not None:
        pd.read_csv(sources).head(limit).to_csv(out.parent / "training_sources.csv", index=False)
    return out
