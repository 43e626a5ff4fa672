"""The public API contract, through gradio_client against a launched app on the tiny model."""

import re
from pathlib import Path
from typing import Any

import gradio_client
import numpy as np
import pytest
from gradio_client import Client
from PIL import Image

from pipeline.engine import Engine
from pipeline.requests import GridRequest
from pipeline.sharing import default_rows


@pytest.fixture(scope="module")
def client(app_url: str) -> Client:
    return Client(app_url, verbose=False)


@pytest.fixture(scope="module")
def local(engine: Engine) -> Engine:
    """An engine set up as the launched app's: runs share calls of the CPU's default rows."""
    return Engine(engine.model, max_batch=default_rows("cpu"))


def readme() -> str:
    return (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def parameter_names(client: Client, endpoint: str) -> list[str]:
    info = client.view_api(return_format="dict", print_info=False)
    return [p["parameter_name"] for p in info["named_endpoints"][endpoint]["parameters"]]


def documented_parameters() -> dict[str, list[str]]:
    """The README's list of each endpoint's parameters: "- `/grid`: `prompt, ...`"."""
    lines = re.findall(r"^- `(/\w+)`: `([\w, ]+)`$", readme().split("### API", 1)[1], re.M)
    return {endpoint: names.split(", ") for endpoint, names in lines}


def test_the_endpoints_take_the_documented_parameters(client: Client) -> None:
    documented = documented_parameters()
    assert list(documented) == ["/grid", "/refine", "/compare", "/vary", "/travel", "/matrix"]
    for endpoint, names in documented.items():
        assert parameter_names(client, endpoint) == names, endpoint


def served_equals(tile: dict, image: Image.Image) -> bool:
    with Image.open(tile["image"]) as served:
        return served.format == "PNG" and np.array_equal(
            np.asarray(served.convert("RGB")), np.asarray(image)
        )


def test_vary_travel_and_matrix_through_the_api(client: Client, local: Engine) -> None:
    fast = {"steps": 2, "scheduler": "Euler"}
    gallery, _ = client.predict(
        prompt="a kite", seed="8", variation_seeds="3, 4", strength=0, **fast, api_name="/vary"
    )
    assert [tile["caption"] for tile in gallery] == ["seed 8 → 3 at 0.00", "seed 8 → 4 at 0.00"]
    pinned = local.run(GridRequest("a kite", "8, 9", **fast))[0]
    assert served_equals(gallery[0], pinned.image)
    frames, _ = client.predict(
        prompt="a kite", seed="8", to_seed="3", frames=3, **fast, api_name="/travel"
    )
    assert [tile["caption"] for tile in frames][-1] == "seed 8 → 3 at 1.00"
    cells, _ = client.predict(
        prompt="a kite", seed="8", x_axis="Seed", x_values="8, 9", y_axis="Steps",
        y_values="1, 2", scheduler="Euler", api_name="/matrix",
    )  # fmt: skip
    assert [tile["caption"] for tile in cells] == [
        "Seed: 8 · Steps: 1", "Seed: 9 · Steps: 1", "Seed: 8 · Steps: 2", "Seed: 9 · Steps: 2"
    ]  # fmt: skip
    assert served_equals(cells[2], pinned.image)
    with pytest.raises(Exception, match="Y axis: is Seed as X is"):
        client.predict(
            prompt="a kite", seed="8", x_axis="Seed", x_values="1", y_axis="Seed",
            y_values="2", api_name="/matrix",
        )  # fmt: skip


def test_grid_with_a_few_keywords_returns_lossless_tiles_equal_to_a_local_render(
    client: Client, local: Engine
) -> None:
    gallery, summary = client.predict(prompt="a kite", seeds="0-2", steps=3, api_name="/grid")
    assert [tile["caption"] for tile in gallery] == ["seed 0", "seed 1", "seed 2"]
    assert summary.startswith("3 tiles · seeds 0, 1, 2")
    rendered = local.run(GridRequest("a kite", (0, 1, 2), steps=3))
    for tile, ours in zip(gallery, rendered, strict=True):
        with Image.open(tile["image"]) as served:
            assert served.format == "PNG"
            assert np.array_equal(np.asarray(served.convert("RGB")), np.asarray(ours.image))


def test_refine_renders_the_pinned_seed_once_per_suffix(client: Client) -> None:
    gallery, _ = client.predict(
        prompt="a kite", seed="8", suffixes=", artsy\n, trending", steps=3, api_name="/refine"
    )
    assert [tile["caption"] for tile in gallery] == ["artsy · seed 8", "trending · seed 8"]


def test_compare_with_no_steps_uses_each_schedulers_own(client: Client) -> None:
    gallery, _ = client.predict(
        prompt="a kite", seed="8", schedulers=["Euler", "UniPC"], steps=0, width=32, height=32,
        api_name="/compare",
    )  # fmt: skip
    captions = [tile["caption"] for tile in gallery]
    assert captions[0].startswith("Euler · 30 steps")
    assert captions[1].startswith("UniPC · 20 steps")


class TwoSteps(Client):
    """A client whose every run takes 2 steps: what the README's calls do, in less time."""

    def predict(self, *args: Any, **kwargs: Any) -> Any:
        return super().predict(*args, **{**kwargs, "steps": 2})


def test_the_readmes_example_runs_against_the_app(
    app_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    example = readme().split("### API", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    assert 'Client("http://127.0.0.1:7860/")' in example
    monkeypatch.setattr(gradio_client, "Client", TwoSteps)  # what the example imports
    names: dict = {}
    exec(example.replace("http://127.0.0.1:7860/", app_url), names)  # the README, as a user runs it
    assert isinstance(names["client"], TwoSteps)
    assert [tile["caption"] for tile in names["gallery"]] == [
        f"seed 2 → {seed} at 0.30" for seed in range(4)
    ]  # the last gallery: /vary's
    assert len(names["frames"]) == 4
    assert [tile["caption"] for tile in names["cells"]] == [
        f"{name} · CFG scale: {cfg}" for cfg in ("5.0", "9.0") for name in ("Euler", "DDIM")
    ]
