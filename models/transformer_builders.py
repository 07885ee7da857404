"""Builders of `transformers` models with random weights, shared by the catalog modules.

Every builder returns a zero-argument callable (the `CatalogVariant.build` shape) that
imports `transformers` only when called. With random weights the end-of-sequence token
may come at any step, so every generation is forced to exactly ``new_tokens`` tokens
(`FixedLengthGenerate`) to keep the work per request fixed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

AUDIO_SECONDS = 5.0
SAMPLE_RATE = 16000
ASR_NEW_TOKENS = 16


class FixedLengthGenerate(nn.Module):
    """Greedy generation of exactly ``new_tokens`` tokens with the KV cache.

    Wraps a transformers model with a ``generate`` method (decoder-only or
    encoder-decoder). ``forward(inputs)`` takes the model's main input tensor
    (``input_ids``, or ``input_features`` when ``input_name`` says so) and returns the
    generated token ids.

    Args:
        model: A transformers generation-capable model in eval mode.
        new_tokens: Tokens generated per request (``min_new_tokens = max_new_tokens``).
        input_name: Keyword under which ``generate`` takes the input tensor.
    """

    def __init__(self, model: nn.Module, new_tokens: int, input_name: str = "input_ids") -> None:
        super().__init__()
        self.model = model
        self.new_tokens = new_tokens
        self.input_name = input_name

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Generate ``new_tokens`` tokens greedily for every request of the batch.

        Args:
            inputs: The model's main input, batch first.

        Returns:
            Token ids of shape ``(batch, prompt + new_tokens)`` (decoder-only) or
            ``(batch, 1 + new_tokens)`` (encoder-decoder).
        """
        config = self.model.config
        pad = config.pad_token_id if config.pad_token_id is not None else config.eos_token_id
        mask = torch.ones(inputs.shape[:2], dtype=torch.long)
        return self.model.generate(  # type: ignore[operator]
            **{self.input_name: inputs},
            attention_mask=mask,
            max_new_tokens=self.new_tokens,
            min_new_tokens=self.new_tokens,
            do_sample=False,
            num_beams=1,
            use_cache=True,
            pad_token_id=pad,
        )


def token_batch(seq_len: int, vocab: int, low: int = 5) -> Callable[[int], torch.Tensor]:
    """``make_input`` for token models: random ids in ``[low, vocab)``.

    Ids below ``low`` are skipped so that no special token (pad, bos, eos) is drawn.

    Args:
        seq_len: Tokens per request.
        vocab: Vocabulary size (exclusive upper bound of the ids).
        low: Smallest id drawn.

    Returns:
        A function of the batch size returning a ``(batch, seq_len)`` tensor (seeded, so
        every call returns the same ids).
    """

    def make(batch: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(0)
        return torch.randint(low, vocab, (batch, seq_len), generator=generator)

    return make


def audio_batch(batch: int) -> torch.Tensor:
    """``make_input`` for speech models: ``AUDIO_SECONDS`` of seeded noise at 16 kHz.

    Args:
        batch: Clips in the batch.

    Returns:
        A ``(batch, samples)`` float tensor.
    """
    samples = int(AUDIO_SECONDS * SAMPLE_RATE)
    generator = torch.Generator().manual_seed(0)
    return 0.1 * torch.randn(batch, samples, generator=generator)


def quiet_transformers() -> None:
    """Silence transformers' per-call warnings (random weights trigger generation hints)."""
    from transformers.utils import logging

    logging.set_verbosity_error()


def _model(config_cls: str, model_cls: str, config: dict[str, Any]) -> nn.Module:
    import transformers

    quiet_transformers()
    cfg = getattr(transformers, config_cls)(**config)
    return getattr(transformers, model_cls)(cfg).eval()


def encoder(config_cls: str, model_cls: str, **config: Any) -> Callable[[], nn.Module]:
    """A builder of a transformers encoder (classification, question answering).

    Args:
        config_cls: Name of the `transformers` config class (``"BertConfig"``).
        model_cls: Name of the model class (``"BertForSequenceClassification"``).
        **config: Keyword arguments of the config (the checkpoint's shape).

    Returns:
        A zero-argument function returning the model in eval mode, random weights.
    """

    def build() -> nn.Module:
        return _model(config_cls, model_cls, config)

    return build


def seq2seq_generator(
    config_cls: str, model_cls: str, new_tokens: int, input_name: str = "input_ids",
    **config: Any,
) -> Callable[[], nn.Module]:
    """A builder of a generation model wrapped in `FixedLengthGenerate`.

    Args:
        config_cls: Name of the `transformers` config class (``"BartConfig"``).
        model_cls: Name of the model class (``"BartForConditionalGeneration"``).
        new_tokens: Tokens generated per request.
        input_name: Keyword under which ``generate`` takes the input tensor.
        **config: Keyword arguments of the config (the checkpoint's shape).

    Returns:
        A zero-argument function returning the wrapped model in eval mode.
    """

    def build() -> nn.Module:
        model = _model(config_cls, model_cls, config)
        return FixedLengthGenerate(model, new_tokens, input_name).eval()

    return build


class SpeechRecognizer(nn.Module):
    """Raw audio -> log-mel filterbank features -> Speech2Text greedy decoding.

    Feature extraction (`transformers.Speech2TextFeatureExtractor`, 80 mel bins, numpy) is
    part of the measured latency, as it was in IPA's Hugging Face pipelines.

    Args:
        d_model: Width of encoder and decoder.
        heads: Attention heads of encoder and decoder.
        ffn: Feed-forward width of encoder and decoder.
    """

    def __init__(self, d_model: int, heads: int, ffn: int) -> None:
        super().__init__()
        from transformers import (
            Speech2TextConfig,
            Speech2TextFeatureExtractor,
            Speech2TextForConditionalGeneration,
        )

        quiet_transformers()
        config = Speech2TextConfig(
            vocab_size=10000, d_model=d_model, encoder_layers=12, decoder_layers=6,
            encoder_attention_heads=heads, decoder_attention_heads=heads,
            encoder_ffn_dim=ffn, decoder_ffn_dim=ffn, max_source_positions=6000,
            max_target_positions=1024, conv_kernel_sizes=[5, 5], conv_channels=1024,
            input_feat_per_channel=80, num_conv_layers=2,
        )
        self.features = Speech2TextFeatureExtractor(feature_size=80, num_mel_bins=80)
        model = Speech2TextForConditionalGeneration(config).eval()
        self.generate = FixedLengthGenerate(model, ASR_NEW_TOKENS, "input_features")

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        """Transcribe a batch of clips.

        Args:
            waveforms: A ``(batch, samples)`` float tensor at 16 kHz.

        Returns:
            Token ids of shape ``(batch, 1 + ASR_NEW_TOKENS)``.
        """
        clips = [w.numpy() for w in waveforms]
        feats = self.features(clips, sampling_rate=SAMPLE_RATE, return_tensors="pt")
        return self.generate(feats["input_features"])


def speech_recognizer(d_model: int, heads: int, ffn: int) -> Callable[[], nn.Module]:
    """A builder of `SpeechRecognizer` with the given Speech2Text shape.

    Args:
        d_model: Width of encoder and decoder.
        heads: Attention heads.
        ffn: Feed-forward width.

    Returns:
        A zero-argument function returning the recogniser in eval mode.
    """

    def build() -> nn.Module:
        return SpeechRecognizer(d_model, heads, ffn).eval()

    return build
