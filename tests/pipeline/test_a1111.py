"""A1111's variation, noise and schedule fields, written as A1111 writes them and read back."""

from __future__ import annotations

import pytest

from pipeline.a1111 import (
    Variation,
    noise_source,
    noise_warning,
    read_variation,
    resolve_schedule,
    rng_value,
    schedule_type_to_write,
    variation_params,
)
from pipeline.metadata import parse_infotext

# As A1111 1.10 writes a txt2img variation with a resized seed (processing.create_infotext).
A1111_TEXT = (
    "a lighthouse at dusk\nNegative prompt: blurry\n"
    "Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1234, "
    "Size: 512x768, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, "
    "Variation seed: 99, Variation seed strength: 0.3, Seed resize from: 512x512, RNG: NV, "
    "Version: v1.10.1"
)


def test_a1111s_own_text_reads_as_its_variation_and_noise() -> None:
    params = parse_infotext(A1111_TEXT)
    warnings: list[str] = []
    assert read_variation(params, warnings) == Variation(99, 0.3, (512, 512))
    assert warnings == []
    assert noise_source(params) == "NV"
    assert noise_source(parse_infotext("a cat\nSteps: 20, Seed: 1, Size: 512x512")) == "GPU"


def test_written_pairs_read_back_the_same_variation() -> None:
    variation = Variation(17, 1 / 3, (768, 512))
    params = variation_params(variation)
    assert params == {
        "Variation seed": "17",
        "Variation seed strength": "0.3333333333333333",
        "Seed resize from": "768x512",  # width x height
    }
    line = ", ".join(f"{key}: {value}" for key, value in {"Steps": "20", **params}.items())
    assert read_variation(parse_infotext(f"a cat\n{line}, Seed: 1"), []) == variation


def test_nothing_is_written_for_no_variation_and_no_resize() -> None:
    assert variation_params(Variation(17, 0.0, None)) == {}
    assert variation_params(Variation(17, 0.0, (0, 512))) == {}
    assert variation_params(Variation(None, 0.0, (512, 512))) == {"Seed resize from": "512x512"}


@pytest.mark.parametrize(
    ("params", "warning"),
    [
        ({"Variation seed": "x", "Variation seed strength": "0.3"}, "cannot read Variation seed"),
        ({"Variation seed": "1", "Variation seed strength": "1.5"}, "outside 0..1"),
        ({"Variation seed strength": "0.3"}, "without a Variation seed"),
        ({"Seed resize from": "512"}, "cannot read Seed resize from"),
    ],
)
def test_unreadable_fields_are_left_out_with_a_warning(params: dict, warning: str) -> None:
    warnings: list[str] = []
    assert read_variation(params, warnings) == Variation()
    assert any(warning in line for line in warnings)


def test_rng_is_written_as_a1111_writes_it_and_differences_are_said() -> None:
    assert (rng_value("CPU"), rng_value("NV"), rng_value("GPU")) == ("CPU", "NV", None)
    with pytest.raises(ValueError, match="noise source"):
        rng_value("cuda")
    assert noise_warning({"RNG": "CPU"}, "CPU") is None
    assert "NVIDIA" in (noise_warning({}, "NV") or "")
    assert "will differ" in (noise_warning({}, "CPU") or "")
    assert "will differ" in (noise_warning({"RNG": "NV"}, "CPU") or "")


@pytest.mark.parametrize(
    ("sampler", "rendered", "written"),
    [
        ("DPM2", "Uniform", "Uniform"),  # A1111's Automatic for DPM2 is Karras: say Uniform
        ("DPM2 a", "Uniform", "Uniform"),
        ("DPM++ 2M", "Karras", "Karras"),  # A1111 writes its automatic Karras too
        ("DPM++ 2M SDE", "Uniform", "Uniform"),
        ("Euler", "Uniform", None),
        ("Euler a", "Karras", "Karras"),
        ("UniPC", "Karras", None),  # a timestep sampler ignores the key
        ("DDIM", "Uniform", None),
    ],
)
def test_schedule_type_is_written_where_a1111_would_otherwise_render_another(
    sampler: str, rendered: str, written: str | None
) -> None:
    assert schedule_type_to_write(sampler, rendered) == written
    # What is written reads back as what was rendered (a timestep sampler has no schedule).
    expected = None if sampler in ("UniPC", "DDIM") else rendered
    assert resolve_schedule(sampler, written) == expected


@pytest.mark.parametrize(
    ("sampler", "schedule", "resolved"),
    [
        ("DPM++ 2M", None, "Karras"),
        ("DPM++ 2M", "Automatic", "Karras"),
        ("DPM++ 2M SDE", None, "Exponential"),
        ("DPM2", None, "Karras"),
        ("Euler a", None, "Uniform"),
        ("Euler", "Exponential", "Exponential"),
        ("UniPC", "Karras", None),
        ("DDIM", "Karras", None),
    ],
)
def test_a1111s_automatic_schedule_per_sampler(
    sampler: str, schedule: str | None, resolved: str | None
) -> None:
    assert resolve_schedule(sampler, schedule) == resolved
