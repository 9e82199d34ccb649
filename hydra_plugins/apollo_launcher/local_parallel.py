"""`hydra/launcher=local`: a sweep on this machine, N runs at once, each in its own process.

submitit's local executor (what `submitit_local` uses) starts every job of a sweep at
once, however many there are; this launcher keeps at most `parallel` of them running and
starts the next one as soon as one ends. Each run is a fresh process, as on SLURM (the
same job function, submitit folder layout and time-out requeue), and with
`gpus_per_node=G` each of the `parallel` slots owns its own G GPUs. Each slot owns its
share of this machine's CPUs too (`cpus_per_run`, by default the CPUs / `parallel`): the
run's affinity, its torch threads and its loader workers (`data.num_workers: auto`), so
that runs side by side do not each start a thread per CPU of the machine. With `order:
largest_first` (the default) the points start in the order of their training FLOPs
(`src.launch.resources.training_flops`), largest first, so that a long run does not start
last and run alone while the other slots idle (the demo's Qwen1.5-4B replicas, 4 to 7 times
a Qwen2-0.5B replica's step).

SIGTERM or SIGINT to the sweep starts no new run and stops the running ones after a
checkpoint (`_StopRequest`); the sweep then exits 128 + the signal's number, and
`python -m src.sweep status` names the points that remain.
"""

from __future__ import annotations

import logging
import signal
import sys
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, filter_overrides
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import LocalLauncher

log = logging.getLogger(__name__)
ORDERS = ("largest_first", "as_given")  # hydra.launcher.order


def slot_gpus(slot: int, gpus_per_node: int | None) -> tuple[int, ...]:
    """The GPUs of one slot: slot i owns GPUs i*G .. i*G+G-1 (none on a CPU sweep)."""
    g = gpus_per_node or 0
    return tuple(range(slot * g, (slot + 1) * g))


