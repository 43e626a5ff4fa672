"""A tile and its recipe: everything needed to render it again, here or in another tool.

The mapping both ways lives here: a plan's tile to its recipe (`tile`), and a recipe, which a
client may send (a dropped PNG, an imported manifest), back to the plan that renders it again
(`replay_plan`), held to a request's rules by the checkers beside the requests.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from PIL import Image

from pipeline.plan import Item, Plan, Sampler
from pipeline.requests import (
    Limits,
    RequestError,
    check_base_variations,
    check_guidance,
    check_pixels,
    check_prompt,
    check_resize_from,
    check_side,
    check_steps,
    check_text,
    check_variation,
    is_whole,
    recorded_number,
    seed_value,
    seed_variance_of,
)
from pipeline.schedulers import SchedulerError, SchedulerRegistry, recipe_scheduler

if TYPE_CHECKING:
    from pipeline.planner import Planner


@dataclass(frozen=True)
class Recipe:
    """One image's full recipe, as the engine rendered it."""

    kind: str  # "grid", "refine", "compare", "vary", "travel" or "matrix"
    prompt: str  # exactly as rendered (for a refinement: the prompt with its suffix)
    negative_prompt: str
    seed: int
    sampler: str  # display name, "DPM++ 2M Karras"
    scheduler_class: str
    scheduler_config: dict[str, Any]
    steps: int
    guidance_scale: float
    width: int
    height: int
    model_id: str
    # A1111's `Model hash`: a single file's sha256, first 10 hex digits (civitai's AutoV2);
    # None for a folder or a hub id, whose hash is `model_sha256` (ours, not A1111's).
    model_hash: str | None
    model_revision: str | None  # the hub commit, when loaded from the hub
    dtype: str  # "float16", "float32"
    device: str  # "cuda", "cpu", "mps"
    device_name: str  # "NVIDIA H100 80GB HBM3", the CPU's name
    generator_device: str  # where the seed made its noise: "cpu" is portable
    batch_size: int  # images in the diffusers call that rendered it: replay uses the same
    batch_index: int  # its place in that call
    noise_sha256: str  # of the initial latents, as float bytes
    deterministic: bool  # torch.use_deterministic_algorithms was on
    versions: dict[str, str] = field(default_factory=dict)  # app, torch, diffusers, ...
    suffix: str | None = None  # the refinement suffix, already part of `prompt`
    # Rendered in lockstep with other schedulers (a comparison): the group, in order, as
    # {"schedulers": [{"sampler", "scheduler_config", "steps"}, ...], "per_call": lanes per
    # UNet call}; `batch_size` is the group's size and `batch_index` this tile's place in it.
    # None: rendered in a call of its own (recipes from before lockstep say nothing).
    lockstep: dict[str, Any] | None = None
    family: str = "sd1"  # "sd1", "sd2", "sdxl" (pipeline/families.py); older recipes: SD 1.x
    native_size: int | None = None  # the model's own resolution
    # The family's conditioning beyond the text: SDXL's original_size, crops_coords_top_left
    # and target_size (height, width order, as diffusers takes them). None: nothing.
    conditioning: dict[str, Any] | None = None
    # How the engine was set up, so replay sets it up the same way.
    safety_checker: bool = False
    speedups: dict[str, bool] = field(default_factory=dict)
    # What the weights were (pipeline/checkpoints.py): the same on every device and dtype.
    model_name: str | None = None  # A1111's `Model`: a single file's stem, else the id
    model_sha256: str | None = None  # a single file's sha256, or ours over a folder's weights
    model_config: str | None = None  # --config: where a single file's configs came from
    # The LoRAs fused in, in order: {"name", "source", "weight", "sha256", "a1111_hash"}.
    loras: list[dict[str, Any]] = field(default_factory=list)
    # A1111's variation: the start noise moved from the seed's towards this seed's by this
    # strength (0: none), the seed's noise made at resize_from [width, height] (None: none).
    variation_seed: int | None = None
    variation_strength: float = 0.0
    resize_from: list[int] | None = None
    # A variation of a pinned variation: the blends its noise went through before the one
    # above, [[variation seed, strength], ...] in order (A1111's infotext has no place for
    # them); empty: the seed's own noise is where the variation starts.
    base_variations: list[list[Any]] = field(default_factory=list)
    # A matrix cell: its axes, headers and place, {"x_axis": "Steps", "x": "Steps: 20",
    # "y_axis": "Seed", "y": "Seed: 5", "row": 0, "column": 1}; None: not a matrix cell.
    cell: dict[str, Any] | None = None
    # How the model guided: "cfg" (uncond-then-cond), "embedding" (Flux.1 [dev]'s Distilled
    # CFG, which `guidance_scale` then is) or "none"; Flux's true CFG beside its embedding.
    guidance_kind: str = "cfg"
    true_cfg_scale: float = 1.0
    # A flow family's schedule shift (also in the scheduler config) and, where it came from
    # the image's token count (Flux), that `mu`; None: not a flow family.
    shift: float | None = None
    mu: float | None = None
    # Seed variance: the prompt embedding moved by the seed's noise at this strength; 0: none.
    seed_variance: float = 0.0
    offload: bool = False  # diffusers' CPU offload (--offload): the same pixels
    offload_mode: str | None = None  # "model" or "sequential"; older recipes: "model"
    quantize: str | None = None  # --quantize's backend (pipeline/quantize.py): other pixels
    # Denoised in shared calls of exactly this many rows (pipeline/sharing.py), decoded
    # alone: the tile depends on nothing else in its calls, and replay renders it (or its
    # lockstep group) in calls of this shape. None: in a call of `batch_size` images.
    call_rows: int | None = None

    @property
    def guidance_name(self) -> str:
        """What its guidance scale is called: Flux.1 [dev]'s is the embedded Distilled CFG."""
        return "Distilled CFG" if self.guidance_kind == "embedding" else "CFG"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recipe:
        known = set(cls.__dataclass_fields__)
        return cls(**{key: value for key, value in data.items() if key in known})


