"""The LLM and its tokenizer: a Hugging Face causal LM, tiny (shrunk, random) or pretrained."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, cast

from hydra.utils import get_class
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from src.config.constraints import Constraints, Rule, boolean, one_of, positive_number
from src.models.chat import FORMATS
from src.models.shrink import DTYPE_NAMES, loads_checkpoint

CONSTRAINTS = Constraints(  # conf/llm/*.yaml (read by build_llm and build_tokenizer)
    Rule("lr", positive_number, "a number > 0"),
    Rule("chat_template", one_of(*FORMATS), " or ".join(FORMATS)),
    Rule("dtype", one_of(*DTYPE_NAMES), ", ".join(DTYPE_NAMES)),
    Rule("gradient_checkpointing", boolean, "true or false"),
)
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<unk>"]


def build_word_tokenizer(corpus: Iterable[str], chat_template: str = "chatml") -> PreTrainedTokenizerBase:
    """A word-level tokenizer trained offline on the data's own text (`profile=tiny`).

    `chat_template` names the LLM family's chat format (src/models/chat.py); its markers
    (Qwen3's `<think>`) are kept whole, like the ChatML tokens.
    """
    chat = FORMATS[chat_template]
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    # letters and digits are always in the vocabulary: they are the answers
    always = list("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
    trainer = trainers.WordLevelTrainer(special_tokens=[*SPECIAL, *chat.tokens], min_frequency=1)
    tok.train_from_iterator([*always, *corpus], trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<unk>",
        pad_token="<|endoftext|>",
        eos_token="<|im_end|>",
        additional_special_tokens=["<|im_start|>", *chat.tokens],
    )
    fast.chat_template = chat.template
    return fast


def build_tokenizer(
    llm: Mapping[str, Any], profile: Mapping[str, Any], corpus: Iterable[str]
) -> PreTrainedTokenizerBase:
    if loads_checkpoint(profile):
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(llm["pretrained"])
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        return tok
    return build_word_tokenizer(corpus, llm["chat_template"])


def build_llm(
    llm: Mapping[str, Any], profile: Mapping[str, Any], vocab_size: int, dtype: str | None = None
) -> PreTrainedModel:
    """The causal LM of an `llm` option; takes `inputs_embeds`.

    Its weights in `dtype` (default `llm.dtype`; the precision policy passes float32 when
    the schedule trains the LLM; a pretrained checkpoint is loaded straight into it), with
    gradient checkpointing if `llm.gradient_checkpointing`.
    """
    from src.models.precision import apply_switches, torch_dtype

    dtype = dtype or llm["dtype"]
    if loads_checkpoint(profile):
        model_class = cast("type[PreTrainedModel]", get_class(llm["model_class"]))
        model = model_class.from_pretrained(llm["pretrained"], dtype=torch_dtype(dtype))
    else:
        from src.models.shrink import replica_init_std, replica_vocab, shrink_arch

        arch = shrink_arch(llm["arch"], profile)
        arch["vocab_size"] = replica_vocab(llm["arch"], profile, vocab_size)
        arch["initializer_range"] = replica_init_std(llm["arch"], profile)
        model = get_class(llm["model_class"])(get_class(llm["config_class"])(**arch))
    return apply_switches(model, dtype, llm["gradient_checkpointing"], "llm")
