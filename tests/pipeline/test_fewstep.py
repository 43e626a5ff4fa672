"""Few-step models: recognised from their files and names, with the defaults their cards give."""

from __future__ import annotations

import diffusers
import numpy as np
import pytest
import torch
from diffusers import LCMScheduler, StableDiffusionPipeline, TCDScheduler, UNet2DConditionModel

from pipeline.fewstep import guidance_condition, named_defaults, recognise
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
    assert defaults.scheduler_class == "LCMScheduler" and defaults.guidance_embedding


def test_the_guidance_embedding_is_what_diffusers_gives_the_unet(
    tiny_lcm: StableDiffusionPipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[torch.Tensor] = []
    forward = UNet2DConditionModel.forward

    def recording(self, sample, timestep, *args, **kwargs):
        seen.append(kwargs["timestep_cond"])
        return forward(self, sample, timestep, *args, **kwargs)

    monkeypatch.setattr(UNet2DConditionModel, "forward", recording)
    images = []
    for guidance in (8.0, 2.0):
        generator = [torch.Generator().manual_seed(s) for s in (1, 2)]
        images.append(
            tiny_lcm(
                ["a fox"] * 2,
                num_inference_steps=2,
                guidance_scale=guidance,
                generator=generator,
                output_type="np",
            ).images
        )
    assert torch.equal(seen[0], guidance_condition(tiny_lcm, [8.0, 8.0], torch.float32))
    assert torch.equal(seen[-1], guidance_condition(tiny_lcm, [2.0, 2.0], torch.float32))
    assert seen[0].shape[0] == 2  # no unconditional half: the guidance is in the embedding
    assert not np.array_equal(*images)


def test_an_ordinary_unet_has_no_guidance_embedding() -> None:
    pipe = build_tiny_pipeline()
    assert guidance_condition(pipe, [7.5], torch.float32) is None
    assert recognise("stable-diffusion-v1-5/stable-diffusion-v1-5", pipe) is None


def test_a_turbo_model_gets_cfg_zero_and_trailing_timesteps() -> None:
    defaults = recognise("stabilityai/sd-turbo", build_tiny_pipeline())
    assert defaults is not None
    assert (defaults.kind, defaults.steps, defaults.guidance_scale) == ("turbo", 1, 0.0)
    assert defaults.scheduler_overrides == {"timestep_spacing": "trailing"}
    scheduler = getattr(diffusers, defaults.scheduler_class).from_config(
        build_tiny_pipeline().scheduler.config, **defaults.scheduler_overrides
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
        ("stabilityai/sdxl-turbo", ("turbo", 1, 0.0, "EulerDiscreteScheduler")),
        ("/models/sd_xl_turbo_1.0_fp16.safetensors", ("turbo", 1, 0.0, "EulerDiscreteScheduler")),
        ("latent-consistency/lcm-lora-sdxl", ("lcm-lora", 4, 1.0, "LCMScheduler")),
        ("loras/LCM_LoRA_SD15.safetensors", ("lcm-lora", 4, 1.0, "LCMScheduler")),
        (
            "ByteDance/Hyper-SD/Hyper-SD15-8steps-CFG-lora.safetensors",
            ("hyper-sd", 8, 5.0, "DDIMScheduler"),
        ),
        ("Hyper-SDXL-2steps-lora.safetensors", ("hyper-sd", 2, 0.0, "DDIMScheduler")),
        ("Hyper-SD15-1step-lora.safetensors", ("hyper-sd", 1, 0.0, "TCDScheduler")),
        (
            "ByteDance/SDXL-Lightning/sdxl_lightning_4step_lora.safetensors",
            ("lightning", 4, 0.0, "EulerDiscreteScheduler"),
        ),
        ("h1t/TCD-SDXL-LoRA", ("tcd", 4, 0.0, "TCDScheduler")),
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
        defaults.scheduler_class,
    )
    assert got == expected


def test_one_step_lightning_predicts_the_sample() -> None:
    defaults = named_defaults("sdxl_lightning_1step_unet.safetensors")
    assert defaults is not None
    assert defaults.scheduler_overrides["prediction_type"] == "sample"


def test_a_few_step_lora_decides_over_the_models_own_files(
    tiny_lcm: StableDiffusionPipeline,
) -> None:
    defaults = recognise("my/lcm-model", tiny_lcm, ["loras/Hyper-SD15-2steps-lora.safetensors"])
    assert defaults is not None and defaults.kind == "hyper-sd"
