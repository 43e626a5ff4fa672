"""Step-level sharing: runs share denoiser calls, fairly, and a tile never depends on who
shared its calls (pipeline/sharing.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np
import pytest
import torch

from pipeline import lockstep
from pipeline.engine import Engine
from pipeline.families import Embedding
from pipeline.loading import LoadedModel, load_model
from pipeline.plan import Request
from pipeline.recipe import Tile
from pipeline.rendering import Hooks, Stopped
from pipeline.requests import CompareRequest, GridRequest
from ui.demo import about_line

ROWS = 8


def grid(prompt: str, seeds: str, steps: int = 2) -> GridRequest:
    return GridRequest(prompt, seeds, scheduler="Euler", steps=steps, width=32, height=32)


def pixels(tiles: list[Tile]) -> list[bytes]:
    return [np.asarray(tile.image).tobytes() for tile in tiles]


def together(engine: Engine, *runs: tuple[Request, Hooks]) -> list[list[Tile] | Exception]:
    """The runs started at once, each on its thread, as a server's sessions start them."""
    results: list[list[Tile] | Exception] = [[] for _ in runs]

    def work(index: int, request: Request, hooks: Hooks) -> None:
        try:
            results[index] = engine.run(request, hooks)
        except Exception as error:
            results[index] = error

    threads = [threading.Thread(target=work, args=(index, *run)) for index, run in enumerate(runs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.fixture(scope="module")
def shared(tiny: LoadedModel) -> Engine:
    return Engine(tiny, max_batch=ROWS)


def test_a_row_of_a_fixed_shape_call_depends_on_nothing_else(family_engine: Engine) -> None:
    """In a call of a fixed shape a row's prediction is bit-identical whatever the other
    rows hold and wherever it sits: what makes a shared tile its solo render."""
    model = family_engine.model
    view, family = model.pipe, model.family
    extras = family.extras(32, 32, None)
    torch.manual_seed(0)
    rows = torch.randn(ROWS, *family.latent_shape(view, 32, 32))
    times = torch.randint(0, 1000, (ROWS,))
    texts = [family.encode(view, f"text {row}") for row in range(ROWS)]

    def call(order: list[int], sample: torch.Tensor) -> torch.Tensor:
        chosen = [texts[row] for row in order]
        return family.predict(view, sample[order], times[order], chosen, 7.0, extras, (32, 32))

    first = call(list(range(ROWS)), rows)
    others = rows.clone()
    others[1:] = torch.randn_like(others[1:])
    moved = call([5, 1, 2, 3, 4, 0, 6, 7], others)  # row 0 at place 5, among new rows
    assert torch.equal(first[0], moved[5])


def test_two_runs_started_together_share_calls_and_equal_their_solo_renders(
    shared: Engine,
) -> None:
    first, second = grid("a red boat", "3", steps=6), grid("a green hill", "4-5", steps=6)
    before = shared.loop.calls
    alone = [shared.run(first), shared.run(second)]
    solo_calls = shared.loop.calls - before
    before = shared.loop.calls
    results = together(shared, (first, Hooks()), (second, Hooks()))
    assert shared.loop.calls - before < solo_calls  # 12 alone; 6 when they start at once
    assert [pixels(tiles) for tiles in results] == [pixels(tiles) for tiles in alone]


def test_a_shared_tile_replays_bit_exact_from_its_recipe(shared: Engine) -> None:
    """A comparison's tile, rendered beside a grid, replayed from its recipe alone."""
    compare = CompareRequest("a bridge", 9, ["Euler", "DDIM"], steps=2, width=32, height=32)
    tiles, _ = together(shared, (compare, Hooks()), (grid("fog", "1-2"), Hooks()))
    assert tiles[1].recipe.call_rows == ROWS  # type: ignore[index]
    replayed = shared.replay(tiles[1].recipe)  # type: ignore[index]
    assert pixels([replayed]) == pixels([tiles[1]])  # type: ignore[index]


def test_a_small_run_started_during_a_big_one_finishes_first(tiny: LoadedModel) -> None:
    """A call holds two images with CFG here: the big run needs 4 calls a step, the small
    one takes part in every call."""
    engine = Engine(tiny, max_batch=4)
    finished: dict[str, float] = {}
    started = threading.Event()

    def big_progress(fraction: float, text: str) -> None:
        started.set()

    def run(name: str, request: Request, hooks: Hooks) -> None:
        engine.run(request, hooks)
        finished[name] = time.monotonic()

    big = threading.Thread(
        target=run, args=("big", grid("a city", "0-7", steps=3), Hooks(big_progress))
    )
    big.start()
    started.wait()
    run("small", grid("a cat", "99", steps=3), Hooks())
    big.join()
    assert finished["small"] < finished["big"]


def test_stop_of_one_shared_run_leaves_the_other_exact(shared: Engine) -> None:
    other = grid("a blue door", "6-7", steps=4)
    alone = shared.run(other)
    stop = threading.Event()
    stopped = Hooks(progress=lambda fraction, text: stop.set(), stop=stop)
    halted, tiles = together(shared, (grid("a field", "0-3", steps=4), stopped), (other, Hooks()))
    assert isinstance(halted, Stopped)
    assert pixels(tiles) == pixels(alone)  # type: ignore[arg-type]


def test_a_failing_run_ends_alone(shared: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """A call with a lane that fails it (as a request the model cannot take, or out of
    memory) is made again run by run: only the failing run ends."""
    other = grid("a kite", "2", steps=4)
    alone = shared.run(other)
    poison = shared.embeddings.get("poison").hidden
    predict: Callable = lockstep.predict

    def failing(entries: list[tuple[lockstep.Lane, lockstep.Guidance]], rows: int) -> list:
        if any(_same(lane.prompt, poison) for lane, _ in entries):
            raise RuntimeError("this lane cannot be rendered")
        return predict(entries, rows)

    monkeypatch.setattr(lockstep, "predict", failing)
    failed, tiles = together(shared, (grid("poison", "0-1", steps=4), Hooks()), (other, Hooks()))
    assert isinstance(failed, RuntimeError)
    assert pixels(tiles) == pixels(alone)  # type: ignore[arg-type]


def _same(text: Embedding, hidden: torch.Tensor) -> bool:
    return torch.equal(text.hidden, hidden)


def test_a_flow_family_tile_is_its_solo_render_while_sharing(flux: Engine) -> None:
    """The transformer's calls too: a Flux tile beside another run is the tile alone."""
    engine = Engine(flux.model, max_batch=ROWS)
    mine = grid("a pear", "5")
    alone = engine.run(mine)
    tiles, _ = together(engine, (mine, Hooks()), (grid("a plum", "1-3"), Hooks()))
    assert pixels(tiles) == pixels(alone)  # type: ignore[arg-type]


def test_texts_of_their_own_lengths_share_only_calls_of_their_shape() -> None:
    """Z-Image's Qwen3 reads each text at its own length, padded to the longest in a call:
    a call's shape would depend on its neighbours' prompts, so only texts of one length
    share a call, and a tile beside a longer prompt is the tile alone."""
    engine = Engine(load_model("tiny-z-image-turbo", device="cpu"), max_batch=ROWS)
    mine = grid("a pear", "5", steps=6)
    alone = engine.run(mine)
    longer = grid("a plum on a table by the window, in the morning light", "1-2", steps=6)
    calls = engine.loop.calls
    tiles, _ = together(engine, (mine, Hooks()), (longer, Hooks()))
    assert engine.loop.calls - calls == 12  # six steps each, apart
    assert pixels(tiles) == pixels(alone)  # type: ignore[arg-type]
    calls = engine.loop.calls
    together(engine, (mine, Hooks()), (grid("a pear", "1-2", steps=6), Hooks()))
    assert engine.loop.calls - calls < 12  # the same text: together


def test_the_about_line_names_the_shared_calls_rows(shared: Engine) -> None:
    assert "shared calls of 8 rows" in about_line(shared)
