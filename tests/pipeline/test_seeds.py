import pytest

from pipeline.seeds import MAX_SEED, RANDOM_SEED_BOUND, SeedError, parse_seeds


@pytest.mark.parametrize(
    ("text", "seeds"),
    [
        ("0-3", [0, 1, 2, 3]),
        ("5, 17, 3", [5, 17, 3]),
        ("0-7", list(range(8))),
        (" 2 - 4 , 9 ", [2, 3, 4, 9]),
        ("42", [42]),
        (f"{MAX_SEED}", [MAX_SEED]),
        ("7, 7", [7, 7]),
    ],
)
def test_seed_lists_read_as_written(text: str, seeds: list[int]) -> None:
    assert parse_seeds(text, max_count=16) == seeds


@pytest.mark.parametrize(("text", "count"), [("random", 4), ("random 8", 8), ("RANDOM 1", 1)])
def test_random_draws_fresh_seeds_that_are_real_numbers(text: str, count: int) -> None:
    drawn = parse_seeds(text, max_count=16)
    assert len(drawn) == count
    assert all(0 <= seed < RANDOM_SEED_BOUND for seed in drawn)
    assert parse_seeds(text, max_count=16) != drawn or count == 1


def test_random_respects_a_small_tile_cap() -> None:
    assert len(parse_seeds("random", max_count=2)) == 2


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("abc", "cannot read"),
        ("0-x", "cannot read"),
        ("1.5", "cannot read"),
        ("²", "cannot read"),
        ("3-1", "backwards"),
        ("-5", "negative"),
        ("1,,2", "empty entry"),
        (f"{MAX_SEED + 1}", "outside"),
        ("0-99", "more than the 16"),
        ("0-10, 11-20", "more than the 16"),
        ("random 0", "at least 1"),
        ("random 99", "more than the 16"),
        ("random -1", "cannot read"),
    ],
)
def test_bad_seed_lists_get_a_clear_message(text: str, words: str) -> None:
    with pytest.raises(SeedError, match=words):
        parse_seeds(text, max_count=16)


def test_huge_ranges_are_refused_without_being_built() -> None:
    with pytest.raises(SeedError, match="more than"):
        parse_seeds(f"0-{MAX_SEED}", max_count=16)


@pytest.mark.parametrize("text", ["9" * 5000, "1, " + "9" * 5000, "0-" + "9" * 5000])
def test_a_seed_thousands_of_digits_long_is_refused_as_a_seed(text: str) -> None:
    # int() of over 4300 digits raises a plain ValueError; it must be a SeedError.
    with pytest.raises(SeedError, match=r"outside 0\.\.") as caught:
        parse_seeds(text, max_count=16)
    assert "(5000 digits)" in str(caught.value)


def test_leading_zeros_do_not_make_a_seed_too_long() -> None:
    assert parse_seeds("0" * 30 + "42", max_count=16) == [42]


@pytest.mark.parametrize("value", [5, ["0-3"], 1.5])
def test_a_seed_list_must_be_text(value: object) -> None:
    with pytest.raises(SeedError, match="must be text like 0-3"):
        parse_seeds(value, max_count=16)  # type: ignore[arg-type]