@dataclass(frozen=True)
class Provenance:
    """What every tile of one engine shares: the model, the machine, the software, the setup."""

    model_id: str
    model_hash: str | None
    model_revision: str | None
    family: str
    native_size: int
    dtype: str
    device: str
    device_name: str
    deterministic: bool
    versions: dict[str, str]
    safety_checker: bool
    speedups: dict[str, bool]
    guidance_kind: str = "cfg"
    offload: bool = False
    offload_mode: str | None = None
    quantize: str | None = None
    model_name: str | None = None
    model_sha256: str | None = None
    model_config: str | None = None
    loras: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class Tile:
    """One rendered image and the recipe that makes it again."""

    image: Image.Image
    recipe: Recipe
    # Its share of the call that rendered it: a batched call's seconds split evenly between
    # its tiles; a lockstep call's split by each tile's number of model evaluations.
    seconds: float
    filtered: bool = False  # the safety checker blanked it


def tile(
    image: Image.Image,
    provenance: Provenance,
    plan: Plan,
    item: Item,
    sampler: Sampler,
    *,
    noise: torch.Tensor,
    batch_index: int,
    batch_size: int,
    seconds: float,
    filtered: bool,
    call_rows: int | None = None,
) -> Tile:
    """One rendered image with its recipe: `noise` its initial latents, `batch_size` the
    images of the call (or the schedulers of the lockstep group) that rendered it."""
    group = None
    if plan.lockstep:
        group = {
            "schedulers": [
                {"sampler": s.name, "scheduler_config": s.config, "steps": s.steps}
                for s in plan.samplers
            ],
            "per_call": plan.per_call,
        }
    recipe = Recipe(
        kind=plan.kind,
        prompt=item.prompt,
        negative_prompt=plan.negative_prompt,
        seed=item.seed,
        sampler=sampler.name,
        scheduler_class=sampler.config["_class_name"],
        scheduler_config=sampler.config,
        steps=sampler.steps,
        guidance_scale=plan.guidance_scale,
        width=plan.width,
        height=plan.height,
        model_id=provenance.model_id,
        model_hash=provenance.model_hash,
        model_revision=provenance.model_revision,
        dtype=provenance.dtype,
        device=provenance.device,
        device_name=provenance.device_name,
        generator_device=plan.generator_device,
        batch_size=batch_size,
        batch_index=batch_index,
        noise_sha256=tensor_sha256(noise),
        deterministic=provenance.deterministic,
        versions=provenance.versions,
        suffix=item.suffix,
        lockstep=group,
        family=provenance.family,
        native_size=provenance.native_size,
        conditioning=plan.extras or None,
        safety_checker=provenance.safety_checker,
        speedups=provenance.speedups,
        model_name=provenance.model_name,
        model_sha256=provenance.model_sha256,
        model_config=provenance.model_config,
        loras=[dict(lora) for lora in provenance.loras],
        variation_seed=item.variation_seed,
        variation_strength=item.strength,
        resize_from=None if item.resize_from is None else list(item.resize_from),
        base_variations=[list(blend) for blend in item.base_variations],
        guidance_kind=provenance.guidance_kind,
        true_cfg_scale=plan.true_cfg_scale,
        shift=plan.shift,
        mu=plan.mu,
        seed_variance=plan.seed_variance,
        offload=provenance.offload,
        offload_mode=provenance.offload_mode,
        quantize=provenance.quantize,
        call_rows=call_rows,
    )
    return Tile(image, recipe, seconds, filtered)


