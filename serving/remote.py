"""The front door's side of Ray Serve: an object that answers as an engine does
(pipeline/engine.py's API), each call going to a replica of the deployment.

A render streams its progress and previews back to the caller's Hooks; the caller's Stop
cancels the call, which stops the replica's run at its next step. A replica that dies during a
run loses nothing: nothing is written until the tiles arrive, and the run starts again on
another replica, or ends with a message saying so once every try has failed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ray
from ray import serve
from ray.exceptions import ActorUnavailableError, RayActorError, RayTaskError
from ray.serve.exceptions import RayServeException, RequestCancelledError
from ray.serve.handle import DeploymentHandle, DeploymentResponseGenerator

from pipeline.builder import EngineSettings
from pipeline.card import ModelCard
from pipeline.loading import ModelLoadError
from pipeline.plan import Matrix, Plan, Request
from pipeline.recipe import Provenance, Recipe, Tile
from pipeline.rendering import Hooks, RenderError, Stopped
from pipeline.requests import Limits
from serving.deployment import APP_NAME, Description, EngineDeployment
from serving.replicas import Replicas

log = logging.getLogger("seed_explorer")
# A run whose replica died starts again on another this many times in all.
ATTEMPTS = 3
# How often a render in flight looks at its Stop.
STOP_POLL_S = 0.05
ROOT = Path(__file__).resolve().parent.parent
# What a replica on another machine needs of this folder: the code, not the caches.
SHIPPED_EXCLUDES = [".venv", ".git", "outputs", "docs", "tests", "benchmarks", "**/__pycache__"]


class ReplicaLost(RenderError):
    """Every replica the run was sent to died before it finished."""


class RayEngine:
    """The deployment, answering as an engine does; safe to share between threads."""

    def __init__(self, handle: DeploymentHandle, replicas: int) -> None:
        self.handle = handle
        self.replicas = replicas
        self.description: Description = self._call("describe")

    @property
    def card(self) -> ModelCard:
        return self.description.card

    @property
    def max_batch(self) -> int | None:
        """Rows per shared denoiser call in each replica; None: a replica renders one run at
        a time."""
        return self.description.max_batch

    @property
    def runs_at_once(self) -> int:
        """Runs rendering at once without step sharing: one per replica."""
        return self.replicas

    @property
    def provenance(self) -> Provenance:
        """A replica's; each tile's recipe names the machine that rendered it."""
        return self.description.provenance

    @property
    def limits(self) -> Limits:
        return self.description.limits

    @property
    def micro_batch(self) -> int | None:
        return self.description.micro_batch

    @property
    def generator_device(self) -> str:
        return self.description.generator_device

    @property
    def schedulers(self) -> list[str]:
        return self.description.schedulers

    def defaults(self) -> dict[str, Any]:
        return dict(self.description.defaults)

    def scheduler_steps(self, names: Sequence[str]) -> dict[str, int]:
        return self._call("scheduler_steps", list(names))

    def plan(self, request: Request) -> Plan | Matrix:
        return self._call("plan", request)

    def replay_plan(self, recipe: Recipe) -> Plan:
        return self._call("replay_plan", recipe)

    def truncated(self, prompt: str) -> bool:
        return self._call("truncated", prompt)

    def run(self, request: Request, hooks: Hooks | None = None) -> list[Tile]:
        """Plan a run and render it on a replica."""
        return self.render(self.plan(request), hooks)

    def replay(self, recipe: Recipe, hooks: Hooks | None = None) -> Tile:
        """One recipe again, in a call of the shape that rendered it, on a replica."""
        return self.render(self.replay_plan(recipe), hooks)[recipe.batch_index]

    def render(self, plan: Plan | Matrix, hooks: Hooks | None = None) -> list[Tile]:
        """A plan's tiles from a replica, trying another when one dies mid-run."""
        hooks = hooks or Hooks()
        for attempt in range(1, ATTEMPTS + 1):
            if hooks.stop.is_set():
                raise Stopped("Stopped before it started")
            try:
                return self._render_once(plan, hooks)
            except (RayActorError, ActorUnavailableError) as error:
                log.warning(
                    "A replica died during a run (try %d of %d): %s", attempt, ATTEMPTS, error
                )
                if hooks.progress:
                    hooks.progress(0.0, "a model server went away: starting again on another")
                time.sleep(0.5 * attempt)  # Serve notices the death and routes elsewhere
        raise ReplicaLost(
            f"the model servers went away {ATTEMPTS} times during this run; nothing was "
            "saved; try again in a moment"
        )

    def _render_once(self, plan: Plan | Matrix, hooks: Hooks) -> list[Tile]:
        interval = hooks.preview_interval if hooks.preview else None
        stream: DeploymentResponseGenerator = self.handle.options(stream=True).render.remote(
            plan, interval
        )
        done = threading.Event()
        threading.Thread(
            target=_cancel_on_stop, args=(stream, hooks.stop, done), daemon=True
        ).start()
        try:
            for kind, *data in stream:
                if kind == "progress" and hooks.progress:
                    hooks.progress(*data)
                elif kind == "preview" and hooks.preview:
                    hooks.preview(*data)
                elif kind == "replica":
                    log.debug("Rendering on %s", *data)
                elif kind == "tiles":
                    return data[0]
        except RequestCancelledError:
            raise Stopped("Stopped") from None
        except RayTaskError as error:
            raise _cause(error) from None
        finally:
            done.set()
        raise ReplicaLost("the model server ended the run without its tiles")

    def _call(self, method: str, *args: Any) -> Any:
        """A plain call to a replica; its error (a refusal naming the field) raised here."""
        try:
            return getattr(self.handle, method).remote(*args).result()
        except RayTaskError as error:
            raise _cause(error) from None


