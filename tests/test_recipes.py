"""Recipes: every built-in loads, inheritance and overrides work, bad settings are one line."""

import re

import numpy as np
import pytest

from facekeypoints.errors import UserError
from facekeypoints.training import models
from facekeypoints.training import recipe as recipe_mod

TUTORIAL = ["model1", "model2", "model3", "model4", "model5", "model6", "model7"]


def test_all_tutorial_recipes_are_built_in():
    assert set(TUTORIAL) <= set(recipe_mod.builtin_names())


def test_recipes_inherit_and_change_only_what_differs():
    m2, m3, m4 = (recipe_mod.load(n) for n in ("model2", "model3", "model4"))
    m5, m6, m7 = (recipe_mod.load(n) for n in ("model5", "model6", "model7"))
    assert (m2.epochs, m2.flip, m2.optimizer, m2.learning_rate) == (1000, False, "sgd", 0.01)
    assert m3.flip and m3.epochs == 3000 and m3.conv == m2.conv
    assert (m4.learning_rate, m4.learning_rate_end, m4.momentum_end) == (0.03, 0.001, 0.999)
    assert m5.dropout == [0.1, 0.2, 0.3, 0.5] and m5.flip
    assert m6.dense == [1000, 1000] and m6.epochs == 5000
    assert m7.patience == 100 and m7.dense == [1000, 1000]


def test_overrides_and_round_trip_through_the_resolved_toml(tmp_path):
    r = recipe_mod.load("model5", {"epochs": 7, "batch_size": 32, "dropout": [0.0, 0.1]})
    assert (r.epochs, r.batch_size, r.dropout) == (7, 32, [0.0, 0.1])
    path = tmp_path / "mine.toml"
    path.write_text(r.to_toml())
    assert recipe_mod.load(str(path)) == r


def test_user_recipe_file_extends_a_built_in(tmp_path):
    path = tmp_path / "wide.toml"
    path.write_text('extends = "model2"\ndense = [800, 800]\n')
    r = recipe_mod.load(str(path))
    assert r.name == "wide" and r.dense == [800, 800] and r.conv == [[32, 3], [64, 2], [128, 2]]


@pytest.mark.parametrize(("overrides", "message"), [
    ({"epochz": 3}, "unknown setting(s) epochz"),
    ({"model": "resnet"}, "model='resnet': expected mlp, cnn, mesh or mesh-net"),
    ({"dropout": [0.5, 1.5]}, "dropout"),
    ({"columns": ["nose_tip_x"]}, "pairs of keypoint columns"),
    ({"columns": ["left_eye_center_x", "left_eye_center_y"], "flip": True}, "both sides"),
    ({"groups": {"eyes": 42}}, "groups={'eyes': 42}: expected a table of lists of strings"),
    ({"padding": "full"}, "padding='full': expected valid or same"),
    ({"mirror": "left"}, "mirror='left': expected pixel or measured"),
    ({"conv": [[32]]}, "[filters, size] pairs"),
    ({"space_to_depth": 8, "conv": [[32, 3], [64, 3], [128, 3]]},
     "a map of at least 1x1 from a 12x12 input"),
])
def test_bad_settings_are_user_errors(overrides, message):
    with pytest.raises(UserError, match=re.escape(message)):
        recipe_mod.load("model3", overrides)


def test_unknown_recipe_lists_the_known_ones():
    with pytest.raises(UserError, match="unknown recipe 'model99'; choose one of .*model1, model2"):
        recipe_mod.load("model99")


def _dense(i, o):
    return i * o + o


