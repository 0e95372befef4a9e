"""Landmark schemes as data: the ordered point names, the mirror pairs that flips need, the
lines to draw, the eye points that normalise errors, and where each point sits in a face framed
as the training faces are.

Built in: Kaggle's 15 keypoints (`kaggle15`), iBUG's 68 (`ibug68`, 300-W's `.pts` order, 0-based,
points named p0..p67 as in `faces68/training.csv.gz`) and the face mesh's 468 (`mesh468`, m0..m467).
A user's own scheme is a small TOML file with the same keys (docs/schemes.md):

    name = "my-points"
    points = ["chin", "left_eye", "right_eye"]
    mirror = [["left_eye", "right_eye"]]   # optional: pairs by "left"/"right" in the names
    lines = [["left_eye", "chin", "right_eye"]]   # optional
    eyes = [["left_eye"], ["right_eye"]]   # optional: NME's eye centres (subject's left, right)
"""

from .scheme import BUILTIN, KEYS, Scheme
from .sources import builtin, for_columns, from_dict, is_builtin, load, record

__all__ = ["BUILTIN", "KEYS", "Scheme", "builtin", "for_columns", "from_dict", "is_builtin",
           "load", "record"]