def offload_of(recipe: Recipe) -> str | None:
    """The offload a recipe was rendered with (a recipe from before the modes: model)."""
    return (recipe.offload_mode or "model") if recipe.offload else None


def setup_differences(recipe: Recipe, provenance: Provenance) -> list[str]:
    """How this engine's setup differs from the one that rendered `recipe`, one line each:
    what replay cannot promise to match."""
    pairs = {
        "dtype": (recipe.dtype, provenance.dtype),
        "--offload": (offload_of(recipe), provenance.offload_mode),
        "--quantize": (recipe.quantize, provenance.quantize),
    }
    lines = [
        f"{name}: the recipe's {mine or 'none'}, this model's {ours or 'none'}"
        for name, (mine, ours) in pairs.items()
        if mine != ours
    ]
    if recipe.model_sha256 and recipe.model_sha256 != provenance.model_sha256:
        lines.append(f"{provenance.model_id} has other weights than the recipe's")
    return lines


def pixels_sha256(image: Image.Image) -> str:
    """The hash of an image's RGB pixels: equal hashes mean a bit-exact image."""
    return hashlib.sha256(image.convert("RGB").tobytes()).hexdigest()


def tensor_sha256(tensor: torch.Tensor) -> str:
    """The hash of a tensor's bytes (as bytes, so bfloat16, which numpy lacks, hashes too)."""
    data = tensor.detach().cpu().contiguous().view(torch.uint8)
    return hashlib.sha256(data.numpy().tobytes()).hexdigest()


def replay_plan(recipe: Recipe, planner: Planner) -> Plan:
    """The call that rendered `recipe`, again: its recorded schedulers and configs exactly,
    a comparison's whole lockstep group, else the tile in every place of a call of its
    shape. A recipe may come from a dropped PNG: it is held to a request's limits."""
    limits = planner.limits
    prompt = check_prompt("Prompt", recipe.prompt, limits)
    negative = check_text("Negative prompt", recipe.negative_prompt, limits)
    seed = seed_value("Seed", recipe.seed)
    width, height = (
        check_side("Width", recipe.width, limits),
        check_side("Height", recipe.height, limits),
    )
    guidance = check_guidance(recipe.guidance_scale, limits)
    batch = recipe.batch_size
    if not is_whole(batch) or not 1 <= batch <= limits.max_tiles:
        raise RequestError(
            "Batch size", f"must be a whole number 1..{limits.max_tiles}, got {batch!r}"
        )
    index = recipe.batch_index
    if not is_whole(index) or not 0 <= index < batch:
        raise RequestError("Batch index", f"must be a whole number 0..{batch - 1}, got {index!r}")
    check_pixels(batch, width, height, limits)
    variation = check_variation(recipe.variation_seed, recipe.variation_strength, "Variation")
    resize_from = check_resize_from(recipe.resize_from, limits)
    base = check_base_variations(recipe.base_variations, "Base variations")
    item = Item(prompt, seed, recipe.suffix, *variation, resize_from, base)
    shift = _recorded_shift(recipe, planner)
    registry = planner.model.registry
    steps = check_steps("Steps", recipe.steps, limits)
    own = _recipe_sampler(
        registry, "Scheduler config", recipe.sampler, recipe.scheduler_config, steps, shift
    )
    common = {
        "kind": recipe.kind,
        "negative_prompt": negative,
        "guidance_scale": guidance,
        "width": width,
        "height": height,
        "generator_device": recipe.generator_device,
        "extras": planner.model.family.extras(width, height, _conditioning(recipe, limits)),
        "true_cfg_scale": check_guidance(
            recorded_number("True CFG", recipe.true_cfg_scale), limits, "True CFG"
        ),
        "shift": shift,
        "mu": None if recipe.mu is None else recorded_number("Mu", recipe.mu),
        "seed_variance": seed_variance_of(recipe.seed_variance),
        "rows": _call_rows(recipe, limits),
    }
    if recipe.lockstep is None:
        return Plan(items=(item,) * batch, samplers=(own,), per_call=batch, **common)
    samplers, per_call = _group(recipe, own, limits, registry, shift)
    return Plan(items=(item,), samplers=samplers, per_call=per_call, lockstep=True, **common)


