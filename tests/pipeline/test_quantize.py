"""Big models on smaller cards: quantization and offload are refused in one line where they
cannot run, recorded in every recipe, and restored when a recipe is replayed."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pipeline.builder import EngineSettings
from pipeline.engine import Engine
from pipeline.loading import ModelLoadError, load_model
from pipeline.recipe import pixels_sha256, setup_differences
from pipeline.requests import GridRequest
from ui.demo import about_line

REQUEST = GridRequest("a lighthouse at dusk", "5", steps=2, width=32, height=32)


@pytest.mark.parametrize("mode", ["model", "sequential"])
def test_offload_on_the_cpu_is_refused_in_one_line(mode: str) -> None:
    with pytest.raises(ModelLoadError, match=f"--offload {mode} moves modules to a GPU") as caught:
        load_model("tiny-flux", device="cpu", offload=mode)
    assert "\n" not in str(caught.value)


def test_bitsandbytes_on_the_cpu_is_refused_naming_cuda() -> None:
    with pytest.raises(ModelLoadError, match="bitsandbytes_4bit needs CUDA") as caught:
        load_model("tiny-flux", device="cpu", quantize="bitsandbytes_4bit")
    assert "\n" not in str(caught.value)


def test_a_missing_backend_package_is_refused_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("pipeline.quantize.package_missing", lambda package: True)
    with pytest.raises(ModelLoadError, match="torchao_int8wo needs the torchao package"):
        load_model("tiny-flux", device="cpu", quantize="torchao_int8wo")


def test_torchao_int8_weight_only_renders_and_replays_bit_exact() -> None:
    engine = Engine(load_model("tiny-flux", device="cpu", quantize="torchao_int8wo"))
    pipe = engine.model.pipe
    t5_attention = pipe.text_encoder_2.encoder.block[0].layer[0].SelfAttention.q
    clip_attention = pipe.text_encoder.encoder.layers[0].self_attn.q_proj
    linears = (pipe.transformer.transformer_blocks[0].attn.to_q, t5_attention, clip_attention)
    assert [type(module.weight).__name__ for module in linears] == [
        "Int8Tensor",
        "Int8Tensor",
        "Parameter",  # CLIP is left as it is
    ]
    assert "quantized torchao_int8wo" in about_line(engine)
    tile = engine.run(REQUEST)[0]
    assert tile.recipe.quantize == "torchao_int8wo"
    assert EngineSettings.for_recipe(tile.recipe).quantize == "torchao_int8wo"
    assert pixels_sha256(engine.replay(tile.recipe).image) == pixels_sha256(tile.image)


def test_a_recipe_restores_its_offload_mode_and_an_older_one_means_model(flux: Engine) -> None:
    recipe = flux.run(REQUEST)[0].recipe
    sequential = replace(recipe, offload=True, offload_mode="sequential")
    older = replace(recipe, offload=True, offload_mode=None)
    assert [EngineSettings.for_recipe(r).offload for r in (recipe, sequential, older)] == [
        None,
        "sequential",
        "model",
    ]


def test_replay_names_the_setup_that_differs_from_the_recipes(flux: Engine) -> None:
    recipe = flux.run(REQUEST)[0].recipe
    assert setup_differences(recipe, flux.provenance) == []
    other = replace(recipe, offload=True, offload_mode="sequential", quantize="torchao_int8wo")
    assert setup_differences(other, flux.provenance) == [
        "--offload: the recipe's sequential, this model's none",
        "--quantize: the recipe's torchao_int8wo, this model's none",
    ]
