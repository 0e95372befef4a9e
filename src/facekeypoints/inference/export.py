"""Export a trained model to ONNX, with its columns and test-time flip setting as metadata."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from .. import schemes
from ..errors import UserError
from ..files import atomic_write
from .predictor import Predictor


def export_onnx(predictor: Predictor, out: str | Path) -> Path:
    import onnx

    net, extra = predictor.export_net()
    if net is None:
        raise UserError(f"export: {predictor.name} has no Keras net to export (a mesh run or "
                        "an ONNX file); give a run folder or .keras file of one net, a group "
                        "of specialists or an average")
    net.predict_on_batch(np.zeros((1, *net.input_shape[1:]), np.float32))  # export needs a call
    out = Path(out)

    def write(tmp: Path) -> None:
        with warnings.catch_warnings():  # tf2onnx still names np.object
            warnings.filterwarnings("ignore", "In the future `np.object`", FutureWarning)
            net.export(str(tmp), format="onnx", verbose=False)
        model = onnx.load(str(tmp))
        for key, value in (("columns", json.dumps(predictor.columns)),
                           ("tta", "true" if predictor.tta else "false"),
                           ("name", predictor.name),
                           ("scheme", json.dumps(schemes.record(predictor.scheme))),
                           ("mirror_axis", json.dumps(np.broadcast_to(
                               predictor.mirror_axis, len(predictor.columns)).tolist())),
                           *extra.items()):
            entry = model.metadata_props.add()
            entry.key, entry.value = f"facekeypoints.{key}", value
        onnx.save(model, str(tmp))

    atomic_write(out, write, suffix=".onnx")
    return out
