"""Ray Serve: the engine as a deployment of two replicas of the tiny model on a local Ray, and
the front door's engine in this process, as `python app.py --ray --replicas 2` runs them."""

import logging
from pathlib import Path

import numpy as np
import pytest
import yaml

from pipeline.builder import EngineSettings
from pipeline.engine import Engine
from pipeline.manifest import Manifest
from pipeline.metadata import read_png
from pipeline.outputs import OutputFolder
from pipeline.rendering import Hooks
from pipeline.requests import GridRequest
from tests.conftest import ROOT
from ui import runner, specs
from ui.context import Services

ray = pytest.importorskip("ray")
serve = pytest.importorskip("ray.serve")
remote_engine = pytest.importorskip("serving.remote")
deployment = pytest.importorskip("serving.deployment")


@pytest.fixture(scope="module")
def remote():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield remote_engine.connect(EngineSettings("tiny", "cpu"), remote_engine.Replicas(2, 2))
    finally:
        serve.shutdown()
        ray.shutdown()


def same_tiles(tiles: list, local: list) -> bool:
    return all(
        np.array_equal(np.asarray(a.image), np.asarray(b.image)) and a.recipe == b.recipe
        for a, b in zip(tiles, local, strict=True)
    )


def test_tiles_through_ray_serve_equal_the_local_engines_bit_exact(remote, engine: Engine) -> None:
    request = GridRequest("a lighthouse", (3, 8), steps=2, width=32, height=32)
    progress: list[str] = []
    previews: list[int] = []
    hooks = Hooks(
        progress=lambda fraction, text: progress.append(text),
        preview=lambda first, images: previews.append(len(images)),
        preview_interval=0,
    )
    tiles = remote.run(request, hooks)
    assert same_tiles(tiles, engine.run(request))
    assert progress[-1].endswith("step 2/2") and previews  # both crossed from the replica


class KillTheReplica(logging.Handler):
    """Kills the replica a run was sent to, once, as soon as the run starts there."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.killed: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg == "Rendering on %s" and not self.killed:
            name = record.args[0]
            ray.kill(ray.get_actor(name, namespace="serve"))
            self.killed.append(name)


def test_a_replica_killed_mid_run_loses_nothing_and_the_next_run_works(
    remote, engine: Engine, tmp_path: Path, caplog
) -> None:
    (tmp_path / "served").mkdir()
    services = Services(remote, OutputFolder(tmp_path / "outputs"), served=tmp_path / "served")
    manifest = Manifest("tiny")
    request = GridRequest("a lighthouse", (3, 8), steps=25, width=32, height=32)
    killer = KillTheReplica()
    logger = logging.getLogger("seed_explorer")
    logger.addHandler(killer)
    previous = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        outcome = runner.run_plan(services, specs.GRID, remote.plan(request), manifest, None, "s")
    finally:
        logger.removeHandler(killer)
        logger.setLevel(previous)
    assert killer.killed and "A replica died during a run" in caplog.text
    # The run finished on the other replica: its tiles, each written once, whole, and one
    # manifest entry; nothing of the try that died.
    local = engine.run(request)
    assert [entry["kind"] for entry in manifest.entries] == ["grid"]
    assert len(list((tmp_path / "served").rglob("*.png"))) == len(local)
    assert len(list((tmp_path / "outputs").rglob("*.png"))) == len(local)
    for ref, tile in zip(outcome.tiles, local, strict=True):
        image, recipe, _ = read_png(ref.file)
        assert np.array_equal(np.asarray(image), np.asarray(tile.image)) and recipe == tile.recipe
    assert len(remote.run(GridRequest("a lighthouse", (5,), steps=2, width=32, height=32))) == 1


def test_the_documented_serve_config_deploys_the_engine_with_its_settings() -> None:
    """docs/serve.yaml as `serve deploy` reads it, and its args as build_app takes them."""
    schema = pytest.importorskip("ray.serve.schema")
    config = schema.ServeDeploySchema(**yaml.safe_load((ROOT / "docs/serve.yaml").read_text()))
    (application,) = config.applications
    assert application.name == deployment.APP_NAME
    module, _, builder = application.import_path.partition(":")
    assert (module, builder) == ("serving.deployment", "build_app")
    (engine,) = application.deployments
    assert engine.name == "SeedExplorerEngine" and engine.ray_actor_options.num_gpus == 1
    settings = deployment.settings_of(application.args)
    assert settings.model == "stable-diffusion-v1-5/stable-diffusion-v1-5"
    assert settings.limits.max_side == 1536 and settings.device == "cuda"
