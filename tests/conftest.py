"""Shared fixtures. Tests marked by their use of SHARED need ../shared/data (CI has it)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
FACES = SHARED / "faces"
KAGGLE = SHARED / "kaggle"


@pytest.fixture(scope="session")
def shared_faces() -> Path:
    """The real face data beside the project; these tests need it and say so."""
    assert (FACES / "training.csv.gz").is_file(), f"these tests need the real data in {FACES}"
    return FACES


@pytest.fixture(scope="session")
def synthetic_files(tmp_path_factory) -> dict[str, Path]:
    from facekeypoints import synthetic

    return synthetic.write_kaggle_files(tmp_path_factory.mktemp("synthetic"), n_train=240,
                                        n_test=30, seed=3)