def test_tutorial_architectures_have_nouris_parameter_counts():
    mlp = models.build(recipe_mod.load("model1"), 30)
    assert mlp.count_params() == _dense(9216, 100) + _dense(100, 30)
    cnn = models.build(recipe_mod.load("model2"), 30)
    conv = (3 * 3 * 1 * 32 + 32) + (2 * 2 * 32 * 64 + 64) + (2 * 2 * 64 * 128 + 128)
    # 96 -conv3-> 94 -pool-> 47 -conv2-> 46 -pool-> 23 -conv2-> 22 -pool-> 11
    assert cnn.count_params() == conv + _dense(11 * 11 * 128, 500) + _dense(500, 500) \
        + _dense(500, 30)
    wide = models.build(recipe_mod.load("model6"), 30)
    assert sum(isinstance(layer, models.FastDropout) for layer in wide.layers) == 4


def test_folded_same_padded_net_keeps_its_map_sizes():
    net = models.build(recipe_mod.load("model2", {"space_to_depth": 2, "padding": "same",
                                                  "conv": [[32, 3], [64, 3], [128, 3]]}), 30)
    # 96x96x1 -fold-> 48x48x4 -conv, pool-> 24 -conv, pool-> 12 -conv, pool-> 6
    assert net.get_layer(index=-4).output.shape[1:] == (6 * 6 * 128,)
    assert net.count_params() == (9 * 4 * 32 + 32) + (9 * 32 * 64 + 64) + (9 * 64 * 128 + 128) \
        + _dense(6 * 6 * 128, 500) + _dense(500, 500) + _dense(500, 30)


def test_space_to_depth_moves_every_pixel_to_its_block_channel():
    image = np.arange(96 * 96, dtype=np.float32).reshape(1, 96, 96, 1)
    folded = np.asarray(models.SpaceToDepth(2)(image))
    assert folded.shape == (1, 48, 48, 4)
    # Position (i, j) holds the 2x2 block at rows 2i..2i+1, columns 2j..2j+1, row by row.
    assert folded[0, 5, 7].tolist() == [image[0, 10, 14, 0], image[0, 10, 15, 0],
                                        image[0, 11, 14, 0], image[0, 11, 15, 0]]
    assert sorted(folded.ravel().tolist()) == image.ravel().tolist()


def test_a_saved_folded_net_loads_in_a_fresh_process(tmp_path):
    import subprocess
    import sys

    net = models.build(recipe_mod.load("fast"), 30)
    net.save(tmp_path / "fast.keras")
    code = ("import sys; from facekeypoints.inference import loading; "
            "p = loading.load(sys.argv[1]); print(type(p.net.layers[1]).__name__)")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "fast.keras")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("SpaceToDepth")


def test_fused_batch_norm_trains_and_infers_like_keras_batch_norm():
    import keras

    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 3.0, size=(8, 12, 12, 5)).astype(np.float32)
    weights = rng.normal(size=x.shape).astype(np.float32)  # a loss with non-trivial gradients
    ours = models.FusedBatchNorm(momentum=0.9)
    theirs = keras.layers.BatchNormalization(momentum=0.9)
    start = [rng.normal(size=(5,)).astype(np.float32) for _ in range(2)] \
        + [np.zeros(5, np.float32), np.ones(5, np.float32)]  # gamma, beta, moving mean, variance
    results = []
    for layer in (ours, theirs):
        layer.build(x.shape)
        layer.set_weights(start)
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            xt = tf.constant(x)
            with tf.GradientTape() as tape:
                tape.watch(xt)
                y = layer(xt, training=True)
                loss = tf.reduce_sum(y * weights)
            grads = [np.asarray(g) for g in tape.gradient(loss, [xt, *layer.trainable_weights])]
        else:
            y, grads = layer(x, training=True), []
        results.append((np.asarray(y), grads, [np.asarray(w) for w in layer.get_weights()],
                        np.asarray(layer(x, training=False))))
    (y1, g1, w1, inf1), (y2, g2, w2, inf2) = results
    np.testing.assert_allclose(y1, y2, atol=1e-4)
    for a, b in zip(g1, g2, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-3 * np.abs(b).max())
    for a, b in zip(w1, w2, strict=True):  # moving mean and (biased) variance moved alike
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert not np.allclose(w1[2], 0.0)
    np.testing.assert_allclose(inf1, inf2, atol=1e-4)
    # ... and under TensorFlow that was the fused kernel, not Keras' code again
    tensorflow = keras.backend.backend() == "tensorflow"
    assert ours._fusable(keras.ops.convert_to_tensor(x)) is tensorflow


