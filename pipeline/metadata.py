"""A recipe in every PNG, readable by AUTOMATIC1111 and by us; recipes read back from images.

Two PNG text chunks: `parameters`, AUTOMATIC1111's infotext, which A1111, Forge, ComfyUI
readers and civitai understand; and `seed-explorer`, the full recipe as JSON with the pixel
hash, which is exact and is what replay needs (batch shape, scheduler config, noise hash).
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import struct
import tempfile
import zlib
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field
from functools import cache
from pathlib import Path
from types import UnionType
from typing import Any, get_args, get_origin, get_type_hints

from PIL import Image, PngImagePlugin

from pipeline import __version__, a1111
from pipeline.families import FAMILIES
from pipeline.recipe import Recipe, pixels_sha256
from pipeline.seeds import SeedError, check_seed

APP_VERSION = __version__
APP_NAME = "seed-explorer"
INFOTEXT_KEY = "parameters"  # AUTOMATIC1111's chunk
RECIPE_KEY = "seed-explorer"  # ours: {"recipe": {...}, "pixels_sha256": ...}
MATRIX_KEY = "seed-explorer-matrix"  # a matrix's labelled grid: {"cells": [recipe, ...]}

# Infotext is client text: it is read in one pass (`settings_pairs`), up to this many characters
# (A1111's own run to a few thousand; a prompt here is at most 2,000).
MAX_INFOTEXT_CHARS = 65_536
# A PNG a recipe is read from: at most this many pixels (16 megapixels, far above any render
# here), checked from its header before any pixel is decoded.
MAX_PNG_PIXELS = 4096 * 4096
# AUTOMATIC1111's `re_param` (modules/infotext_utils.py): one "Key: value" pair of the last
# line. What A1111 reads, and what `settings_pairs` reads the same as; never run on client
# text here (under `findall` it is quadratic).
A1111_PARAM = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
_KEY_CHARS = re.compile(r"[\w \-/]*")
_SIZE = re.compile(r"^(\d{1,5})x(\d{1,5})$")
_NEGATIVE = "Negative prompt:"

# Our display name -> A1111's sampler, where they differ; the schedule is a field of its own
# since A1111 1.9 (pipeline/a1111.py says when it must be written).
_TO_A1111 = {
    "DPM++ 2M Karras": "DPM++ 2M",
    "PNDM": "PLMS",
    # A1111's schedule for SD-Turbo and SDXL-Lightning is "SGM Uniform": timesteps from the
    # very end, as diffusers' "trailing" spacing.
    "Euler trailing": "Euler",
    "Euler a trailing": "Euler a",
    "DDIM trailing": "DDIM",
}
_FROM_A1111 = {"PLMS": "PNDM"}
_SGM_UNIFORM_OF = {
    "Euler": "Euler trailing",
    "Euler a": "Euler a trailing",
    "DDIM": "DDIM trailing",
}
# A1111's extra-network tags, which it strips from the prompt before encoding it.
_LORA_TAG = re.compile(r"(?<!\s)\s*<lora:[^<>]*>")  # (?<!\s): each run of spaces tried once
_KARRAS_OF = {"DPM++ 2M": "DPM++ 2M Karras"}

# Keys that either become a field or say nothing about how the pixels were made.
_UNDERSTOOD = {
    "Prompt",
    "Negative prompt",
    "Steps",
    "Sampler",
    "Schedule type",
    "CFG scale",
    "Seed",
    "Size",
    "Model hash",
    "Model",
    "RNG",
    "Version",
    a1111.VARIATION_SEED,
    a1111.VARIATION_STRENGTH,
    a1111.SEED_RESIZE_FROM,
    "Suffix",
    "Scheduler class",
    "Deterministic",
    "Family",
    "Native size",
    "Size conditioning",
    "Distilled CFG Scale",
    "Shift",
    "Seed variance",
}
# Forge's Flux infotext: the flow samplers' schedules, and its embedded guidance's key.
_FLOW_SCHEDULES = ("Beta", "Karras")
DISTILLED_CFG = "Distilled CFG Scale"
SEED_VARIANCE = "Seed variance"  # ours: noise on the prompt embedding from the seed


class MetadataError(ValueError):
    """A PNG, recipe or infotext that cannot be read (or is over a cap), said with its field."""


@dataclass
class RecipeFields:
    """What the UI can fill in from an image or pasted text; None where it is not known."""

    prompt: str | None = None
    negative_prompt: str = ""
    seed: int | None = None
    steps: int | None = None
    guidance_scale: float | None = None
    width: int | None = None
    height: int | None = None
    scheduler: str | None = None  # one of the offered display names, never a guess
    warnings: list[str] = field(default_factory=list)
    variation_seed: int | None = None
    variation_strength: float = 0.0
    resize_from: tuple[int, int] | None = None  # (width, height)
    true_cfg_scale: float | None = None  # Flux's true CFG, where the text gives it
    seed_variance: float = 0.0  # noise on the prompt embedding from the seed


def quote(value: object) -> str:
    """A1111's quoting: a value with a comma, colon or newline is JSON-quoted.

    Also one that starts with a double quote, which A1111 would otherwise unquote on reading.
    """
    text = str(value)
    if any(char in text for char in ",:\n") or text.startswith('"'):
        return json.dumps(text, ensure_ascii=False)
    return text


def infotext(recipe: Recipe, app_version: str = APP_VERSION) -> str:
    """AUTOMATIC1111's `parameters` text: prompt, negative prompt, one line of settings.

    `Schedule type` is written wherever A1111 reading none would pick another schedule than
    the one rendered (its "Automatic" is Karras for DPM++ 2M and DPM2, for instance).

    As A1111 writes a LoRA: a `<lora:name:weight>` tag in the prompt (A1111 applies a LoRA only
    where the prompt names it, and strips the tag before encoding, so it renders this prompt)
    and `Lora hashes: "name: hash, ..."`, by which A1111 and civitai find the file.
    """
    flow = recipe.shift is not None
    sampler = _TO_A1111.get(recipe.sampler, recipe.sampler)
    if recipe.sampler.endswith(" trailing"):
        rendered = "SGM Uniform"
    else:
        rendered = "Karras" if recipe.scheduler_config.get("use_karras_sigmas") else "Uniform"
    if flow:  # as Forge writes a flow model's: the sampler, then its schedule, Simple by default
        sampler, _, rendered = recipe.sampler.partition(" ")
        rendered = rendered or "Simple"
    embedded = recipe.guidance_kind == "embedding"
    tags = " ".join(f"<lora:{lora['name']}:{lora['weight']:g}>" for lora in recipe.loras)
    hashes = ", ".join(f"{lora['name']}: {lora['a1111_hash']}" for lora in recipe.loras)
    resize = recipe.resize_from
    variation = a1111.Variation(
        recipe.variation_seed, recipe.variation_strength, tuple(resize) if resize else None
    )
    params: dict[str, object | None] = {
        "Steps": recipe.steps,
        "Sampler": sampler,
        # Trailing timesteps are said even where A1111 ignores a schedule (DDIM): they are
        # what rendered the tile.
        "Schedule type": rendered
        if rendered == "SGM Uniform" or flow
        else a1111.schedule_type_to_write(sampler, rendered),
        # Flux.1 [dev] as Forge writes it: CFG scale the true one, the embedding its own key.
        "CFG scale": recipe.true_cfg_scale if embedded else recipe.guidance_scale,
        DISTILLED_CFG: recipe.guidance_scale if embedded else None,
        "Shift": None if recipe.shift is None else round(recipe.shift, 4),
        SEED_VARIANCE: recipe.seed_variance or None,
        "Seed": recipe.seed,
        "Size": f"{recipe.width}x{recipe.height}",
        "Model hash": recipe.model_hash,
        "Model": recipe.model_name or recipe.model_id,
        "Lora hashes": hashes,
        **a1111.variation_params(variation),
        "RNG": a1111.noise_of(recipe.generator_device),
        "Suffix": recipe.suffix,
        "Family": recipe.family,
        "Native size": recipe.native_size,
        "Size conditioning": size_conditioning(recipe.conditioning),
        "Scheduler class": recipe.scheduler_class,
        "Deterministic": "True" if recipe.deterministic else None,
        "Quantization": recipe.quantize,
        "Version": f"{APP_NAME} {app_version}",
    }
    line = ", ".join(
        f"{key}: {quote(value)}" for key, value in params.items() if value not in (None, "")
    )
    negative = f"\n{_NEGATIVE} {recipe.negative_prompt}" if recipe.negative_prompt else ""
    prompt = f"{recipe.prompt} {tags}" if tags else recipe.prompt
    return f"{prompt}{negative}\n{line}"


def size_conditioning(conditioning: dict | None) -> str | None:
    """SDXL's size conditioning as a line people can read (diffusers' order: height, width)."""
    if not conditioning:
        return None
    (oh, ow), (top, left), (th, tw) = (
        conditioning[key] for key in ("original_size", "crops_coords_top_left", "target_size")
    )
    return f"original {ow}x{oh}, crop top {top} left {left}, target {tw}x{th}"


def recipe_json(image: Image.Image, recipe: Recipe) -> str:
    """Our chunk: the recipe exactly, and the hash that says whether pixels are still these."""
    return json.dumps(
        {"recipe": recipe.to_dict(), "pixels_sha256": pixels_sha256(image)}, ensure_ascii=False
    )


def with_metadata(
    image: Image.Image, recipe: Recipe, app_version: str = APP_VERSION
) -> Image.Image:
    """A copy carrying both chunks in `.info`: a gr.Gallery(format="png") writes them out."""
    tagged = image.copy()
    tagged.info[INFOTEXT_KEY] = infotext(recipe, app_version)
    tagged.info[RECIPE_KEY] = recipe_json(image, recipe)
    return tagged


def png_bytes(image: Image.Image, recipe: Recipe, app_version: str = APP_VERSION) -> bytes:
    """The image as lossless PNG with both text chunks.

    zlib level 1, not PIL's 6: the pixels are the same at any level, and on a 512x512 render
    level 1 encodes about 5 times faster for files about 15% larger (docs/PERFORMANCE.md).
    """
    info = PngImagePlugin.PngInfo()
    info.add_text(INFOTEXT_KEY, infotext(recipe, app_version))
    info.add_text(RECIPE_KEY, recipe_json(image, recipe), zip=True)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info, compress_level=1)
    return buffer.getvalue()


def grid_png_bytes(image: Image.Image, cells: list[Recipe]) -> bytes:
    """A matrix's labelled grid as PNG: every cell's recipe (row-major) in our chunk, and the
    first cell's infotext, as A1111 tags its X/Y plot."""
    info = PngImagePlugin.PngInfo()
    info.add_text(INFOTEXT_KEY, infotext(cells[0]))
    data = {"cells": [recipe.to_dict() for recipe in cells]}
    info.add_text(MATRIX_KEY, json.dumps(data, ensure_ascii=False), zip=True)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info, compress_level=1)
    return buffer.getvalue()


