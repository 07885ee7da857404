"""The stages of IPA's four language pipelines, each variant with its cited accuracy.

IPA (Ghafouri et al., arXiv 2308.12871) served Hugging Face checkpoints; here the same
architectures are built from `transformers` configs with the shapes of those checkpoints
and random weights (latency does not depend on weight values). Variant names follow IPA's
``models-metadata.yaml`` (``/`` replaced by ``-``); every accuracy is the figure in IPA's
``data/configs/accuracies.yaml`` (repository reconfigurable-ml-pipeline/ipa), cited
together with the original source that file names. The pipelines are in
`models.ipa_pipelines`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from models.catalog import CatalogStage, CatalogVariant, cited_stage
from models.transformer_builders import (
    audio_batch,
    encoder,
    seq2seq_generator,
    speech_recognizer,
    token_batch,
)

IPA_FILE = "IPA repository (reconfigurable-ml-pipeline/ipa) data/configs/accuracies.yaml"


@dataclass(frozen=True)
class Cited:
    """A published accuracy figure and where it comes from.

    Attributes:
        value: The figure, in the metric's own units.
        metric: What it measures.
        source: Citation.
    """

    value: float
    metric: str
    source: str


#: An encoder variant: (config class, model class, config shape, vocabulary, accuracy).
EncoderRow = tuple[str, str, dict[str, Any], int, Cited]


def _encoder_stage(stage: str, table: dict[str, EncoderRow], seq_len: int) -> CatalogStage:
    """One stage of `transformers` encoders fed ``seq_len`` random token ids."""
    return CatalogStage(
        stage,
        tuple(
            CatalogVariant(
                name, encoder(cfg, cls, vocab_size=vocab, **shape),
                token_batch(seq_len, vocab), c.value, c.metric, c.source, base_cores=1,
            )
            for name, (cfg, cls, shape, vocab, c) in table.items()
        ),
    )


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
    """IPA's ``audio`` stage: Speech2Text small / medium / large (LibriSpeech).

    Returns:
        The stage, variants in `S2T_VARIANTS` order.
    """
    return CatalogStage(
        "audio",
        tuple(
            CatalogVariant(
                name, speech_recognizer(d_model, heads, ffn), audio_batch, acc,
                "minus word error rate (-WER, %)",
                S2T_SOURCE.format(name=name.removeprefix("facebook-")), base_cores=1,
            )
            for name, (d_model, heads, ffn, acc) in S2T_VARIANTS.items()
        ),
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

    Args:
        seq_len: Tokens of question and context together.

    Returns:
        The stage.
    """
    qa: dict[str, EncoderRow] = {
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
    return _encoder_stage("nlp-qa", qa, seq_len)


BERT_BASE = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
             "intermediate_size": 3072, "max_position_embeddings": 512}
DISTILBERT = {"dim": 768, "n_layers": 6, "n_heads": 12, "hidden_dim": 3072,
              "max_position_embeddings": 512}


