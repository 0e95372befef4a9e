"""`detect` over more inputs than one process gets through: a batch job on Ray Data.

    store (a local folder or object storage) -> manifest (the inputs, the model, the
    settings, the parts) -> parts (a worker's results, one Parquet file each) -> merge
    (keypoints.json and keypoints.csv, as `detect` writes them); ray_job drives it.
"""
