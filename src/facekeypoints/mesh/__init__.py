"""Transfer learning from a face model that has seen far more people than our 237.

MediaPipe's face mesh (`backbone`) stays frozen and places 468 points on a face; ridge heads
(`heads`) map its points to keypoints, fitted on the user's labels in seconds; `mirror`
measures where the labels' x mirrors, with the mesh as the instrument. The mesh runs on ONNX
Runtime: nothing here imports TensorFlow.
"""
