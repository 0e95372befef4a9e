"""What the benchmark scripts share: where the data is, and how a result table is written."""

from __future__ import annotations

import csv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
FACES = SHARED / "faces"
PHOTOS = SHARED / "photos"
RESULTS = ROOT / "bench" / "results"


def write_table(rows: list[dict], out: str | Path) -> None:
    """Rows as CSV at `out` and as a Markdown table on stdout."""
    fields = list(dict.fromkeys(k for r in rows for k in r))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as f:
        writer = csv.DictWriter(f, fields)
        writer.writeheader()
        writer.writerows(rows)
    print("| " + " | ".join(fields) + " |")
    print("|" + "---|" * len(fields))
    for r in rows:
        print("| " + " | ".join(str(r.get(k, "")) for k in fields) + " |")
    print(f"wrote {out}")
