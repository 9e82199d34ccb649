"""A Hydra app for the launcher tests: each job notes when it ran, in which process, on which
GPUs and CPUs, with how many OpenMP threads."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="../fixtures/launcher_app", config_name="app")
def main(cfg: DictConfig) -> int:
    start = time.time()
    time.sleep(cfg.sleep)
    Path(cfg.out, f"{cfg.job}.json").write_text(
        json.dumps(
            {
                "job": cfg.job,
                "pid": os.getpid(),
                "start": start,
                "end": time.time(),
                "gpus": os.environ.get("CUDA_VISIBLE_DEVICES"),
                "cpus": sorted(os.sched_getaffinity(0)),
                "threads": os.environ.get("OMP_NUM_THREADS"),
            }
        )
    )
    return cfg.job


if __name__ == "__main__":
    main()