def write_png(
    path: str | Path, image: Image.Image, recipe: Recipe, app_version: str = APP_VERSION
) -> Path:
    """Write the PNG atomically: after a crash there is the old file or the new, never half."""
    path = Path(path)
    write_atomic(path, png_bytes(image, recipe, app_version))
    return path


def write_atomic(path: Path, data: bytes) -> None:
    """Temp file in the same folder, flushed to disk, then renamed over `path`."""
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed before the rename
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False
    )
    try:
        with handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
    if os.name == "posix":  # make the rename itself durable
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def read_png(path: str | Path) -> tuple[Image.Image, Recipe | None, str | None]:
    """The image, our recipe (None if the PNG has none) and the A1111 infotext (or None).

    The size is checked from the header before a pixel is decoded, and Pillow's own refusals
    (a decompression bomb, a text chunk that inflates too far, a broken file) say which they are.
    """
    try:
        with Image.open(path) as image:
            width, height = image.size
            if width * height > MAX_PNG_PIXELS:
                raise MetadataError(
                    f"the image is {width}x{height}, over the {MAX_PNG_PIXELS:,} pixels a "
                    "recipe's PNG may have"
                )
            image.load()
    except MetadataError:
        raise
    except (Image.DecompressionBombError, ValueError) as error:  # Pillow's caps on chunks
        raise MetadataError(f"refused as a PNG bomb: {error}") from None
    except (SyntaxError, struct.error, zlib.error) as error:
        raise MetadataError(f"not a readable PNG: {error}") from None
    return image, _recipe_of(image), _text_chunk(image, INFOTEXT_KEY)


