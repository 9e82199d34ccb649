"""The trainer's cluster environment: Lightning's own choice, with its SLURM requeue off.

Lightning, finding itself in a SLURM job, installs a SIGUSR1 handler that saves a
checkpoint and requeues the job. Under submitit that is a second requeue mechanism
beside submitit's own (SIGUSR2: the job is resubmitted and the run resumes from its
checkpoint), so the SLURM environment is built here with `auto_requeue=False`. Used by
every trainer option, through conf/trainer/base/lightning.yaml:
`plugins: [{_target_: src.launch.cluster.cluster_environment}]`.
"""

from __future__ import annotations

import os

from lightning.fabric.plugins.environments import (
    ClusterEnvironment,
    LightningEnvironment,
    LSFEnvironment,
    MPIEnvironment,
    SLURMEnvironment,
    TorchElasticEnvironment,
)


def in_slurm_job() -> bool:
    """Lightning's test (SLURMEnvironment.detect), without its warning outside a job."""
    return "SLURM_NTASKS" in os.environ and os.environ.get("SLURM_JOB_NAME") not in ("bash", "interactive")


def cluster_environment(auto_requeue: bool = False) -> ClusterEnvironment:
    """What Lightning would pick, in its order; in SLURM with `auto_requeue` as given."""
    if TorchElasticEnvironment.detect():
        return TorchElasticEnvironment()
    if in_slurm_job():
        return SLURMEnvironment(auto_requeue=auto_requeue)
    if LSFEnvironment.detect():
        return LSFEnvironment()
    if MPIEnvironment.detect():
        return MPIEnvironment()
    return LightningEnvironment()
