"""The tutorial notebook: it runs top to bottom (epochs scaled down), and the committed copy's
outputs come from its committed code, run on the real shared faces at full budget."""

import importlib.util
import shutil
from pathlib import Path

import nbformat
import pandas as pd

from .conftest import FACES, ROOT

NOTEBOOK = ROOT / "notebooks" / "tutorial.ipynb"
ROWS = 720  # of the shared faces' 2,885 training rows


def _executor():
    spec = importlib.util.spec_from_file_location("execute", ROOT / "notebooks" / "execute.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _outputs(notebook, kind):
    return [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs
            if kind in o.get("data", {})]


def test_the_committed_notebook_shows_outputs_of_its_own_code_on_the_shared_faces():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    stamp = notebook.metadata.get("facekeypoints", {})
    assert stamp.get("code_sha256") == _executor().code_digest(notebook), \
        "code cells changed since the notebook was run: python notebooks/execute.py"
    assert stamp["scale"] == 1.0
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1))
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for c in code for o in c.outputs)
    assert "data: shared real faces" in text and "SYNTHETIC" not in text
    assert len(_outputs(notebook, "image/png")) >= 12
    size = NOTEBOOK.stat().st_size
    assert size < 4_000_000, f"{size:,} bytes: keep the committed notebook small"


def _first_rows(folder: Path, rows: int) -> Path:
    """The shared faces with the first `rows` training rows (and their sources: the split
    stays by person), the test people whole."""
    folder.mkdir()
    pd.read_csv(FACES / "training.csv.gz", nrows=rows).to_csv(folder / "training.csv.gz",
                                                              index=False)
    pd.read_csv(FACES / "training_sources.csv", nrows=rows).to_csv(
        folder / "training_sources.csv", index=False)
    for name in ("test.csv.gz", "IdLookupTable.csv", "solution.csv"):
        shutil.copy(FACES / name, folder / name)
    return folder


def test_the_notebook_runs_top_to_bottom(tmp_path, shared_faces):
    """Every cell runs, on the real faces: a quarter of the training rows and 1-2 epochs a
    run (SCALE 0.02) are enough for that; the full run is the committed notebook's."""
    out = tmp_path / "tutorial.ipynb"
    data = _first_rows(tmp_path / "faces", ROWS)
    stamp = _executor().execute(NOTEBOOK, out, scale=0.02, data=str(data),
                                runs=str(tmp_path / "runs"))
    ran = nbformat.read(out, as_version=4)
    assert stamp["code_sha256"] == _executor().code_digest(ran)
    code = [c for c in ran.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code)
    assert len(_outputs(ran, "image/png")) >= 12
    text = "".join(o.get("text", "") for c in code for o in c.outputs)
    assert "Kaggle-style RMSE of fast on the test people" in text
    assert f"{ROWS} faces;" in text  # the rows given
    for run in ("model1", "model2", "model7", "model8", "model9", "masked", "fast", "photos"):
        assert (tmp_path / "runs" / run / "recipe.toml").is_file(), run


def test_the_committed_notebook_holds_no_face_data():
    """Figures are pictures; no pixel strings or arrays of faces sit in the outputs."""
    import re

    raw = NOTEBOOK.read_text()
    pixel_string = re.compile(r"(\d{1,3} ){200}")  # a Kaggle Image string: 9,216 such numbers
    assert pixel_string.search("12 " * 300), "the pattern must find a pixel string"
    assert not pixel_string.search(raw)
