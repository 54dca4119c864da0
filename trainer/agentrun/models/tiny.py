"""The tiny offline model: a randomly initialised Qwen3 of ~2M parameters, built without any download.

It exists so that the whole loop (serving, SFT, GRPO, evaluation) runs on a laptop or CI machine with
2 CPU cores and no model hub. DESIGN §9's probe used a 5M shape (hidden 256, 6 layers); side by side on
the same bootstrap (bench/results/bootstrap_sweep_1.json) this 2M shape learned to copy sooner and
answered more questions, at about half the cost per token. It is saved in the standard Hugging Face
layout, so it is loaded by the same `from_pretrained` path as `Qwen/Qwen3-4B`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import GenerationConfig, PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM

from agentrun import storage
from agentrun.models import tokenizer as tokenizers
from agentrun.spec.models import TINY_CONTEXT


@dataclass(frozen=True)
class Shape:
    """The transformer's size; the default is builtin:tiny (benchmarks try others)."""

    hidden: int = 192
    layers: int = 4
    heads: int = 3  # of 64 dimensions each
    kv_heads: int = 1  # grouped-query attention as in Qwen3: a smaller KV cache, faster batched generation
    ffn: int = 576
    vocab: int = 2048  # of the BPE trained with the model
    digits: int = 1  # most digits in one token (1 as in Qwen: ids are copied digit by digit)


TINY = Shape()


def config(tokenizer: PreTrainedTokenizerFast, shape: Shape = TINY) -> Qwen3Config:
    return Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=shape.hidden,
        num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads,
        num_key_value_heads=shape.kv_heads,
        head_dim=shape.hidden // shape.heads,
        intermediate_size=shape.ffn,
        max_position_embeddings=TINY_CONTEXT,
        tie_word_embeddings=True,  # at this size the embedding is a third of the parameters: share it
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        # No pad_token_id here (as in Qwen's configs): it would freeze that embedding row at zero.
        dtype="float32",  # weights and optimizer state in fp32; bf16 only through autocast
    )


def generation_config(tokenizer: PreTrainedTokenizerFast) -> GenerationConfig:
    """Stop at the end of a turn (or of text), as Qwen's instruct models do; greedy unless asked."""
    stops = [tokenizer.convert_tokens_to_ids(t) for t in (tokenizers.IM_END, tokenizers.ENDOFTEXT)]
    return GenerationConfig(eos_token_id=stops, pad_token_id=tokenizer.pad_token_id, do_sample=False)


def build_tiny(out_dir: Path, seed: int = 0, shape: Shape = TINY) -> Path:
    """Train the tokenizer, initialise the model from `seed` and save both to `out_dir` atomically."""
    tokenizer = tokenizers.build_tokenizer(seed, shape.vocab, shape.digits)
    torch.manual_seed(seed)
    model = Qwen3ForCausalLM(config(tokenizer, shape))
    model.generation_config = generation_config(tokenizer)
    with storage.atomic_directory(out_dir) as staging:
        model.save_pretrained(staging)  # safetensors, config.json, generation_config.json
        tokenizer.save_pretrained(staging)  # tokenizer.json, tokenizer_config.json, chat_template.jinja
    return out_dir
