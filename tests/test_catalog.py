"""The shipped catalog pipelines: citations, settings, and one forward pass per stage."""

from __future__ import annotations

import time

import pytest
import torch

from models.catalog import PIPELINES, CatalogPipeline, catalog_pipeline
from models.errors import CatalogError
from models.sam import SAM_ENCODERS, sam_encoder_builder
from models.transformer_builders import FixedLengthGenerate

SHIPPED = ("video", "sam", "llm", "audio_qa", "audio_sent", "sum_qa", "nlp")
MODEL_PIPELINES = ("llm", "audio_qa", "audio_sent", "sum_qa", "nlp")


@pytest.mark.parametrize("name", SHIPPED)
def test_pipeline_is_registered_and_cited(name: str) -> None:
    spec = catalog_pipeline(name)
    assert isinstance(spec, CatalogPipeline)
    assert spec.name == name
    assert spec.sla_ms > 0 and spec.notes.strip()
    assert 1 in spec.batch_sizes and list(spec.batch_sizes) == sorted(set(spec.batch_sizes))
    for stage in spec.stages:
        names = [v.name for v in stage.variants]
        assert len(names) == len(set(names)), stage.name
        assert len(stage.variants) >= 2, f"{name}/{stage.name} offers no choice"
        for v in stage.variants:
            assert v.accuracy_source.strip() and v.accuracy_metric.strip(), v.name
            assert v.accuracy_metric != "placeholder", v.name
            assert v.base_cores >= 1


def test_unknown_pipeline_suggests_a_name() -> None:
    with pytest.raises(CatalogError, match="audio_qa"):
        catalog_pipeline("audio-qa")
    assert set(SHIPPED) <= set(PIPELINES)


def test_a_key_error_inside_a_builder_is_not_an_unknown_name(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> CatalogPipeline:
        return {}["missing"]  # a bug in a builder

    monkeypatch.setitem(PIPELINES, "broken", broken)
    with pytest.raises(KeyError, match="missing"):
        catalog_pipeline("broken")


def test_ipa_variants_cite_ipa_accuracies_file() -> None:
    for name in ("audio_qa", "audio_sent", "sum_qa", "nlp"):
        for stage in catalog_pipeline(name).stages:
            cited = [v for v in stage.variants if "accuracies.yaml" in v.accuracy_source]
            assert cited, f"{name}/{stage.name} cites nothing from IPA's accuracies.yaml"


def _smallest(spec: CatalogPipeline) -> list[tuple[str, object]]:
    """(label, variant) of the first-listed (smallest) variant of every stage."""
    return [(f"{spec.name}/{s.name}/{s.variants[0].name}", s.variants[0]) for s in spec.stages]


def _cases() -> list[tuple[str, object]]:
    seen: set[str] = set()
    cases = []
    for name in MODEL_PIPELINES:
        for label, variant in _smallest(catalog_pipeline(name)):
            if variant.name not in seen:  # the same model in two pipelines is built once
                seen.add(variant.name)
                cases.append((label, variant))
    return cases


@pytest.fixture
def constant_init(monkeypatch: pytest.MonkeyPatch) -> None:
    """Replace torch's random initialisers by a constant fill for the duration of a test.

    Drawing ~100M normal samples per model dominates build time; the values are irrelevant
    to whether a builder constructs its architecture and runs, which is what is tested.
    """

    def fill(tensor: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
        with torch.no_grad():
            return tensor.fill_(0.02)

    for name in ("normal_", "uniform_", "kaiming_uniform_", "kaiming_normal_",
                 "trunc_normal_", "xavier_uniform_", "xavier_normal_"):
        monkeypatch.setattr(torch.nn.init, name, fill)


@pytest.mark.usefixtures("constant_init")
def test_smallest_variant_of_every_stage_runs_one_batch() -> None:
    """Every stage's builder constructs its model and runs a batch-1 forward pass.

    Generation is cut to 2 new tokens and initialisation to a constant fill (the builders'
    code path is the same) so that the whole test stays within a few seconds.
    """
    torch.set_num_threads(1)
    start = time.perf_counter()
    for label, variant in _cases():
        model = variant.build()
        assert not model.training, label
        if isinstance(model, FixedLengthGenerate):
            model.new_tokens = 2
        generate = getattr(model, "generate", None)
        if isinstance(generate, FixedLengthGenerate):
            generate.new_tokens = 2
        with torch.inference_mode():
            out = model(variant.make_input(1))
        tensor = out if isinstance(out, torch.Tensor) else out[0]
        assert tensor.shape[0] == 1, label
        assert torch.isfinite(tensor.float()).all(), label
    assert time.perf_counter() - start < 60


@pytest.mark.usefixtures("constant_init")
def test_sam_encoder_builds_and_embeds() -> None:
    """ViT-B with the catalog's builder, at 224 px (the catalog profiles 448 px)."""
    torch.set_num_threads(1)
    model = sam_encoder_builder("sam_vit_b", image_size=224)()
    with torch.inference_mode():
        emb = model(torch.rand(1, 3, 224, 224))
    assert emb.shape == (1, 256, 14, 14)
    assert list(SAM_ENCODERS) == ["sam_vit_b", "sam_vit_l", "sam_vit_h"]
    accs = [v[-1] for v in SAM_ENCODERS.values()]
    assert accs == sorted(accs)


def test_generation_length_is_fixed() -> None:
    """Random weights may emit EOS at any step; generation must still be exactly N tokens."""
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(vocab_size=64, n_positions=64, n_layer=1, n_embd=16, n_head=2,
                        eos_token_id=3, bos_token_id=3)
    model = GPT2LMHeadModel(config).eval()
    with torch.no_grad():  # make EOS the most likely token at every step
        model.transformer.ln_f.weight.zero_()
        model.transformer.ln_f.bias.fill_(1.0)
        model.lm_head.weight.zero_()
        model.lm_head.weight[3] = 1.0
    ids = torch.randint(5, 64, (2, 7))
    with torch.inference_mode():
        free = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=5,
                              do_sample=False, pad_token_id=3)
        out = FixedLengthGenerate(model, new_tokens=5)(ids)
    assert free.shape[1] < 7 + 5  # unforced generation stops at EOS
    assert out.shape == (2, 7 + 5)
