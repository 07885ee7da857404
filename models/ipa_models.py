"""IPA's four language pipelines: ``audio_qa``, ``audio_sent``, ``sum_qa`` and ``nlp``.

IPA (Ghafouri et al., arXiv 2308.12871) served Hugging Face checkpoints; here the same
architectures are built from `transformers` configs with the shapes of those checkpoints
and random weights (latency does not depend on weight values). Variant names follow IPA's
``models-metadata.yaml`` (``/`` replaced by ``-``); every accuracy is the figure in IPA's
``data/configs/accuracies.yaml`` (repository reconfigurable-ml-pipeline/ipa), cited
together with the original source that file names.

Inputs are fixed-length and synthetic (documented per pipeline in its ``notes``):
5 s of 16 kHz audio for speech recognition, random token ids of a fixed length for text,
and generation forced to a fixed number of greedy tokens (`FixedLengthGenerate`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from models.catalog import CatalogPipeline, CatalogStage, CatalogVariant
from models.llm import ONE_CORE, FixedLengthGenerate, quiet_transformers, token_batch

IPA_FILE = "IPA repository (reconfigurable-ml-pipeline/ipa) data/configs/accuracies.yaml"

AUDIO_SECONDS = 5.0
SAMPLE_RATE = 16000
ASR_NEW_TOKENS = 16
SPEECH_TEXT_TOKENS = 32  # question + transcript of 5 s of speech, or the transcript alone
SUM_INPUT_TOKENS = 128
SUM_NEW_TOKENS = 32
SUM_QA_TOKENS = 64  # question + 32-token summary
NLP_TEXT_TOKENS = 64
NLP_SUM_NEW_TOKENS = 16

#: End-to-end SLAs (ms): 1.5 x the slowest path (the sum over stages of the slowest
#: variant's batch-1 p99 latency at 1 core, as measured in profiles/<name>.yaml), rounded up
#: to a whole second, so that every variant combination fits at batch 1 with headroom.
SLA_MS = {"audio_qa": 3000.0, "audio_sent": 2000.0, "sum_qa": 4000.0, "nlp": 7000.0}
SLA_NOTE = (
    "SLA = 1.5 x the slowest path (sum over stages of the slowest variant's batch-1 p99 at "
    "1 core, measured here), rounded up to a whole second: every variant combination fits "
    "at batch 1"
)


@dataclass(frozen=True)
class Cited:
    """A published accuracy figure and where it comes from."""

    value: float
    metric: str
    source: str


# ----------------------------------------------------------------------------- builders


def _seq2seq_generator(
    config_cls: str, model_cls: str, new_tokens: int, input_name: str = "input_ids",
    **config: Any,
) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import transformers

        quiet_transformers()
        cfg = getattr(transformers, config_cls)(**config)
        model = getattr(transformers, model_cls)(cfg).eval()
        return FixedLengthGenerate(model, new_tokens, input_name).eval()

    return build


def _encoder(config_cls: str, model_cls: str, **config: Any) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import transformers

        quiet_transformers()
        cfg = getattr(transformers, config_cls)(**config)
        return getattr(transformers, model_cls)(cfg).eval()

    return build


class SpeechRecognizer(nn.Module):
    """Raw audio -> log-mel filterbank features -> Speech2Text greedy decoding.

    Feature extraction (`transformers.Speech2TextFeatureExtractor`, 80 mel bins, numpy) is
    part of the measured latency, as it was in IPA's Hugging Face pipelines.
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
        """Token ids for a ``(batch, samples)`` float waveform tensor at 16 kHz."""
        clips = [w.numpy() for w in waveforms]
        feats = self.features(clips, sampling_rate=SAMPLE_RATE, return_tensors="pt")
        return self.generate(feats["input_features"])


def _audio(batch: int) -> torch.Tensor:
    samples = int(AUDIO_SECONDS * SAMPLE_RATE)
    generator = torch.Generator().manual_seed(0)
    return 0.1 * torch.randn(batch, samples, generator=generator)


