"""Matrix axes read as A1111's X/Y/Z plot reads them; errors name the field to fix."""

from __future__ import annotations

import pytest

from pipeline.axes import AXIS_NAMES, parse_axis, replace_prompt
from pipeline.requests import RequestError

SCHEDULERS = ["Euler", "Euler a", "DPM++ 2M Karras"]


def values(name: str, text: str, **kwargs: object) -> tuple:
    return parse_axis(name, text, "X", max_values=64, **kwargs).values  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1-5", (1, 2, 3, 4, 5)),
        ("1-10 (+2)", (1, 3, 5, 7, 9)),
        ("10-1 (-3)", (10, 7, 4)),  # A1111's end + 1 also for a falling step: 1 is not reached
        ("1-10 [4]", (1, 4, 7, 10)),
        ("0-10 [4]", (0, 3, 6, 10)),  # 3.33 and 6.67 truncated, as int() does
        ("5, 17, 3", (5, 17, 3)),
        ("5\n17\n3-4", (5, 17, 3, 4)),
        ("20, 20", (20, 20)),
    ],
)
def test_whole_number_lists_and_ranges(text: str, expected: tuple) -> None:
    assert values("Steps", text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0-1 [5]", (0.0, 0.25, 0.5, 0.75, 1.0)),
        ("0-1", (0.0, 1.0)),  # a step of 1
        ("0-1 (+0.3)", (0.0, 0.3, 0.6, 0.9, 1.2)),  # numpy's arange past the end, as A1111
        ("0-1 (+0.1)", tuple(round(i / 10, 8) for i in range(11))),  # rounded: 0.3, not 0.3...04
        ("7.5, 3", (7.5, 3.0)),
        ("1-0 (-0.5)", (1.0, 0.5, 0.0)),
    ],
)
def test_decimal_lists_and_ranges(text: str, expected: tuple) -> None:
    assert values("CFG scale", text) == expected
    assert all(isinstance(v, float) for v in values("Variation strength", text))


def test_labels_name_the_setting_for_numbers_and_show_words_alone() -> None:
    steps = parse_axis("Steps", "10, 20", "Y", max_values=8)
    assert steps.labels == ("Steps: 10", "Steps: 20")
    cfg = parse_axis("CFG scale", "0-1 (+0.1)", "Y", max_values=16)
    assert cfg.labels[3] == "CFG scale: 0.3"
    schedulers = parse_axis(
        "Scheduler", "euler a, Euler", "Y", max_values=8, scheduler_names=SCHEDULERS
    )
    assert schedulers.values == ("Euler a", "Euler")  # matched without regard to case
    assert schedulers.labels == ("Euler a", "Euler")


def test_quoted_values_keep_their_commas_and_suffixes_are_lines() -> None:
    prompt = "a cat, oil painting"
    for text in ('"a cat", "a dog, sitting"', '"a cat","a dog, sitting"'):
        assert values("Prompt S/R", text, prompt=prompt) == ("a cat", "a dog, sitting")
    assert values("Suffix", ", artsy\n\n, trending, colorful\n") == (
        ", artsy",
        ", trending, colorful",
    )


def test_prompt_sr_replaces_its_first_value_in_both_prompts() -> None:
    axis = parse_axis(
        "Prompt S/R", "cat, dog", "X", max_values=8, prompt="a photo", negative_prompt="cat ears"
    )
    assert replace_prompt("a cat", "cat ears", axis.values[0], axis.values[1]) == (
        "a dog",
        "dog ears",
    )
    with pytest.raises(RequestError, match="did not find 'cow'") as error:
        parse_axis("Prompt S/R", "cow, dog", "Y", max_values=8, prompt="a cat")
    assert error.value.field == "Y values"


def test_seed_axes_take_minus_one_as_random_and_refuse_other_negatives() -> None:
    seeds = values("Seed", "-1, 7")
    assert seeds[1] == 7 and 0 <= seeds[0] < 2**32
    with pytest.raises(RequestError, match="outside") as error:
        values("Variation seed", "-2")
    assert error.value.field == "X values"


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("Steps", "", "no values for Steps"),
        ("Steps", "1.5", "cannot read '1.5'"),
        ("Steps", "1-10 (2)", "cannot read"),  # A1111 wants the step's sign: (+2)
        ("Steps", "1-10 (+0)", "step of 0"),
        ("Steps", "1-10 (-1)", "gives no values"),
        ("Steps", "1-5 [0]", "gives no values"),
        ("CFG scale", "high", "cannot read 'high'"),
        ("CFG scale", "nan", "not a finite number"),
        ("Seed", "0-18446744073709551615", "more values than"),
        ("Variation strength", "0-1 [100000000]", "more values than"),
        ("Scheduler", "Euler, LMS", "unknown scheduler 'LMS'"),
    ],
)
def test_bad_values_name_the_field(name: str, text: str, message: str) -> None:
    with pytest.raises(RequestError, match=message) as error:
        parse_axis(name, text, "X", max_values=64, scheduler_names=SCHEDULERS)
    assert error.value.field == "X values"


def test_an_unknown_axis_names_the_axis_field() -> None:
    with pytest.raises(RequestError, match="not an axis") as error:
        parse_axis("Sampler", "Euler", "Y", max_values=8)
    assert error.value.field == "Y axis"
    assert "Suffix" in str(error.value) and len(AXIS_NAMES) == 11
