"""Recipes in PNGs: A1111's infotext both ways, our JSON chunk, atomic writes, Gradio's gallery."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from diffusers import PNDMScheduler
from PIL import Image, PngImagePlugin

from pipeline import metadata
from pipeline.metadata import (
    fields_from_infotext,
    fields_from_recipe,
    infotext,
    parse_infotext,
    png_bytes,
    read_png,
    with_metadata,
    write_png,
)
from pipeline.recipe import Recipe, pixels_sha256
from pipeline.schedulers import SchedulerRegistry
from pipeline.tiny import SD15_SCHEDULER_CONFIG

# Copied from AUTOMATIC1111's modules/infotext_utils.py, on purpose not imported from ours.
A1111_RE_PARAM = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')

REGISTRY = SchedulerRegistry(PNDMScheduler.from_config(SD15_SCHEDULER_CONFIG))
NAMES = REGISTRY.names


def sample_recipe(**changes: object) -> Recipe:
    """A plausible recipe; tests change what they are about."""
    recipe = Recipe(
        kind="grid",
        prompt="a lighthouse at dusk",
        negative_prompt="",
        seed=8,
        sampler="DPM++ 2M Karras",
        scheduler_class="DPMSolverMultistepScheduler",
        scheduler_config={"use_karras_sigmas": True, "steps_offset": 1},
        steps=20,
        guidance_scale=7.5,
        width=64,
        height=64,
        model_id="tiny",
        model_hash="0123456789",
        model_revision=None,
        dtype="float32",
        device="cpu",
        device_name="test CPU",
        generator_device="cpu",
        batch_size=4,
        batch_index=2,
        noise_sha256="ab" * 32,
        deterministic=False,
        versions={"app": "0.3.0", "torch": "2.13.0"},
    )
    return dataclasses.replace(recipe, **changes)


def sample_image(seed: int = 0, size: tuple[int, int] = (16, 12)) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def a1111_params(text: str) -> dict[str, str]:
    """The last line as A1111 reads it: its pattern, then json.loads on quoted values."""
    last = text.strip().split("\n")[-1]
    return {
        key: json.loads(value) if value[:1] == value[-1:] == '"' else value
        for key, value in A1111_RE_PARAM.findall(last)
    }


def test_infotext_is_a1111_layout_in_a1111_order() -> None:
    text = infotext(sample_recipe(negative_prompt="blurry"), "0.3.0")
    assert text.split("\n") == [
        "a lighthouse at dusk",
        "Negative prompt: blurry",
        "Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7.5, Seed: 8, "
        "Size: 64x64, Model hash: 0123456789, Model: tiny, RNG: CPU, Family: sd1, "
        "Scheduler class: DPMSolverMultistepScheduler, Version: seed-explorer 0.3.0",
    ]


def test_infotext_names_samplers_as_a1111_does() -> None:
    def params(**changes: object) -> dict[str, str]:
        return a1111_params(infotext(sample_recipe(**changes)))

    assert params(sampler="PNDM")["Sampler"] == "PLMS"
    assert "Schedule type" not in params(sampler="Euler a", scheduler_config={})
    # A1111's "Automatic" schedule for DPM++ 2M is Karras, so the plain one says so.
    assert params(sampler="DPM++ 2M", scheduler_config={})["Schedule type"] == "Uniform"
    assert params(sampler="DPM2", scheduler_config={})["Schedule type"] == "Uniform"
    assert params(sampler="DPM2 a", scheduler_config={})["Schedule type"] == "Uniform"
    assert "Schedule type" not in params(sampler="UniPC", scheduler_config={})
    gpu = params(generator_device="cuda", deterministic=True, seed=0, guidance_scale=0.0)
    assert gpu["RNG"] == "GPU"
    assert gpu["Deterministic"] == "True"
    assert gpu["Seed"] == "0"
    assert gpu["CFG scale"] == "0.0"


@pytest.mark.parametrize(
    ("prompt", "suffix", "model_id"),
    [
        ("a cat, a dog", ", highly realistic", "tiny"),
        ("ratio 16:9, wide", ", artsy: more", "C:/models/my, model"),
        ('a "quoted" word', '"starts with a quote"', 'model "v2"'),
        ("first line\nsecond line", ", two\nlines", "owner/name"),
    ],
)
def test_a1111s_own_pattern_reads_every_value_back(prompt: str, suffix: str, model_id: str) -> None:
    recipe = sample_recipe(
        prompt=prompt + suffix, suffix=suffix, model_id=model_id, negative_prompt="bad, ugly"
    )
    expected = {
        "Steps": "20",
        "Sampler": "DPM++ 2M",
        "Schedule type": "Karras",
        "CFG scale": "7.5",
        "Seed": "8",
        "Size": "64x64",
        "Model hash": "0123456789",
        "Model": model_id,
        "RNG": "CPU",
        "Suffix": suffix,
        "Family": "sd1",
        "Scheduler class": "DPMSolverMultistepScheduler",
        "Version": "seed-explorer 0.3.0",
    }
    params = a1111_params(infotext(recipe))
    assert params == expected
    assert list(params) == list(expected)


LORAS = [
    {"name": "ink, style", "source": "a", "weight": 0.8, "sha256": "0" * 64, "a1111_hash": "abc"},
    {"name": "lcm-lora", "source": "b", "weight": 1.0, "sha256": "1" * 64, "a1111_hash": "def"},
]


def test_a_lora_is_written_as_a1111_writes_it_and_read_back_without_its_tag() -> None:
    """A tag per LoRA in the prompt (A1111 applies a LoRA only where the prompt names it) and
    `Lora hashes` with A1111's quoting; our own reading leaves the tags out of the prompt."""
    recipe = sample_recipe(loras=LORAS, model_name="dream", model_id="/m/dream.safetensors")
    text = infotext(recipe)
    assert text.split("\n")[0] == "a lighthouse at dusk <lora:ink, style:0.8> <lora:lcm-lora:1>"
    params = a1111_params(text)
    assert params["Lora hashes"] == "ink, style: abc, lcm-lora: def"
    assert (params["Model"], params["Model hash"]) == ("dream", "0123456789")
    fields = fields_from_infotext(text, NAMES, "sd1")
    assert fields.prompt == "a lighthouse at dusk"
    assert "LoRA tags left out of the prompt" in fields.warnings[0]
    assert "Lora hashes" not in a1111_params(infotext(sample_recipe()))


