"""MediaPipe's face mesh rebuilt as a Keras net, so that it can learn our labels.

The shipped `face_mesh.onnx` is walked node by node: each Conv becomes a `Conv2D` (one group)
or a `DepthwiseConv2D` (a group per channel), each PRelu a `PReLU` shared over the image, each
Pad of the channel axis a `ChannelPad`, with the weights read from the file and turned from
ONNX's layout (OIHW) to Keras' (HWIO). Generic translators fail on this graph (onnx2keras on the
channel padding; onnx2tf pins an older TensorFlow and gives no Keras 3 model).

The tuned net is that body, the framing the frozen mesh gets (`mesh.backbone`) done inside the
graph, and a head: the points' x and y standardised, then one dense layer, started from the
ridge fit of the `mesh` recipe. The face score branch is left out: a points loss gives it no
gradient, and fine-tuning the layers it shares would let it drift.
"""

from __future__ import annotations

import re

import keras
import numpy as np
from keras import layers, ops

from ..keypoints import IMAGE_SIZE
from . import backbone

POINTS_OUTPUT = "conv2d_21"  # the ONNX output with the 468 points (x, y, z in 192x192 pixels)
SCORE_OUTPUT = "conv2d_31"  # the face score's logit


@keras.saving.register_keras_serializable("facekeypoints")
class MeshFraming(layers.Layer):
    """96x96 grey faces in [0, 1] -> the mesh's input: a replicated border, 192x192, three
    channels (as `backbone.frame` does with OpenCV). In training only: exports leave it out
    (`unframed`)."""

    def __init__(self, border: int = backbone.BORDER, size: int = backbone.MESH_INPUT,
                 **kwargs):
        super().__init__(**kwargs)
        self.border, self.size = border, size

    def call(self, x):
        b = self.border
        x = ops.concatenate([ops.repeat(x[:, :1], b, axis=1), x,
                             ops.repeat(x[:, -1:], b, axis=1)], axis=1)
        x = ops.concatenate([ops.repeat(x[:, :, :1], b, axis=2), x,
                             ops.repeat(x[:, :, -1:], b, axis=2)], axis=2)
        x = ops.image.resize(x, (self.size, self.size), interpolation="bilinear")
        return ops.repeat(x, 3, axis=-1)

    def compute_output_shape(self, shape):
        return (shape[0], self.size, self.size, 3)

    def get_config(self):
        return super().get_config() | {"border": self.border, "size": self.size}


@keras.saving.register_keras_serializable("facekeypoints")
class ChannelPad(layers.Layer):
    """Zeros appended to the channel axis: how the mesh widens a residual branch."""

    def __init__(self, extra: int, **kwargs):
        super().__init__(**kwargs)
        self.extra = extra

    def call(self, x):
        return ops.pad(x, [[0, 0], [0, 0], [0, 0], [0, self.extra]])

    def compute_output_shape(self, shape):
        return (*shape[:3], shape[3] + self.extra)

    def get_config(self):
        return super().get_config() | {"extra": self.extra}


@keras.saving.register_keras_serializable("facekeypoints")
class MeshPoints(layers.Layer):
    """The mesh's raw output (N, 1404) -> x and y of its 468 points (N, 936) in the 96x96
    face's pixels, the layout `MeshHead` reads."""

    def call(self, raw):
        side = IMAGE_SIZE + 2 * backbone.BORDER
        points = ops.reshape(raw, (-1, backbone.POINTS, 3))[:, :, :2]
        return ops.reshape(points * (side / backbone.MESH_INPUT) - backbone.BORDER,
                           (-1, 2 * backbone.POINTS))

    def compute_output_shape(self, shape):
        return (shape[0], 2 * backbone.POINTS)


@keras.saving.register_keras_serializable("facekeypoints")
class Standardise(layers.Layer):
    """(x - mean) / scale with fixed statistics: the ridge fit's, so that the head's dense layer
    starts as the ridge head and Adam's steps are alike for every point."""

    def build(self, shape):
        self.mean = self.add_weight(shape=shape[-1:], initializer="zeros", trainable=False,
                                    name="mean")
        self.scale = self.add_weight(shape=shape[-1:], initializer="ones", trainable=False,
                                     name="scale")

    def call(self, x):
        return (x - self.mean) / self.scale