# ----------------------------------------------------------------------------- stages

S2T_SOURCE = (
    f"{IPA_FILE} (audio): minus word error rate (%) computed by IPA's "
    "model-accuracies/audio.py; original: Hugging Face model facebook/{name}"
)
#: IPA name -> (d_model, heads, ffn, -WER): fairseq s2t_transformer_s / m / l shapes.
S2T_VARIANTS = {
    "facebook-s2t-small-librispeech-asr": (256, 4, 2048, -41.28),
    "facebook-s2t-medium-librispeech-asr": (512, 8, 2048, -35.12),
    "facebook-s2t-large-librispeech-asr": (1024, 16, 4096, -33.26),
}


def asr_stage() -> CatalogStage:
    """IPA's ``audio`` stage: Speech2Text small / medium / large (LibriSpeech)."""

    def variant(name: str, d_model: int, heads: int, ffn: int, acc: float) -> CatalogVariant:
        def build() -> nn.Module:
            return SpeechRecognizer(d_model, heads, ffn).eval()

        hf_name = name.removeprefix("facebook-")
        return CatalogVariant(
            name, build, _audio, acc, "minus word error rate (-WER, %)",
            S2T_SOURCE.format(name=hf_name), base_cores=1,
        )

    return CatalogStage(
        "audio", tuple(variant(n, *shape) for n, shape in S2T_VARIANTS.items())
    )


ROBERTA_BASE = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
                "intermediate_size": 3072, "max_position_embeddings": 514,
                "type_vocab_size": 1, "pad_token_id": 1}
ROBERTA_LARGE = {**ROBERTA_BASE, "hidden_size": 1024, "num_hidden_layers": 24,
                 "num_attention_heads": 16, "intermediate_size": 4096}
SQUAD2_F1 = "SQuAD 2.0 dev F1 (%)"


def qa_stage(seq_len: int) -> CatalogStage:
    """IPA's ``nlp-qa`` stage: extractive QA over a ``seq_len``-token question + context.

    IPA's active variants are RoBERTa-base and XLM-R-base (SQuAD 2.0); XLM-R-large, which
    IPA's accuracies file lists but comments out, is added as the slow, accurate end.
    """
    qa = {
        "deepset-roberta-base-squad2": (
            "RobertaConfig", "RobertaForQuestionAnswering", ROBERTA_BASE, 50265,
            Cited(82.9125, SQUAD2_F1, f"{IPA_FILE} (nlp-qa); original: "
                  "https://huggingface.co/deepset/roberta-base-squad2#performance"),
        ),
        "deepset-xlm-roberta-base-squad2": (
            "XLMRobertaConfig", "XLMRobertaForQuestionAnswering", ROBERTA_BASE, 250002,
            Cited(77.141, SQUAD2_F1, f"{IPA_FILE} (nlp-qa); original: "
                  "https://huggingface.co/deepset/xlm-roberta-base-squad2#performance"),
        ),
        "deepset-xlm-roberta-large-squad2": (
            "XLMRobertaConfig", "XLMRobertaForQuestionAnswering", ROBERTA_LARGE, 250002,
            Cited(83.7925, SQUAD2_F1, f"{IPA_FILE} (nlp-qa, listed but commented out "
                  "there); original: "
                  "https://huggingface.co/deepset/xlm-roberta-large-squad2#performance"),
        ),
    }
    return CatalogStage(
        "nlp-qa",
        tuple(
            CatalogVariant(
                name, _encoder(cfg, cls, vocab_size=vocab, **shape),
                token_batch(seq_len, vocab), c.value, c.metric, c.source, base_cores=1,
            )
            for name, (cfg, cls, shape, vocab, c) in qa.items()
        ),
    )


BERT_BASE = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
             "intermediate_size": 3072, "max_position_embeddings": 512}
DISTILBERT = {"dim": 768, "n_layers": 6, "n_heads": 12, "hidden_dim": 3072,
              "max_position_embeddings": 512}


