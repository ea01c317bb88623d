"""The planner's clock: seconds for compute (roofline on the slowest device) and reshard steps."""
from __future__ import annotations

from ...analysis import cost
from ...cluster import Cluster


class Timer:
    """Seconds for compute (roofline on the slowest device) and reshard steps (links)."""

    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        profiles = [cluster.profile(d) for d in range(cluster.num_devices)]
        self.profile = min(profiles, key=lambda p: p.peak("f32"))

    def compute(self, flops: float, nbytes: float, dtype: str) -> float:
        return cost.compute_time(flops, nbytes, dtype, self.profile)

    def comm(self, step, mesh) -> float:
        return cost.step_time(step, mesh, self.cluster)
