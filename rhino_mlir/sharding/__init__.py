"""The sharding model, below analysis and partition: meshes and tensor shardings in Shardy's
notation (`model`), XLA's `mhlo.sharding` reader (`mhlo`), reading and writing them on IR
(`annotations`), factor shardings projected to and from tensors (`factors`), and device
positions and replica groups (`device_index`).

`model`'s names are re-exported here; importing this package never imports jax (rank
processes read shardings from the artifact manifest)."""
from .model import (AxisRef, Mesh, TensorSharding, axes_size, meshes_in, parse_mesh_body,  # noqa: F401
                    parse_sharding, parse_sharding_per_value, per_value_text)