@pytest.mark.parametrize(
    ("ours", "sampler", "read_as"),
    # A1111's DDIM ignores the schedule type: its SGM Uniform renders as plain DDIM there.
    [("Euler trailing", "Euler", "Euler trailing"), ("DDIM trailing", "DDIM", "DDIM")],
)
def test_trailing_timesteps_are_a1111s_sgm_uniform(ours: str, sampler: str, read_as: str) -> None:
    params = a1111_params(infotext(sample_recipe(sampler=ours)))
    assert (params["Sampler"], params["Schedule type"]) == (sampler, "SGM Uniform")
    text = f"a\nSteps: 1, Sampler: {sampler}, Schedule type: SGM Uniform, Seed: 1, Size: 64x64"
    assert fields_from_infotext(text, [*NAMES, ours], "sd1").scheduler == read_as


def test_an_sdxl_tile_says_its_family_native_size_and_size_conditioning() -> None:
    conditioning = {
        "original_size": [768, 1024],
        "crops_coords_top_left": [0, 16],
        "target_size": [768, 1024],
    }
    recipe = sample_recipe(family="sdxl", native_size=1024, conditioning=conditioning)
    params = a1111_params(infotext(recipe))
    assert (params["Family"], params["Native size"]) == ("sdxl", "1024")
    assert params["Size conditioning"] == "original 1024x768, crop top 0 left 16, target 1024x768"
    fields = fields_from_infotext(infotext(recipe), NAMES, "sdxl")
    assert not any("not applied" in warning for warning in fields.warnings)
    # Loaded into another family: the fields still fill in, with a word on why pixels differ.
    elsewhere = fields_from_recipe(recipe, NAMES, "sd1").warnings
    assert elsewhere == [
        "rendered with Stable Diffusion XL, but the loaded model is Stable Diffusion 1.x: "
        "the same seed makes another image here"
    ]
    assert fields_from_infotext(infotext(recipe), NAMES, "sd1").warnings[0] == elsewhere[0]


