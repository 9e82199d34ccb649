"""The video LMM: vision tower -> connector -> clip tokens placed in the LLM's input."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel

IGNORE = -100


@dataclass
class Batch:
    """A collated batch of B samples; sample i has C_i clips of T frames.

    frames: list of B uint8 tensors (C_i, T, H, W, 3)
    prefix_ids / suffix_ids: list of B token-id tensors, the prompt around the video
    answer_ids: list of B token-id tensors (the answer and end-of-turn; empty at test)
    answer_index: (B,) index of the correct option; -1 where there is none
    num_options: (B,) options of each item
    """

    frames: list[torch.Tensor]
    prefix_ids: list[torch.Tensor]
    suffix_ids: list[torch.Tensor]
    answer_ids: list[torch.Tensor]
    answer_index: torch.Tensor
    num_options: torch.Tensor
    ids: list[str]
    categories: list[str]
    benchmarks: list[str]


class VideoLMM(nn.Module):
    """Composes injected parts; builds nothing itself."""

    def __init__(self, encoder: nn.Module, connector: nn.Module, llm: PreTrainedModel,
                 pad_token_id: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.connector = connector
        self.llm = llm
        self.pad_token_id = pad_token_id

    def clip_tokens(self, frames: list[torch.Tensor]) -> list[torch.Tensor]:
        """Per sample: (C_i, T, H, W, 3) uint8 -> (C_i * tokens_per_clip, D_llm)."""
        counts = [f.shape[0] for f in frames]
        grid = self.encoder.encode(torch.cat(frames))
        tokens = self.connector(grid.to(next(self.connector.parameters()).dtype))
        return [t.flatten(0, 1) for t in tokens.split(counts)]

    def _sequences(self, batch: Batch, with_answer: bool
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Right-padded input embeddings, attention mask, labels, and each prompt's last index."""
        embed = self.llm.get_input_embeddings()
        device = embed.weight.device
        video = self.clip_tokens([f.to(device) for f in batch.frames])
        seqs, labels, last = [], [], []
        for i, vid in enumerate(video):
            answer = batch.answer_ids[i] if with_answer else batch.answer_ids[i][:0]
            text = [batch.prefix_ids[i], batch.suffix_ids[i], answer]
            pre, suf, ans = (embed(t.to(device)) for t in text)
            seqs.append(torch.cat([pre, vid.to(pre.dtype), suf, ans]))
            prompt_len = len(pre) + len(vid) + len(suf)
            lab = torch.full((prompt_len + len(ans),), IGNORE, dtype=torch.long, device=device)
            lab[prompt_len:] = answer.to(device)
            labels.append(lab)
            last.append(prompt_len - 1)
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
        return x, mask, y, torch.tensor(last, device=device)

    def _hidden(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.llm.get_decoder()(inputs_embeds=x, attention_mask=mask).last_hidden_state

    def loss(self, batch: Batch) -> torch.Tensor:
        """Next-token cross-entropy on the answer tokens only."""
        x, mask, y, _ = self._sequences(batch, with_answer=True)
        hidden = self._hidden(x, mask)[:, :-1]
        target = y[:, 1:]
        keep = target != IGNORE
        logits = self.llm.get_output_embeddings()(hidden[keep])
        return nn.functional.cross_entropy(logits.float(), target[keep])

    @torch.no_grad()
    def option_scores(self, batch: Batch, option_token_ids: torch.Tensor) -> torch.Tensor:
        """(B, K) log-likelihood of each option letter as the answer's first token.

        One forward pass per item scores all its options; padding is on the right and
        the score is read at each item's own last prompt position, so the scores do not
        depend on the batch size or on the other items in the batch.
        """
        x, mask, _, last = self._sequences(batch, with_answer=False)
        hidden = self._hidden(x, mask)
        h = hidden[torch.arange(len(last), device=last.device), last]
        logits = self.llm.get_output_embeddings()(h).float().log_softmax(-1)
        scores = logits[:, option_token_ids.to(logits.device)]
        k = torch.arange(scores.shape[1], device=scores.device)
        return scores.masked_fill(k[None, :] >= batch.num_options.to(scores.device)[:, None], -torch.inf)
