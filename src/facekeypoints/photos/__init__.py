"""Keypoints on photographs and video: reading photos, finding faces, framing them as the
training faces are framed, the pipeline, following faces through video, what is written out,
and scores against ground truth.

    reading, framing -> detectors -> pipeline -> tracking, video, outputs, scores
    detect (the batch job over files and folders) uses them all
"""

from .pipeline import Face, FacePipeline, PhotoResult
from .reading import PhotoError, PhotoTooLarge, read_photo

__all__ = ["Face", "FacePipeline", "PhotoError", "PhotoResult", "PhotoTooLarge", "read_photo"]
