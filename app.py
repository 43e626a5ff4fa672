"""Seed Explorer: settings (command line and environment) -> engine -> page -> server.

python app.py                      # Stable Diffusion 1.5 (falls back to the tiny model offline)
python app.py --model tiny         # the built-in random-weight model, no download
python app.py --model ./my-model   # a local diffusers folder (SD 1.x, 2.x or XL)
python app.py --model ./model.safetensors --lora ./style.safetensors:0.8   # A1111's files
python app.py --model ./flux1-dev-Q8_0.gguf --config black-forest-labs/FLUX.1-dev --offload
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import gradio as gr

import ui.gpu  # noqa: F401 - imports `spaces` (ZeroGPU), which must come before CUDA starts
from pipeline.admission import DEFAULT_PER_SESSION
from pipeline.builder import EngineSettings, build_engines
from pipeline.determinism import enable_deterministic
from pipeline.engine import DEFAULT_MICRO_BATCH
from pipeline.engines import DeviceError, Engines, parse_devices
from pipeline.loading import DEFAULT_MODEL_ID, DTYPES, ModelLoadError
from pipeline.lora import LoraError, parse_lora_list
from pipeline.malloc import keep_freed_memory
from pipeline.plan import Defaults
from pipeline.quantize import OFFLOAD, QUANTIZE
from pipeline.requests import Limits
from pipeline.tiny import TINY_MODELS
from serving.replicas import Replicas
from ui import CSS, build_demo
from ui.gpu import zerogpu
from ui.upkeep import EXPIRE_AFTER

if TYPE_CHECKING:
    from pipeline.engine import Engine
    from serving.remote import RayEngine

log = logging.getLogger("seed_explorer")
_TRUE = {"1", "true", "yes", "on"}
# A public Space serves strangers on shared hardware: smaller runs unless the owner says so.
SPACE_LIMITS = Limits(max_tiles=8, max_steps=50, max_side=768)
# Gradio's upload route is open to anyone who can reach the app; nothing here needs big files.
MAX_UPLOAD = "16mb"
_RULE = "!" * 78
# How often Gradio's idle queue looks for a new job and for progress to send: 1 ms and 10 ms
# on Linux by default, about 5% of a core with nothing to do, and wake-ups that hold up torch's
# threads mid-step on a small CPU. At 10 ms a job waits at most that long to start; the app
# sends no progress through Gradio's (the browser polls for it: ui/runner.py).
QUEUE_POLL_S = {"sleep_when_free": 0.01, "progress_update_sleep_when_free": 0.1}


class SettingsError(ValueError):
    """A setting that cannot be used, with one line on why (never the password itself)."""


def on_space() -> bool:
    """Hugging Face sets SPACE_ID in every Space; there saving is off and limits are lower."""
    return bool(os.environ.get("SPACE_ID"))


def _env(name: str, *fallbacks: str, default: str | None = None) -> str | None:
    for key in (name, *fallbacks):
        if os.environ.get(key):
            return os.environ[key]
    return default


def _env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    return value.strip().lower() in _TRUE if value else default


def _switch(parser: argparse.ArgumentParser, flag: str, env: str, help: str) -> None:
    """--x turns a setting on, --no-x turns one off; its variable (1 or 0) sets the default."""
    off = flag.startswith("--no-")
    parser.add_argument(
        flag,
        dest=flag.removeprefix("--no-" if off else "--").replace("-", "_"),
        action="store_false" if off else "store_true",
        default=_env_flag(env, off),
        help=f"{help}; env {env}={0 if off else 1}",
    )


def _offload_env() -> str | None:
    """SEED_EXPLORER_OFFLOAD: model or sequential; 1 (as before the modes) is model."""
    value = (os.environ.get("SEED_EXPLORER_OFFLOAD") or "").strip().lower()
    if value in _TRUE:
        return "model"
    if value in OFFLOAD or value in ("", "0", "false", "no", "off"):
        return value if value in OFFLOAD else None
    raise SettingsError(f"SEED_EXPLORER_OFFLOAD must be model, sequential or 0, not {value!r}")


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, not {text}")
    return value


def _devices(text: str) -> tuple[str, ...]:
    try:
        return parse_devices(text)
    except DeviceError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _replicas(text: str) -> Replicas:
    try:
        return Replicas.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _call_rows(text: str) -> int:
    value = _count(text)
    if value == 1:
        raise argparse.ArgumentTypeError("must be 0 (the device's default) or 2 or more")
    return value


def _at_least_one(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def parse_auth(value: str) -> list[tuple[str, str]]:
    """'user:password', several separated by commas, into Gradio's list of pairs."""
    pairs = []
    for number, entry in enumerate(value.split(","), start=1):
        user, colon, password = entry.strip().partition(":")
        if not (colon and user and password):
            raise SettingsError(
                f"--auth / SEED_EXPLORER_AUTH entry {number} is not user:password "
                "(several: user1:password1,user2:password2)"
            )
        pairs.append((user, password))
    return pairs


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Every flag can also come from an environment variable (for Hugging Face Spaces).

    Raises SettingsError for a malformed --auth, so the caller can exit with one line.
    """
    limits = SPACE_LIMITS if on_space() else Limits()
    outputs = _env("SEED_EXPLORER_OUTPUTS", default=None if on_space() else "outputs")
    if not _env_flag("SEED_EXPLORER_SAVE", True):
        outputs = None
    parser = argparse.ArgumentParser(
        prog="app.py",
        description="Seed Explorer: seeded grids, pinned seeds, prompt refinement and "
        "scheduler comparison on one cached diffusers pipeline.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--model",
        default=_env("SEED_EXPLORER_MODEL"),
        help="hub id, local diffusers folder or single .safetensors checkpoint (Stable "
        "Diffusion 1.x, 2.x or XL), a transformer on its own (.gguf or fp8 .safetensors, "
        "with --config), or a built-in random-weight model "
        f"({', '.join(TINY_MODELS)}: offline, images are noise); "
        f"env SEED_EXPLORER_MODEL; default {DEFAULT_MODEL_ID}, falling back to tiny "
        "when it cannot be loaded",
    )
    parser.add_argument(
        "--config",
        metavar="DIR|ID",
        default=_env("SEED_EXPLORER_CONFIG"),
        help="for a single-file checkpoint: the matching diffusers folder or cached hub id its "
        "configs come from (offline, without it, only a cached standard repo works); for a "
        "transformer file: the pipeline it goes into, text encoders and VAE included; "
        "env SEED_EXPLORER_CONFIG",
    )
    parser.add_argument(
        "--lora",
        action="append",
        metavar="SPEC[:WEIGHT]",
        help="a LoRA fused in at start: a .safetensors file, a folder with diffusers' "
        "pytorch_lora_weights.safetensors, or a hub id, weight 1 unless given; repeatable; "
        "env SEED_EXPLORER_LORA (comma-separated)",
    )
    parser.add_argument(
        "--default-steps",
        type=int,
        metavar="N",
        default=_env("SEED_EXPLORER_DEFAULT_STEPS"),
        help="steps when none are asked for, for every scheduler (instead of the few-step "
        "model's or each scheduler's own); env SEED_EXPLORER_DEFAULT_STEPS",
    )
    parser.add_argument(
        "--default-guidance",
        type=float,
        metavar="CFG",
        default=_env("SEED_EXPLORER_DEFAULT_GUIDANCE"),
        help="guidance scale when none is asked for (instead of the few-step model's or the "
        "family's); env SEED_EXPLORER_DEFAULT_GUIDANCE",
    )
    parser.add_argument(
        "--default-scheduler",
        metavar="NAME",
        default=_env("SEED_EXPLORER_DEFAULT_SCHEDULER"),
        help="scheduler when none is chosen, as the menu names it (instead of the few-step "
        "model's or the model's own); env SEED_EXPLORER_DEFAULT_SCHEDULER",
    )
    parser.add_argument(
        "--host",
        default=_env("SEED_EXPLORER_HOST", "GRADIO_SERVER_NAME", default="127.0.0.1"),
        help="address to listen on; 0.0.0.0 is every network this machine is on; "
        "env SEED_EXPLORER_HOST or GRADIO_SERVER_NAME",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=_env("SEED_EXPLORER_PORT", "GRADIO_SERVER_PORT"),
        help="port; env SEED_EXPLORER_PORT or GRADIO_SERVER_PORT; default the first free from 7860",
    )
    _switch(parser, "--share", "SEED_EXPLORER_SHARE", "also serve on a public gradio.live link")
    parser.add_argument(
        "--auth",
        metavar="USER:PASSWORD",
        help="require a login: user:password, several separated by commas; "
        "env SEED_EXPLORER_AUTH (better: a password on the command line shows in ps)",
    )
    parser.add_argument(
        "--device",
        choices=["auto", "cuda", "mps", "cpu"],
        default=_env("SEED_EXPLORER_DEVICE", default="auto"),
        help="where the model runs (fp16 on CUDA, float32 elsewhere); env SEED_EXPLORER_DEVICE",
    )
    parser.add_argument(
        "--devices",
        type=_devices,
        metavar="LIST",
        default=_env("SEED_EXPLORER_DEVICES"),
        help="one engine per device, each run to the least-loaded: cuda:0,cuda:1, or all "
        "(every CUDA device); replaces --device; env SEED_EXPLORER_DEVICES",
    )
    _switch(
        parser,
        "--ray",
        "SEED_EXPLORER_RAY",
        "render on Ray Serve replicas (pip install -r requirements-ray.txt): a local Ray, or "
        "the cluster at --ray-address; this app stays the front door",
    )
    parser.add_argument(
        "--ray-address",
        metavar="ADDR",
        default=_env("SEED_EXPLORER_RAY_ADDRESS"),
        help="with --ray: the Ray cluster to join (auto, or the head's host:6379); its "
        "application deployed by docs/serve.yaml is used when there is one; default: start a "
        "local Ray; env SEED_EXPLORER_RAY_ADDRESS",
    )
    parser.add_argument(
        "--replicas",
        type=_replicas,
        metavar="N|MIN-MAX",
        default=_env("SEED_EXPLORER_REPLICAS", default="1"),
        help="with --ray: how many replicas of the model (one GPU each where the cluster has "
        "GPUs), or MIN-MAX to let Serve autoscale; env SEED_EXPLORER_REPLICAS",
    )
    parser.add_argument(
        "--dtype",
        choices=["auto", *DTYPES],
        default=_env("SEED_EXPLORER_DTYPE", default="auto"),
        help="the model's precision: auto is float16 on CUDA and float32 elsewhere; "
        "env SEED_EXPLORER_DTYPE",
    )
    parser.add_argument(
        "--generator-device",
        choices=["cpu", "model", "nv"],
        default=_env("SEED_EXPLORER_GENERATOR_DEVICE", default="cpu"),
        help="where seeds make their noise: cpu gives the same image for a seed on any "
        "machine; model uses the model's device; nv makes an NVIDIA GPU's noise on the CPU, "
        "as A1111's NV RNG does; env SEED_EXPLORER_GENERATOR_DEVICE",
    )
    _switch(
        parser,
        "--deterministic",
        "SEED_EXPLORER_DETERMINISTIC",
        "deterministic GPU kernels: the same request gives the same image on the same GPU, "
        "somewhat slower",
    )
    _switch(
        parser,
        "--no-safety-checker",
        "SEED_EXPLORER_SAFETY_CHECKER",
        "turn off the safety checker a model ships (it blacks out flagged images)",
    )
    # Big models on smaller cards (pipeline/quantize.py).
    parser.add_argument(
        "--offload",
        nargs="?",
        const="model",
        choices=OFFLOAD,
        default=_offload_env(),
        help="diffusers' CPU offload for a card smaller than the model (Flux, SD3.5 Large): "
        "model (alone: --offload) keeps each module on the GPU only while it runs; sequential "
        "each layer, least memory, slowest; the same images; env SEED_EXPLORER_OFFLOAD",
    )
    parser.add_argument(
        "--quantize",
        choices=list(QUANTIZE),
        default=_env("SEED_EXPLORER_QUANTIZE"),
        help="quantize the transformer (or UNet) and the big text encoders as they load: "
        "bitsandbytes_4bit (NF4) or _8bit need CUDA, torchao_int8wo (weight-only int8) runs "
        "anywhere; other images than unquantized; env SEED_EXPLORER_QUANTIZE",
    )
    _switch(
        parser,
        "--attention-slicing",
        "SEED_EXPLORER_ATTENTION_SLICING",
        "compute attention in slices: less GPU memory, slower",
    )
    _switch(
        parser,
        "--compile",
        "SEED_EXPLORER_COMPILE",
        "torch.compile the UNet: faster on CUDA after a slow first run at each image size",
    )
    parser.add_argument(
        "--micro-batch",
        type=_count,
        metavar="N",
        default=_env("SEED_EXPLORER_MICRO_BATCH", default=str(DEFAULT_MICRO_BATCH)),
        help="most images per model call; 0 renders a whole run in one call; "
        "env SEED_EXPLORER_MICRO_BATCH",
    )
    parser.add_argument(
        "--outputs",
        type=Path,
        metavar="DIR",
        default=outputs,
        help="folder every rendered PNG is saved to (none on a Hugging Face Space); "
        "env SEED_EXPLORER_OUTPUTS",
    )
    parser.add_argument(
        "--no-save",
        dest="outputs",
        action="store_const",
        const=None,
        default=argparse.SUPPRESS,
        help="save nothing to disk; env SEED_EXPLORER_SAVE=0",
    )
    _switch(
        parser,
        "--no-previews",
        "SEED_EXPLORER_PREVIEWS",
        "no in-progress previews while a run renders (a little faster)",
    )
    parser.add_argument(
        "--max-tiles",
        type=int,
        default=_env("SEED_EXPLORER_MAX_TILES", default=str(limits.max_tiles)),
        help="most images one run may render; env SEED_EXPLORER_MAX_TILES",
    )
    parser.add_argument(
        "--max-steps",
        type=int,
        default=_env("SEED_EXPLORER_MAX_STEPS", default=str(limits.max_steps)),
        help="most denoising steps per image; env SEED_EXPLORER_MAX_STEPS",
    )
    parser.add_argument(
        "--max-side",
        type=int,
        default=_env("SEED_EXPLORER_MAX_SIDE", default=str(limits.max_side)),
        help="largest width or height in pixels; env SEED_EXPLORER_MAX_SIDE",
    )
    parser.add_argument(
        "--queue-size",
        type=int,
        default=_env("SEED_EXPLORER_QUEUE_SIZE", default="32"),
        help="most requests waiting at once; env SEED_EXPLORER_QUEUE_SIZE",
    )
    parser.add_argument(
        "--expire-after",
        type=_seconds,
        metavar="SECONDS",
        default=_env("SEED_EXPLORER_EXPIRE_AFTER", default=str(EXPIRE_AFTER)),
        help="served files (tiles, previews, zips, uploads) go this long after they were "
        "written, unless their page is still open; the outputs folder is kept; "
        "env SEED_EXPLORER_EXPIRE_AFTER",
    )
    # Many people at once: runs share denoiser calls step by step, in calls of a fixed size;
    # the line in front of the engine keeps any one person from filling it.
    _switch(
        parser,
        "--no-share-steps",
        "SEED_EXPLORER_SHARE_STEPS",
        "runs take the model one at a time (one lock) instead of sharing its denoiser calls "
        "step by step (off on ZeroGPU)",
    )
    parser.add_argument(
        "--max-batch",
        type=_call_rows,
        metavar="ROWS",
        default=_env("SEED_EXPLORER_MAX_BATCH", default="0"),
        help="rows in every shared denoiser call (an image with CFG takes 2); 0: the "
        "device's default (CUDA 16, MPS 8, CPU 4); env SEED_EXPLORER_MAX_BATCH",
    )
    parser.add_argument(
        "--max-runs-per-session",
        type=_at_least_one,
        metavar="N",
        default=_env("SEED_EXPLORER_MAX_RUNS_PER_SESSION", default=str(DEFAULT_PER_SESSION)),
        help="most runs one person may have rendering or waiting; "
        "env SEED_EXPLORER_MAX_RUNS_PER_SESSION",
    )
    args = parser.parse_args(argv)
    if args.ray and args.devices:
        raise SettingsError(
            "--devices and --ray cannot go together: on Ray each replica takes one GPU (--replicas)"
        )
    # Read after parsing so that --help never prints a password taken from the environment.
    auth = args.auth if args.auth is not None else _env("SEED_EXPLORER_AUTH")
    args.auth = parse_auth(auth) if auth is not None else None
    loras = args.lora if args.lora is not None else [_env("SEED_EXPLORER_LORA", default="")]
    try:
        args.lora = tuple(parse_lora_list(loras))
    except LoraError as error:
        raise SettingsError(str(error)) from None
    return args


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach an address (a host name other than localhost can't
    be told without resolving it, so it counts as exposed)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def exposure_notice(args: argparse.Namespace) -> tuple[int, str] | None:
    """What to log about who can reach the app: a loud warning when anyone can and no login
    is asked for; one info line on a Space, whose own visibility settings guard it."""
    if is_loopback(args.host) and not args.share:
        return None
    where = " and ".join(
        ([] if is_loopback(args.host) else [f"listening on {args.host}"])
        + (["a public gradio.live link"] if args.share else [])
    )
    if args.auth:
        users = ", ".join(user for user, _ in args.auth)
        return logging.INFO, f"Reachable beyond this machine ({where}); login required: {users}"
    if on_space():
        return logging.INFO, (
            f"On Hugging Face Space {os.environ['SPACE_ID']}: open to whoever the Space's "
            "visibility allows (set SEED_EXPLORER_AUTH to ask for a login as well)."
        )
    return logging.WARNING, "\n".join(
        [
            _RULE,
            f"WARNING: Seed Explorer is reachable beyond this machine ({where})",
            "WARNING: and asks for NO LOGIN. Anyone who can reach it can run the model on",
            "WARNING: this machine's hardware and see every image it renders.",
            "WARNING: Add a login with --auth user:password (or SEED_EXPLORER_AUTH), or serve",
            "WARNING: this machine only: --host 127.0.0.1 and no --share.",
            _RULE,
        ]
    )


def engine_settings(args: argparse.Namespace) -> EngineSettings:
    """The engine the flags ask for (pipeline/builder.py sets it up)."""
    return EngineSettings(
        model=args.model or DEFAULT_MODEL_ID,
        device=args.device,
        dtype=args.dtype,
        safety_checker=args.safety_checker,
        attention_slicing=args.attention_slicing,
        compile=args.compile,
        offload=args.offload,
        quantize=args.quantize,
        generator_device=args.generator_device,
        micro_batch=args.micro_batch or None,
        limits=Limits(max_tiles=args.max_tiles, max_steps=args.max_steps, max_side=args.max_side),
        fall_back_to_tiny=args.model is None,
        config=args.config,
        loras=args.lora,
        defaults=Defaults(
            scheduler=args.default_scheduler,
            steps=args.default_steps,
            guidance_scale=args.default_guidance,
        ),
        share_steps=args.share_steps and not zerogpu(),
        max_batch=args.max_batch or None,
    )


def create_engine(args: argparse.Namespace) -> Engine | Engines | RayEngine:
    """Load the model (or explain in one line why not) and wrap it in the engine: one per
    device with --devices, Ray Serve's replicas with --ray (each answers as an Engine does)."""
    if args.ray:
        try:
            from serving.remote import connect  # Ray is optional: only --ray needs it
        except ImportError as error:
            raise SettingsError(
                f"--ray needs Ray Serve ({error}): pip install -r requirements-ray.txt"
            ) from None
        return connect(engine_settings(args), args.replicas, args.ray_address)
    return build_engines(engine_settings(args), args.devices or (args.device,))


