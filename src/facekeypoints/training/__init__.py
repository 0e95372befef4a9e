"""Training: recipes (every setting in one place), the nets, augmentation, losses and
optimisers, the loop, the run folder it writes, specialists and transfer learning, and the
mesh's heads fitted into a run folder.

Nothing here is imported by `import facekeypoints.training`: the Keras modules load when used,
so that recipes and run folders read without TensorFlow.
"""
