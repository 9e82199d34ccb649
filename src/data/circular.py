"""Circular evaluation (MMBench's CircularEval): a multiple-choice item asked once per
rotation of its options.

An item of K options is asked K times; in rotation r, option k is the item's option
(k + r) mod K, so every option stands once under every letter and the answer's letter
moves with its option. The module's test part (`src.models.module.merge_rotations`)
counts the item right only when every rotation is right, which a model that favours a
letter cannot be: always answering "C" is right under one rotation at most.

The prompt's option lines ("A. red", "B. green", ... as `mcq_prompt` writes them) are
rewritten for each rotation; nothing else of the item changes.
"""

from __future__ import annotations

import dataclasses

from src.data.manifest import LETTERS, Sample


def option_lines(options: list[str]) -> str:
    """The options as a prompt lists them: "A. red\\nB. green ..."."""
    return "\n".join(f"{LETTERS[k]}. {o}" for k, o in enumerate(options))


def rotations(sample: Sample) -> int:
    """How many rotations an item is asked in: its number of options (1 without options)."""
    return len(sample.options) if sample.options else 1


def rotate(sample: Sample, shift: int) -> Sample:
    """The item with its options rotated by `shift`: its option k is the item's option
    (k + shift) mod K, its answer the letter its answer's option now has, and every turn
    that lists the options (or gives the answer's letter) rewritten to match.

    Raises ValueError when a prompt does not list the options as `mcq_prompt` writes them:
    such an item cannot be rotated, and scoring it unrotated would be a silent drop.
    """
    if not sample.options or not sample.answer:
        raise ValueError(f"sample {sample.id}: not a multiple-choice item; nothing to rotate")
    k = len(sample.options)
    shift %= k
    options = sample.options[shift:] + sample.options[:shift]
    answer = LETTERS[(LETTERS.index(sample.answer) - shift) % k]
    before, after = option_lines(sample.options), option_lines(options)
    turns = []
    for role, text in sample.turns:
        if role == "user":
            head, found, tail = text.rpartition(before)
            if not found:
                raise ValueError(
                    f"sample {sample.id}: its prompt does not list its options as "
                    f"'A. ...' lines, one a line; cannot rotate them"
                )
            text = head + after + tail
        elif text.strip() == sample.answer:  # the assistant's answer letter, where it is given
            text = answer
        turns.append((role, text))
    return dataclasses.replace(sample, options=options, answer=answer, turns=turns)
