"""Pictures a person would rather see than read: learning curves, faces with keypoints, nets."""

from __future__ import annotations

import shutil
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .errors import UserError  # noqa: E402
from .files import atomic_write_text, save_figure_atomic  # noqa: E402


def learning_curves(runs: list[str | Path], out: str | Path, title: str = "") -> Path:
    """Train (solid) and validation (dashed) loss of several runs on a log scale, and val RMSE."""
    from .specialists import group_members
    from .train import RunFolder

    runs = [member for path in runs for member in group_members(path)]
    fig, (ax_loss, ax_rmse) = plt.subplots(1, 2, figsize=(12, 4.5))
    for i, path in enumerate(runs):
        run = RunFolder(Path(path))
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
    ax_rmse.set(yscale="log", xlabel="epoch", ylabel="validation RMSE (pixels)",
                title="validation RMSE")
    for ax in (ax_loss, ax_rmse):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save_figure_atomic(fig, out, dpi=110)
    plt.close(fig)
    return Path(out)


def face_grid(X: np.ndarray, pred: np.ndarray, out: str | Path, truth: np.ndarray | None = None,
              title: str = "", columns: int = 4) -> Path:
    """Up to 16 faces, predicted keypoints in red (and true ones in green where given)."""
    n = min(len(X), columns * columns)
    fig, axes = plt.subplots(columns, columns, figsize=(8, 8.4))
    for i, ax in enumerate(np.ravel(axes)):
        ax.axis("off")
        if i >= n:
            continue
        ax.imshow(X[i, :, :, 0], cmap="gray", vmin=0, vmax=1)
        if truth is not None:
            ax.scatter(truth[i, 0::2], truth[i, 1::2], s=10, c="lime", marker="x", lw=1)
        ax.scatter(pred[i, 0::2], pred[i, 1::2], s=8, c="red")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure_atomic(fig, out, dpi=100)
    plt.close(fig)
    return Path(out)


def architecture(net, out: str | Path) -> tuple[Path, str]:
    """The net as a diagram; a text summary (and a note) where graphviz is not installed."""
    out = Path(out)
    if shutil.which("dot"):
        import keras

        keras.utils.plot_model(net, to_file=str(out), show_shapes=True, show_layer_names=False)
        return out, ""
    text_path = out.with_suffix(".txt")
    lines: list[str] = []
    net.summary(line_length=90, print_fn=lambda line, *args, **kwargs: lines.append(line))
    atomic_write_text(text_path, "\n".join(lines) + "\n")
    return text_path, "graphviz is not installed (apt-get install graphviz); wrote a text summary"
