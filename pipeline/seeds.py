"""Seed lists: what a user types ("0-3", "5, 17, 3", "random 8") to the seeds it means.

A seed is any integer torch.Generator.manual_seed accepts, 0..2**64-1. Random seeds are drawn
from 0..2**32-1 so they stay short enough to read, type and share.
"""

from __future__ import annotations

import re
import secrets

MAX_SEED = 2**64 - 1
RANDOM_SEED_BOUND = 2**32
DEFAULT_RANDOM_COUNT = 4

_NUMBER = re.compile(r"^\d+$", re.ASCII)
_RANGE = re.compile(r"^(\d+)\s*-\s*(\d+)$", re.ASCII)
_NEGATIVE = re.compile(r"^-\s*\d+$", re.ASCII)
_RANDOM = re.compile(r"^random(?:\s+(\d+))?$", re.IGNORECASE | re.ASCII)


class SeedError(ValueError):
    """A seed list that cannot be read, said in words a user can act on."""


def parse_seeds(text: str, max_count: int) -> list[int]:
    """Seeds for a seed list; `random` draws fresh ones. Raises SeedError for anything else."""
    if text is not None and not isinstance(text, str):
        raise SeedError(f"the seed list must be text like 0-3 or 5, 17, 3, got {text!r}")
    text = (text or "").strip()
    if not text:
        raise SeedError("the seed list is empty: try 0-3, 5, 17, 3 or random")
    random_match = _RANDOM.match(text)
    if random_match:
        count = int(random_match.group(1) or min(DEFAULT_RANDOM_COUNT, max_count))
        _check_count(count, max_count)
        return random_seeds(count)
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            raise SeedError(f"empty entry in {text!r}: separate seeds with single commas")
        first, last = _parse_part(part)
        _check_count(len(seeds) + last - first + 1, max_count)
        seeds.extend(range(first, last + 1))
    return seeds


def random_seeds(count: int) -> list[int]:
    """Fresh seeds from the OS's randomness, never tied to torch's global state."""
    return [secrets.randbelow(RANDOM_SEED_BOUND) for _ in range(count)]


def parse_seed(digits: str) -> int:
    """One seed written in digits, refused by its length before Python builds a huge int.

    int() of a few thousand digits raises a plain ValueError (and costs time), not a SeedError.
    """
    if len(digits.lstrip("0")) > len(str(MAX_SEED)):
        shown = f"{digits[:12]}... ({len(digits)} digits)" if len(digits) > 24 else digits
        raise SeedError(f"seed {shown} is outside 0..{MAX_SEED}")
    return check_seed(int(digits))


def check_seed(seed: int) -> int:
    if not 0 <= seed <= MAX_SEED:
        raise SeedError(f"seed {seed} is outside 0..{MAX_SEED}")
    return seed


def _parse_part(part: str) -> tuple[int, int]:
    """A seed or a range of seeds, as its first and last seed."""
    if _NUMBER.match(part):
        seed = parse_seed(part)
        return seed, seed
    range_match = _RANGE.match(part)
    if range_match:
        first, last = (parse_seed(g) for g in range_match.groups())
        if last < first:
            raise SeedError(f"range {part!r} runs backwards: write {last}-{first}")
        return first, last
    if _NEGATIVE.match(part):
        raise SeedError(f"seed {part} is negative: seeds are 0..{MAX_SEED}")
    raise SeedError(f"cannot read {part!r}: use numbers, ranges like 0-3, or random")


def _check_count(count: int, max_count: int) -> None:
    if count < 1:
        raise SeedError("random needs at least 1 seed")
    if count > max_count:
        raise SeedError(f"{count} seeds is more than the {max_count} tiles one run may render")