def _cancel_on_stop(stream: DeploymentResponseGenerator, stop: Any, done: threading.Event) -> None:
    """Cancel the call once Stop is pressed, unless the run is over first."""
    while not done.wait(STOP_POLL_S):
        if stop.is_set():
            stream.cancel()
            return


def _cause(error: RayTaskError) -> Exception:
    """The replica's own error (a RequestError, Stopped, OutOfMemory...) rather than Ray's
    wrapper of it."""
    cause = error.cause
    return cause if isinstance(cause, Exception) else error


def connect(settings: EngineSettings, replicas: Replicas, address: str | None = None) -> RayEngine:
    """Join the Ray cluster at `address` (None: start one on this machine) and use the
    application a Serve config deployed there, or deploy one with `replicas`: one GPU each
    where the cluster has GPUs and the model is to run on CUDA."""
    if not ray.is_initialized():
        # A replica on another machine needs this folder's code.
        shipped = {"working_dir": str(ROOT), "excludes": SHIPPED_EXCLUDES}
        ray.init(address=address, runtime_env=shipped if address else None, include_dashboard=False)
    handle = _deployed()
    if handle is not None:
        log.info("Ray Serve: using the application %r already deployed", APP_NAME)
        return RayEngine(handle, replicas.most)
    gpus = settings.device in ("auto", "cuda") and ray.cluster_resources().get("GPU", 0) > 0
    options = {**replicas.options(), "ray_actor_options": {"num_gpus" if gpus else "num_cpus": 1}}
    serve.start(proxy_location="Disabled")
    try:
        handle = serve.run(
            EngineDeployment.options(**options).bind(settings), name=APP_NAME, route_prefix=None
        )
    except RuntimeError as error:  # the replicas could not start: say why in one line
        deployments = serve.status().applications[APP_NAME].deployments
        reports = [str(error), *(deployment.message for deployment in deployments.values())]
        raise ModelLoadError(_why_not_deployed("\n".join(reports))) from None
    log.info("Ray Serve: deployed %r with %s", APP_NAME, options)
    return RayEngine(handle, replicas.most)


def _why_not_deployed(message: str) -> str:
    """The replicas' own reason (a model that cannot load), out of Serve's report."""
    reasons = [line for line in message.splitlines() if "ModelLoadError: " in line]
    if reasons:
        return reasons[-1].split("ModelLoadError: ", 1)[1].strip()
    return f"the Ray Serve replicas could not start: {message.splitlines()[0]}"


def _deployed() -> DeploymentHandle | None:
    """The application already running on the cluster (`serve deploy`), if there is one."""
    try:
        return serve.get_app_handle(APP_NAME)
    except RayServeException:
        return None
