"""Reproduce: load a recipe from a PNG, verify the pinned tile, export the session manifest."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import gradio as gr
from PIL import Image

from pipeline.a1111 import noise_of
from pipeline.engine import Hooks
from pipeline.manifest import Manifest, inside
from pipeline.metadata import (
    MetadataError,
    fields_from_infotext,
    fields_from_recipe,
    read_png,
)
from pipeline.plan import Plan
from pipeline.replay import drift
from pipeline.requests import RequestError
from ui.gpu import gpu
from ui.runner import Services
from ui.shared import MODEL_QUEUE, SharedInputs, pin_values
from ui.state import TileRef


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

    def load(path: str | None, request: gr.Request) -> tuple[Any, ...]:
        if not path:
            return (gr.skip(),) * 11 + ("",)
        names, family = engine.model.registry.names, engine.model.family.name
        try:
            _, recipe, infotext = read_png(path)
            if recipe is not None:
                engine.planner.replay(recipe)  # refused here, as a request, not at Verify
                fields = fields_from_recipe(recipe, names, family)
            elif infotext is not None:
                identity = engine.model.identity
                model = (engine.model.model_id, identity and identity.a1111_hash)
                noise = noise_of(engine.generator_device)
                fields = fields_from_infotext(infotext, names, family, model, noise)
        except (OSError, MetadataError, RequestError) as error:
            raise gr.Error(f"Load a recipe: {error}", print_exception=False) from None
        if recipe is None and infotext is None:
            raise gr.Error(
                "Load a recipe: this PNG carries no recipe or generation parameters",
                print_exception=False,
            )
        for warning in fields.warnings:
            gr.Warning(f"Load a recipe: {warning}")
        pinned = recipe and TileRef(
            recipe,
            _keep(path, services.folder(request.session_hash)),
            f"seed {recipe.seed}",
            None,
            0,
        )
        variation: dict[str, Any] = {}
        if fields.variation_seed is not None:
            variation["variation_seed"] = fields.variation_seed
            variation["variation_strength"] = fields.variation_strength
        if fields.resize_from:
            variation["resize_from"] = list(fields.resize_from)
        seed = "" if fields.seed is None else fields.seed
        note = (
            "Loaded the full recipe: Verify renders it again."
            if recipe
            else "Loaded the AUTOMATIC1111 parameters (no batch shape or noise hash in them)."
        )
        return (
            fields.prompt or gr.skip(),
            fields.negative_prompt,
            fields.scheduler or gr.skip(),
            fields.steps or gr.skip(),
            gr.skip() if fields.guidance_scale is None else fields.guidance_scale,
            fields.width or gr.skip(),
            fields.height or gr.skip(),
            *pin_values(seed, pinned, variation or None),
            note,
        )

    def check(
        pinned: TileRef | None, request: gr.Request, progress: gr.Progress = gr.Progress()
    ) -> tuple[Any, Any]:
        """The pinned tile rendered again and compared. Its PNG must be one the app wrote
        where this session may read, and its recipe pass the planner, before the model (or
        a ZeroGPU GPU) is asked for anything."""
        if pinned is None:
            raise gr.Error(
                "Verify: pin a tile first (click it) or load one of this app's PNGs",
                print_exception=False,
            )
        original = inside(pinned.file, services.readable(request.session_hash))
        if original is None or not original.is_file():
            raise gr.Error(
                "Verify: the pinned tile's PNG is not in this session's folders: pin it again "
                "or load it",
                print_exception=False,
            )
        try:
            plan = engine.planner.replay(pinned.recipe)
        except RequestError as error:
            raise gr.Error(f"Verify: {error}", print_exception=False) from None
        replayed = render(plan, pinned.recipe.batch_index, progress)
        with Image.open(original) as image:
            result = drift(image, replayed)
        if result.bit_exact:
            text = f"**Bit-exact**: seed {pinned.seed} rendered again matches pixel for pixel."
            return text, gr.update(value=None, visible=False)
        text = (
            f"**Drift** for seed {pinned.seed}: max pixel difference {result.max_diff}, "
            f"PSNR {result.psnr:.1f} dB."
        )
        return text, gr.update(value=result.heatmap, visible=True)

    @gpu
    def render(plan: Plan, index: int, progress: gr.Progress) -> Image.Image:
        hooks = Hooks(progress=lambda fraction, text: progress(fraction, desc=text))
        return engine.render(plan, hooks)[index].image

    def export_manifest(manifest: Manifest, request: gr.Request) -> Any:
        """Written to the session's served folder, which goes when the session does."""
        path = manifest.write(services.folder(request.session_hash) / "seed-explorer-session.json")
        return gr.update(value=str(path), visible=True)

    recipe_file.upload(
        load,
        recipe_file,
        [*shared.restore_outputs(), loaded],
        api_visibility="private",
    )
    verify.click(
        check,
        shared.pinned,
        [verdict, heatmap],
        concurrency_id=MODEL_QUEUE,
        api_visibility="private",
    )
    export.click(export_manifest, shared.manifest, manifest_file, api_visibility="private")
    # A seed typed by hand is not the pinned tile any more, nor its variation.
    shared.pinned_seed.input(
        lambda: (None, None, ""),
        None,
        [shared.pinned, shared.variation, shared.pin_note],
        queue=False,
        api_visibility="private",
    )


def _keep(upload: str, folder: Path) -> str:
    """A copy of a dropped PNG in the session's served folder, named by its bytes: what
    Verify reads later is a file the app wrote, in a folder it may read."""
    data = Path(upload).read_bytes()
    path = folder / f"loaded-{hashlib.sha256(data).hexdigest()[:16]}.png"
    path.write_bytes(data)
    return str(path)
