"""The Ray engine: one manifest's jobs in shards across a Ray cluster (see driver.py)."""

from .driver import ClusterOutcome, ClusterRequest, run_on_ray

__all__ = ["ClusterOutcome", "ClusterRequest", "run_on_ray"]
