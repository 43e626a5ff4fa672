"""Reproduce: load a recipe from a PNG, verify the pinned tile, export the session manifest."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import gradio as gr
from PIL import Image

from pipeline.a1111 import noise_of
from pipeline.engine import Hooks
from pipeline.manifest import Manifest
from pipeline.metadata import (
    MetadataError,
    fields_from_infotext,
    fields_from_recipe,
    read_png,
)
from pipeline.replay import drift
from pipeline.requests import RequestError
from ui.context import MODEL_QUEUE, Services
from ui.gpu import gpu
from ui.state import Pin, TileRef
from ui.widgets import SharedInputs, Updates


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

    def load(path: str | None) -> Updates:
        if not path:
            return {loaded: ""}
        try:
            _, recipe, infotext = read_png(path)
        except (OSError, MetadataError) as error:
            raise gr.Error(f"Load a recipe: {error}", print_exception=False) from None
        card = engine.card
        names, family = engine.schedulers, card.family
        if recipe is not None:
            fields = fields_from_recipe(recipe, names, family)
        elif infotext is not None:
            model = (card.model_id, card.a1111_hash)
            noise = noise_of(engine.generator_device)
            fields = fields_from_infotext(infotext, names, family, model, noise)
        else:
            raise gr.Error(
                "Load a recipe: this PNG carries no recipe or generation parameters",
                print_exception=False,
            )
        for warning in fields.warnings:
            gr.Warning(f"Load a recipe: {warning}")
        tile = recipe and TileRef(recipe, path, f"seed {recipe.seed}", None, 0)
        resize = tuple(fields.resize_from) if fields.resize_from else None
        seed = "" if fields.seed is None else fields.seed
        pin = Pin(seed, fields.variation_seed, fields.variation_strength or 0.0, resize, tile)
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
        }
        found = {widget: value for widget, value in given.items() if value is not None}
        return found | shared.show_pin(pin) | {loaded: note}

    @gpu
    def check(pin: Pin | None, progress: gr.Progress = gr.Progress()) -> tuple[Any, Any]:
        pinned = pin and pin.tile
        if pinned is None:
            raise gr.Error(
                "Verify: pin a tile first (click it) or load one of this app's PNGs",
                print_exception=False,
            )
        hooks = Hooks(progress=lambda fraction, text: progress(fraction, desc=text))
        try:
            replayed = engine.replay(pinned.recipe, hooks)
        except RequestError as error:
            raise gr.Error(f"Verify: {error}", print_exception=False) from None
        with Image.open(pinned.file) as original:
            result = drift(original, replayed.image)
        if result.bit_exact:
            text = f"**Bit-exact**: seed {pinned.seed} rendered again matches pixel for pixel."
            return text, gr.update(value=None, visible=False)
        text = (
            f"**Drift** for seed {pinned.seed}: max pixel difference {result.max_diff}, "
            f"PSNR {result.psnr:.1f} dB."
        )
        return text, gr.update(value=result.heatmap, visible=True)

    def export_manifest(manifest: Manifest) -> Any:
        folder = Path(tempfile.mkdtemp(prefix="seed-explorer-manifest-"))
        path = manifest.write(folder / "seed-explorer-session.json")
        return gr.update(value=str(path), visible=True)

    recipe_file.upload(
        load,
        recipe_file,
        [*shared.restore_outputs(), loaded],
        api_visibility="private",
    )
    verify.click(
        check,
        shared.pin,
        [verdict, heatmap],
        concurrency_id=MODEL_QUEUE,
        api_visibility="private",
    )
    export.click(export_manifest, shared.manifest, manifest_file, api_visibility="private")