def _recipe_of(image: Image.Image) -> Recipe | None:
    text = _text_chunk(image, RECIPE_KEY)
    if text is None:
        return None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise MetadataError(f"the {RECIPE_KEY} chunk cannot be read: {error}") from None
    if not isinstance(data, dict):
        raise MetadataError(f"the {RECIPE_KEY} chunk holds no recipe")
    return recipe_from_dict(data.get("recipe"), f"the {RECIPE_KEY} chunk")


def recipe_from_dict(data: Any, where: str) -> Recipe:
    """A recipe a client sent (a PNG's chunk, a manifest's tile), each field of its own type.

    Checked here so that a forged `guidance_scale: "abc"` is refused naming the field, not
    met later as a crash; the values themselves are the planner's to check.
    """
    if not isinstance(data, dict):
        raise MetadataError(f"{where}: the recipe must be an object, got {type(data).__name__}")
    hints = _recipe_types()
    missing = [name for name in _REQUIRED if name not in data]
    if missing:
        raise MetadataError(f"{where}: the recipe has no {', '.join(missing)}")
    for name, value in data.items():
        kinds = hints.get(name)
        if (kinds is not None and not isinstance(value, kinds)) or _bad_number(value):
            raise MetadataError(f"{where}: recipe field {str(name)[:40]} cannot be {_short(value)}")
    return Recipe.from_dict(data)


