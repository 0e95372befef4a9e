"""Pictures a person would rather see than read: learning curves, faces with keypoints, nets.

Each function returns a matplotlib Figure that no pyplot window owns: Jupyter shows it once,
inline, and `save` writes it to disk atomically (what the command line does with them).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import matplotlib.image
import matplotlib.pyplot as plt  # noqa: F401 - in Jupyter, registers the inline display
import numpy as np
from matplotlib.figure import Figure

from .errors import UserError
from .files import save_figure_atomic


def save(fig: Figure, out: str | Path, dpi: int = 110) -> Path:
    """Write the figure (PNG, PDF or SVG by suffix) and free its memory."""
    save_figure_atomic(fig, out, dpi=dpi)
    return Path(out)


def learning_curves(runs: list[str | Path], title: str = "") -> Figure:
    """Train (solid) and validation (dashed) loss of several runs on a log scale, and val RMSE."""
    from .stored.runs import RunFolder

    folders = [member for path in runs for member in RunFolder(Path(path)).members]
    fig = Figure(figsize=(12, 4.5))
    ax_loss, ax_rmse = fig.subplots(1, 2)
    for i, run in enumerate(folders):
        path = run.path
        hist = run.read_history()
        if not hist:
            raise UserError(f"{path}: the run has no history.csv yet")
        name, recipe = Path(path).name, run.load_recipe().name
        label = name if name == recipe else f"{name} ({recipe})"
        epoch = [r["epoch"] for r in hist]
        colour = f"C{i % 10}"
        ax_loss.plot(epoch, [r["train_loss"] for r in hist], colour, lw=1.2,
                     label=f"{label} train")
        ax_loss.plot(epoch, [r["val_loss"] for r in hist], colour, ls="--", lw=1.2,
                     label=f"{label} valid")
        ax_rmse.plot(epoch, [r["val_rmse"] for r in hist], colour, lw=1.2, label=label)
    ax_loss.set(yscale="log", xlabel="epoch", ylabel="loss (MSE, scaled units)",
                title="train and validation loss")
    ax_rmse.set(yscale="log", xlabel="epoch", ylabel="validation RMSE (pixels, no flip TTA)",
                title="validation RMSE")
    for ax in (ax_loss, ax_rmse):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def face_grid(X: np.ndarray, pred: np.ndarray | None = None, truth: np.ndarray | None = None,
              title: str = "", columns: int = 4, lines=()) -> Figure:
    """Up to columns x columns faces, predicted keypoints in red (joined by the scheme's
    `lines`, index lists), true ones (where given, NaN where missing) as green crosses.
    Keypoints in pixels, (N, 2 x points) as x, y pairs."""
    n = min(len(X), columns * columns)
    rows = max(1, int(np.ceil(n / columns)))
    fig = Figure(figsize=(2 * columns, 2 * rows + 0.4))
    axes = fig.subplots(rows, columns, squeeze=False)
    for i, ax in enumerate(np.ravel(axes)):
        ax.axis("off")
        if i >= n:
            continue
        ax.imshow(np.asarray(X[i]).reshape(X.shape[1], X.shape[2]), cmap="gray", vmin=0, vmax=1)
        if truth is not None:
            ax.scatter(truth[i, 0::2], truth[i, 1::2], s=10, c="lime", marker="x", lw=1)
        if pred is not None:
            for line in lines:
                ax.plot(pred[i, 0::2][list(line)], pred[i, 1::2][list(line)], c="red", lw=0.6)
            ax.scatter(pred[i, 0::2], pred[i, 1::2], s=3 if len(pred[i]) > 30 else 8, c="red")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def architecture(net) -> Figure:
    """The net as Keras draws it (with graphviz), or a table of its layers where graphviz is
    missing."""
    if shutil.which("dot"):
        import keras

        with tempfile.TemporaryDirectory() as tmp:
            png = Path(tmp) / "model.png"
            keras.utils.plot_model(net, to_file=str(png), show_shapes=True,
                                   show_layer_names=False, dpi=80)
            image = matplotlib.image.imread(png)
        height, width = image.shape[:2]
        fig = Figure(figsize=(width / 80, height / 80))
        ax = fig.add_axes((0, 0, 1, 1))
        ax.imshow(image)
        ax.axis("off")
        return fig
    lines = layer_table(net)
    fig = Figure(figsize=(7.5, 0.19 * len(lines) + 0.3))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.axis("off")
    ax.text(0.01, 0.98, "\n".join(lines), family="monospace", fontsize=9, va="top",
            transform=ax.transAxes)
    return fig


def layer_table(net) -> list[str]:
    """One line per layer: type, output shape, parameters; the total last."""
    lines = [f"{'layer':<22}{'output shape':<22}{'parameters':>12}", "-" * 56]
    for layer in net.layers:
        shape = tuple(getattr(layer, "output", None).shape) if hasattr(layer, "output") else ""
        nested = getattr(layer, "layers", None)  # a net inside the net (the tuned mesh's parts)
        kind = f"{layer.name} ({len(nested)} layers)" if nested else type(layer).__name__
        lines.append(f"{kind:<22}{str(shape):<22}{layer.count_params():>12,}")
    lines += ["-" * 56, f"{net.name}: {net.count_params():,} parameters"]
    return lines
