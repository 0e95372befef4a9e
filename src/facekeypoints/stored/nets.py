"""The networks, each visible at a glance, and the layers of our own that saved models are made
of (Keras finds them by their registered names when it loads a .keras file): below training and
inference, which both build or load them. In: (96, 96, 1) in [0, 1]; out: scaled keypoints."""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from ..errors import UserError
from ..keypoints import IMAGE_SIZE
from ..mesh.net import mesh_net
from .recipe import Recipe

INPUT_SHAPE = (IMAGE_SIZE, IMAGE_SIZE, 1)


@keras.saving.register_keras_serializable("facekeypoints")
class SpaceToDepth(layers.Layer):
    """Each block x block patch of pixels becomes one position with block**2 channels."""

    def __init__(self, block: int, **kwargs):
        super().__init__(**kwargs)
        self.block = block

    def call(self, x):
        b, (h, w, c) = self.block, x.shape[1:]
        x = ops.reshape(x, (-1, h // b, b, w // b, b, c))
        x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
        return ops.reshape(x, (-1, h // b, w // b, b * b * c))

    def compute_output_shape(self, shape):
        b = self.block
        return (shape[0], shape[1] // b, shape[2] // b, shape[3] * b * b)

    def get_config(self):
        return super().get_config() | {"block": self.block}


@keras.saving.register_keras_serializable("facekeypoints")
class FusedBatchNorm(layers.BatchNormalization):
    """Keras' batch norm, but training steps under TensorFlow run one fused kernel (oneDNN on a
    CPU) for the forward and one for the gradient instead of a dozen elementwise ops: 2.6x faster
    measured, and batch norm was the largest share of a `fast` epoch. Same statistics, same
    variables; inference and the other backends run Keras' own code."""

    def call(self, inputs, training=None, mask=None):
        if not (training and self.trainable and mask is None and self._fusable(inputs)):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        y, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            inputs, self.gamma, self.beta, epsilon=self.epsilon, is_training=True)
        n = ops.cast(ops.prod(ops.shape(inputs)[:-1]), variance.dtype)
        variance = variance * (n - 1) / n  # the kernel returns the unbiased; Keras keeps biased
        m = self.momentum
        self.moving_mean.assign(self.moving_mean * m + mean * (1 - m))
        self.moving_variance.assign(self.moving_variance * m + variance * (1 - m))
        return y

    def _fusable(self, inputs) -> bool:
        return (keras.backend.backend() == "tensorflow" and len(inputs.shape) == 4
                and self.axis in (-1, 3) and self.center and self.scale and not self.renorm
                and not self.synchronized
                and keras.backend.standardize_dtype(inputs.dtype) == "float32")


@keras.saving.register_keras_serializable("facekeypoints")
class FastDropout(layers.Dropout):
    """Keras' dropout, but under TensorFlow each keep/drop flag costs 16 random bits, not 32.
    Drawing the random numbers was most of dropout's time, and dropout 22% of a model5 epoch.
    The rate becomes the nearest multiple of 1/65536 (0.1 -> 0.100006); the kept values are
    scaled to match, so the expected output is still the input. Elsewhere: Keras' own code."""

    LEVELS = 1 << 16

    def call(self, inputs, training=False):
        dropped = round(self.rate * self.LEVELS)
        if not (training and 0 < dropped < self.LEVELS and self.noise_shape is None
                and keras.backend.backend() == "tensorflow"):
            return super().call(inputs, training=training)
        import tensorflow as tf

        n = tf.size(inputs)
        words = tf.random.stateless_uniform([(n + 1) // 2], self.seed_generator.next(),
                                            minval=None, maxval=None, dtype=tf.uint32)
        flags = tf.reshape(tf.bitcast(words, tf.uint16), [-1])[:n]  # two 16-bit draws a word
        scale = tf.constant(self.LEVELS / (self.LEVELS - dropped), inputs.dtype)
        mask = tf.reshape(tf.where(flags >= dropped, scale, tf.zeros_like(scale)),
                          tf.shape(inputs))

        @tf.custom_gradient
        def apply(x):  # one multiply each way; tf.nn.dropout's gradient makes four passes
            return x * mask, lambda dy: dy * mask

        return apply(inputs)


def mlp(n_out: int, hidden: list[int]) -> keras.Model:
    """Nouri's net1: flatten the pixels, one (or more) hidden ReLU layers, linear output."""
    inputs = keras.Input(INPUT_SHAPE, name="image")
    x = layers.Flatten()(inputs)
    for units in hidden:
        x = layers.Dense(units, activation="relu")(x)
    outputs = layers.Dense(n_out, name="keypoints", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="mlp")


def cnn(n_out: int, conv: list[list[int]], dense: list[int], dropout: list[float],
        batch_norm: bool = False, zero_output: bool = False, space_to_depth: int = 1,
        padding: str = "valid") -> keras.Model:
    """Nouri's net2..net7: conv + 2x2 max pool blocks, dense layers, optional dropout after each;
    optionally batch norm after each conv, an output that starts at zero (the mean face), and
    the image folded into channels first (a quarter of the conv positions, no pixel lost)."""
    rates = list(dropout) + [0.0] * (len(conv) + len(dense))
    inputs = keras.Input(INPUT_SHAPE, name="image")
    x = inputs
    if space_to_depth > 1:
        x = SpaceToDepth(space_to_depth)(x)
    for i, (filters, size) in enumerate(conv):
        if batch_norm:
            x = layers.Conv2D(filters, size, padding=padding, use_bias=False)(x)
            x = FusedBatchNorm(momentum=0.9)(x)
            x = layers.Activation("relu")(x)
        else:
            x = layers.Conv2D(filters, size, padding=padding, activation="relu")(x)
        x = layers.MaxPooling2D(2)(x)
        if rates[i]:
            x = FastDropout(rates[i])(x)
    x = layers.Flatten()(x)
    for j, units in enumerate(dense):
        x = layers.Dense(units, activation="relu")(x)
        if rates[len(conv) + j]:
            x = FastDropout(rates[len(conv) + j])(x)
    outputs = layers.Dense(n_out, name="keypoints", dtype="float32",
                           kernel_initializer="zeros" if zero_output else "glorot_uniform")(x)
    return keras.Model(inputs, outputs, name="cnn")


def build(recipe: Recipe, n_out: int) -> keras.Model:
    if recipe.model == "mesh":
        raise UserError(f"recipe {recipe.name}: the mesh is a pretrained ONNX model with a ridge "
                        "head, not a Keras net")
    keras.utils.set_random_seed(recipe.seed)
    if recipe.model == "mesh-net":
        return mesh_net(n_out)
    if recipe.model == "mlp":
        return mlp(n_out, recipe.hidden)
    return cnn(n_out, recipe.conv, recipe.dense, recipe.dropout, recipe.batch_norm,
               recipe.zero_output, recipe.space_to_depth, recipe.padding)


def with_keras_layers(net: keras.Model) -> keras.Model:
    """The same net and weights built from Keras' own layers, as the tutorial's code builds it:
    the reference our faster layers are measured and tested against."""
    plain = {FastDropout: layers.Dropout, FusedBatchNorm: layers.BatchNormalization}
    twin = keras.models.clone_model(
        net, clone_function=lambda layer: plain.get(type(layer), type(layer)).from_config(
            layer.get_config()))
    twin.set_weights(net.get_weights())
    return twin


def predict_scaled(net: keras.Model, X: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """A Keras net's predictions in scaled units, without `Model.predict`'s overhead per call."""
    if len(X) == 0:
        return np.zeros((0, net.output_shape[-1]), dtype=np.float32)
    if replicas(net) > 1:  # predict_on_batch would hand each replica the whole batch
        return np.asarray(net.predict(X, batch_size=batch_size, verbose=0))
    parts = [net.predict_on_batch(X[i : i + batch_size]) for i in range(0, len(X), batch_size)]
    return np.concatenate([np.asarray(p) for p in parts])


def replicas(model: keras.Model) -> int:
    """How many devices train `model` together (1 unless built under a distribution)."""
    if keras.backend.backend() == "tensorflow":
        return int(model.distribute_strategy.num_replicas_in_sync)
    distribution = keras.distribution.distribution()
    return len(distribution.device_mesh.devices.ravel()) if distribution is not None else 1