_REQUIRED = tuple(
    name
    for name, spec in Recipe.__dataclass_fields__.items()
    if spec.default is MISSING and spec.default_factory is MISSING
)


@cache
def _recipe_types() -> dict[str, tuple[type, ...]]:
    """Each recipe field's JSON types: `int | None` is (int, NoneType); a float takes an int."""
    types: dict[str, tuple[type, ...]] = {}
    for name, hint in get_type_hints(Recipe).items():
        kinds = []
        for kind in get_args(hint) if get_origin(hint) is UnionType else (hint,):
            kind = get_origin(kind) or kind
            kinds += [int, float] if kind is float else [kind]
        types[name] = tuple(kinds)
    return types


def _bad_number(value: Any) -> bool:
    """NaN and infinity, which JSON readers accept and no recipe field means."""
    return isinstance(value, float) and not math.isfinite(value)


def _short(value: Any) -> str:
    text = repr(value) if isinstance(value, str | int | float | bool) or value is None else ""
    return text[:60] if text else f"a {type(value).__name__}"


def parse_infotext(text: str) -> dict[str, str]:
    """A1111's reading: `Prompt`, `Negative prompt` and every `Key: value` of the last line.

    The last line holds the settings when A1111's pattern finds at least three pairs in it;
    otherwise the whole text is prompt. Everything before `Negative prompt:` is the prompt.
    Text over MAX_INFOTEXT_CHARS is refused (a MetadataError naming the cap).
    """
    if len(text) > MAX_INFOTEXT_CHARS:
        raise MetadataError(
            f"the parameters text is {len(text):,} characters, over the "
            f"{MAX_INFOTEXT_CHARS:,} it may have"
        )
    *lines, last = text.strip().split("\n")
    pairs = settings_pairs(last)
    if len(pairs) < 3:
        lines.append(last)
        last = ""
    prompt: list[str] = []
    negative: list[str] = []
    for line in lines:
        line = line.strip()
        if not negative and line.startswith(_NEGATIVE):
            negative.append(line.removeprefix(_NEGATIVE).strip())
        elif negative:
            negative.append(line)
        else:
            prompt.append(line)
    params = {"Prompt": "\n".join(prompt), "Negative prompt": "\n".join(negative)}
    for key, value in pairs if last else []:
        params[key] = _unquote(value)
    return params