def rebuild(path=None) -> keras.Model:
    """The whole mesh as a Keras model: (N, 192, 192, 3) -> raw points (N, 1404) and the face
    score's logit (N, 1), with the ONNX file's weights."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path or backbone.model_path())).graph
    weights = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    image = keras.Input((backbone.MESH_INPUT, backbone.MESH_INPUT, 3), name="mesh_input")
    tensors = {graph.input[0].name: image}
    for node in graph.node:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        x = tensors[node.input[0]]
        name = re.sub(r"[^A-Za-z0-9_]", "_", node.output[0])  # tf2onnx's names hold ':'
        if node.op_type in ("Transpose", "Reshape"):  # NHWC kept throughout; (N,1,1,C) flat
            y = layers.Flatten(name=name)(x) if node.op_type == "Reshape" else x
        elif node.op_type == "Conv":
            y = _conv(name, attrs, weights[node.input[1]], weights[node.input[2]], x)
        elif node.op_type == "PRelu":
            alpha = weights[node.input[1]].reshape(1, 1, -1)
            prelu = layers.PReLU(shared_axes=[1, 2], name=name)
            y = prelu(x)
            prelu.set_weights([alpha])
        elif node.op_type == "Add":
            y = layers.Add(name=name)([x, tensors[node.input[1]]])
        elif node.op_type == "MaxPool":
            y = layers.MaxPooling2D(attrs["kernel_shape"], attrs["strides"],
                                    name=name)(x)
        elif node.op_type == "Pad":
            pads = weights[node.input[1]].reshape(2, 4)  # begin, end of N, C, H, W
            if pads[0].any() or pads[1][[0, 2, 3]].any():
                raise ValueError(f"{name}: only the channel axis is padded here")
            y = ChannelPad(int(pads[1][1]), name=name)(x)
        else:
            raise ValueError(f"{name}: no Keras layer for ONNX {node.op_type}")
        tensors[node.output[0]] = y
    return keras.Model(image, [tensors[POINTS_OUTPUT], tensors[SCORE_OUTPUT]], name="face_mesh")


def _conv(name: str, attrs: dict, kernel: np.ndarray, bias: np.ndarray, x):
    """One ONNX Conv as a Keras layer. ONNX spells out its pads; Keras' 'same' puts the odd
    pixel of a stride-2 conv at the end, exactly where this file's pads put it."""
    padding = "same" if any(attrs.get("pads", [0])) else "valid"
    channels = x.shape[-1]
    if attrs.get("group", 1) == 1:
        layer = layers.Conv2D(kernel.shape[0], attrs["kernel_shape"], attrs["strides"], padding,
                              name=name)
        kernel = kernel.transpose(2, 3, 1, 0)  # OIHW -> HWIO
    elif attrs["group"] == channels == kernel.shape[0]:
        layer = layers.DepthwiseConv2D(attrs["kernel_shape"], attrs["strides"], padding,
                                       name=name)
        kernel = kernel.transpose(2, 3, 0, 1)  # (C, 1, H, W) -> (H, W, C, 1)
    else:
        raise ValueError(f"{name}: a grouped convolution that is neither plain nor depthwise")
    y = layer(x)
    layer.set_weights([kernel, bias])
    return y


def mesh_net(n_out: int) -> keras.Model:
    """96x96 grey faces -> scaled keypoints: the framing, the rebuilt mesh's points, a head.
    Two parts, `body` (image -> points in face pixels) and `head`, so that training can hold
    the body still while the head settles (`freeze = "until:N"`)."""
    mesh = rebuild()
    mesh = keras.Model(mesh.input, mesh.outputs[0], name="face_mesh_points")  # no score branch
    image = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 1), name="image")
    raw = mesh(MeshFraming()(image))
    points = MeshPoints()(raw)
    body = keras.Model(image, points, name="body")
    features = keras.Input((2 * backbone.POINTS,), name="points")
    standard = Standardise(name="standardise")(features)
    keypoints = layers.Dense(n_out, name="keypoints", dtype="float32")(standard)
    head = keras.Model(features, keypoints, name="head")
    return keras.Model(image, head(body(image)), name="mesh_net")


def unframed(body: keras.Model) -> keras.Model:
    """`mesh_net`'s body without its framing: faces framed by `backbone.frame` (N, 192, 192,
    3) -> points in the 96x96 face's pixels. Exports hold this: with the framing's shape ops
    in its graph (40, around the same convolutions as MediaPipe's file) LiteRT took 1.6 times
    as long for the tuned net as for MediaPipe's file, and OpenCV frames a face in a tenth
    of a millisecond (docs/photos.md)."""
    mesh = body.get_layer("face_mesh_points")
    points = next(layer for layer in body.layers if isinstance(layer, MeshPoints))
    image = keras.Input((backbone.MESH_INPUT, backbone.MESH_INPUT, 3), name="image")
    return keras.Model(image, points(mesh(image)), name="body_unframed")
