"""The video LMM: vision tower -> connector -> clip tokens placed in the LLM's input."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import cast

import torch
from torch import nn
from transformers import PreTrainedModel

from src.batch import IGNORE, Batch
from src.cache.features import CacheSlot, FeatureCache
from src.models.connectors.connector import Connector
from src.models.encoders.base import VisionEncoder
from src.models.integration import ClipIntegration

# the side of the blank frames that run the media path on a batch without media (each encoder
# resizes them to its own input size): small, the cost of the path is all that matters
IDLE_SIDE = 32


def by_shape(fn: Callable[[torch.Tensor], torch.Tensor], tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    """`fn` applied once to each group of tensors that agree in shape past dim 0 (the
    group concatenated along dim 0), its output split back: one result per tensor, in order."""
    groups: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for j, t in enumerate(tensors):
        groups[tuple(t.shape[1:])].append(j)
    out: list[torch.Tensor] = [torch.empty(0)] * len(tensors)
    for members in groups.values():
        result = fn(torch.cat([tensors[j] for j in members]))
        for j, r in zip(members, result.split([tensors[j].shape[0] for j in members])):
            out[j] = r
    return out


class VideoLMM(nn.Module):
    """Composes injected parts; builds nothing itself."""

    def __init__(
        self,
        encoder: VisionEncoder,
        connector: Connector,
        llm: PreTrainedModel,
        pad_token_id: int,
        integration: ClipIntegration | None = None,
        feature_cache: FeatureCache | None = None,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.connector = connector
        self.llm = llm
        self.pad_token_id = pad_token_id
        # how clip tokens are laid out in the input; None: as they are (integration=none)
        self.integration = ClipIntegration() if integration is None else integration
        self.feature_cache = feature_cache  # stores the features of cache misses

    def clip_tokens(self, media: list[torch.Tensor], cache: list[CacheSlot | None] | None = None) -> list[torch.Tensor]:
        """Per media item: (C, T, H, W, 3) uint8 frames, or on a cache hit the encoder's
        features of them (C, t, h, w, D) -> (C * tokens_per_clip, D_llm).

        While no gradient reaches the encoder (frozen, or at evaluation), each item is
        encoded on its own, so that its features do not depend on the other items of the
        batch: the last bits of a float op can (SigLIP's tanh-GELU takes a vector or a
        scalar path by an element's place in the tensor), and a cached entry, computed in
        another batch or another run, must be the same bits. A trained encoder encodes the
        items of one frame size together. The connector takes the items of one grid shape
        together. `cache` (one slot per item, from the loader) says which items are hits;
        the features of the misses are stored under their keys.
        """
        slots = cache or [None] * len(media)
        grids: list[torch.Tensor] = list(media)
        todo = [j for j, slot in enumerate(slots) if slot is None or not slot.hit]
        trained = torch.is_grad_enabled() and any(p.requires_grad for p in self.encoder.parameters())
        if not trained:
            for j in todo:
                grids[j] = self.encoder.encode(media[j])
        else:
            for j, g in zip(todo, by_shape(self.encoder.encode, [media[j] for j in todo])):
                grids[j] = g
        if self.feature_cache is not None:
            self._store(slots, grids, todo)
        dtype = next(self.connector.parameters()).dtype
        return [t.flatten(0, 1) for t in by_shape(lambda x: self.connector(x.to(dtype)), grids)]

    def _store(self, slots: list[CacheSlot | None], grids: list[torch.Tensor], todo: list[int]) -> None:
        """Count the hits and misses; store the misses' features (an encoder in eval mode,
        on the device and in the dtype the loader's keys were made for)."""
        cache = self.feature_cache
        assert cache is not None  # called only with a cache
        misses = [(j, slot) for j in todo if (slot := slots[j]) is not None]
        hits = sum(1 for s in slots if s is not None and s.hit)
        cache.count("train" if self.training else "test", hits, len(misses))
        if misses and not self.encoder.training and cache.writable(self.encoder):
            for j, slot in misses:
                cache.save(slot.key, grids[j], slot.decode_errors)

    def _sequences(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Right-padded input embeddings, attention mask, labels, and each sequence's last index.

        Each MEDIA slot is laid out by the integration (clip tokens, and the separators or
        timestamp text it adds), none of it trained as a target.
        """
        embed = self.llm.get_input_embeddings()
        device = cast(torch.Tensor, embed.weight).device
        slots = [slot for ss in batch.cache for slot in ss] if batch.cache else None
        media = self.clip_tokens([m.to(device) for ms in batch.media for m in ms], slots)
        n = self.connector.tokens_per_clip
        seqs, labels = [], []
        k = 0
        for i, (sample_ids, sample_labels) in enumerate(zip(batch.input_ids, batch.labels)):
            items = batch.media[i]
            times = batch.clip_times[i] if batch.clip_times else [None] * len(items)
            laid, laid_labels = self.integration.expand(
                sample_ids.tolist(), sample_labels.tolist(), [len(m) for m in items], times, n
            )
            ids = torch.tensor(laid, device=device)
            item_tokens = media[k : k + len(items)]
            k += len(items)
            text = embed(ids.clamp(min=0))  # the layout's markers are replaced in fill()
            rows = torch.cat(item_tokens) if item_tokens else text.new_zeros(0, text.shape[-1])
            seqs.append(self.integration.fill(ids, text, rows))
            labels.append(torch.tensor(laid_labels, device=device))
        width = max(len(s) for s in seqs)
        dim = seqs[0].shape[-1]
        pad = embed(torch.tensor([self.pad_token_id], device=device))[0]
        x = pad.expand(len(seqs), width, dim).clone()
        mask = torch.zeros(len(seqs), width, dtype=torch.long, device=device)
        y = torch.full((len(seqs), width), IGNORE, dtype=torch.long, device=device)
        for i, (s, lab) in enumerate(zip(seqs, labels)):
            x[i, : len(s)] = s
            mask[i, : len(s)] = 1
            y[i, : len(lab)] = lab
        last = torch.tensor([len(s) - 1 for s in seqs], device=device)
        return x, mask, y, last

    def _hidden(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.llm.get_decoder()(inputs_embeds=x, attention_mask=mask).last_hidden_state

    def loss(self, batch: Batch) -> torch.Tensor:
        """Next-token cross-entropy on the labelled (assistant) tokens only.

        A batch without media (text-only samples of the mixture) adds `_idle_media`, a zero
        that makes every trained media parameter take part in the step.
        """
        x, mask, y, _ = self._sequences(batch)
        hidden = self._hidden(x, mask)[:, :-1]
        target = y[:, 1:]
        keep = target != IGNORE
        logits = self.llm.get_output_embeddings()(hidden[keep])
        loss = nn.functional.cross_entropy(logits.float(), target[keep])
        if not any(batch.media) and torch.is_grad_enabled():
            loss = loss + self._idle_media()
        return loss

    def _idle_media(self) -> torch.Tensor:
        """0 x the media path's output on one blank clip, when some of its parts train.

        Why: on a batch without media the encoder, connector and integration get no gradient,
        and DDP (find_unused_parameters=False) errors or hangs when a rank's trained
        parameters sit out a step that other ranks' use. As LLaVA does, the trained media
        path runs on a minimal input, inside forward (FSDP gathers parameters there), and its
        output times 0 joins the loss: the value is unchanged and every trained media
        parameter gets a zero gradient.
        """
        zero = torch.zeros((), device=cast(torch.Tensor, self.llm.get_input_embeddings().weight).device)
        parts = (self.encoder, self.connector, self.integration)
        if not any(p.requires_grad for part in parts for p in part.parameters()):
            return zero
        frames = torch.zeros(1, self.encoder.frames_per_clip, IDLE_SIDE, IDLE_SIDE, 3, dtype=torch.uint8)
        [rows] = self.clip_tokens([frames.to(zero.device)])
        ids = torch.tensor(self.integration.layout(1, self.connector.tokens_per_clip, None), device=zero.device)
        filled = self.integration.fill(ids, rows.new_zeros(len(ids), rows.shape[-1]), rows)
        return zero + filled.float().sum() * 0.0

    @torch.no_grad()
    def option_scores(self, batch: Batch, option_token_ids: torch.Tensor) -> torch.Tensor:
        """(B, K) log-likelihood of each option letter as the answer's first token.

        One forward pass per item scores all its options; padding is on the right and
        the score is read at each item's own last prompt position, so the scores do not
        depend on the batch size or on the other items in the batch.
        """
        x, mask, _, last = self._sequences(batch)
        hidden = self._hidden(x, mask)
        h = hidden[torch.arange(len(last), device=last.device), last]
        logits = self.llm.get_output_embeddings()(h).float().log_softmax(-1)
        scores = logits[:, option_token_ids.to(logits.device)]
        k = torch.arange(scores.shape[1], device=scores.device)
        return scores.masked_fill(k[None, :] >= batch.num_options.to(scores.device)[:, None], -torch.inf)
