"""Decoder-only language models (the ``llm`` catalog pipeline).

GPT-2 small / medium / large / XL (Radford et al. 2019) are built from
`transformers.GPT2Config` with random weights. A request is a fixed prompt from which a
fixed number of tokens is generated greedily with the KV cache
(`models.transformer_builders.FixedLengthGenerate`); a "batch" is that many requests
generated together (same prompt length, so no padding).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from models.catalog import ONE_CORE, CatalogPipeline, cited_stage
from models.transformer_builders import FixedLengthGenerate, quiet_transformers, token_batch

LLM_PROMPT_TOKENS = 32
LLM_NEW_TOKENS = 8
#: 1.5 x gpt2-xl batch-1 p99 at 1 core in profiles/llm.yaml, rounded up to a second.
LLM_SLA_MS = 8000.0

GPT2_SOURCE = (
    "Radford et al. 2019, Language Models are Unsupervised Multitask Learners (GPT-2 paper), "
    "Table 3: LAMBADA accuracy, zero-shot, per model size (117M/345M/762M/1542M as the paper "
    "counts parameters)"
)
GPT2_METRIC = "LAMBADA accuracy, zero-shot (%)"

#: name -> (n_layer, n_embd, n_head, LAMBADA accuracy in GPT-2 paper Table 3)
GPT2_SIZES: dict[str, tuple[int, int, int, float]] = {
    "gpt2": (12, 768, 12, 45.99),
    "gpt2-medium": (24, 1024, 16, 55.48),
    "gpt2-large": (36, 1280, 20, 60.12),
    "gpt2-xl": (48, 1600, 25, 63.24),
}
GPT2_VOCAB = 50257


def gpt2_builder(name: str) -> Callable[[], nn.Module]:
    """A builder of GPT-2 size ``name`` wrapped in `FixedLengthGenerate`.

    Args:
        name: A key of `GPT2_SIZES`.

    Returns:
        A zero-argument function returning the model in eval mode, random weights.

    Raises:
        KeyError: ``name`` is not in `GPT2_SIZES`.
    """
    n_layer, n_embd, n_head, _ = GPT2_SIZES[name]

    def build() -> nn.Module:
        from transformers import GPT2Config, GPT2LMHeadModel

        quiet_transformers()
        config = GPT2Config(
            vocab_size=GPT2_VOCAB, n_positions=1024, n_layer=n_layer, n_embd=n_embd,
            n_head=n_head,
        )
        return FixedLengthGenerate(GPT2LMHeadModel(config).eval(), LLM_NEW_TOKENS).eval()

    return build


def llm_pipeline() -> CatalogPipeline:
    """One decoder family in four sizes: GPT-2 small, medium, large and XL."""
    decoder = cited_stage(
        "decoder", {name: size[3] for name, size in GPT2_SIZES.items()}, gpt2_builder,
        token_batch(LLM_PROMPT_TOKENS, GPT2_VOCAB), GPT2_METRIC, GPT2_SOURCE,
    )
    return CatalogPipeline(
        "llm", (decoder,), LLM_SLA_MS, (1, 2),
        f"GPT-2 shapes (GPT2Config) with random weights; a request is a "
        f"{LLM_PROMPT_TOKENS}-token prompt and exactly {LLM_NEW_TOKENS} greedily "
        "generated tokens with the KV cache (transformers generate, fp32); batch = "
        "concurrent requests generated together. SLA = 1.5 x GPT-2 XL's batch-1 p99 at 1 core "
        f"(measured here), rounded up to a whole second; {ONE_CORE}",
    )