def test_infotext_round_trip() -> None:
    recipe = sample_recipe(
        prompt="line one, with: colon\nline two", negative_prompt="ugly,\nblurry", seed=2**40
    )
    parsed = parse_infotext(infotext(recipe))
    assert parsed["Prompt"] == recipe.prompt
    assert parsed["Negative prompt"] == recipe.negative_prompt
    fields = fields_from_infotext(infotext(recipe), NAMES, "sd1")
    assert fields == metadata.RecipeFields(
        prompt=recipe.prompt,
        negative_prompt=recipe.negative_prompt,
        seed=2**40,
        steps=20,
        guidance_scale=7.5,
        width=64,
        height=64,
        scheduler="DPM++ 2M Karras",
        warnings=[],
    )


@pytest.mark.parametrize("name", NAMES)
def test_every_offered_scheduler_survives_the_infotext(name: str) -> None:
    recipe = sample_recipe(sampler=name, scheduler_config=REGISTRY.config(name))
    assert fields_from_infotext(infotext(recipe), NAMES, "sd1").scheduler == name


A1111_MULTILINE = """\
masterpiece, best quality, 1girl,
standing in a field of flowers
Negative prompt: lowres, bad anatomy,
worst quality
Steps: 28, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 3216549870, \
Size: 512x768, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Version: v1.10.1"""

A1111_EXTRAS = """\
a castle on a hill
Steps: 20, Sampler: Euler a, CFG scale: 7.5, Seed: 42, Size: 512x512, Model hash: 45dee52b, \
Denoising strength: 0.4, Hires upscale: 2, Hires upscaler: Latent, \
ADetailer model: face_yolov8n.pt, ADetailer prompt: "smiling, detailed eyes", \
Lora hashes: "add_detail: 7c6bad76eb54", Version: v1.6.0"""


GPU_NOISE = (
    "made with GPU noise, rendered here with CPU noise: it will differ "
    "(NV noise reproduces NVIDIA GPU noise)"
)


def test_a1111_multiline_prompt_and_schedule_type() -> None:
    fields = fields_from_infotext(A1111_MULTILINE, NAMES, "sd1")
    assert fields.prompt == "masterpiece, best quality, 1girl,\nstanding in a field of flowers"
    assert fields.negative_prompt == "lowres, bad anatomy,\nworst quality"
    assert (fields.seed, fields.steps, fields.guidance_scale) == (3216549870, 28, 7.0)
    assert (fields.width, fields.height) == (512, 768)
    assert fields.scheduler == "DPM++ 2M Karras"
    assert fields.warnings == [GPU_NOISE]


def test_a1111_extras_are_parsed_and_reported_as_not_applied() -> None:
    params = parse_infotext(A1111_EXTRAS)
    assert params["ADetailer prompt"] == "smiling, detailed eyes"
    assert params["Lora hashes"] == "add_detail: 7c6bad76eb54"
    fields = fields_from_infotext(A1111_EXTRAS, NAMES, "sd1")
    assert (fields.prompt, fields.negative_prompt) == ("a castle on a hill", "")
    assert fields.scheduler == "Euler a"
    assert fields.warnings == [
        GPU_NOISE,
        "not applied here: Denoising strength, Hires upscale, Hires upscaler, "
        "ADetailer model, ADetailer prompt, Lora hashes",
    ]


@pytest.mark.parametrize(
    ("sampler_text", "expected"),
    [
        ("Sampler: DPM++ 2M Karras", "DPM++ 2M Karras"),  # A1111 before 1.9
        ("Sampler: DPM++ 2M", "DPM++ 2M Karras"),  # no schedule type: Automatic, Karras
        ("Sampler: DPM++ 2M, Schedule type: Uniform", "DPM++ 2M"),
        ("Sampler: DPM++ 2M, Schedule type: Automatic", "DPM++ 2M Karras"),
        ("Sampler: Euler, Schedule type: Automatic", "Euler"),
        ("Sampler: PLMS", "PNDM"),
        ("Sampler: UniPC", "UniPC"),
        ("Sampler: UniPC, Schedule type: Karras", "UniPC"),  # A1111 ignores it, so do we
        ("Sampler: DDIM, Schedule type: Karras", "DDIM"),
        ("Sampler: DPM2 a, Schedule type: Uniform", "DPM2 a"),
    ],
)
def test_a1111_samplers_map_to_ours(sampler_text: str, expected: str) -> None:
    text = f"a cat\nSteps: 20, {sampler_text}, CFG scale: 7, Seed: 1, Size: 512x512"
    assert fields_from_infotext(text, NAMES, "sd1").scheduler == expected


