"""What training costs: step time, samples and tokens a second, peak memory and MFU.

`Throughput` is a Lightning callback, one per stage's trainer (src/run/stages.py); the
stages share one `Costs`, which the run record's `costs` takes (src/run/train.py):

- step time: seconds from the first micro-batch of an optimizer step starting to its
  last one ending (forward, backward, optimizer; on a GPU synchronised at the end), so
  waits for the data loader fall between steps and are reported apart (`wait_seconds`:
  the fit's wall time less the steps'); with several ranks, rank 0's (each device's own);
- tokens: the LLM's input tokens, clip tokens included, read from the attention mask
  the model builds (`attention_mask` of the decoder's call: real tokens, not padding);
- peak memory: on a GPU `torch.cuda.max_memory_allocated`, reset at each stage's start;
  on a CPU the process's peak resident set (VmHWM, reset per stage where Linux lets a
  process reset it; else `resource.getrusage`'s peak over the process's life);
- MFU (on a GPU): model FLOPs per second over the device's dense bf16 peak. Model FLOPs
  are counted op by op while the forward pass runs (`FlopCounter`), with the PaLM
  (appendix B) / Megatron rule applied to each matmul: 2 FLOPs a multiply-add forward,
  2 more for the input's gradient where it flows (frozen layers that gradients pass
  through: 4N a token), 2 more for the weight's gradient where it trains (6N a token);
  a frozen part that nothing flows back through costs its forward only (2N: the encoder).
  Attention's S x S products count 4·S_q·S_k·d per head forward, twice that backward when
  gradients flow, causal masks not halved (as PaLM). Recomputation (gradient checkpointing)
  is not counted: MFU, not hardware FLOPs utilisation.
"""

from __future__ import annotations

import math
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from torch.overrides import TorchFunctionMode

# dense bf16 peak of a device, TFLOP/s, by a part of its name (first match; the longer names first)
PEAK_TFLOPS = {
    "H100 PCIe": 756.0,
    "H100": 989.0,  # SXM; H100 NVL and GH200 share the chip's 989
    "H200": 989.0,  # the H100's chip, more memory (measured about 790 on random data)
    "A100": 312.0,
    "L40S": 362.0,
    "A10G": 125.0,
}
PEAK_ENV = "APOLLO_PEAK_TFLOPS"


def device_peak(name: str | None, override: float | None = None) -> tuple[float | None, str | None]:
    """(dense bf16 TFLOP/s of the device, why there is none): `override` (config), then
    $APOLLO_PEAK_TFLOPS, then the table by the device's name."""
    if override is not None:
        return float(override), None
    if os.environ.get(PEAK_ENV):
        return float(os.environ[PEAK_ENV]), None
    if name is None:
        return None, f"no GPU: MFU is for a GPU's bf16 peak (set ${PEAK_ENV} to compare with a CPU's)"
    for key, tflops in PEAK_TFLOPS.items():
        if key in name:
            return tflops, None
    return None, f"unknown device {name!r}: set ${PEAK_ENV} or perf.peak_tflops to its dense bf16 TFLOP/s"


def _grad(t: Any) -> bool:
    return isinstance(t, torch.Tensor) and t.requires_grad


