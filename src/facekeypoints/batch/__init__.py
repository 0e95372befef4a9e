"""`detect` over more inputs than one process gets through: the same job as `detect` in one
process (`photos/job.py`: the plan; `photos/parts.py`: a task's part and the merge), run on a
Ray Data actor pool.

    store (a local folder or object storage) -> manifest (ModelSpec: the model as workers
    receive it) -> ray_job (the driver: plan, tasks on the pool, progress, merge)
"""
