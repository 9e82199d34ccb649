"""A finished run as an lmms-eval model: `python -m lmms_eval --model apollo_lab --model_args 'run="RUN_DIR"'`.

The run is rebuilt as `python -m src.eval` rebuilds it (src/run/eval.py: its composed config,
`checkpoints/last.ckpt`, `tokenizer/`; `tiny`, `fullsize` or `pretrained` alike), and every
request goes through the run's own path: its frame sampler and the encoder's frame size
(src/data/dataset.py's SampleDataset), its token integration and chat template (the prompt is
the user turn, rendered with the generation prompt, as at training), the VideoLMM's forward.

- `generate_until`: greedy decoding, in batches of `batch_size`, up to `max_new_tokens`
  (the task's, else `max_new_tokens=` of model_args) and cut at the task's `until` strings.
  `answer=letter`: the first token is the likeliest of the option letters the prompt lists
  (lines "A. ...", "B. ..."), as `python -m src.eval` scores an item; then greedy again.
  The default, `answer=free`, decodes over the whole vocabulary, as other models do.
- `loglikelihood`: the summed log-probability of the continuation after the prompt, and
  whether greedy decoding would have produced it.

A context without a media tag gets one `<video>` (or `<image>`) line per visual in front,
the layout the runs were trained on (src/data/manifest.py's `mcq_prompt`); a request without
visuals (the `*_no_visual` tasks) is text only. Visuals: video or image paths, or PIL images.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from lmms_eval.api.model import lmms

from src.batch import IGNORE, Batch
from src.data.dataset import SampleDataset, collate
from src.data.manifest import MEDIA_TAG, Sample

_OPTION_LINE = re.compile(r"^\(?([A-J])[.):]\s", re.MULTILINE)
ANSWER_MODES = ("free", "letter")
VIDEO_SUFFIXES = {".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".flv", ".mpg", ".mpeg", ".gif"}


class RunLoadError(ValueError):
    """A run directory that cannot be loaded as a model: one line says which and why."""


def load_run(run: str | Path, device: str = "cpu", overrides: Sequence[str] = ()) -> tuple[Any, Any, Any, Any]:
    """(cfg, model, tokenizer, sampler) of a finished run, its trained weights loaded, in eval mode."""
    from hydra.utils import instantiate
    from transformers import AutoTokenizer

    from src.config import resolvers
    from src.config.validate import validate
    from src.models.llm import build_tokenizer
    from src.run import checkpoints
    from src.run.build import build_model
    from src.run.eval import EvalError, run_config

    resolvers.register()
    run_dir = Path(run)
    try:
        cfg = run_config(run_dir, list(overrides))
    except EvalError as e:
        raise RunLoadError(str(e)) from None
    validate(cfg)
    ckpt = checkpoints.last_checkpoint(run_dir)
    if ckpt is None:
        raise RunLoadError(f"{run_dir}: no checkpoints/last.ckpt to load the trained weights from")
    saved = checkpoints.load(ckpt)
    tokenizer: Any
    if (run_dir / "tokenizer").is_dir():
        tokenizer = AutoTokenizer.from_pretrained(run_dir / "tokenizer")
    else:  # a pretrained checkpoint's own tokenizer (the tiny word-level one is always saved)
        tokenizer = build_tokenizer(cfg.llm, cfg.profile, [])
    model = build_model(cfg, tokenizer)
    prefix = "model."
    weights = {k[len(prefix) :]: v for k, v in saved["state_dict"].items() if k.startswith(prefix)}
    model.load_state_dict(weights)
    model.to(device).eval()
    return cfg, model, tokenizer, instantiate(cfg.sampler)


def visual_media(visuals: Any, scratch: Path) -> list[tuple[str, str]]:
    """(kind, path) of each visual of a request: a path is a video by its suffix, else an
    image; a PIL image is written to `scratch` as PNG."""
    if visuals is None:
        return []
    items = visuals if isinstance(visuals, list | tuple) else [visuals]
    media: list[tuple[str, str]] = []
    for v in items:
        if isinstance(v, list | tuple):
            media += visual_media(list(v), scratch)
        elif isinstance(v, str | Path):
            kind = "video" if Path(v).suffix.lower() in VIDEO_SUFFIXES else "image"
            media.append((kind, str(v)))
        elif hasattr(v, "save"):  # a PIL image
            path = scratch / f"visual_{len(list(scratch.iterdir()))}.png"
            v.convert("RGB").save(path)
            media.append(("image", str(path)))
        else:
            raise TypeError(f"a visual must be a path or a PIL image, got {type(v).__name__}")
    return media


def option_letters(context: str) -> str:
    """The letters of the option lines of a multiple-choice prompt, in order ("" if none)."""
    return "".join(dict.fromkeys(_OPTION_LINE.findall(context)))


def user_turn(context: str, media: list[tuple[str, str]]) -> str:
    """The context as the user turn: as it is when it holds the media tags, else one tag line
    per media item in front (the training layout)."""
    if MEDIA_TAG.search(context) or not media:
        return context
    return "\n".join([*(f"<{kind}>" for kind, _ in media), context])


def run_path(run: Any, extra: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The run directory from `run=`, and the model_args left.

    Run folders are named by their overrides (`encoder=siglip,llm=qwen4b`), and lmms-eval
    splits model_args at every comma outside quotes: quoted (`run="DIR"`) the path comes whole;
    unquoted, the pieces after `run=` are joined back while that names a directory."""
    path = str(run).strip().strip("\"'")
    left = dict(extra)
    if Path(path).is_dir():
        return path, left
    joined = path
    for key, value in extra.items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        joined = f"{joined},{key}={text}"
        if Path(joined).is_dir():
            return joined, {k: v for k, v in extra.items() if k not in _through(extra, key)}
    return path, left


