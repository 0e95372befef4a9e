"""Face data in Kaggle's formats and whole labelled photos (COCO, .pts folders, photo CSVs):
reading and checking the files, held-out people, and the built-in synthetic faces
(`synthetic`)."""

from .kaggle import (
    Faces,
    check_columns,
    kind_of,
    load_lookup,
    load_test,
    parse_images,
    parse_numbers,
    read_csv,
)
from .photos import load_training
from .split import prepare_data, split

__all__ = ["Faces", "check_columns", "kind_of", "load_lookup", "load_test", "load_training",
           "parse_images", "parse_numbers", "prepare_data", "read_csv", "split"]
