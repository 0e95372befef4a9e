"""Faces as arrays: what every reader (Kaggle-format files, .pts folders) gives training."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UserError
from ..schemes import Scheme


@dataclass
class Faces:
    """Images with (possibly partial) keypoints, and where each row came from."""

    X: np.ndarray
    y: np.ndarray
    columns: list[str]
    rows: np.ndarray  # 1-based row numbers in the source file
    persons: np.ndarray | None = None  # person of each row, when known
    path: str = ""
    scheme: Scheme | None = None  # the landmark scheme the columns belong to
    # whole photos: how their faces were framed (by the detector; from their labels where it
    # missed them), for the run's data record
    framing: dict | None = None

    def __len__(self) -> int:
        return len(self.X)

    @property
    def held_out_by(self) -> str:
        """What a split keeps together: "person" where the data says who is who, "photo" for
        whole photos that do not (`photo:NAME` groups: one person's photos may fall on both
        sides), else "row"."""
        if self.persons is None:
            return "row"
        named = [p for p in self.persons if not str(p).startswith("photo:")]
        return "person" if named or not len(self.persons) else "photo"

    def subset(self, index: np.ndarray) -> Faces:
        persons = None if self.persons is None else self.persons[index]
        return Faces(self.X[index], self.y[index], self.columns, self.rows[index], persons,
                     self.path, self.scheme, self.framing)

    def select(self, columns: list[str], dropna: bool) -> Faces:
        """Keep some keypoint columns; with dropna, keep only rows where all of them are present."""
        unknown = [c for c in columns if c not in self.columns]
        if unknown:
            raise UserError(f"{self.path}: has no column {unknown[0]} (its columns: "
                            f"{', '.join(self.columns[:4])}, ...)")
        idx = [self.columns.index(c) for c in columns]
        faces = Faces(self.X, self.y[:, idx], list(columns), self.rows, self.persons, self.path,
                      self.scheme, self.framing)
        if dropna:
            faces = faces.subset(np.flatnonzero(~np.isnan(faces.y).any(axis=1)))
        return faces
