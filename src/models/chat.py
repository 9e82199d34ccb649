"""The chat formats of the LLM families, for the tiny word-level tokenizer (`llm.chat_template`).

With `profile=pretrained` the checkpoint's tokenizer brings its own template; with
`profile=tiny` the word-level tokenizer takes its family's format from here:

- `chatml`: Qwen1.5, Qwen2 and Qwen2.5 (`<|im_start|>role\\n...<|im_end|>\\n`).
- `qwen3_chatml`: Qwen3's non-thinking form of ChatML: every assistant turn opens with
  an empty `<think>\\n\\n</think>\\n\\n`, as Qwen3's own template writes it for the reply
  it generates with `enable_thinking=False`. Qwen3's own template drops that block from
  earlier assistant turns of a conversation; ours keeps it on every turn, so that a
  conversation renders turn by turn (how the dataset tells the answer tokens apart).

This module imports nothing heavy: the config checks read its names.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ChatFormat:
    template: str  # Jinja, as transformers' `chat_template`
    tokens: tuple[str, ...] = ()  # the format's own markers, kept whole by the word-level tokenizer


_CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
_EMPTY_THINK = "<think>\n\n</think>\n\n"
_QWEN3_CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['role'] == 'assistant' %}" + _EMPTY_THINK + "{% endif %}"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n" + _EMPTY_THINK + "{% endif %}"
)

FORMATS: dict[str, ChatFormat] = {
    "chatml": ChatFormat(_CHATML),
    "qwen3_chatml": ChatFormat(_QWEN3_CHATML, ("<think>", "</think>")),
}