def slot_cpus(slot: int, parallel: int, cpus_per_run: int | str | None, cpus: Sequence[int]) -> tuple[int, ...]:
    """The CPUs of one slot, from `cpus` (this process's): `cpus_per_run` of them (auto or
    null: an equal share, at least one), slot i the i-th group; with more slots than groups
    the slots wrap around and share CPUs."""
    ordered = sorted(cpus)
    if cpus_per_run in (None, "auto"):
        per = max(len(ordered) // max(parallel, 1), 1)
    elif isinstance(cpus_per_run, int) and not isinstance(cpus_per_run, bool) and cpus_per_run > 0:
        per = min(cpus_per_run, len(ordered))
    else:
        from src.config.errors import ConfigError

        raise ConfigError(f"hydra.launcher.cpus_per_run={cpus_per_run!r} is invalid; valid: an integer > 0 or auto")
    start = (slot * per) % len(ordered)
    return tuple((ordered + ordered)[start : start + per])


class LocalParallelLauncher(LocalLauncher):
    """submitit's local launcher with a bound on the runs at once (`parallel`)."""

    def __init__(
        self,
        parallel: int = 2,
        cpus_per_run: int | str | None = "auto",
        order: str = "largest_first",
        poll_s: float = 0.5,
        **params: Any,
    ) -> None:
        super().__init__(**params)
        self.parallel = parallel
        self.cpus_per_run = cpus_per_run
        self.order = order
        self.poll_s = poll_s

    def start_order(self, job_overrides: Sequence[Sequence[str]]) -> list[int]:
        """The points' indices in the order they start: as given, or (`largest_first`) by
        training FLOPs, largest first, ties as given. A point whose config does not compose
        keeps its place among the smallest (its run reports why it fails)."""
        from src.config.errors import ConfigError

        if self.order not in ORDERS:
            raise ConfigError(f"hydra.launcher.order={self.order!r} is invalid; valid: {', '.join(ORDERS)}")
        indices = list(range(len(job_overrides)))
        if self.order == "as_given" or self.parallel < 2 or len(indices) < 2:
            return indices
        from src.launch.resources import training_flops

        assert self.config is not None and self.hydra_context is not None
        cost: list[float] = []
        for overrides in job_overrides:
            try:
                cfg = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
                cost.append(training_flops(cfg))
            except Exception as e:  # noqa: BLE001 - the run itself says what is wrong
                log.warning("no FLOPs estimate for %s (%s): it starts last", " ".join(overrides), e)
                cost.append(-1.0)
        return sorted(indices, key=lambda i: -cost[i])

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from src.config.errors import ConfigError
        from src.data.workers import available_cpus_set
        from src.launch.local_jobs import LocalExecutor

        assert self.config is not None and job_overrides
        executor = LocalExecutor(
            folder=self.params["submitit_folder"], max_num_timeout=self.params.get("max_num_timeout", 0)
        )
        gpus = self.params.get("gpus_per_node") or 0
        executor.update_parameters(
            timeout_min=self.params.get("timeout_min", 4320),
            tasks_per_node=1,
            gpus_per_node=gpus,
            stderr_to_stdout=self.params.get("stderr_to_stdout", False),
        )
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        machine = sorted(available_cpus_set())
        try:  # the launcher's own settings: one line, before anything starts
            slot_cpu = [slot_cpus(slot, self.parallel, self.cpus_per_run, machine) for slot in range(self.parallel)]
            start = self.start_order(job_overrides)
        except ConfigError as e:
            print(f"error: {e}", file=sys.stderr)
            raise SystemExit(2) from None
        log.info(
            "local sweep, %d runs, %d at once, %d CPU(s) each: %s",
            len(job_overrides),
            self.parallel,
            len(slot_cpu[0]),
            sweep_dir,
        )

        waiting = deque((initial_job_idx + i, job_overrides[i]) for i in start)
        free = list(range(self.parallel))
        running: dict[int, Any] = {}  # slot -> job
        jobs: dict[int, Any] = {}  # job index -> job
        stop = _StopRequest()
        try:
            while waiting or running:
                while waiting and free and not stop.signum:
                    slot = free.pop(0)
                    idx, overrides = waiting.popleft()
                    if gpus:
                        executor.update_parameters(visible_gpus=slot_gpus(slot, gpus))
                    executor.cpus = slot_cpu[slot] if self.parallel > 1 else ()
                    log.info("\t#%d : %s", idx, " ".join(filter_overrides(overrides)))
                    job = executor.submit(
                        self, list(overrides), "hydra.sweep.dir", idx, f"job_id_for_{idx}", Singleton.get_state()
                    )
                    running[slot] = job
                    jobs[idx] = job
                if stop.signum and not stop.forwarded:
                    stop.forward(running.values())
                time.sleep(self.poll_s)
                for slot, job in list(running.items()):
                    if job.done():
                        del running[slot]
                        free.append(slot)
                if stop.signum and not running:
                    break
        except KeyboardInterrupt:  # asked twice: the runs are detached processes, stop them now
            for job in running.values():
                job.cancel(check=False)
            raise
        finally:
            stop.restore()
        if stop.signum:
            name = signal.Signals(stop.signum).name
            print(
                f"error: {name}: sweep stopped; {stop.stopped} run(s) stopped after a checkpoint, "
                f"{len(waiting)} not started: python -m src.sweep status {sweep_dir} lists them; "
                "the same command resumes the sweep",
                file=sys.stderr,
            )
            raise SystemExit(128 + stop.signum)
        return [jobs[idx].results()[0] for idx in sorted(jobs)]  # in the sweep's order


class _StopRequest:
    """SIGTERM or SIGINT to the sweep: no new run starts, each running one gets SIGTERM (its
    run saves a checkpoint and stops, src/run/signals.py), the sweep ends once they have;
    a second SIGINT (KeyboardInterrupt) stops them at once."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.forwarded = False
        self.stopped = 0  # runs sent SIGTERM
        self._before = {s: signal.signal(s, self._note) for s in (signal.SIGTERM, signal.SIGINT)}

    def _note(self, signum: int, frame: Any) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if self.signum is None:
            log.warning("%s: no new run starts; the running ones stop after a checkpoint", signal.Signals(signum).name)
        self.signum = signum

    def forward(self, jobs: Any) -> None:
        for job in jobs:
            process = getattr(job, "_process", None)  # submitit's controller forwards SIGTERM to the run
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                self.stopped += 1
        self.forwarded = True

    def restore(self) -> None:
        for s, handler in self._before.items():
            signal.signal(s, handler)