@pytest.mark.parametrize(
    "sampler_text",
    [
        "Sampler: DPM++ 2S a, Schedule type: Karras",
        "Sampler: Restart",
        "Sampler: Euler, Schedule type: Align Your Steps",
        "Sampler: DPM++ 2M SDE, Schedule type: Automatic",  # A1111 means Exponential
        "Sampler: LMS Karras",
        "Sampler: DPM2",  # A1111's Automatic for DPM2 is Karras, which we do not offer
    ],
)
def test_a1111_samplers_we_do_not_offer_are_warnings_not_guesses(sampler_text: str) -> None:
    text = f"a cat\nSteps: 20, {sampler_text}, CFG scale: 7, Seed: 1, Size: 512x512"
    fields = fields_from_infotext(text, NAMES, "sd1")
    assert fields.scheduler is None
    assert len(fields.warnings) == 2
    assert "not offered" in fields.warnings[0]
    assert fields.seed == 1


def test_missing_and_unreadable_fields_are_warnings() -> None:
    fields = fields_from_infotext(
        "a cat\nSteps: twenty, CFG scale: 7, Seed: -1, Size: big", NAMES, "sd1"
    )
    assert (fields.prompt, fields.steps, fields.seed, fields.width) == ("a cat", None, None, None)
    assert fields.guidance_scale == 7.0
    assert fields.warnings[0].startswith("Seed: seed -1 is outside")
    assert fields.warnings[1] == "cannot read Steps 'twenty'"
    assert fields.warnings[2:] == ["cannot read Size 'big'", "no Sampler"]


def test_text_without_a_settings_line_is_all_prompt() -> None:
    fields = fields_from_infotext("a cat, sitting\non a mat", NAMES, "sd1")
    assert fields.prompt == "a cat, sitting\non a mat"
    assert fields.warnings == ["no Seed", "no Steps", "no CFG scale", "no Size", "no Sampler"]


def test_png_chunks_survive_write_and_read(tmp_path: Path) -> None:
    image = sample_image()
    recipe = sample_recipe(prompt="ünïcode, prompt ✓", suffix=", ✓")
    path = write_png(tmp_path / "tile.png", image, recipe, "9.9.9")
    read, read_recipe, text = read_png(path)
    assert read_recipe == recipe
    assert text == infotext(recipe, "9.9.9")
    assert np.array_equal(np.asarray(read), np.asarray(image))
    assert json.loads(read.info["seed-explorer"])["pixels_sha256"] == pixels_sha256(image)


def test_our_recipe_wins_over_the_infotext(tmp_path: Path) -> None:
    recipe = sample_recipe(prompt="  spaces kept  ", sampler="DEIS")
    _, read_recipe, text = read_png(write_png(tmp_path / "tile.png", sample_image(), recipe))
    exact = fields_from_recipe(read_recipe, NAMES, "sd1")
    assert (exact.prompt, exact.scheduler, exact.warnings) == ("  spaces kept  ", "DEIS", [])
    assert fields_from_infotext(text, NAMES, "sd1").prompt == "spaces kept"  # A1111 strips lines
    unknown = fields_from_recipe(sample_recipe(sampler="LCM"), NAMES, "sd1")
    assert unknown.scheduler is None
    assert unknown.warnings == ["scheduler 'LCM' is not offered for this model"]


def write_png_with_chunks(path: Path, chunks: dict[str, str]) -> Path:
    """A PNG with just these text chunks, as another tool would save it."""
    info = PngImagePlugin.PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    sample_image().save(path, pnginfo=info)
    return path


def write_a1111_png(path: Path) -> Path:
    """A PNG as A1111 saves it: the `parameters` chunk and nothing of ours."""
    return write_png_with_chunks(path, {"parameters": A1111_MULTILINE})


