import numpy as np
import pytest

from facekeypoints.errors import UserError
from facekeypoints.keypoints import COLUMNS, mirror_name
from facekeypoints.schemes import builtin


def test_mirror_names_swap_left_and_right_wherever_they_stand():
    assert mirror_name("left_eye_center_x") == "right_eye_center_x"
    assert mirror_name("right_eyebrow_outer_end_y") == "left_eyebrow_outer_end_y"
    assert mirror_name("mouth_left_corner_x") == "mouth_right_corner_x"
    assert mirror_name("nose_tip_y") == "nose_tip_y"


def test_flip_permutation_of_all_columns_is_an_involution():
    perm = builtin("kaggle15").flip_permutation(COLUMNS)
    assert sorted(perm) == list(range(30))
    assert (perm[perm] == np.arange(30)).all()
    assert COLUMNS[perm[COLUMNS.index("mouth_left_corner_y")]] == "mouth_right_corner_y"
    assert perm[COLUMNS.index("nose_tip_x")] == COLUMNS.index("nose_tip_x")


def test_flip_permutation_of_a_subset_uses_positions_within_the_subset():
    cols = ["nose_tip_x", "nose_tip_y", "right_eye_center_x", "right_eye_center_y",
            "left_eye_center_x", "left_eye_center_y"]
    assert list(builtin("kaggle15").flip_permutation(cols)) == [0, 1, 4, 5, 2, 3]


def test_subset_missing_a_partner_cannot_flip():
    with pytest.raises(UserError, match="right_eye_center_x"):
        builtin("kaggle15").flip_permutation(["left_eye_center_x", "left_eye_center_y"])


def test_mirroring_about_a_measured_axis_is_its_own_inverse():
    from facekeypoints.keypoints import mirror_keypoints, scale, unscale, x_mask

    perm, is_x = builtin("kaggle15").flip_permutation(COLUMNS), x_mask(COLUMNS)
    axis = np.where(is_x, 97.0 + np.arange(30) % 4 / 10, 95.0)
    axis = (axis + axis[perm]) / 2  # a left/right pair shares its axis
    y = scale(np.random.default_rng(0).uniform(10, 86, (5, 30)))
    once = mirror_keypoints(y, perm, is_x, axis=axis)
    np.testing.assert_allclose(unscale(once)[:, is_x], axis[is_x] - unscale(y)[:, perm][:, is_x],
                               atol=1e-4)
    np.testing.assert_allclose(unscale(once)[:, ~is_x], unscale(y)[:, perm][:, ~is_x], atol=1e-4)
    np.testing.assert_allclose(mirror_keypoints(once, perm, is_x, axis=axis), y, atol=1e-6)
