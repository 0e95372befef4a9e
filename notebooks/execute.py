"""Run the tutorial notebook top to bottom and stamp it, so its outputs provably come from its
code: `metadata.facekeypoints.code_sha256` is the digest of the code cells that ran.

    python notebooks/execute.py                    # the committed run: SCALE 1, shared faces
    python notebooks/execute.py --scale 0.02 --out /tmp/quick.ipynb --runs /tmp/runs
"""

from __future__ import annotations

import argparse
import hashlib
import os
import time
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
NOTEBOOK = HERE / "tutorial.ipynb"


def code_digest(notebook) -> str:
    """SHA-256 of the code cells' sources, in order: what ran, whatever the outputs."""
    digest = hashlib.sha256()
    for cell in notebook.cells:
        if cell.cell_type == "code":
            digest.update(cell.source.encode() + b"\0")
    return digest.hexdigest()


def execute(source: Path, out: Path, scale: float, data: str = "", runs: str = "",
            timeout: int = 3600) -> dict:
    """Execute `source` in a fresh kernel (working folder: notebooks/) and write it to `out`."""
    from nbclient import NotebookClient

    notebook = nbformat.read(source, as_version=4)
    data = str(Path(data).resolve()) if data else ""  # the kernel runs in notebooks/
    runs = str(Path(runs).resolve()) if runs else ""
    env = {"FACEKEYPOINTS_NOTEBOOK_SCALE": str(scale), "FACEKEYPOINTS_DATA": data,
           "FACEKEYPOINTS_PROGRESS": "off",
           "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    if runs:
        env["FACEKEYPOINTS_RUNS"] = runs
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits this environment
    start = time.time()
    try:
        NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(HERE)}}).execute()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    stamp = {"code_sha256": code_digest(notebook), "scale": scale,
             "seconds": round(time.time() - start), "executed": time.strftime("%Y-%m-%d")}
    notebook.metadata["facekeypoints"] = stamp
    tmp = out.with_name(f".{out.name}.tmp")
    nbformat.write(notebook, tmp)
    tmp.replace(out)
    return stamp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="times every epoch budget")
    parser.add_argument("--data", default="", help="folder with Kaggle's files (default: look)")
    parser.add_argument("--runs", default="", help="run folders (default: notebooks/runs/...)")
    parser.add_argument("--out", type=Path, default=NOTEBOOK)
    args = parser.parse_args()
    stamp = execute(NOTEBOOK, args.out, args.scale, args.data, args.runs)
    print(f"wrote {args.out}: {stamp}")


if __name__ == "__main__":
    main()
