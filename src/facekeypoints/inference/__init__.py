"""Inference: any trained model as one predictor (`loading.load`), averages of models,
accuracy in pixels, Kaggle submissions and ONNX export. The ONNX and mesh paths never import
TensorFlow."""
