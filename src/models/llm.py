"""The LLM and its tokenizer: a Hugging Face causal LM, tiny (shrunk, random) or pretrained."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from hydra.utils import get_class
from transformers import PreTrainedModel, PreTrainedTokenizerBase

# ChatML, the format of the Qwen chat templates, for the tiny word-level tokenizer
CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<unk>"]


def build_word_tokenizer(corpus: Iterable[str]) -> PreTrainedTokenizerBase:
    """A word-level tokenizer trained offline on the data's own text (`profile=tiny`)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    # letters and digits are always in the vocabulary: they are the answers
    always = list("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
    trainer = trainers.WordLevelTrainer(special_tokens=SPECIAL, min_frequency=1)
    tok.train_from_iterator([*always, *corpus], trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>",
                                   pad_token="<|endoftext|>", eos_token="<|im_end|>",
                                   additional_special_tokens=["<|im_start|>"])
    fast.chat_template = CHATML
    return fast


def build_tokenizer(llm: Mapping[str, Any], profile: Mapping[str, Any],
                    corpus: Iterable[str]) -> PreTrainedTokenizerBase:
    if profile["name"] == "pretrained":
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(llm["pretrained"])
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        return tok
    return build_word_tokenizer(corpus)


def build_llm(llm: Mapping[str, Any], profile: Mapping[str, Any], vocab_size: int) -> PreTrainedModel:
    """The causal LM of an `llm` option; takes `inputs_embeds`."""
    if profile["name"] == "pretrained":
        return get_class(llm["model_class"]).from_pretrained(llm["pretrained"])
    from src.models.shrink import shrink_arch

    arch = shrink_arch(llm["arch"], profile)
    arch["vocab_size"] = vocab_size
    config = get_class(llm["config_class"])(**arch)
    return get_class(llm["model_class"])(config)
