"""IPA's four language pipelines: ``audio_qa``, ``audio_sent``, ``sum_qa`` and ``nlp``.

The stages and their cited variants are in `models.ipa_stages`. Inputs are fixed-length
and synthetic (documented per pipeline in its ``notes``): 5 s of 16 kHz audio for speech
recognition, random token ids of a fixed length for text, and generation forced to a
fixed number of greedy tokens (`models.transformer_builders.FixedLengthGenerate`).
"""

from __future__ import annotations

from collections.abc import Callable

from models.catalog import ONE_CORE, CatalogPipeline, CatalogStage
from models.ipa_stages import (
    asr_stage,
    language_id_stage,
    qa_stage,
    sentiment_stage,
    summarisation_stage,
    translation_stage,
)
from models.transformer_builders import ASR_NEW_TOKENS, AUDIO_SECONDS

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

_RANDOM = (
    "random weights; generation forced to a fixed length (min = max new tokens, greedy); "
    f"{ONE_CORE}"
)


def _ipa_pipeline(name: str, stages: tuple[CatalogStage, ...], inputs: str) -> CatalogPipeline:
    """A pipeline at its `SLA_MS`, batch 1 and 2, with ``inputs`` described in its notes."""
    return CatalogPipeline(
        name=name, stages=stages, sla_ms=SLA_MS[name], batch_sizes=(1, 2),
        notes=f"{inputs}; {_RANDOM}. {SLA_NOTE}",
    )


def _speech_then(name: str, second: CatalogStage, second_input: str) -> CatalogPipeline:
    """Speech recognition of 5 s clips, then ``second`` reading the transcript."""
    return _ipa_pipeline(
        name, (asr_stage(), second),
        f"audio: {AUDIO_SECONDS:g} s of synthetic 16 kHz audio -> 80-bin fbank "
        f"(included) -> {ASR_NEW_TOKENS} generated tokens; {second.name}: "
        f"{SPEECH_TEXT_TOKENS}-token {second_input}",
    )


def audio_qa_pipeline() -> CatalogPipeline:
    """IPA's audio-qa: speech recognition, then extractive question answering."""
    return _speech_then("audio_qa", qa_stage(SPEECH_TEXT_TOKENS), "question + transcript")


def audio_sent_pipeline() -> CatalogPipeline:
    """IPA's audio-sent: speech recognition, then sentiment classification."""
    return _speech_then("audio_sent", sentiment_stage(SPEECH_TEXT_TOKENS), "transcript")


def sum_qa_pipeline() -> CatalogPipeline:
    """IPA's sum-qa: summarisation, then extractive question answering on the summary."""
    return _ipa_pipeline(
        "sum_qa",
        (summarisation_stage(SUM_INPUT_TOKENS, SUM_NEW_TOKENS), qa_stage(SUM_QA_TOKENS)),
        f"nlp-sum: {SUM_INPUT_TOKENS}-token text -> {SUM_NEW_TOKENS} generated tokens; "
        f"nlp-qa: {SUM_QA_TOKENS}-token question + summary",
    )


def nlp_pipeline() -> CatalogPipeline:
    """IPA's nlp: language identification, French->English translation, summarisation."""
    return _ipa_pipeline(
        "nlp",
        (
            language_id_stage(NLP_TEXT_TOKENS),
            translation_stage(NLP_TEXT_TOKENS),
            summarisation_stage(NLP_TEXT_TOKENS, NLP_SUM_NEW_TOKENS),
        ),
        f"nlp-li: {NLP_TEXT_TOKENS}-token French text; nlp-trans: {NLP_TEXT_TOKENS} "
        f"tokens in, {NLP_TEXT_TOKENS} generated; nlp-sum: {NLP_TEXT_TOKENS}-token "
        f"translation -> {NLP_SUM_NEW_TOKENS} generated tokens",
    )


IPA_PIPELINES: dict[str, Callable[[], CatalogPipeline]] = {
    "audio_qa": audio_qa_pipeline,
    "audio_sent": audio_sent_pipeline,
    "sum_qa": sum_qa_pipeline,
    "nlp": nlp_pipeline,
}
