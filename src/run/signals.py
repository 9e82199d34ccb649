"""SIGTERM and SIGINT end a run cleanly: a checkpoint first, then a non-zero exit.

`install()` (src.run.train, at the start of each run outside SLURM) replaces both signals'
handlers. While a stage trains (`training()`), a signal only asks to stop: the next
optimizer step ends with a checkpoint (src.run.checkpoints.PeriodicCheckpoint), then
`Interrupted` is raised; outside training (building, evaluating) it is raised at once,
since the last checkpoint already holds everything done. A second SIGINT stops at once.
The run's record then says failed, interrupted by the signal, and the process exits with
128 + the signal's number (143 for SIGTERM, 130 for SIGINT); the same command resumes it.

In a SLURM job none of this is installed: submitit and src.launch.callback keep their
requeue behaviour (the job is requeued and resumes from its checkpoint).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Interrupted(BaseException):
    """The run was asked to stop by a signal; `signum` says which."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"stopped by {signal.Signals(signum).name}")

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


_requested: int | None = None
_active = False  # the handlers are installed in this process
_mode = "idle"  # idle (between runs: noted), run (raised at once), training (noted; stops at the next step)


def requested() -> int | None:
    """The signal that asked this process to stop, if any."""
    return _requested


def _handler(signum: int, frame: FrameType | None) -> None:
    global _requested
    again = _requested is not None
    _requested = signum
    if again and signum == signal.SIGINT:
        raise KeyboardInterrupt  # asked twice: now
    if _mode == "run":
        raise Interrupted(signum)


def install() -> bool:
    """Take SIGTERM and SIGINT (see the module docstring); False where it does not apply
    (a SLURM job, or not the main thread)."""
    global _active
    if os.environ.get("SLURM_JOB_ID") or threading.current_thread() is not threading.main_thread():
        return False
    for sig in SIGNALS:
        signal.signal(sig, _handler)
    _active = True
    return True


def take_back() -> None:
    """Lightning replaces SIGTERM's handler at each fit (to stop at its own next step, without
    a checkpoint): put this module's back, where it was installed."""
    if _active and threading.current_thread() is threading.main_thread():
        for sig in SIGNALS:
            if signal.getsignal(sig) is not _handler:
                signal.signal(sig, _handler)


@contextlib.contextmanager
def _scope(mode: str) -> Iterator[None]:
    global _mode
    before, _mode = _mode, mode
    try:
        if _active and _requested is not None:  # asked before this began (a sweep's next run)
            raise Interrupted(_requested)
        yield
    finally:
        _mode = before


def running() -> contextlib.AbstractContextManager[None]:
    """Within a run: a signal raises Interrupted at once."""
    return _scope("run")


def training() -> contextlib.AbstractContextManager[None]:
    """While a stage trains: a signal asks to stop at the next step (PeriodicCheckpoint)."""
    return _scope("training")