def _call_rows(recipe: Recipe, limits: Limits) -> int | None:
    """The rows of a shared call that rendered the tile, held to what a call may hold."""
    rows = recipe.call_rows
    if rows is not None and (not is_whole(rows) or not 1 <= rows <= 2 * limits.max_tiles):
        raise RequestError(
            "Call rows", f"must be a whole number 1..{2 * limits.max_tiles}, got {rows!r}"
        )
    return rows


def _recorded_shift(recipe: Recipe, planner: Planner) -> float | None:
    """A recipe's shift: every flow family's recipe records one, no other's does."""
    if recipe.shift is None:
        if planner.model.family.flow:
            raise RequestError("Shift", "a flow-matching model's recipe records its shift")
        return None
    return planner.checked_shift(recorded_number("Shift", recipe.shift))


def _group(
    recipe: Recipe,
    own: Sampler,
    limits: Limits,
    registry: SchedulerRegistry,
    shift: float | None,
) -> tuple[tuple[Sampler, ...], int]:
    """A lockstep group: one scheduler per tile of the group, this tile's own at its index,
    and the lanes per UNet call it was rendered with, each scheduler checked as the tile's."""
    record = recipe.lockstep
    lanes = record.get("schedulers") if isinstance(record, dict) else None
    if not isinstance(lanes, list) or len(lanes) != recipe.batch_size:
        raise RequestError(
            "Lockstep", f"must list {recipe.batch_size} schedulers, one per tile of the group"
        )
    samplers = []
    for lane in lanes:
        if not (
            isinstance(lane, dict)
            and isinstance(lane.get("sampler"), str)
            and isinstance(lane.get("scheduler_config"), dict)
        ):
            raise RequestError(
                "Lockstep", f"each scheduler needs a sampler, a config and steps, got {lane!r}"
            )
        steps = check_steps(f"Steps for {lane['sampler']}", lane.get("steps"), limits)
        field_name = f"Lockstep scheduler {len(samplers) + 1} config"
        samplers.append(
            _recipe_sampler(
                registry, field_name, lane["sampler"], lane["scheduler_config"], steps, shift
            )
        )
    mine = samplers[recipe.batch_index]
    if (mine.config, mine.steps) != (own.config, own.steps):
        raise RequestError("Lockstep", "the scheduler at the tile's index is not the tile's own")
    per_call = record.get("per_call")
    if not is_whole(per_call) or not 1 <= per_call <= recipe.batch_size:
        raise RequestError(
            "Lockstep",
            f"schedulers per call must be a whole number 1..{recipe.batch_size}, got {per_call!r}",
        )
    return tuple(samplers), per_call


def _recipe_sampler(
    registry: SchedulerRegistry,
    field_name: str,
    sampler: Any,
    config: Any,
    steps: int,
    shift: float | None,
) -> Sampler:
    """A recipe's scheduler as this model's registry writes it (at the recipe's checked
    shift, for a flow family), never its config as sent."""
    try:
        name, checked = recipe_scheduler(registry, sampler, config, shift)
    except SchedulerError as error:
        raise RequestError(field_name, str(error)) from None
    return Sampler(name, checked, steps)


def _conditioning(recipe: Recipe, limits: Limits) -> dict[str, Any] | None:
    """A recipe's size conditioning (SDXL): three (height, width)-like pairs of sides within
    the limits, or none at all."""
    recorded = recipe.conditioning
    if recorded is None:
        return None
    keys = ("original_size", "crops_coords_top_left", "target_size")
    pairs = [recorded.get(key) for key in keys] if isinstance(recorded, dict) else []
    if len(pairs) != 3 or not all(
        isinstance(pair, list)
        and len(pair) == 2
        and all(is_whole(side) and 0 <= side <= limits.max_side * 4 for side in pair)
        for pair in pairs
    ):
        raise RequestError(
            "Size conditioning", f"must give {', '.join(keys)} as pairs of sides, got {recorded!r}"
        )
    return recorded