def test_an_a1111_png_reads_through_its_infotext(tmp_path: Path) -> None:
    _, recipe, text = read_png(write_a1111_png(tmp_path / "a1111.png"))
    assert (recipe, text) == (None, A1111_MULTILINE)
    assert fields_from_infotext(text, NAMES, "sd1").scheduler == "DPM++ 2M Karras"
    assert read_png(write_png_with_chunks(tmp_path / "plain.png", {}))[1:] == (None, None)


def test_a_broken_recipe_chunk_is_an_error_not_a_missing_recipe(tmp_path: Path) -> None:
    path = write_png_with_chunks(tmp_path / "broken.png", {"seed-explorer": "{not json"})
    with pytest.raises(metadata.MetadataError, match="seed-explorer chunk cannot be read"):
        read_png(path)


def test_png_bytes_are_lossless_png() -> None:
    image = sample_image(3)
    data = png_bytes(image, sample_recipe())
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert pixels_sha256(Image.open(io.BytesIO(data))) == pixels_sha256(image)


def test_atomic_write_replaces_and_leaves_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "tile.png"
    path.write_bytes(b"old")
    write_png(path, sample_image(), sample_recipe())
    assert read_png(path)[1] == sample_recipe()
    assert sorted(tmp_path.iterdir()) == [path]


def test_a_crash_at_the_rename_keeps_the_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "tile.png"
    path.write_bytes(b"old")

    def crash(src: str, dst: str) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk gone"):
        write_png(path, sample_image(), sample_recipe())
    assert path.read_bytes() == b"old"
    assert sorted(tmp_path.iterdir()) == [path]


def test_a_crash_while_encoding_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("encoder failed")

    monkeypatch.setattr(Image.Image, "save", crash)
    with pytest.raises(RuntimeError, match="encoder failed"):
        write_png(tmp_path / "tile.png", sample_image(), sample_recipe())
    assert list(tmp_path.iterdir()) == []


def test_a_png_gallery_keeps_both_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Gradio's save_pil_to_cache copies str `.info` items into the PNG it serves."""
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))
    recipe = sample_recipe(prompt="a cat, on a mat")
    image = sample_image()
    tagged = with_metadata(image, recipe, "1.2.3")
    assert image.info == {}
    gallery = gr.Gallery(format="png")
    served = gallery.postprocess([(tagged, "seed 8")]).root[0].image.path
    assert Path(served).is_relative_to(tmp_path)
    read, read_recipe, text = read_png(served)
    assert read_recipe == recipe
    assert text == infotext(recipe, "1.2.3")
    assert pixels_sha256(read) == pixels_sha256(image)


def test_a1111s_pattern_reads_a_variation_and_it_comes_back() -> None:
    recipe = sample_recipe(variation_seed=17, variation_strength=0.3, resize_from=[512, 768])
    params = a1111_params(infotext(recipe))
    assert (params["Variation seed"], params["Variation seed strength"]) == ("17", "0.3")
    assert params["Seed resize from"] == "512x768"
    assert list(params).index("Variation seed") == list(params).index("Model") + 1
    fields = fields_from_infotext(infotext(recipe), NAMES, "sd1")
    assert (fields.variation_seed, fields.variation_strength) == (17, 0.3)
    assert fields.resize_from == (512, 768) and fields.warnings == []
    assert "Variation seed" not in infotext(sample_recipe(variation_seed=17))  # strength 0
    ours = fields_from_recipe(recipe, NAMES, "sd1")
    assert (ours.variation_seed, ours.variation_strength, ours.resize_from) == (17, 0.3, (512, 768))


def test_another_model_or_noise_source_is_a_warning() -> None:
    text = infotext(sample_recipe(model_id="v1-5-pruned-emaonly", model_hash="6ce0161689"))
    same = fields_from_infotext(
        text, NAMES, "sd1", ("models/v1-5-pruned-emaonly.safetensors", "6ce0161689")
    )
    assert same.warnings == []
    other = fields_from_infotext(text, NAMES, "sd1", ("tiny", "0123456789"))
    assert other.warnings == [
        "made with model v1-5-pruned-emaonly (hash 6ce0161689), rendered here with tiny: "
        "it will differ"
    ]
    nv = fields_from_infotext(text.replace("RNG: CPU", "RNG: NV"), NAMES, "sd1")
    assert nv.warnings == ["made with NV noise, rendered here with CPU noise: it will differ"]
