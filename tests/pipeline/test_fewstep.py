"""Few-step models: recognised from their files and names, with the defaults their cards give."""

from __future__ import annotations

import pytest
import torch
from diffusers import LCMScheduler, StableDiffusionPipeline, TCDScheduler, UNet2DConditionModel

from pipeline.fewstep import named_defaults, recognise
from pipeline.schedulers import SchedulerRegistry
from pipeline.tiny import build_tiny_pipeline


def with_scheduler(scheduler_class: type) -> StableDiffusionPipeline:
    pipe = build_tiny_pipeline()
    scheduler = scheduler_class.from_config(pipe.scheduler.config)
    return StableDiffusionPipeline(
        **{**pipe.components, "scheduler": scheduler}, requires_safety_checker=False
    )


@pytest.fixture(scope="module")
def tiny_lcm() -> StableDiffusionPipeline:
    """The tiny model made LCM-style: an LCM scheduler and a UNet with the guidance embedding."""
    pipe = with_scheduler(LCMScheduler)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        config = {k: v for k, v in pipe.unet.config.items() if not k.startswith("_")}
        unet = UNet2DConditionModel.from_config({**config, "time_cond_proj_dim": 32})
    return StableDiffusionPipeline(
        **{**pipe.components, "unet": unet.eval()}, requires_safety_checker=False
    )


def test_an_lcm_distilled_model_gets_few_steps_and_guidance_as_embedding(
    tiny_lcm: StableDiffusionPipeline,
) -> None:
    defaults = recognise("my/lcm-model", tiny_lcm)
    assert defaults is not None
    assert (defaults.kind, defaults.steps, defaults.guidance_scale) == ("lcm", 4, 8.0)
    assert defaults.schedulers == ("LCM", "TCD")


def test_an_ordinary_model_has_no_few_step_defaults() -> None:
    pipe = build_tiny_pipeline()
    assert recognise("stable-diffusion-v1-5/stable-diffusion-v1-5", pipe) is None


def test_a_turbo_model_gets_cfg_zero_and_trailing_timesteps() -> None:
    defaults = recognise("stabilityai/sd-turbo", build_tiny_pipeline())
    assert defaults is not None
    assert (defaults.kind, defaults.steps, defaults.guidance_scale) == ("turbo", 1, 0.0)
    scheduler = SchedulerRegistry(build_tiny_pipeline().scheduler, defaults.schedulers).make(
        defaults.schedulers[0]
    )
    scheduler.set_timesteps(defaults.steps)
    assert scheduler.timesteps.tolist() == [999]  # trailing: the one step starts at pure noise


@pytest.mark.parametrize(
    ("scheduler_class", "kind", "guidance"),
    [(LCMScheduler, "lcm-lora", 1.0), (TCDScheduler, "tcd", 0.0)],
)
def test_a_few_step_scheduler_config_is_recognised(
    scheduler_class: type, kind: str, guidance: float
) -> None:
    defaults = recognise("someone/merged-model", with_scheduler(scheduler_class))
    assert defaults is not None
    assert (defaults.kind, defaults.steps, defaults.guidance_scale) == (kind, 4, guidance)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("stabilityai/sdxl-turbo", ("turbo", 1, 0.0, "Euler trailing")),
        ("/models/sd_xl_turbo_1.0_fp16.safetensors", ("turbo", 1, 0.0, "Euler trailing")),
        ("latent-consistency/lcm-lora-sdxl", ("lcm-lora", 4, 1.0, "LCM")),
        ("loras/LCM_LoRA_SD15.safetensors", ("lcm-lora", 4, 1.0, "LCM")),
        (
            "ByteDance/Hyper-SD/Hyper-SD15-8steps-CFG-lora.safetensors",
            ("hyper-sd", 8, 5.0, "DDIM trailing"),
        ),
        ("Hyper-SDXL-2steps-lora.safetensors", ("hyper-sd", 2, 0.0, "DDIM trailing")),
        ("Hyper-SD15-1step-lora.safetensors", ("hyper-sd", 1, 0.0, "TCD")),
        (
            "ByteDance/SDXL-Lightning/sdxl_lightning_4step_lora.safetensors",
            ("lightning", 4, 0.0, "Euler trailing"),
        ),
        ("h1t/TCD-SDXL-LoRA", ("tcd", 4, 0.0, "TCD")),
        ("dreamshaperXL_turboDPMSDE.safetensors", None),  # a turbo merge, not SD-Turbo
        ("runwayml/stable-diffusion-v1-5", None),
    ],
)
def test_names_from_the_model_cards(name: str, expected: tuple | None) -> None:
    defaults = named_defaults(name)
    got = defaults and (
        defaults.kind,
        defaults.steps,
        defaults.guidance_scale,
        defaults.schedulers[0],
    )
    assert got == expected


def test_one_step_lightning_predicts_the_sample() -> None:
    defaults = named_defaults("sdxl_lightning_1step_unet.safetensors")
    assert defaults is not None
    assert defaults.schedulers == ("Euler trailing x0",)
    scheduler = SchedulerRegistry(build_tiny_pipeline().scheduler, defaults.schedulers).make(
        "Euler trailing x0"
    )
    assert scheduler.config.prediction_type == "sample"


def test_a_few_step_lora_decides_over_the_models_own_files(
    tiny_lcm: StableDiffusionPipeline,
) -> None:
    defaults = recognise("my/lcm-model", tiny_lcm, ["loras/Hyper-SD15-2steps-lora.safetensors"])
    assert defaults is not None and defaults.kind == "hyper-sd"