def sentiment_stage(seq_len: int) -> CatalogStage:
    """IPA's ``nlp-sent`` stage: sentence classification of a ``seq_len``-token text.

    Shapes: distilbert-base-uncased (2 labels, SST-2), and Souvikcmsa's BERT-base,
    DistilBERT and RoBERTa-base fine-tunes (3 labels).

    Args:
        seq_len: Tokens of the text.

    Returns:
        The stage.
    """
    sst2 = (f"{IPA_FILE} (nlp-sent: 'Accuracy = 0.911 on glue'); original: "
            "https://huggingface.co/distilbert-base-uncased-finetuned-sst-2-english")

    def souvik(name: str) -> str:
        return f"{IPA_FILE} (nlp-sent); original: https://huggingface.co/Souvikcmsa/{name}"

    metric = "accuracy on the model card's evaluation set (%)"
    sent: dict[str, EncoderRow] = {
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
    return _encoder_stage("nlp-sent", sent, seq_len)


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

    Returns:
        The stage.

    Raises:
        KeyError: A name in ``names`` that is not in `DISTILBART_VARIANTS`.
    """
    chosen = names or tuple(DISTILBART_VARIANTS)

    def build(name: str) -> Callable[[], nn.Module]:
        enc, dec, _ = DISTILBART_VARIANTS[name]
        return seq2seq_generator(
            "BartConfig", "BartForConditionalGeneration", new_tokens,
            vocab_size=50264, d_model=1024, encoder_layers=enc, decoder_layers=dec,
            encoder_attention_heads=16, decoder_attention_heads=16, encoder_ffn_dim=4096,
            decoder_ffn_dim=4096, max_position_embeddings=1024, pad_token_id=1,
            bos_token_id=0, eos_token_id=2, decoder_start_token_id=2,
            forced_bos_token_id=None, forced_eos_token_id=None,
        )

    rouge = {name: DISTILBART_VARIANTS[name][2] for name in chosen}
    return cited_stage("nlp-sum", rouge, build, token_batch(input_tokens, 50264),
                       "XSum ROUGE-L", DISTILBART_SOURCE)


def language_id_stage(seq_len: int) -> CatalogStage:
    """IPA's ``nlp-li`` stage: XLM-R-base language identification (20 languages).

    IPA profiled one variant; a multilingual DistilBERT language identifier is added as a
    cheaper second choice. Its figure is on a different (unnamed) evaluation set, so the two
    accuracies are not strictly comparable.

    Args:
        seq_len: Tokens of the text.

    Returns:
        The stage.
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
    li: dict[str, EncoderRow] = {
        "niharrp9-distilbert-base-multilingual-cased-finetuned-language-identification": (
            "DistilBertConfig", "DistilBertForSequenceClassification",
            {**DISTILBERT, "num_labels": 20}, 119547, distil,
        ),
        "dinalzein-xlm-roberta-base-finetuned-language-identification": (
            "XLMRobertaConfig", "XLMRobertaForSequenceClassification",
            {**ROBERTA_BASE, "num_labels": 20}, 250002, xlmr,
        ),
    }
    return _encoder_stage("nlp-li", li, seq_len)


#: IPA name -> (d_model, heads, ffn, positions, vocabulary, activation, eos id, BLEU): Marian
#: base and transformer-big shapes; the pad (= decoder start) id is the vocabulary - 1.
MARIAN_VARIANTS = {
    "Helsinki-NLP-opus-mt-fr-en": (512, 8, 2048, 512, 59514, "swish", 0, 33.1),
    "Helsinki-NLP-opus-mt-tc-big-fr-en": (1024, 16, 4096, 1024, 53017, "relu", 43311, 34.4),
}


def translation_stage(seq_len: int) -> CatalogStage:
    """IPA's ``nlp-trans`` stage: Marian French->English, base and transformer-big.

    Args:
        seq_len: Source tokens in; as many target tokens are generated greedily.

    Returns:
        The stage.
    """
    bleu = "BLEU, newsdiscussdev2015 fr-en"

    def variant(name: str) -> CatalogVariant:
        d_model, heads, ffn, positions, vocab, activation, eos, score = MARIAN_VARIANTS[name]
        pad = vocab - 1
        build = seq2seq_generator(
            "MarianConfig", "MarianMTModel", seq_len, vocab_size=vocab, d_model=d_model,
            encoder_layers=6, decoder_layers=6, encoder_attention_heads=heads,
            decoder_attention_heads=heads, encoder_ffn_dim=ffn, decoder_ffn_dim=ffn,
            max_position_embeddings=positions, activation_function=activation,
            pad_token_id=pad, decoder_start_token_id=pad, eos_token_id=eos,
        )
        source = (f"{IPA_FILE} (nlp-trans); original: "
                  f"https://huggingface.co/Helsinki-NLP/{name.removeprefix('Helsinki-NLP-')}")
        return CatalogVariant(name, build, token_batch(seq_len, pad), score, bleu, source,
                              base_cores=1)

    return CatalogStage("nlp-trans", tuple(variant(name) for name in MARIAN_VARIANTS))