class FlopCounter(TorchFunctionMode):
    """Model FLOPs (forward + backward) of the matmuls, convolutions and attention that run
    while the mode is on, by the rule of the module's docstring. Only the forward pass is
    watched: backward FLOPs follow from whether weights and inputs need gradients."""

    def __init__(self) -> None:
        super().__init__()
        self.flops = 0.0

    def __torch_function__(self, func: Callable, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        rule = _RULES.get(func)
        if rule is not None:
            self.flops += rule(args, kwargs, out)
        return out


def _matmul_flops(fwd: float, a: Any, b: Any) -> float:
    """Forward, plus a gradient for each operand that needs one (each as dear as the forward)."""
    return fwd * (1 + _grad(a) + _grad(b))


def _linear(args: tuple, kwargs: dict, out: torch.Tensor) -> float:
    x, w = args[0], args[1] if len(args) > 1 else kwargs["weight"]
    return _matmul_flops(2.0 * out.numel() * w.shape[-1], x, w)


def _matmul(args: tuple, kwargs: dict, out: torch.Tensor) -> float:
    a, b = args[0], args[1]
    return _matmul_flops(2.0 * out.numel() * a.shape[-1], a, b)


def _conv(args: tuple, kwargs: dict, out: torch.Tensor) -> float:
    x, w = args[0], args[1] if len(args) > 1 else kwargs["weight"]
    per_output = math.prod(w.shape[1:])  # in-channels of a group x kernel
    return _matmul_flops(2.0 * out.numel() * per_output, x, w)


def _sdpa(args: tuple, kwargs: dict, out: torch.Tensor) -> float:
    q, k, v = (args[i] if len(args) > i else kwargs[n] for i, n in enumerate(("query", "key", "value")))
    # q @ k^T and weights @ v: 2 x 2·S_q·S_k·d a head; both backward when anything needs a gradient
    fwd = 4.0 * q.shape[:-1].numel() * k.shape[-2] * q.shape[-1]
    return fwd * (3 if _grad(q) or _grad(k) or _grad(v) else 1)


_F = torch.nn.functional
_RULES: dict[Any, Callable[[tuple, dict, Any], float]] = {
    _F.linear: _linear,
    torch.matmul: _matmul,
    torch.bmm: _matmul,
    torch.Tensor.matmul: _matmul,
    torch.Tensor.__matmul__: _matmul,
    _F.conv1d: _conv,
    _F.conv2d: _conv,
    _F.conv3d: _conv,
    _F.scaled_dot_product_attention: _sdpa,
}


def reset_peak_memory(device: torch.device) -> bool:
    """Start a stage's peak afresh; False where it cannot be (a CPU without Linux's clear_refs)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return True
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # Linux >= 4.0: the peak resident set (VmHWM) back to the current one
        return True
    except OSError:
        return False


def peak_memory_gb(device: torch.device) -> float:
    """The peak since the last reset: CUDA's allocated bytes, or the process's resident set."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 1e9
    return cpu_peak_rss_gb()


def cpu_peak_rss_gb() -> float:
    """The process's peak resident set: VmHWM (resettable), else getrusage (KiB on Linux, bytes on macOS)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024 / 1e9
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1e9 if sys.platform == "darwin" else peak * 1024 / 1e9


def cpu_rss_gb() -> float:
    """The process's resident set now (VmRSS)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024 / 1e9
    raise OSError("no VmRSS in /proc/self/status")


class StageCosts:
    """One stage's steps: their seconds, samples, tokens and model FLOPs."""

    def __init__(self) -> None:
        self.step_seconds: list[float] = []
        self.samples = 0
        self.tokens = 0
        self.padded_tokens = 0
        self.flops = 0.0
        self.fit_seconds = 0.0
        self.peak_memory_gb: float | None = None

    def summary(self, peak_tflops: float | None, mfu_reason: str | None) -> dict[str, Any]:
        """The record's numbers of these steps (null where there were none)."""
        busy = sum(self.step_seconds)
        rate = (lambda n: round(n / busy, 2)) if busy > 0 else (lambda n: None)
        out: dict[str, Any] = {
            "steps": len(self.step_seconds),
            "step_seconds_mean": round(statistics.fmean(self.step_seconds), 4) if self.step_seconds else None,
            "step_seconds_median": round(statistics.median(self.step_seconds), 4) if self.step_seconds else None,
            "wait_seconds": round(max(0.0, self.fit_seconds - busy), 2),
            "samples": self.samples,
            "tokens": self.tokens,
            "padded_tokens": self.padded_tokens,
            "samples_per_second": rate(self.samples),
            "tokens_per_second": rate(self.tokens),
            "peak_memory_gb": None if self.peak_memory_gb is None else round(self.peak_memory_gb, 3),
        }
        if peak_tflops is not None and busy > 0 and self.flops > 0:
            out["model_tflops"] = round(self.flops / 1e12, 3)
            out["mfu"] = round(self.flops / busy / (peak_tflops * 1e12), 4)
        else:
            out["mfu"] = None
            out["mfu_reason"] = mfu_reason or ("no steps" if busy == 0 else "no FLOPs counted")
        return out

    def merge(self, other: StageCosts) -> None:
        self.step_seconds += other.step_seconds
        self.samples += other.samples
        self.tokens += other.tokens
        self.padded_tokens += other.padded_tokens
        self.flops += other.flops
        self.fit_seconds += other.fit_seconds
        if other.peak_memory_gb is not None:
            self.peak_memory_gb = max(self.peak_memory_gb or 0.0, other.peak_memory_gb)


class Costs:
    """Every stage's costs of this attempt of a run; `record()` is the record's part of them."""

    def __init__(self, peak_tflops: float | None = None) -> None:
        self.override = peak_tflops
        self.stages: dict[str, StageCosts] = {}
        self.device: str | None = None
        self.memory_kind: str | None = None
        self.peak_tflops: float | None = None
        self.mfu_reason: str | None = None

    def record(self) -> dict[str, Any]:
        """Overall numbers, then `stages` with each stage's (earlier attempts' stages are absent)."""
        total = StageCosts()
        for s in self.stages.values():
            total.merge(s)
        return {
            **total.summary(self.peak_tflops, self.mfu_reason),
            "device": self.device,
            "memory": self.memory_kind,
            "peak_tflops": self.peak_tflops,
            "stages": {name: s.summary(self.peak_tflops, self.mfu_reason) for name, s in self.stages.items()},
        }


class Throughput(L.Callback):
    """Times each optimizer step and counts its samples, tokens and (on a GPU) FLOPs; logs
    `perf/*` every step Lightning logs, and leaves the stage's totals in `costs`."""

    def __init__(self, costs: Costs, stage: str, count_flops: bool | None = None) -> None:
        self.costs, self.stage = costs, stage
        self.now = StageCosts()
        self.count_flops = count_flops  # None: where there is a peak to compare with (a GPU)
        self._step_start: float | None = None
        self._seen_step = 0
        self._fit_start = 0.0
        self._counter: FlopCounter | None = None
        self._hook: Any = None
        self._watching = False
        self._step = {"samples": 0, "tokens": 0}

    def _count_tokens(self, module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        """The decoder's pre-hook: the batch's real tokens from the attention mask it gets."""
        if not self._watching:
            return
        mask = kwargs.get("attention_mask")
        x = kwargs.get("inputs_embeds")
        if mask is not None:
            self._step["tokens"] += int(mask.sum())
        if x is not None:
            self.now.padded_tokens += x.shape[0] * x.shape[1]

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        device = pl_module.device
        gpu = device.type == "cuda"
        c = self.costs
        c.device = torch.cuda.get_device_name(device) if gpu else "cpu"
        c.peak_tflops, c.mfu_reason = device_peak(c.device if gpu else None, c.override)
        reset = reset_peak_memory(device)
        c.memory_kind = "cuda_max_allocated" if gpu else ("cpu_peak_rss" if reset else "cpu_peak_rss_since_start")
        if self.count_flops is None:
            self.count_flops = c.peak_tflops is not None
        model: Any = pl_module.model  # a VideoLMMModule's VideoLMM
        decoder = model.llm.get_decoder()
        self._hook = decoder.register_forward_pre_hook(self._count_tokens, with_kwargs=True)
        self._seen_step = trainer.global_step
        self._fit_start = time.perf_counter()

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, idx: int) -> None:
        if self._step_start is None:
            self._step_start = time.perf_counter()
        self._step["samples"] += len(getattr(batch, "ids", ()))
        self._watching = True
        if self.count_flops:
            self._counter = FlopCounter()
            self._counter.__enter__()

    def on_before_backward(self, trainer: L.Trainer, pl_module: L.LightningModule, loss: torch.Tensor) -> None:
        """The forward pass is over: what runs from here (recomputation too) is not counted."""
        self._stop_watching()

    def _stop_watching(self) -> None:
        self._watching = False
        if self._counter is not None:
            self._counter.__exit__(None, None, None)
            self.now.flops += self._counter.flops
            self._counter = None

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, idx: int
    ) -> None:
        self._stop_watching()  # a batch that returned no loss had no backward
        if trainer.global_step == self._seen_step or self._step_start is None:
            return  # gradients still accumulating, or no optimizer step (an empty batch)
        if pl_module.device.type == "cuda":  # the step's kernels done: its time, not the next one's
            torch.cuda.synchronize(pl_module.device)
        seconds = time.perf_counter() - self._step_start
        self._seen_step, self._step_start = trainer.global_step, None
        samples, tokens = self._step["samples"], self._step["tokens"]
        self._step = {"samples": 0, "tokens": 0}
        self.now.step_seconds.append(seconds)
        self.now.samples += samples
        self.now.tokens += tokens
        pl_module.log_dict(
            {
                "perf/step_seconds": seconds,
                "perf/samples_per_second": samples / seconds,
                "perf/tokens_per_second": tokens / seconds,
            },
            on_step=True,
            on_epoch=False,
            batch_size=max(1, samples),
        )

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._stop_watching()
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
        self.now.fit_seconds = time.perf_counter() - self._fit_start
        self.now.peak_memory_gb = peak_memory_gb(pl_module.device)
        stages = self.costs.stages
        if self.stage in stages:  # a stage continued (resumed) in this process: one entry
            stages[self.stage].merge(self.now)
        else:
            stages[self.stage] = self.now
        summary = self.now.summary(self.costs.peak_tflops, self.costs.mfu_reason)
        if trainer.logger is not None:
            numbers = {k: v for k, v in summary.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
            trainer.logger.log_metrics({f"perf/{self.stage}/{k}": v for k, v in numbers.items()}, trainer.global_step)
        self.now = StageCosts()
