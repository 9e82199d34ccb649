"""`hydra/launcher=slurm_auto`: each grid point on the SLURM allocation its size needs.

hydra-submitit-launcher's SlurmLauncher submits a sweep as one array with one set of SLURM
parameters. This one composes every point first and plans its allocation
(src.launch.resources.plan: devices, nodes, trainer, CPUs, memory, time), refuses the
sweep with one line if a point fits nowhere, then submits one array per group of points
that need the same allocation, with the group's parameters (its time limit: the longest
of its points'). Each group's jobs run a copy of the launcher that carries the group's
trainer overrides (`trainer=fsdp trainer.devices=8 ...`): the job composes its point with
them, while the point keeps its own overrides as its identity (its run directory's name,
.hydra/overrides.yaml, the submission `status` reads), so that a requeued job, a relaunch
and `python -m src.sweep status` see the grid point as the user wrote it.
"""

from __future__ import annotations

import copy
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, filter_overrides, run_job, setup_globals
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher
from omegaconf import OmegaConf, open_dict

log = logging.getLogger(__name__)


class SlurmAutoLauncher(SlurmLauncher):
    """See the module docstring."""

    def __init__(self, site: Any = None, **params: Any) -> None:
        super().__init__(**params)
        # the base class has made every config value a plain container (self.params)
        site = OmegaConf.to_container(site, resolve=True) if OmegaConf.is_config(site) else site
        self.site: dict[str, Any] = dict(site or {})
        self.planned: list[str] = []  # the trainer overrides of this copy's group

    def plans(self, job_overrides: Sequence[Sequence[str]]) -> list[Any]:
        """Every point's Plan, in order; exit 2 with one line where a point fits nowhere."""
        from src.config.errors import ConfigError
        from src.launch.resources import plan, site_settings

        assert self.config is not None and self.hydra_context is not None
        out = []
        try:
            site = site_settings(None, **self.site)
            for overrides in job_overrides:
                cfg = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
                out.append(plan(cfg, site))
        except ConfigError as e:
            print(f"error: {e}", file=sys.stderr)
            raise SystemExit(2) from None
        return out

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        import submitit

        assert self.config is not None and job_overrides
        plans = self.plans(job_overrides)
        groups: dict[tuple[Any, ...], list[int]] = {}
        for i, p in enumerate(plans):
            groups.setdefault(p.group(), []).append(i)

        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        baseparams = set(OmegaConf.structured(BaseQueueConf).keys())
        init_keys = {"submitit_folder", "max_num_timeout"}
        jobs: dict[int, Any] = {}
        for members in groups.values():
            first = plans[members[0]]
            params = {**self.params, **first.slurm()}
            params["timeout_min"] = max(plans[i].time_h for i in members) * 60
            executor = submitit.AutoExecutor(
                cluster="slurm",
                folder=params["submitit_folder"],
                slurm_max_num_timeout=params.get("max_num_timeout", 0),
            )
            executor.update_parameters(
                **{k if k in baseparams else f"slurm_{k}": v for k, v in params.items() if k not in init_keys}
            )
            runner = copy.copy(self)
            runner.planned = first.overrides()
            log.info(
                "group of %d: %s; %s",
                len(members),
                " ".join(runner.planned),
                first.describe().split(";")[0],
            )
            job_params = []
            for i in members:
                idx = initial_job_idx + i
                log.info("\t#%d : %s", idx, " ".join(filter_overrides(job_overrides[i])))
                job_params.append(
                    (list(job_overrides[i]), "hydra.sweep.dir", idx, f"job_id_for_{idx}", Singleton.get_state())
                )
            for i, job in zip(members, executor.map_array(runner, *zip(*job_params))):
                jobs[i] = job
        return [jobs[i].results()[0] for i in range(len(job_overrides))]

    def __call__(
        self,
        sweep_overrides: list[str],
        job_dir_key: str,
        job_num: int,
        job_id: str,
        singleton_state: dict[type, Singleton],
    ) -> JobReturn:
        """The base class's job, composed with the group's trainer overrides; the point's own
        overrides stay its identity (run directory, overrides.yaml)."""
        import submitit
        from hydra._internal.config_loader_impl import get_overrides_dirname
        from hydra.core.override_parser.overrides_parser import OverridesParser

        from src.launch.resources import with_plan

        assert self.hydra_context is not None and self.config is not None and self.task_function is not None
        Singleton.set_state(singleton_state)
        setup_globals()
        point = list(sweep_overrides)
        composed = with_plan(point, self.planned) if self.planned else point
        sweep_config = self.hydra_context.config_loader.load_sweep_config(self.config, composed)
        dirname = sweep_config.hydra.job.config.override_dirname
        parsed = [o for o in OverridesParser.create().parse_overrides(point) if not o.is_hydra_override()]
        with open_dict(sweep_config.hydra):
            sweep_config.hydra.overrides.task = [o for o in point if not o.startswith(("hydra.", "hydra/"))]
            sweep_config.hydra.job.override_dirname = get_overrides_dirname(
                overrides=parsed,
                kv_sep=dirname.kv_sep,
                item_sep=dirname.item_sep,
                exclude_keys=list(dirname.exclude_keys),
            )
            sweep_config.hydra.job.id = submitit.JobEnvironment().job_id
            sweep_config.hydra.job.num = job_num
        return run_job(
            hydra_context=self.hydra_context,
            task_function=self.task_function,
            config=sweep_config,
            job_dir_key=job_dir_key,
            job_subdir_key="hydra.sweep.subdir",
        )
