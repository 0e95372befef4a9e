"""facekeypoints: find the 15 Kaggle facial keypoints, from the tutorial's nets to modern ones."""

import os

# Quiet TensorFlow's start-up chatter and pick its backend unless the user chose another.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

__version__ = "0.1.0"