def sentiment_stage(seq_len: int) -> CatalogStage:
    """IPA's ``nlp-sent`` stage: sentence classification of a ``seq_len``-token text.

    Shapes: distilbert-base-uncased (2 labels, SST-2), and Souvikcmsa's BERT-base,
    DistilBERT and RoBERTa-base fine-tunes (3 labels).
    """
    sst2 = (f"{IPA_FILE} (nlp-sent: 'Accuracy = 0.911 on glue'); original: "
            "https://huggingface.co/distilbert-base-uncased-finetuned-sst-2-english")

    def souvik(name: str) -> str:
        return f"{IPA_FILE} (nlp-sent); original: https://huggingface.co/Souvikcmsa/{name}"

    metric = "accuracy on the model card's evaluation set (%)"
    sent = {
        "distilbert-base-uncased-finetuned-sst-2-english": (
            "DistilBertConfig", "DistilBertForSequenceClassification",
            {**DISTILBERT, "num_labels": 2}, 30522,
            Cited(91.1, "GLUE SST-2 validation accuracy (%)", sst2),
        ),
        "Souvikcmsa-BERT_sentiment_analysis": (
            "BertConfig", "BertForSequenceClassification", {**BERT_BASE, "num_labels": 3},
            30522, Cited(79.9017824663514, metric, souvik("BERT_sentiment_analysis")),
        ),
        "Souvikcmsa-SentimentAnalysisDistillBERT": (
            "DistilBertConfig", "DistilBertForSequenceClassification",
            {**DISTILBERT, "num_labels": 3}, 30522,
            Cited(79.62895598399418, metric, souvik("SentimentAnalysisDistillBERT")),
        ),
        "Souvikcmsa-Roberta_Sentiment_Analysis": (
            "RobertaConfig", "RobertaForSequenceClassification",
            {**ROBERTA_BASE, "num_labels": 3}, 50265,
            Cited(83.02828618968386, metric, souvik("Roberta_Sentiment_Analysis")),
        ),
    }
    return CatalogStage(
        "nlp-sent",
        tuple(
            CatalogVariant(
                name, _encoder(cfg, cls, vocab_size=vocab, **shape),
                token_batch(seq_len, vocab), c.value, c.metric, c.source, base_cores=1,
            )
            for name, (cfg, cls, shape, vocab, c) in sent.items()
        ),
    )


DISTILBART_SOURCE = (
    f"{IPA_FILE} (nlp-sum); original: "
    "https://huggingface.co/sshleifer/distilbart-xsum-12-1#metrics-for-distilbart-models"
)
#: IPA name -> (encoder layers, decoder layers, ROUGE-L on XSum as in IPA's file)
DISTILBART_VARIANTS = {
    "sshleifer-distilbart-xsum-1-1": (1, 1, 32.26),
    "sshleifer-distilbart-xsum-12-1": (12, 1, 33.37),
    "sshleifer-distilbart-xsum-6-6": (6, 6, 35.73),
    "sshleifer-distilbart-xsum-12-3": (12, 3, 36.39),
    "sshleifer-distilbart-xsum-9-6": (9, 6, 36.61),
    "sshleifer-distilbart-xsum-12-6": (12, 6, 36.99),
}


def summarisation_stage(
    input_tokens: int, new_tokens: int, names: tuple[str, ...] | None = None
) -> CatalogStage:
    """IPA's ``nlp-sum`` stage: DistilBART-XSum students of BART-large (d_model 1024).

    Args:
        input_tokens: Tokens of the text to summarise.
        new_tokens: Summary tokens generated greedily (IPA's pipeline used the model's
            default beam search; greedy keeps the work per request fixed).
        names: Subset of `DISTILBART_VARIANTS` to include (default all).
    """
    chosen = names or tuple(DISTILBART_VARIANTS)
    variants = []
    for name in chosen:
        enc, dec, rouge = DISTILBART_VARIANTS[name]
        build = _seq2seq_generator(
            "BartConfig", "BartForConditionalGeneration", new_tokens,
            vocab_size=50264, d_model=1024, encoder_layers=enc, decoder_layers=dec,
            encoder_attention_heads=16, decoder_attention_heads=16, encoder_ffn_dim=4096,
            decoder_ffn_dim=4096, max_position_embeddings=1024, pad_token_id=1,
            bos_token_id=0, eos_token_id=2, decoder_start_token_id=2,
            forced_bos_token_id=None, forced_eos_token_id=None,
        )
        variants.append(CatalogVariant(
            name, build, token_batch(input_tokens, 50264), rouge, "XSum ROUGE-L",
            DISTILBART_SOURCE, base_cores=1,
        ))
    return CatalogStage("nlp-sum", tuple(variants))


