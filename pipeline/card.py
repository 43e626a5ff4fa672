"""What the app says about the loaded model: plain values, so the UI never reaches into the
pipeline, its scheduler registry or its family objects."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.loading import LoadedModel


@dataclass(frozen=True)
class ModelCard:
    """The loaded model as people read it: banner, About line, a loaded recipe's warnings."""

    model_id: str
    family: str  # the family's name, as recipes and A1111's text carry it ("sd1", "sdxl")
    family_label: str  # for people: "Stable Diffusion 1.x"
    native_size: int
    device: str
    seconds: float  # how long loading took
    notice: str | None  # why the model is not the one asked for, when it is not
    is_tiny: bool  # a built-in random-weight model: every image is noise
    a1111_hash: str | None  # A1111's "Model hash" of a single file; None otherwise
    loras: tuple[str, ...]  # "name (weight)"
    few_step: str  # what a few-step model is meant to run with; "" for an ordinary one
    # Flux.1 [dev]'s guidance is an embedding, named as Forge names it.
    guidance_label: str
    true_cfg: bool  # takes a true CFG scale with the negative prompt (Flux.1)
    shift: float | None  # a flow schedule's shift at the native size; None: not a flow family


def card_of(model: LoadedModel) -> ModelCard:
    identity = model.identity
    return ModelCard(
        model_id=model.model_id,
        family=model.family.name,
        family_label=model.family.label,
        native_size=model.native_size,
        device=model.device,
        seconds=model.seconds,
        notice=model.notice,
        is_tiny=model.is_tiny,
        a1111_hash=identity.a1111_hash if identity else None,
        loras=tuple(f"{lora.name} ({lora.weight:g})" for lora in model.loras),
        few_step=model.few_step.describe() if model.few_step else "",
        guidance_label="Distilled CFG"
        if model.guidance_kind == "embedding"
        else "Guidance scale (CFG)",
        true_cfg=model.family.true_cfg,
        shift=model.family.default_shift(model, model.native_size, model.native_size)[0],
    )