def settings_pairs(line: str) -> list[tuple[str, str]]:
    """What `A1111_PARAM.findall(line)` finds, in one pass.

    A key is a whole run of word characters, spaces, `-` and `/` starting with a word
    character, right before a colon; its value a quoted string ending at a comma or the end,
    else everything to the next comma. A failed key is skipped whole: every start inside it
    fails the same way, which is what keeps this linear.
    """
    closing = _closing_quotes(line) if '"' in line else {}
    pairs = []
    position, end = 0, len(line)
    while position < end:
        start = position
        while start < end and line[start].isspace():
            start += 1
        if start == end:
            break
        if not (line[start].isalnum() or line[start] == "_"):
            position = start + 1
            continue
        colon = _KEY_CHARS.match(line, start).end()
        if colon - start < 2 or colon == end or line[colon] != ":":
            position = max(colon, start + 1)
            continue
        value = colon + 1
        while value < end and line[value].isspace():
            value += 1
        quote_end = closing.get(value) if line.startswith('"', value) else None
        if quote_end is not None and (quote_end + 1 == end or line[quote_end + 1] == ","):
            pairs.append((line[start:colon], line[value : quote_end + 1]))
            position = quote_end + 2
            continue
        comma = line.find(",", value)
        stop = end if comma < 0 else comma
        pairs.append((line[start:colon], line[value:stop]))
        position = stop + 1
    return pairs


def _closing_quotes(line: str) -> dict[int, int]:
    """For each `"` in `line`: where the quoted string it opens ends, as A1111_PARAM's
    quoted value reads it, for those that end; one pass from the end, each position's answer
    from the next one's."""
    end = len(line)
    ends: list[int | None] = [None] * (end + 2)  # ends[i]: the closing quote scanning from i
    for index in range(end - 1, -1, -1):
        char = line[index]
        if char == '"':
            ends[index] = index
        elif char == "\\":
            ends[index] = ends[index + 2] if index + 1 < end and line[index + 1] != "\n" else None
        else:
            ends[index] = ends[index + 1]
    return {
        index: ends[index + 1]
        for index in range(end)
        if line[index] == '"'
        and index + 1 < end
        and line[index + 1] != '"'
        and ends[index + 1] is not None
    }


def fields_from_infotext(
    text: str,
    scheduler_names: list[str],
    family: str,
    model: tuple[str, str | None] | None = None,
    noise: str = "CPU",
) -> RecipeFields:
    """Fields from A1111-style text; anything missing, unreadable or not offered is a warning,
    and so is a model family other than the loaded model's `family`, a start noise (`noise`:
    ours, as A1111's RNG names it) or a model (ours: id and hash) other than the image's,
    since each makes another image of the same settings."""
    params = parse_infotext(text)
    fields = RecipeFields(negative_prompt=params["Negative prompt"])
    warnings = fields.warnings
    if params.get("Family"):
        warnings += _family_warning(params["Family"], family)
    prompt = _LORA_TAG.sub("", params["Prompt"])
    if prompt != params["Prompt"]:
        warnings.append("LoRA tags left out of the prompt: LoRAs are set at start (--lora)")
    fields.prompt = prompt or None
    if fields.prompt is None:
        warnings.append("no prompt in the text")
    fields.seed = _number(params, "Seed", int, warnings)
    if fields.seed is not None:
        try:
            check_seed(fields.seed)
        except SeedError as error:
            warnings.append(f"Seed: {error}")
            fields.seed = None
    fields.steps = _number(params, "Steps", int, warnings)
    if DISTILLED_CFG in params:  # Forge's Flux: the embedded guidance, and true CFG beside it
        fields.guidance_scale = _number(params, DISTILLED_CFG, float, warnings)
        fields.true_cfg_scale = _number(params, "CFG scale", float, warnings)
    else:
        fields.guidance_scale = _number(params, "CFG scale", float, warnings)
    size = params.get("Size")
    size_match = _SIZE.match(size or "")
    if size_match:
        fields.width, fields.height = (int(side) for side in size_match.groups())
    else:
        warnings.append("no Size" if size is None else f"cannot read Size {size!r}")
    fields.scheduler = _scheduler(params, scheduler_names, warnings)
    variation = a1111.read_variation(params, warnings)
    fields.variation_seed, fields.variation_strength = variation.variation_seed, variation.strength
    fields.resize_from = variation.resize_from
    if SEED_VARIANCE in params:
        fields.seed_variance = _number(params, SEED_VARIANCE, float, warnings) or 0.0
    differs = fields.seed is not None and a1111.noise_warning(params, noise)
    if differs:
        warnings.append(differs)
    if model is not None:
        differs = _model_warning(params, *model)
        if differs:
            warnings.append(differs)
    ignored = [key for key in params if key not in _UNDERSTOOD]
    if ignored:
        warnings.append(f"not applied here: {', '.join(ignored)}")
    return fields