def _through(extra: dict[str, Any], last: str) -> list[str]:
    keys = list(extra)
    return keys[: keys.index(last) + 1]


class ApolloLab(lmms):
    """`--model apollo_lab --model_args 'run="RUN_DIR"[,answer=letter][,max_new_tokens=N]'` (`--batch_size N`,
    `--device cuda`: lmms-eval's own options)."""

    is_simple = True

    def __init__(
        self,
        run: str,
        device: str | None = None,
        batch_size: int | str | None = 1,
        max_new_tokens: int | str = 16,
        answer: str = "free",
        max_batch_size: int | None = None,
        **unused: Any,
    ) -> None:
        super().__init__()
        run, unused = run_path(run, unused)
        if unused:
            raise ValueError(f"apollo_lab: unknown model_args {sorted(unused)}; valid: run, answer, max_new_tokens")
        if answer not in ANSWER_MODES:
            raise ValueError(f"apollo_lab: answer={answer!r}; valid: {', '.join(ANSWER_MODES)}")
        self.answer = answer
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.batch_size = max(1, int(batch_size or 1)) if str(batch_size) != "auto" else 1
        self.max_new_tokens = int(max_new_tokens)
        self.cfg, self.model, self.tokenizer, self.sampler = load_run(run, str(self.device))
        from src.data.frames import loader_size

        resize = bool(self.cfg.data.get("resize_in_workers", True))
        self.frame_size = loader_size(self.model.encoder) if resize else None
        from src.models.precision import BF16_COMPUTE

        # as the run computed: bf16 autocast where its trainer did (precision=bf16-mixed), on a GPU
        bf16 = str(self.cfg.trainer.get("precision", "32-true")) in BF16_COMPUTE and self.device.type == "cuda"
        self.autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16)
        self._scratch = tempfile.TemporaryDirectory(prefix="apollo_lab_")
        stop = [self.tokenizer.eos_token_id, self.tokenizer.convert_tokens_to_ids("<|im_end|>")]
        self.stop_ids = sorted({int(t) for t in stop if isinstance(t, int) and t >= 0})

    # -- requests to batches ------------------------------------------------------------------

    def _doc_visuals(self, doc_to_visual: Any, doc_id: int, task: str, split: str) -> Any:
        return doc_to_visual(self.task_dict[task][split][doc_id]) if callable(doc_to_visual) else doc_to_visual

    def sample(self, context: str, visuals: Any, key: str = "request") -> Sample:
        media = visual_media(visuals, Path(self._scratch.name))
        return Sample(id=key, media=media, turns=[("user", user_turn(context, media))], category="", benchmark="")

    def batch(self, samples: list[Sample], continuations: list[list[int]] | None = None) -> Batch:
        """The samples' prompts (and continuation tokens, labelled) as one Batch."""
        data = SampleDataset(samples, self.sampler, self.tokenizer, train=False, frame_size=self.frame_size)
        items = [data[i] for i in range(len(samples))]
        skipped = [it for it in items if "skip" in it]
        if skipped:  # a request cannot be dropped: lmms-eval needs one answer per request
            raise RuntimeError(f"cannot read the visuals of {skipped[0]['id']}: {skipped[0]['skip']}")
        for it, cont in zip(items, continuations or [[] for _ in items]):
            extra = torch.tensor(cont, dtype=torch.long)
            it["input_ids"] = torch.cat([it["input_ids"], extra])
            it["labels"] = torch.cat([torch.full_like(it["labels"], IGNORE), extra])
        return collate(items)

    def _chunks(self, requests: list[Any]) -> Iterator[list[Any]]:
        for start in range(0, len(requests), self.batch_size):
            yield requests[start : start + self.batch_size]

    # -- the three methods of lmms-eval's interface -------------------------------------------

    @torch.inference_mode()
    def loglikelihood(self, requests: list[Any]) -> list[tuple[float, bool]]:
        out: list[tuple[float, bool]] = []
        for chunk in self._chunks(requests):
            samples, conts = [], []
            for context, target, doc_to_visual, doc_id, task, split in (r.args for r in chunk):
                doc = self.task_dict[task][split][doc_id] if not isinstance(target, str) else None
                continuation = target if isinstance(target, str) else target(doc)
                samples.append(self.sample(context, self._doc_visuals(doc_to_visual, doc_id, task, split)))
                conts.append(self.tokenizer.encode(continuation, add_special_tokens=False))
            with self.autocast:
                out += self.continuation_scores(self.batch(samples, conts))
        return out

    def continuation_scores(self, batch: Batch) -> list[tuple[float, bool]]:
        """Per sample: the summed log-probability of its labelled tokens, and whether each is the argmax."""
        x, mask, y, _ = self.model._sequences(batch)
        hidden = self.model._hidden(x, mask)[:, :-1]
        logp = self.model.llm.get_output_embeddings()(hidden).float().log_softmax(-1)
        target = y[:, 1:]
        keep = target != IGNORE
        picked = logp.gather(-1, target.clamp(min=0)[..., None])[..., 0]
        greedy = (logp.argmax(-1) == target) | ~keep
        return [(float(picked[i][keep[i]].sum()), bool(greedy[i].all())) for i in range(len(target))]

    @torch.inference_mode()
    def generate_until(self, requests: list[Any]) -> list[str]:
        out: list[str] = []
        for chunk in self._chunks(requests):
            samples, kwargs, first = [], [], []
            for context, gen_kwargs, doc_to_visual, doc_id, task, split in (r.args for r in chunk):
                samples.append(self.sample(context, self._doc_visuals(doc_to_visual, doc_id, task, split)))
                kwargs.append(gen_kwargs or {})
                letters = option_letters(context) if self.answer == "letter" else ""
                first.append(self.letter_ids(letters) if letters else None)
            until = kwargs[0].get("until") or []
            steps = int(kwargs[0].get("max_new_tokens") or self.max_new_tokens)
            with self.autocast:
                texts = self.greedy(self.batch(samples), steps, first)
            for text in texts:
                for stop in [until] if isinstance(until, str) else until:
                    if stop:
                        text = text.split(stop)[0]
                out.append(text.strip())
        return out

    def letter_ids(self, letters: str) -> list[int]:
        from src.run.build import option_token_ids

        ids = option_token_ids(self.tokenizer, len(letters)) if letters == "ABCDEFGHIJ"[: len(letters)] else None
        if ids is None:
            raise ValueError(f"option letters {letters!r} of a prompt are not A, B, C... in order")
        return ids

    def greedy(self, batch: Batch, steps: int, first: list[list[int] | None] | None = None) -> list[str]:
        """Greedy decoding of each sample's answer, `steps` tokens at most, stopped at EOS;
        `first[i]`: the tokens sample i's first token is chosen among (None: any).

        The prompts are embedded as the scorer embeds them (right-padded); each row is moved
        to the left of the batch for the LLM's cache, with positions counted from its first
        real token, so an item decodes as it would alone."""
        x, mask, _, last = self.model._sequences(batch)
        lengths = last + 1
        width = x.shape[1]
        left = torch.zeros_like(x)
        lmask = torch.zeros_like(mask)
        for i, n in enumerate(lengths.tolist()):
            left[i, width - n :] = x[i, :n]
            lmask[i, width - n :] = 1
        llm = self.model.llm
        embed = llm.get_input_embeddings()
        positions = (lmask.cumsum(-1) - 1).clamp(min=0)
        result = llm(inputs_embeds=left, attention_mask=lmask, position_ids=positions, use_cache=True)
        cache = result.past_key_values
        tokens: list[list[int]] = [[] for _ in range(len(lengths))]
        done = torch.zeros(len(lengths), dtype=torch.bool, device=x.device)
        logits = result.logits[:, -1].float()
        for i, allowed in enumerate(first or []):
            if allowed is not None:
                keep = torch.full_like(logits[i], -torch.inf)
                keep[allowed] = 0.0
                logits[i] = logits[i] + keep
        for _ in range(steps):
            nxt = logits.float().argmax(-1)
            for i, t in enumerate(nxt.tolist()):
                if not done[i]:
                    if t in self.stop_ids:
                        done[i] = True
                    else:
                        tokens[i].append(t)
            if bool(done.all()):
                break
            lmask = torch.cat([lmask, lmask.new_ones(len(lengths), 1)], dim=1)
            positions = positions[:, -1:] + 1
            result = llm(
                inputs_embeds=embed(nxt[:, None]),
                attention_mask=lmask,
                position_ids=positions,
                past_key_values=cache,
                use_cache=True,
            )
            cache = result.past_key_values
            logits = result.logits[:, -1]
        return [self.tokenizer.decode(t, skip_special_tokens=True) for t in tokens]

    def generate_until_multi_round(self, requests: list[Any]) -> list[str]:
        raise NotImplementedError("apollo_lab answers single-round tasks (generate_until, loglikelihood)")