def language_id_stage(seq_len: int) -> CatalogStage:
    """IPA's ``nlp-li`` stage: XLM-R-base language identification (20 languages).

    IPA profiled one variant; a multilingual DistilBERT language identifier is added as a
    cheaper second choice. Its figure is on a different (unnamed) evaluation set, so the two
    accuracies are not strictly comparable.
    """
    xlmr = Cited(
        99.59, "accuracy on papluca/language-identification (%)",
        f"{IPA_FILE} (nlp-li); original: https://huggingface.co/dinalzein/"
        "xlm-roberta-base-finetuned-language-identification",
    )
    distil = Cited(
        99.35, "accuracy on the model card's (unnamed) evaluation set (%)",
        "model card of niharrp9/distilbert-base-multilingual-cased-finetuned-language-"
        "identification (Accuracy 0.9935); not in IPA's file, added as a cheaper variant",
    )
    li = {
        "niharrp9-distilbert-base-multilingual-cased-finetuned-language-identification": (
            "DistilBertConfig", "DistilBertForSequenceClassification",
            {**DISTILBERT, "num_labels": 20}, 119547, distil,
        ),
        "dinalzein-xlm-roberta-base-finetuned-language-identification": (
            "XLMRobertaConfig", "XLMRobertaForSequenceClassification",
            {**ROBERTA_BASE, "num_labels": 20}, 250002, xlmr,
        ),
    }
    return CatalogStage(
        "nlp-li",
        tuple(
            CatalogVariant(
                name, _encoder(cfg, cls, vocab_size=vocab, **shape),
                token_batch(seq_len, vocab), c.value, c.metric, c.source, base_cores=1,
            )
            for name, (cfg, cls, shape, vocab, c) in li.items()
        ),
    )


def translation_stage(seq_len: int) -> CatalogStage:
    """IPA's ``nlp-trans`` stage: Marian French->English, base and transformer-big.

    ``seq_len`` source tokens in, ``seq_len`` target tokens generated greedily.
    """
    bleu = "BLEU, newsdiscussdev2015 fr-en"
    base = _seq2seq_generator(
        "MarianConfig", "MarianMTModel", seq_len, vocab_size=59514, d_model=512,
        encoder_layers=6, decoder_layers=6, encoder_attention_heads=8,
        decoder_attention_heads=8, encoder_ffn_dim=2048, decoder_ffn_dim=2048,
        max_position_embeddings=512, activation_function="swish", pad_token_id=59513,
        decoder_start_token_id=59513, eos_token_id=0,
    )
    big = _seq2seq_generator(
        "MarianConfig", "MarianMTModel", seq_len, vocab_size=53017, d_model=1024,
        encoder_layers=6, decoder_layers=6, encoder_attention_heads=16,
        decoder_attention_heads=16, encoder_ffn_dim=4096, decoder_ffn_dim=4096,
        max_position_embeddings=1024, activation_function="relu", pad_token_id=53016,
        decoder_start_token_id=53016, eos_token_id=43311,
    )
    return CatalogStage(
        "nlp-trans",
        (
            CatalogVariant(
                "Helsinki-NLP-opus-mt-fr-en", base, token_batch(seq_len, 59513), 33.1, bleu,
                f"{IPA_FILE} (nlp-trans); original: "
                "https://huggingface.co/Helsinki-NLP/opus-mt-fr-en", base_cores=1,
            ),
            CatalogVariant(
                "Helsinki-NLP-opus-mt-tc-big-fr-en", big, token_batch(seq_len, 53016), 34.4,
                bleu, f"{IPA_FILE} (nlp-trans); original: "
                "https://huggingface.co/Helsinki-NLP/opus-mt-tc-big-fr-en", base_cores=1,
            ),
        ),
    )