def fields_from_recipe(recipe: Recipe, scheduler_names: list[str], family: str) -> RecipeFields:
    """Fields from our own recipe: exact, except a scheduler this model does not offer; a
    model family other than the loaded model's `family` is a warning."""
    warnings = _family_warning(recipe.family, family)
    scheduler: str | None = recipe.sampler
    if scheduler not in scheduler_names:
        warnings.append(f"scheduler {scheduler!r} is not offered for this model")
        scheduler = None
    return RecipeFields(
        prompt=recipe.prompt,
        negative_prompt=recipe.negative_prompt,
        seed=recipe.seed,
        steps=recipe.steps,
        guidance_scale=recipe.guidance_scale,
        width=recipe.width,
        height=recipe.height,
        scheduler=scheduler,
        warnings=warnings,
        variation_seed=recipe.variation_seed if recipe.variation_strength else None,
        variation_strength=recipe.variation_strength,
        resize_from=tuple(recipe.resize_from) if recipe.resize_from else None,
        true_cfg_scale=recipe.true_cfg_scale,
        seed_variance=recipe.seed_variance,
    )


def _flow_sampler(sampler: str, schedule: str | None, names: list[str]) -> str | None:
    """A flow sampler as Forge writes one ("Euler" with "Schedule type: Beta"), where the
    loaded model offers it; None where it is not a flow sampler's name."""
    if schedule in _FLOW_SCHEDULES and f"{sampler} {schedule}" in names:
        return f"{sampler} {schedule}"
    if schedule == "Simple" and sampler in names:
        return sampler
    return None


def _model_warning(params: dict[str, str], model_id: str, model_hash: str | None) -> str | None:
    """Why the image's model may not be ours, or None: its name (A1111 writes the file's
    stem) or its hash differs."""
    name, digest = params.get("Model"), params.get("Model hash")
    ours = Path(model_id).stem.casefold()
    if (name is None or Path(name).stem.casefold() == ours) and (
        digest is None or digest == model_hash
    ):
        return None
    theirs = " ".join(filter(None, [name, digest and f"(hash {digest})"]))
    return f"made with model {theirs}, rendered here with {model_id}: it will differ"


def _family_warning(rendered: str, loaded: str) -> list[str]:
    if rendered == loaded:
        return []
    label = FAMILIES[rendered].label if rendered in FAMILIES else rendered
    return [
        f"rendered with {label}, but the loaded model is {FAMILIES[loaded].label}: "
        "the same seed makes another image here"
    ]


def _text_chunk(image: Image.Image, key: str) -> str | None:
    value = image.info.get(key)
    return str(value) if isinstance(value, str) else None


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _number(
    params: dict[str, str], key: str, kind: Callable[[str], Any], warnings: list[str]
) -> Any:
    if key not in params:
        warnings.append(f"no {key}")
        return None
    try:
        return kind(params[key])
    except ValueError:
        warnings.append(f"cannot read {key} {params[key]!r}")
        return None


def _scheduler(params: dict[str, str], names: list[str], warnings: list[str]) -> str | None:
    """Our display name for A1111's sampler and schedule type; None (and why) if not offered."""
    sampler = params.get("Sampler")
    if not sampler:
        warnings.append("no Sampler")
        return None
    schedule = params.get("Schedule type")
    flow = _flow_sampler(sampler, schedule, names)
    if flow is not None:
        return flow
    if sampler.endswith(" Karras") and schedule is None:  # A1111 before 1.9: "DPM++ 2M Karras"
        sampler, schedule = sampler.removesuffix(" Karras"), "Karras"
    # As A1111 renders it: no schedule type is Automatic; UniPC and DDIM ignore one.
    schedule = a1111.resolve_schedule(sampler, schedule)
    if schedule in (None, "Uniform"):
        name = _FROM_A1111.get(sampler, sampler)
    elif schedule == "Karras" and sampler in _KARRAS_OF:
        name = _KARRAS_OF[sampler]
    elif schedule == "SGM Uniform" and sampler in _SGM_UNIFORM_OF:
        name = _SGM_UNIFORM_OF[sampler]
    else:
        warnings.append(f"sampler {sampler!r} with schedule type {schedule!r} is not offered")
        return None
    if name not in names:
        warnings.append(f"sampler {sampler!r} is not offered")
        return None
    return name