def queue(demo: gr.Blocks, max_size: int) -> None:
    """One job at a time, at most `max_size` waiting, polled every QUEUE_POLL_S (the model's
    events pass many at a time to the line in front of the engine, pipeline/admission.py)."""
    # api_open=False: a direct POST to /run/<name> would skip the queue, its bound and its order.
    demo.queue(max_size=max_size, default_concurrency_limit=1, api_open=False)
    for name, seconds in QUEUE_POLL_S.items():
        if hasattr(demo._queue, name):
            setattr(demo._queue, name, seconds)
        else:  # another Gradio: its own polling, which costs speed, not correctness
            log.warning("Gradio's queue has no %s; it polls at its own pace", name)


def quiet_libraries() -> None:
    """The terminal says what the app does, in its words: no line per HTTP request."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for name in ("httpx", "httpcore", "huggingface_hub"):
        logging.getLogger(name).setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> None:
    quiet_libraries()
    try:
        args = parse_args(argv)
    except SettingsError as error:
        sys.exit(f"error: {error}")
    if keep_freed_memory():
        log.info("malloc: freed memory kept for the next step (pipeline/malloc.py)")
    if args.deterministic:
        enable_deterministic()  # before the model loads: cuBLAS reads its setting once
        log.info("Deterministic mode: deterministic kernels, cuDNN autotuning off")
    try:
        engine = create_engine(args)
    except SettingsError as error:
        sys.exit(f"error: {error}")
    except ModelLoadError as error:
        hint = error.hint or (
            "check the hub id or folder, run once online to cache it, or try the app offline "
            "with --model tiny"
        )
        sys.exit(f"error: cannot load model {args.model!r}: {error}. Hint: {hint}.")
    card = engine.card
    log.info(
        "Model %s (%s) on %s (%s), loaded in %.1f s",
        card.model_id,
        card.family_label,
        card.device,
        engine.provenance.dtype,
        card.seconds,
    )
    if isinstance(engine, Engines):
        log.info(
            "One engine per device (%s); each run goes to the least loaded",
            ", ".join(engine.devices),
        )
    offload, quantize = engine.provenance.offload_mode, engine.provenance.quantize
    if offload or quantize:
        log.info("Offload %s; quantization %s", offload or "off", quantize or "off")
    for lora in card.loras:
        log.info("LoRA %s", lora)
    if card.few_step:
        log.info("A %s", card.few_step)
    if card.notice:
        log.warning(card.notice)
    log.info("Saving images: %s", args.outputs or "off")
    if engine.max_batch:
        log.info("Runs share denoiser calls: %d rows per call", engine.max_batch)
    demo = build_demo(
        engine,
        outputs=args.outputs,
        previews=args.previews,
        runs_per_session=args.max_runs_per_session,
        expire_after=args.expire_after,
    )
    queue(demo, args.queue_size)
    notice = exposure_notice(args)
    if notice:
        log.log(*notice)
    demo.launch(
        server_name=args.host,
        server_port=args.port,
        share=args.share,
        auth=args.auth,
        max_file_size=MAX_UPLOAD,
        css=CSS,
        quiet=True,  # Gradio's own lines name its launch() arguments, not our flags
        prevent_thread_lock=True,
    )
    log.info("Seed Explorer is serving at %s", demo.local_url)
    if demo.share_url:
        log.info("Public link (--share), for 1 week: %s", demo.share_url)
    elif not on_space():
        log.info("For a public link, start with --share")
    demo.block_thread()


if __name__ == "__main__":
    main()
