"""One MPI rank running many artifacts in a row (the corpus's batched `rhino launch`).

    mpiexec -n N python tests/product/batch_rank.py JOBS.json

JOBS.json lists {artifact, inputs, outputs, run_dir}; every rank calls the rank
entry point of `rhino launch` (rhino_mlir.launch.rank.main.main) on each in order,
so slicing, scatter, the Executor over MPI, gather and assembly are the product's.
A failing case aborts the whole job there (as in `rhino launch`); the parent
(mpi_batch.py) records it and starts a new job after it. Never imports jax.
"""
import json
import sys

from rhino_mlir.launch.rank.main import main

if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        jobs = json.load(f)
    for job in jobs:
        main([job["artifact"], "--run-dir", job["run_dir"], "--inputs", job["inputs"],
              "--outputs", job["outputs"]])