def test_fast_dropout_drops_at_its_rate_keeps_the_mean_and_routes_gradients_through_kept_units():
    import keras

    x = np.random.default_rng(0).uniform(0.5, 1.5, size=(64, 47, 47, 8)).astype(np.float32)
    layer = models.FastDropout(0.1, seed=3)
    y = np.asarray(layer(x, training=True))
    dropped = y == 0
    assert abs(dropped.mean() - 0.1) < 2e-3  # 1.1M flags: the standard error is 3e-4
    scale = 65536 / (65536 - 6554)  # 0.1 of 65536 levels, rounded
    np.testing.assert_allclose(y[~dropped], x[~dropped] * scale, rtol=1e-6)
    assert abs(y.mean() / x.mean() - 1) < 2e-3
    assert (np.asarray(layer(x, training=True)) == 0).mean() > 0.05  # a new draw each call ...
    assert (dropped != (np.asarray(layer(x, training=True)) == 0)).mean() > 0.1
    np.testing.assert_array_equal(np.asarray(layer(x, training=False)), x)  # ... none at inference
    odd = np.asarray(models.FastDropout(0.5, seed=1)(np.ones((3, 5), np.float32), training=True))
    assert set(np.unique(odd)) <= {0.0, 2.0} and 0 < (odd == 0).sum() < 15
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        xt = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            out = layer(xt, training=True)
            loss = tf.reduce_sum(out * 3.0)
        grad = np.asarray(tape.gradient(loss, xt))
        kept = np.asarray(out) != 0
        np.testing.assert_allclose(grad[kept], 3.0 * scale, rtol=1e-6)
        assert (grad[~kept] == 0).all()


def test_fast_dropout_trains_as_on_a_gpu_in_float16_and_under_xla():
    import keras

    half = models.FastDropout(0.1, seed=2, dtype="float16")(
        np.ones((64, 40, 40), np.float16), training=True)
    assert keras.backend.standardize_dtype(half.dtype) == "float16"
    assert abs((np.asarray(half) == 0).mean() - 0.1) < 5e-3
    net = keras.Sequential([keras.Input((7,)), keras.layers.Dense(9), models.FastDropout(0.3),
                            keras.layers.Dense(2)])
    net.compile("sgd", "mse", jit_compile=keras.backend.backend() != "torch")
    x = np.random.default_rng(0).uniform(size=(33, 7)).astype(np.float32)
    losses = [float(net.train_on_batch(x, x[:, :2])) for _ in range(3)]
    history = net.fit(x, x[:, :2], batch_size=5, epochs=1, verbose=0)  # odd unit counts too
    assert all(np.isfinite(losses + history.history["loss"]))


def test_with_keras_layers_builds_the_same_net_from_keras_own_layers(tmp_path):
    import keras

    net = models.build(recipe_mod.load("model5"), 30)
    twin = models.with_keras_layers(net)
    kinds = [type(layer) for layer in twin.layers]
    assert kinds.count(keras.layers.Dropout) == 4 and models.FastDropout not in kinds
    assert [layer.rate for layer in twin.layers if isinstance(layer, keras.layers.Dropout)] \
        == [0.1, 0.2, 0.3, 0.5]
    faces = np.random.default_rng(1).uniform(size=(4, 96, 96, 1)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(twin(faces)), np.asarray(net(faces)), atol=1e-6)
    net.save(tmp_path / "model5.keras")  # and ours saves and loads as itself
    loaded = keras.models.load_model(tmp_path / "model5.keras")
    assert sum(isinstance(layer, models.FastDropout) for layer in loaded.layers) == 4
