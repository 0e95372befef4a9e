"""What is stored, below both training and inference: the run folder's format and lifecycle
(`runs`: recipe, history, summary, checkpoints, data record, scheme, the lock), recipes and
their files (`recipe`, `recipes/*.toml`), and the nets saved models are made of (`nets`, with
the face mesh rebuilt in Keras from `mesh.net`: the layers Keras must know to load a .keras
file).
Training writes these and inference reads them; neither reaches the other for them."""
