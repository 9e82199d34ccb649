"""The Hydra callback of every launch: checks before anything starts, one owner per run dir.

Registered in conf/train.yaml (`hydra.callbacks.launch`), so sweep files get it too.
- at the start of a run or a sweep: the launcher matches the trainer (src.config.check_launcher),
  a sweep folder holds one sweep only (src.launch.rundir.sweep_conflict), and a finished
  run's directory its one configuration (src.launch.rundir.run_conflict): one line, exit 2
  (overwrite=true trains again there); a finished run that is skipped keeps its `.hydra/`;
- at the start of each job (rank zero only; DDP ranks join rank zero's run, src/launch/dist.py):
  the job claims its run directory, waiting while another process runs the same grid
  point (src.launch.rundir.claim), and gives it up at the job's end;
- in a SLURM job, a SIGTERM (the job requeued, preempted, or at its time limit, where
  submitit requeues it) ends the run's training; the job then returns nothing and waits
  for SLURM to stop it, so that the launcher waits for the requeued job, which resumes the
  run from its checkpoint, instead of taking this attempt's failure as the run's result;
- at the end of a sweep whose runs ran in other processes (submitit, SLURM): the runs that
  failed, named with their reasons, and exit status 1, as `src.train` does for its own.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict

from src.config.errors import ConfigError
from src.config.validate import check_launcher
from src.launch.dist import is_main_process, mark_preempted
from src.launch.rundir import Claim, claim, run_conflict, slurm_job_id, sweep_conflict
from src.run.records import is_finished

log = logging.getLogger("src.launch")


def _fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def _run_dir(config: DictConfig) -> Path:
    """`hydra.run.dir` before Hydra's run_job has set HydraConfig, which its `${hydra:...}`
    interpolations read: set here as run_job sets it (config.hydra's read-only flag restored)."""
    from hydra.core.hydra_config import HydraConfig

    readonly = config.hydra._get_node_flag("readonly")
    HydraConfig.instance().set_config(config)
    try:
        return Path(str(config.hydra.run.dir))
    finally:
        OmegaConf.set_readonly(config.hydra, readonly)


class LaunchCallback(Callback):
    """See the module docstring."""

    def __init__(self, stale_s: float = 120.0, poll_s: float = 5.0) -> None:
        self.stale_s = stale_s
        self.poll_s = poll_s
        self._claim: Claim | None = None
        self._terminated = False

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check_launcher(config)
        self._check_run_dir(config)

    def _check_run_dir(self, config: DictConfig) -> None:
        """A finished run's directory belongs to its configuration: another one is refused
        (unless overwrite=true); the same one skips (src.train), and Hydra must not rewrite
        the run's `.hydra/` for it (the launch's overrides may name it differently)."""
        if config.get("overwrite", False):
            return
        run_dir = _run_dir(config)
        if not is_finished(run_dir):
            return
        differs = run_conflict(run_dir, config)
        if differs:
            _fail(
                f"{run_dir} holds a finished run of another configuration ({differs}); "
                "valid: another directory (hydra.run.dir=...), or overwrite=true to train it again there"
            )
        with open_dict(config.hydra):
            config.hydra.output_subdir = None  # the run is skipped; its .hydra/ stays as it trained

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check_launcher(config)
        previous = Path(str(config.hydra.sweep.dir)) / "multirun.yaml"
        if previous.is_file() and not config.get("overwrite", False):
            differs = sweep_conflict(OmegaConf.load(previous), config)
            if differs:
                _fail(
                    f"sweep={config.sweep}: {previous.parent} holds another sweep of that name "
                    f"({differs}); its runs would be mixed with this one's or skipped for them; "
                    "valid: another name (sweep=NAME), or overwrite=true to train every grid point again"
                )

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._terminated = False
        if os.environ.get("SLURM_JOB_ID"):
            self._note_sigterm()
        if not is_main_process():
            return
        run_dir = Path(str(config.hydra.runtime.output_dir))
        self._claim = claim(
            run_dir,
            stale_s=self.stale_s,
            poll_s=self.poll_s,
            on_wait=lambda o: log.warning(
                "waiting: %s:%s (SLURM job %s) runs this grid point; then this job skips or resumes it",
                o.get("host"),
                o.get("pid"),
                o.get("slurm_job"),
            ),
        )

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        run_dir = Path(str(config.hydra.runtime.output_dir))
        if self._terminated and not is_finished(run_dir):
            log.warning(
                "SIGTERM: SLURM job %s was requeued or preempted; this attempt returns no "
                "result, and the job's next start resumes the run from its checkpoint",
                slurm_job_id(),
            )
            while True:  # keep the claim (its SLURM job id) until SLURM kills this attempt
                signal.pause()
        if self._claim is not None:
            self._claim.release()
            self._claim = None

    def _note_sigterm(self) -> None:
        # Lightning, at fit, chains the handler it finds (this one; it calls submitit's)
        previous = signal.getsignal(signal.SIGTERM)

        def on_sigterm(signum: int, frame: Any) -> None:
            self._terminated = True
            mark_preempted()  # src.train then leaves no failed record: the requeued job resumes
            if callable(previous):
                previous(signum, frame)

        signal.signal(signal.SIGTERM, on_sigterm)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if str(config.hydra.launcher.get("_target_", "")).endswith("BasicLauncher"):
            return  # its runs ran in this process, and src.train reports their failures
        from src.launch.status import sweep_points

        failed = [p for p in sweep_points(Path(str(config.hydra.sweep.dir))) if p.in_grid and p.state == "failed"]
        if failed:
            print(
                f"error: {len(failed)} run(s) failed: "
                + "; ".join(f"{p.run_dir.name if p.run_dir else p.overrides}: {p.detail}" for p in failed),
                file=sys.stderr,
            )
            raise SystemExit(1)

    def _check_launcher(self, config: DictConfig) -> None:
        try:
            check_launcher(config)
        except ConfigError as e:
            _fail(str(e))
