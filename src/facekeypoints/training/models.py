"""The nets, as training builds them: `stored.nets` (below inference too), re-exported."""

from ..stored.nets import (
    INPUT_SHAPE,
    FastDropout,
    FusedBatchNorm,
    SpaceToDepth,
    build,
    cnn,
    mesh_net,
    mlp,
    predict_scaled,
    with_keras_layers,
)

__all__ = ["INPUT_SHAPE", "FastDropout", "FusedBatchNorm", "SpaceToDepth", "build", "cnn",
           "mesh_net", "mlp", "predict_scaled", "with_keras_layers"]
