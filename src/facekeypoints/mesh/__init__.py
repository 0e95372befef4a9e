"""Transfer learning from a face model that has seen far more people than our 237, all in one
place, each module in the layer of its job (tests/test_layout.py's LAYERS).

MediaPipe's face mesh (`backbone`, on ONNX Runtime) places 468 points on a face; ridge heads
(`heads`) map its points to keypoints, fitted on the user's labels in seconds; `mirror`
measures where the labels' x mirrors, with the mesh as the instrument; `photo_head` fits the
head for faces cut from photographs, one way for every run; `net` rebuilds the mesh in Keras.
Those sit below the run folders. A `mesh` run (`fit`) and fine-tuning (`tune`) train, with
`training/`; `predictor` is the mesh as a model, with `inference/`. Importing this package
imports none of them, and nothing but `net` and `tune` imports TensorFlow.
"""
