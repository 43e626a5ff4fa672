"""Hugging Face Spaces: the README's front matter, the public-Space settings, ZeroGPU."""

import logging
import re
import sys
import types

import pytest
import yaml

import app
from pipeline.requests import Limits
from tests.conftest import ROOT
from tests.test_app import clear_settings
from ui import build_demo
from ui.gpu import gpu

# https://huggingface.co/docs/hub/spaces-config-reference
SPACE_COLORS = {"red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray"}


def front_matter() -> dict:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.match(r"---\n(.*?)\n---\n", readme, re.DOTALL)
    assert match, "README.md must start with YAML front matter between --- lines"
    return yaml.safe_load(match.group(1))


def pinned_gradio() -> str:
    requirements = (ROOT / "requirements.txt").read_text(encoding="utf-8")
    return re.search(r"^gradio==(\S+)$", requirements, re.MULTILINE).group(1)


def test_the_readme_front_matter_describes_a_gradio_space() -> None:
    config = front_matter()
    assert config["title"] == "Seed Explorer"
    assert config["sdk"] == "gradio"
    assert config["sdk_version"] == pinned_gradio()
    assert (ROOT / config["app_file"]).is_file() and config["app_file"] == "app.py"
    assert config["license"] == "apache-2.0" and (ROOT / "LICENSE").is_file()
    assert {config["colorFrom"], config["colorTo"]} <= SPACE_COLORS
    assert config["emoji"] and config["pinned"] is False
    assert 0 < len(config["short_description"]) <= 60


@pytest.fixture
def on_a_space(monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment a Gradio Space starts app.py in."""
    clear_settings(monkeypatch)
    monkeypatch.setenv("SPACE_ID", "someone/seed-explorer")
    monkeypatch.setenv("SYSTEM", "spaces")
    monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")
    monkeypatch.setenv("GRADIO_SERVER_PORT", "7860")
    monkeypatch.setenv("SEED_EXPLORER_MODEL", "tiny")


def test_on_a_space_saving_is_off_and_limits_are_lower(on_a_space) -> None:
    args = app.parse_args([])
    assert (args.host, args.port) == ("0.0.0.0", 7860)
    assert args.outputs is None
    assert (args.max_tiles, args.max_steps, args.max_side) == (8, 50, 768)
    assert Limits().max_tiles > 8  # the local defaults are the larger ones


def test_a_space_owner_can_raise_the_limits_and_turn_saving_on(on_a_space, monkeypatch) -> None:
    monkeypatch.setenv("SEED_EXPLORER_MAX_SIDE", "1024")
    monkeypatch.setenv("SEED_EXPLORER_OUTPUTS", "/data/outputs")
    args = app.parse_args([])
    assert (args.max_side, str(args.outputs)) == (1024, "/data/outputs")


def test_a_space_without_a_login_gets_one_info_line_not_the_warning(on_a_space) -> None:
    level, message = app.exposure_notice(app.parse_args([]))
    assert level == logging.INFO and len(message.splitlines()) == 1
    assert "someone/seed-explorer" in message


def test_on_a_space_the_app_builds_its_page_with_the_public_limits(on_a_space) -> None:
    args = app.parse_args(["--device", "cpu"])
    engine = app.create_engine(args)
    demo = build_demo(engine, outputs=args.outputs, previews=args.previews)
    by_id = {block.elem_id: block for block in demo.blocks.values() if block.elem_id}
    # The boxes show the range the planner holds a run to.
    assert by_id["width"].info.startswith("8 to 768") and by_id["steps"].info == "1 to 50"
    assert engine.limits.max_side == 768 and engine.limits.max_steps == 50


def test_gpu_leaves_a_function_alone_without_the_spaces_package(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "spaces", None)  # makes `import spaces` fail

    def render() -> str:
        return "tiles"

    assert gpu(render) is render
    assert gpu(render, duration=120) is render


def test_gpu_asks_zerogpu_for_a_gpu_when_spaces_is_there(monkeypatch) -> None:
    requests = []

    def fake_gpu(fn=None, duration=None):
        """`spaces.GPU` is used as `@spaces.GPU` and as `@spaces.GPU(duration=...)`."""
        if fn is None:
            return lambda inner: fake_gpu(inner, duration)
        requests.append((fn.__name__, duration))
        return lambda *args: ("on gpu", fn(*args))

    monkeypatch.setitem(sys.modules, "spaces", types.SimpleNamespace(GPU=fake_gpu))

    def render(prompt: str) -> str:
        return prompt

    assert gpu(render)("a kite") == ("on gpu", "a kite")
    assert gpu(render, duration=120)("a kite") == ("on gpu", "a kite")
    assert requests == [("render", None), ("render", 120)]