# ----------------------------------------------------------------------------- pipelines

_RANDOM = (
    "random weights; generation forced to a fixed length (min = max new tokens, greedy); "
    f"{ONE_CORE}"
)


def audio_qa_pipeline() -> CatalogPipeline:
    """IPA's audio-qa: speech recognition, then extractive question answering."""
    return CatalogPipeline(
        name="audio_qa",
        stages=(asr_stage(), qa_stage(SPEECH_TEXT_TOKENS)),
        sla_ms=SLA_MS["audio_qa"],
        batch_sizes=(1, 2),
        notes=(
            f"audio: {AUDIO_SECONDS:g} s of synthetic 16 kHz audio -> 80-bin fbank "
            f"(included) -> {ASR_NEW_TOKENS} generated tokens; nlp-qa: "
            f"{SPEECH_TEXT_TOKENS}-token question + transcript; {_RANDOM}. {SLA_NOTE}"
        ),
    )


def audio_sent_pipeline() -> CatalogPipeline:
    """IPA's audio-sent: speech recognition, then sentiment classification."""
    return CatalogPipeline(
        name="audio_sent",
        stages=(asr_stage(), sentiment_stage(SPEECH_TEXT_TOKENS)),
        sla_ms=SLA_MS["audio_sent"],
        batch_sizes=(1, 2),
        notes=(
            f"audio: {AUDIO_SECONDS:g} s of synthetic 16 kHz audio -> 80-bin fbank "
            f"(included) -> {ASR_NEW_TOKENS} generated tokens; nlp-sent: "
            f"{SPEECH_TEXT_TOKENS}-token transcript; {_RANDOM}. {SLA_NOTE}"
        ),
    )


def sum_qa_pipeline() -> CatalogPipeline:
    """IPA's sum-qa: summarisation, then extractive question answering on the summary."""
    return CatalogPipeline(
        name="sum_qa",
        stages=(summarisation_stage(SUM_INPUT_TOKENS, SUM_NEW_TOKENS),
                qa_stage(SUM_QA_TOKENS)),
        sla_ms=SLA_MS["sum_qa"],
        batch_sizes=(1, 2),
        notes=(
            f"nlp-sum: {SUM_INPUT_TOKENS}-token text -> {SUM_NEW_TOKENS} generated tokens; "
            f"nlp-qa: {SUM_QA_TOKENS}-token question + summary; {_RANDOM}. {SLA_NOTE}"
        ),
    )


def nlp_pipeline() -> CatalogPipeline:
    """IPA's nlp: language identification, French->English translation, summarisation."""
    return CatalogPipeline(
        name="nlp",
        stages=(
            language_id_stage(NLP_TEXT_TOKENS),
            translation_stage(NLP_TEXT_TOKENS),
            summarisation_stage(NLP_TEXT_TOKENS, NLP_SUM_NEW_TOKENS),
        ),
        sla_ms=SLA_MS["nlp"],
        batch_sizes=(1, 2),
        notes=(
            f"nlp-li: {NLP_TEXT_TOKENS}-token French text; nlp-trans: {NLP_TEXT_TOKENS} "
            f"tokens in, {NLP_TEXT_TOKENS} generated; nlp-sum: {NLP_TEXT_TOKENS}-token "
            f"translation -> {NLP_SUM_NEW_TOKENS} generated tokens; {_RANDOM}. {SLA_NOTE}"
        ),
    )


IPA_PIPELINES: dict[str, Callable[[], CatalogPipeline]] = {
    "audio_qa": audio_qa_pipeline,
    "audio_sent": audio_sent_pipeline,
    "sum_qa": sum_qa_pipeline,
    "nlp": nlp_pipeline,
}
