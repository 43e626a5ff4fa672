"""Reproduce: load a recipe from a PNG, verify the pinned tile, export the session manifest."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr
from PIL import Image

from pipeline.a1111 import noise_of
from pipeline.manifest import Manifest, inside
from pipeline.metadata import (
    MetadataError,
    fields_from_infotext,
    fields_from_recipe,
    read_png,
)
from pipeline.recipe import setup_differences
from pipeline.replay import drift
from pipeline.requests import RequestError
from ui import history_tab, runner
from ui.context import MODEL_QUEUE, Services
from ui.state import Pin, TileRef
from ui.widgets import LIVE_POLL, SharedInputs, Updates


def build(services: Services, shared: SharedInputs) -> None:
    engine = services.engine
    with gr.Accordion("Reproduce", open=False, elem_id="reproduce"), gr.Row():
        with gr.Column():
            recipe_file = gr.File(
                label="Load a recipe: drop a PNG from this app or AUTOMATIC1111",
                file_types=[".png"],
                elem_id="recipe-file",
                height=120,
            )
            loaded = gr.Markdown(elem_id="recipe-status")
        with gr.Column():
            verify = gr.Button("Verify the pinned tile", elem_id="verify-run")
            progress = gr.Markdown(elem_id="verify-progress", visible=False)
            poll = gr.Timer(LIVE_POLL, active=False)
            verdict = gr.Markdown(elem_id="verify-status")
            heatmap = gr.Image(
                label="Difference (brighter = larger)",
                elem_id="verify-heatmap",
                format="png",
                height=160,
                visible=False,
            )
        with gr.Column():
            export = gr.Button("Export the session manifest", elem_id="manifest-export")
            manifest_file = gr.File(
                label="Session manifest", elem_id="manifest-file", visible=False
            )

    def load(path: str | None, request: gr.Request) -> Updates:
        if not path:
            return {loaded: ""}
        card = engine.card
        names, family = engine.schedulers, card.family
        try:
            _, recipe, infotext = read_png(path)
            if recipe is not None:
                engine.replay_plan(recipe)  # refused here, as a request, not at Verify
                fields = fields_from_recipe(recipe, names, family)
            elif infotext is not None:
                model = (card.model_id, card.a1111_hash)
                noise = noise_of(engine.generator_device)
                fields = fields_from_infotext(infotext, names, family, model, noise)
        except (OSError, MetadataError, RequestError) as error:
            raise gr.Error(f"Load a recipe: {error}", print_exception=False) from None
        if recipe is None and infotext is None:
            raise gr.Error(
                "Load a recipe: this PNG carries no recipe or generation parameters",
                print_exception=False,
            )
        if recipe is not None:  # what Verify cannot promise to match
            fields.warnings += setup_differences(recipe, engine.provenance)
        for warning in fields.warnings:
            gr.Warning(f"Load a recipe: {warning}")
        tile = None
        if recipe is not None:
            kept = _keep(path, services.folder(request.session_hash))
            tile = TileRef(recipe, kept, f"seed {recipe.seed}", None, 0)
        if tile is not None:
            pin = Pin.of_tile(tile)  # a variation of a variation too
        else:
            resize = tuple(fields.resize_from) if fields.resize_from else None
            seed = "" if fields.seed is None else fields.seed
            pin = Pin(seed, fields.variation_seed, fields.variation_strength or 0.0, resize)
        note = (
            "Loaded the full recipe: Verify renders it again."
            if recipe
            else "Loaded the AUTOMATIC1111 parameters (no batch shape or noise hash in them)."
        )
        given = {
            shared.prompt: fields.prompt,
            shared.negative_prompt: fields.negative_prompt,
            shared.scheduler: fields.scheduler,
            shared.steps: fields.steps,
            shared.guidance_scale: fields.guidance_scale,
            shared.width: fields.width,
            shared.height: fields.height,
            shared.seed_variance: fields.seed_variance,
        }
        found = {widget: value for widget, value in given.items() if value is not None}
        return found | shared.show_pin(pin) | {loaded: note}

    def check(pin: Pin | None, request: gr.Request) -> Iterator[Updates]:
        """The pinned tile rendered again, with the usual progress line, and compared. Its PNG
        must be one the app wrote where this session may read, and its recipe pass the
        planner, before the model (or a ZeroGPU GPU) is asked for anything."""
        pinned = pin and pin.tile
        if pinned is None:
            raise gr.Error(
                "Verify: pin a tile first (click it) or load one of this app's PNGs",
                print_exception=False,
            )
        session = request.session_hash
        original = inside(pinned.file, services.readable(session))
        if original is None or not original.is_file():
            raise gr.Error(
                "Verify: the pinned tile's PNG is not in this session's folders: pin it again "
                "or load it",
                print_exception=False,
            )
        try:
            plan = engine.replay_plan(pinned.recipe)
        except RequestError as error:
            raise gr.Error(f"Verify: {error}", print_exception=False) from None
        # One event from start to verdict: the progress line shows when the render starts
        # and goes with the verdict, in that order.
        yield {
            poll: gr.Timer(active=True),
            progress: gr.update(value=runner.WAITING, visible=True),
            verdict: "",
            heatmap: gr.update(visible=False),
        }
        outcome = runner.render(services, plan, session, None)
        if isinstance(outcome, Exception):
            yield {verdict: runner.refusal(outcome).status}
            return
        replayed = outcome[pinned.recipe.batch_index].image
        with Image.open(original) as image:
            result = drift(image, replayed)
        if result.bit_exact:
            text = f"**Bit-exact**: seed {pinned.seed} rendered again matches pixel for pixel."
            yield {verdict: text, heatmap: gr.update(value=None, visible=False)}
            return
        text = (
            f"**Drift** for seed {pinned.seed}: max pixel difference {result.max_diff}, "
            f"PSNR {result.psnr:.1f} dB."
        )
        yield {verdict: text, heatmap: gr.update(value=result.heatmap, visible=True)}

    def look(request: gr.Request) -> Updates:
        latest = services.live.latest(request.session_hash)
        return gr.skip() if latest is None else {progress: latest.line}

    def export_manifest(manifest: Manifest, request: gr.Request) -> Any:
        """Written to the session's served folder, which goes when the session does, with
        small thumbnails of what History shows."""
        session = request.session_hash
        folder = services.folder(session)
        small = history_tab.thumbnails(services, session, manifest)
        path = manifest.write(folder / "seed-explorer-session.json", small)
        return gr.update(value=str(path), visible=True)

    recipe_file.upload(
        load,
        recipe_file,
        [*shared.restore_outputs(), loaded],
        api_visibility="private",
    )
    ui_only: dict[str, Any] = {"queue": False, "api_visibility": "private"}
    verify.click(
        check,
        shared.pin,
        [poll, progress, verdict, heatmap],
        concurrency_id=MODEL_QUEUE,
        concurrency_limit=services.model_runs,
        api_visibility="private",
        show_progress="hidden",  # the progress line says what is re-rendered and how far
    ).then(
        lambda: {poll: gr.Timer(active=False), progress: gr.update(visible=False)},
        None,
        [poll, progress],
        **ui_only,
    )
    poll.tick(look, None, progress, **ui_only)
    export.click(export_manifest, shared.manifest, manifest_file, api_visibility="private")


def _keep(upload: str, folder: Path) -> str:
    """A copy of a dropped PNG in the session's served folder, named by its bytes: what
    Verify reads later is a file the app wrote, in a folder it may read."""
    data = Path(upload).read_bytes()
    path = folder / f"loaded-{hashlib.sha256(data).hexdigest()[:16]}.png"
    path.write_bytes(data)
    return str(path)
