"""The built-in tiny models: Stable Diffusion's architectures, shrunk, with random weights.

Built in memory in well under a second with no download, so the interface can be tried
offline and the tests exercise the real code paths (scheduler swaps, generator lists,
saving and loading a local folder). Their images are noise: they prove mechanics, not art.

- `tiny`: Stable Diffusion 1.x's layout (one CLIP text encoder, PNDM as SD 1.5 ships).
- `tiny-sd2`: the same layout with SD 2.x-v's scheduler config (v-prediction).
- `tiny-sdxl`: SDXL's layout: two text encoders (the second with a projection), a UNet with
  `addition_embed_type="text_time"`, and a VAE with `force_upcast`, Euler as SDXL ships.
- `tiny-flux`: Flux.1 [dev]'s layout: CLIP (pooled) and T5 text encoders, a transformer with a
  guidance embedding reading packed 2x2 latent patches, a 16-channel VAE with a shift factor,
  and FLUX.1-dev's scheduler config (the shift from the image's token count).
- `tiny-flux-schnell`: the same without the guidance embedding, FLUX.1-schnell's scheduler.
- `tiny-sd3`: Stable Diffusion 3.5's layout: two CLIP encoders with projections and T5, an
  MMDiT transformer, SD3.5's scheduler config (a fixed shift of 3).
- `tiny-chroma`: Chroma's layout: T5 alone, Flux.1's transformer without CLIP's pooled vector
  or a guidance embedding (its modulations from a small approximator), Flux.1's VAE and
  FLUX.1-dev's scheduler config, as Chroma1-HD ships it.
- `tiny-z-image-turbo`: Z-Image Turbo's layout: Qwen3 reading the prompt through its chat
  template (a byte-level BPE tokenizer built offline), the single-stream S3-DiT transformer,
  Flux.1's VAE, and Z-Image Turbo's scheduler config (a fixed shift of 3).
- `tiny-qwen-image`: Qwen-Image's layout: Qwen2.5-VL (a tiny vision tower beside its text
  model) with the same offline tokenizer, the MMDiT transformer on packed latents, Wan's
  video VAE (one frame), and Qwen-Image's scheduler config (`mu` from the token count,
  stretched to a terminal sigma of 0.02).
"""

from __future__ import annotations

import json
import string
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import (
    AutoencoderKL,
    AutoencoderKLQwenImage,
    ChromaPipeline,
    ChromaTransformer2DModel,
    DiffusionPipeline,
    EulerDiscreteScheduler,
    FlowMatchEulerDiscreteScheduler,
    FluxPipeline,
    FluxTransformer2DModel,
    PNDMScheduler,
    QwenImagePipeline,
    QwenImageTransformer2DModel,
    SD3Transformer2DModel,
    StableDiffusion3Pipeline,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
    ZImagePipeline,
    ZImageTransformer2DModel,
)
from transformers import (
    AutoTokenizer,
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTextModelWithProjection,
    CLIPTokenizer,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2Tokenizer,
    Qwen3Config,
    Qwen3Model,
    T5Config,
    T5EncoderModel,
    T5Tokenizer,
)

TINY_MODEL_ID = "tiny"
TINY_SD2_ID = "tiny-sd2"
TINY_SDXL_ID = "tiny-sdxl"
TINY_FLUX_ID = "tiny-flux"
TINY_FLUX_SCHNELL_ID = "tiny-flux-schnell"
TINY_SD3_ID = "tiny-sd3"
TINY_CHROMA_ID = "tiny-chroma"
TINY_Z_IMAGE_ID = "tiny-z-image-turbo"
TINY_QWEN_IMAGE_ID = "tiny-qwen-image"

# Stable Diffusion 1.5's own scheduler config, so the registry sees what it would see there.
SD15_SCHEDULER_CONFIG = {
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "clip_sample": False,
}

# Stable Diffusion 2.x-v's (768 px) scheduler config: the UNet predicts v, not the noise.
SD2_V_SCHEDULER_CONFIG = {
    **SD15_SCHEDULER_CONFIG,
    "prediction_type": "v_prediction",
}
# SDXL base's scheduler config (EulerDiscreteScheduler, leading timesteps), whole: the keys
# Euler ignores set DDIM's and PNDM's behaviour when the registry builds them from it.
SDXL_SCHEDULER_CONFIG = {
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "steps_offset": 1,
    "timestep_spacing": "leading",
    "interpolation_type": "linear",
    "use_karras_sigmas": False,
    "sample_max_value": 1.0,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "clip_sample": False,
}
SDXL_VAE_SCALING = 0.13025  # SDXL's VAE: another latent scale than SD 1.x's 0.18215
# FLUX.1-dev's and FLUX.1-schnell's scheduler configs: dev shifts by `mu`, from the image's
# token count; schnell not at all.
FLUX_DEV_SCHEDULER_CONFIG = {
    "base_image_seq_len": 256,
    "base_shift": 0.5,
    "max_image_seq_len": 4096,
    "max_shift": 1.15,
    "num_train_timesteps": 1000,
    "shift": 3.0,
    "use_dynamic_shifting": True,
}
FLUX_SCHNELL_SCHEDULER_CONFIG = {
    **FLUX_DEV_SCHEDULER_CONFIG,
    "shift": 1.0,
    "use_dynamic_shifting": False,
}
SD3_SCHEDULER_CONFIG = {"num_train_timesteps": 1000, "shift": 3.0}  # SD 3.5's
Z_IMAGE_SCHEDULER_CONFIG = {
    "num_train_timesteps": 1000,
    "shift": 3.0,
    "use_dynamic_shifting": False,
}
# Qwen's chat template as the image pipelines use it: the user's turn, then the assistant's
# (Qwen3's "thinking" off adds an empty think block).
QWEN_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message.role }}\n{{ message.content }}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n"
    "{% endif %}{% endif %}"
)
QWEN_WIDTH = 32
QWEN_IMAGE_SCHEDULER_CONFIG = {
    "base_image_seq_len": 256,
    "base_shift": 0.5,
    "max_image_seq_len": 8192,
    "max_shift": 0.9,
    "num_train_timesteps": 1000,
    "shift": 1.0,
    "shift_terminal": 0.02,
    "time_shift_type": "exponential",
    "use_dynamic_shifting": True,
}
# Flux's and SD3's VAE: 16 latent channels, a scale and a shift of its own.
FLUX_VAE = {"scaling_factor": 0.3611, "shift_factor": 0.1159}
SD3_VAE = {"scaling_factor": 1.5305, "shift_factor": 0.0609}
FLOW_LATENT_CHANNELS = 16
T5_WIDTH = 64  # SD3 pads both CLIPs' hidden states side by side (2 x 32) to T5's width

_WEIGHTS_SEED = 0


@dataclass(frozen=True)
class RandomArchitecture:
    """Stable Diffusion's layout at a chosen size: UNet levels, VAE levels, text encoder."""

    unet_channels: tuple[int, ...]
    unet_down: tuple[str, ...]
    unet_up: tuple[str, ...]
    sample_size: int
    vae_channels: tuple[int, ...]
    text_width: int
    text_layers: int
    text_intermediate: int
    text_heads: int = 4
    vae_layers: int = 1  # ResNet blocks per VAE level (Stable Diffusion's VAE: 2)
    norm_groups: int = 32  # GroupNorm groups in the UNet and the VAE (Stable Diffusion's: 32)


TINY = RandomArchitecture(
    unet_channels=(32, 64),
    unet_down=("DownBlock2D", "CrossAttnDownBlock2D"),
    unet_up=("CrossAttnUpBlock2D", "UpBlock2D"),
    sample_size=32,
    vae_channels=(32, 64),
    text_width=32,
    text_layers=5,
    text_intermediate=37,
)


def _vocab_and_merges() -> tuple[dict[str, int], list[str]]:
    """CLIP's byte-level alphabet, plus merges of lowercase letter pairs.

    The merges make a prompt about two characters a token, so ordinary prompts and their
    refine suffixes fit the 77-token window as they would with a real tokenizer.
    """
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    symbols = [chr(b) for b in printable]
    extra = 0
    for b in range(256):
        if b not in printable:
            symbols.append(chr(256 + extra))
            extra += 1
    letters = string.ascii_lowercase
    merges = [f"{a} {b}" for a in letters for b in letters]
    merges += [f"{a} {b}</w>" for a in letters for b in letters]
    pairs = [m.replace(" ", "") for m in merges]
    tokens = symbols + [s + "</w>" for s in symbols] + pairs
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {token: i for i, token in enumerate(tokens)}, merges


def _tokenizer() -> CLIPTokenizer:
    # transformers 5 ignores vocab_file/merges_file passed to the constructor; from_pretrained
    # on a folder is the way that reads them.
    vocab, merges = _vocab_and_merges()
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "vocab.json").write_text(json.dumps(vocab))
        Path(folder, "merges.txt").write_text("\n".join(["#version: 0.2", *merges]) + "\n")
        return CLIPTokenizer.from_pretrained(folder, model_max_length=77)


def _text_config(arch: RandomArchitecture, tokenizer: CLIPTokenizer, **extra) -> CLIPTextConfig:
    return CLIPTextConfig(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        hidden_size=arch.text_width,
        intermediate_size=arch.text_intermediate,
        num_attention_heads=arch.text_heads,
        num_hidden_layers=arch.text_layers,
        max_position_embeddings=77,
        layer_norm_eps=1e-5,
        **extra,
    )


def _unet(arch: RandomArchitecture, **extra) -> UNet2DConditionModel:
    return UNet2DConditionModel(
        block_out_channels=arch.unet_channels,
        layers_per_block=2,
        sample_size=arch.sample_size,
        in_channels=4,
        out_channels=4,
        down_block_types=arch.unet_down,
        up_block_types=arch.unet_up,
        norm_num_groups=arch.norm_groups,
        **extra,
    )


def _vae(arch: RandomArchitecture, **extra) -> AutoencoderKL:
    levels = len(arch.vae_channels)
    return AutoencoderKL(
        block_out_channels=arch.vae_channels,
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * levels,
        up_block_types=("UpDecoderBlock2D",) * levels,
        norm_num_groups=arch.norm_groups,
        layers_per_block=arch.vae_layers,
        **{"latent_channels": 4, **extra},
    )


def build_random_pipeline(
    arch: RandomArchitecture, scheduler_config: dict | None = None
) -> StableDiffusionPipeline:
    """A Stable Diffusion pipeline of the given size with seeded random weights, float32, CPU."""
    tokenizer = _tokenizer()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_WEIGHTS_SEED)
        unet = _unet(arch, cross_attention_dim=arch.text_width)
        vae = _vae(arch)
        text_encoder = CLIPTextModel(_text_config(arch, tokenizer))
    pipe = StableDiffusionPipeline(
        unet=unet.eval(),
        vae=vae.eval(),
        text_encoder=text_encoder.eval(),
        tokenizer=tokenizer,
        scheduler=PNDMScheduler.from_config(scheduler_config or SD15_SCHEDULER_CONFIG),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def build_random_xl_pipeline(arch: RandomArchitecture) -> StableDiffusionXLPipeline:
    """An SDXL pipeline of the given size with seeded random weights, float32, CPU.

    As SDXL: the UNet reads both encoders' hidden states side by side (cross attention of
    twice the text width) and an added embedding of the second encoder's pooled projection
    and six size-conditioning numbers (`time_ids`).
    """
    tokenizer = _tokenizer()
    time_dim = 8
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_WEIGHTS_SEED)
        unet = _unet(
            arch,
            attention_head_dim=(2, 4),
            use_linear_projection=True,
            addition_embed_type="text_time",
            addition_time_embed_dim=time_dim,
            transformer_layers_per_block=(1, 2),
            projection_class_embeddings_input_dim=6 * time_dim + arch.text_width,
            cross_attention_dim=2 * arch.text_width,
        )
        vae = _vae(arch, force_upcast=True, scaling_factor=SDXL_VAE_SCALING)
        text_encoder = CLIPTextModel(_text_config(arch, tokenizer))
        text_encoder_2 = CLIPTextModelWithProjection(
            _text_config(arch, tokenizer, projection_dim=arch.text_width)
        )
    pipe = StableDiffusionXLPipeline(
        unet=unet.eval(),
        vae=vae.eval(),
        text_encoder=text_encoder.eval(),
        text_encoder_2=text_encoder_2.eval(),
        tokenizer=tokenizer,
        tokenizer_2=tokenizer,
        scheduler=EulerDiscreteScheduler.from_config(SDXL_SCHEDULER_CONFIG),
        add_watermarker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _t5_tokenizer(max_length: int) -> T5Tokenizer:
    """T5's tokenizer offline: a Unigram model over single letters, digits and punctuation (what
    transformers 5's T5 tokenizer is built on), with T5's pad, end and unknown pieces."""
    pieces = ["<pad>", "</s>", "<unk>", "\u2581"]
    pieces += [f"\u2581{char}" for char in string.ascii_lowercase]
    pieces += list(string.ascii_lowercase + string.digits + string.punctuation)
    vocab = [(piece, 0.0 if index < 3 else -float(index)) for index, piece in enumerate(pieces)]
    return T5Tokenizer(vocab=vocab, extra_ids=0, model_max_length=max_length)


def _t5(tokenizer: T5Tokenizer) -> T5EncoderModel:
    # No dropout: a freshly built T5 is in training mode, where dropout makes calls differ.
    return T5EncoderModel(
        T5Config(
            vocab_size=len(tokenizer),
            d_model=T5_WIDTH,
            d_ff=37,
            d_kv=8,
            num_layers=2,
            num_heads=4,
            relative_attention_num_buckets=8,
            dropout_rate=0.0,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
    )


def _flow_vae(arch: RandomArchitecture, factors: dict[str, float]) -> AutoencoderKL:
    """Flux's and SD3's VAE layout: 16 latent channels, no quant convs, a scale and a shift."""
    return _vae(
        arch,
        latent_channels=FLOW_LATENT_CHANNELS,
        use_quant_conv=False,
        use_post_quant_conv=False,
        **factors,
    )


def build_random_flux_pipeline(arch: RandomArchitecture, guidance_embeds: bool) -> FluxPipeline:
    """A Flux.1 pipeline of the given size with seeded random weights, float32, CPU: [dev]'s
    guidance embedding when `guidance_embeds`, else [schnell]'s layout and scheduler."""
    tokenizer = _tokenizer()
    t5_tokenizer = _t5_tokenizer(512)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_WEIGHTS_SEED)
        transformer = FluxTransformer2DModel(
            in_channels=FLOW_LATENT_CHANNELS * 4,  # 2x2 patches of the latents, packed
            num_layers=1,
            num_single_layers=1,
            attention_head_dim=16,
            num_attention_heads=2,
            joint_attention_dim=T5_WIDTH,
            pooled_projection_dim=arch.text_width,
            guidance_embeds=guidance_embeds,
            axes_dims_rope=(4, 4, 8),
        )
        vae = _flow_vae(arch, FLUX_VAE)
        text_encoder = CLIPTextModel(_text_config(arch, tokenizer))
        text_encoder_2 = _t5(t5_tokenizer)
    config = FLUX_DEV_SCHEDULER_CONFIG if guidance_embeds else FLUX_SCHNELL_SCHEDULER_CONFIG
    pipe = FluxPipeline(
        transformer=transformer.eval(),
        vae=vae.eval(),
        text_encoder=text_encoder.eval(),
        text_encoder_2=text_encoder_2.eval(),
        tokenizer=tokenizer,
        tokenizer_2=t5_tokenizer,
        scheduler=FlowMatchEulerDiscreteScheduler.from_config(config),
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def build_random_sd3_pipeline(arch: RandomArchitecture) -> StableDiffusion3Pipeline:
    """A Stable Diffusion 3.5 pipeline of the given size with seeded random weights, float32,
    CPU: two CLIP encoders whose pooled projections go side by side, and T5."""
    tokenizer = _tokenizer()
    t5_tokenizer = _t5_tokenizer(256)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_WEIGHTS_SEED)
        transformer = SD3Transformer2DModel(
            sample_size=arch.sample_size,
            patch_size=2,
            in_channels=FLOW_LATENT_CHANNELS,
            out_channels=FLOW_LATENT_CHANNELS,
            num_layers=1,
            attention_head_dim=8,
            num_attention_heads=4,
            joint_attention_dim=T5_WIDTH,
            caption_projection_dim=32,
            pooled_projection_dim=2 * arch.text_width,
            pos_embed_max_size=96,
        )
        vae = _flow_vae(arch, SD3_VAE)
        text_encoder = CLIPTextModelWithProjection(
            _text_config(arch, tokenizer, projection_dim=arch.text_width)
        )
        text_encoder_2 = CLIPTextModelWithProjection(
            _text_config(arch, tokenizer, projection_dim=arch.text_width)
        )
        text_encoder_3 = _t5(t5_tokenizer)
    pipe = StableDiffusion3Pipeline(
        transformer=transformer.eval(),
        vae=vae.eval(),
        text_encoder=text_encoder.eval(),
        text_encoder_2=text_encoder_2.eval(),
        text_encoder_3=text_encoder_3.eval(),
        tokenizer=tokenizer,
        tokenizer_2=tokenizer,
        tokenizer_3=t5_tokenizer,
        scheduler=FlowMatchEulerDiscreteScheduler.from_config(SD3_SCHEDULER_CONFIG),
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _assembled(
    cls: type[DiffusionPipeline], scheduler_config: dict, **components: object
) -> DiffusionPipeline:
    """A flow pipeline of `components`, every module in eval mode (a freshly built model is in
    training mode, where dropout makes two calls differ), with Euler from `scheduler_config`."""
    modules = {
        name: part.eval() if isinstance(part, torch.nn.Module) else part
        for name, part in components.items()
    }
    scheduler = FlowMatchEulerDiscreteScheduler.from_config(scheduler_config)
    pipe = cls(**modules, scheduler=scheduler)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def build_random_chroma_pipeline(arch: RandomArchitecture) -> ChromaPipeline:
    """A Chroma pipeline of the given size with seeded random weights, float32, CPU."""
    t5_tokenizer = _t5_tokenizer(512)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_WEIGHTS_SEED)
        transformer = ChromaTransformer2DModel(
            in_channels=FLOW_LATENT_CHANNELS * 4,
            num_layers=1,
            num_single_layers=1,
            attention_head_dim=16,
            num_attention_heads=2,
            joint_attention_dim=T5_WIDTH,
            axes_dims_rope=(4, 4, 8),
            approximator_num_channels=16,
            approximator_hidden_dim=32,
            approximator_layers=1,
        )
        vae = _flow_vae(arch, FLUX_VAE)
        text_encoder = _t5(t5_tokenizer)
    return _assembled(
        ChromaPipeline,
        FLUX_DEV_SCHEDULER_CONFIG,
        transformer=transformer,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=t5_tokenizer,
    )


def _qwen_tokenizer(max_length: int) -> Qwen2Tokenizer:
    """Qwen's byte-level BPE tokenizer offline: the byte alphabet and merges of lowercase letter
    pairs, Qwen's end-of-text and chat markers, and its chat template; saved and read back
    so that it is the class a saved model loads."""
    vocab, merges = _vocab_and_merges()
    pieces = [token for token in vocab if not token.endswith("</w>") and "|" not in token]
    specials = ["<|im_start|>", "<|im_end|>"]
    tokenizer = Qwen2Tokenizer(
        vocab={piece: index for index, piece in enumerate([*pieces, "<|endoftext|>", *specials])},
        merges=[tuple(merge.split()) for merge in merges if not merge.endswith("</w>")],
        chat_template=QWEN_CHAT_TEMPLATE,
        model_max_length=max_length,
        additional_special_tokens=specials,
    )
    with tempfile.TemporaryDirectory() as folder:
        tokenizer.save_pretrained(folder)
        return AutoTokenizer.from_pretrained(folder)


def _qwen3(tokenizer: Qwen2Tokenizer) -> Qwen3Model:
    return Qwen3Model(
        Qwen3Config(
            vocab_size=len(tokenizer),
            hidden_size=QWEN_WIDTH,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=8,
            max_position_embeddings=1024,
            pad_token_id=tokenizer.pad_token_id,
        )
    )


def build_random_z_image_pipeline(arch: RandomArchitecture) -> ZImagePipeline:
    """A Z-Image Turbo pipeline of the given size with seeded random weights, float32, CPU."""
    tokenizer = _qwen_tokenizer(512)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_WEIGHTS_SEED)
        transformer = ZImageTransformer2DModel(
            in_channels=FLOW_LATENT_CHANNELS,
            dim=64,
            n_layers=1,
            n_refiner_layers=1,
            n_heads=2,
            n_kv_heads=2,
            cap_feat_dim=QWEN_WIDTH,
            axes_dims=[8, 12, 12],
            axes_lens=[1024, 64, 64],
        )
        vae = _flow_vae(arch, FLUX_VAE)
        text_encoder = _qwen3(tokenizer)
    return _assembled(
        ZImagePipeline,
        Z_IMAGE_SCHEDULER_CONFIG,
        transformer=transformer,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
    )


def _qwen25_vl(tokenizer: Qwen2Tokenizer) -> Qwen2_5_VLForConditionalGeneration:
    """Qwen2.5-VL shrunk: its text model with multimodal RoPE (sections of the head's half),
    and a one-block vision tower the text-to-image pipeline never calls."""
    text = {
        "vocab_size": len(tokenizer),
        "hidden_size": QWEN_WIDTH,
        "intermediate_size": 37,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 2048,
        "rope_scaling": {"type": "mrope", "mrope_section": [1, 1, 2]},
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": None,
        "eos_token_id": tokenizer.convert_tokens_to_ids("<|im_end|>"),
    }
    vision = {
        "depth": 1,
        "hidden_size": 16,
        "intermediate_size": 16,
        "num_heads": 2,
        "out_hidden_size": QWEN_WIDTH,
        "patch_size": 2,
        "spatial_merge_size": 1,
        "temporal_patch_size": 1,
        "fullatt_block_indexes": [0],
        "window_size": 4,
    }
    return Qwen2_5_VLForConditionalGeneration(
        Qwen2_5_VLConfig(text_config=text, vision_config=vision)
    )


def build_random_qwen_image_pipeline() -> QwenImagePipeline:
    """A Qwen-Image pipeline with seeded random weights, float32, CPU: 2x latents (one
    spatial downsampling in Wan's VAE), as the other tiny models have."""
    tokenizer = _qwen_tokenizer(1024)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_WEIGHTS_SEED)
        transformer = QwenImageTransformer2DModel(
            patch_size=2,
            in_channels=FLOW_LATENT_CHANNELS * 4,
            out_channels=FLOW_LATENT_CHANNELS,
            num_layers=1,
            attention_head_dim=16,
            num_attention_heads=2,
            joint_attention_dim=QWEN_WIDTH,
            axes_dims_rope=(4, 6, 6),
        )
        vae = AutoencoderKLQwenImage(
            base_dim=8,
            z_dim=FLOW_LATENT_CHANNELS,
            dim_mult=[1, 2],
            num_res_blocks=1,
            temperal_downsample=[False],
        )
        text_encoder = _qwen25_vl(tokenizer)
    return _assembled(
        QwenImagePipeline,
        QWEN_IMAGE_SCHEDULER_CONFIG,
        transformer=transformer,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
    )


def build_tiny_pipeline(model_id: str = TINY_MODEL_ID) -> DiffusionPipeline:
    """A built-in tiny model by id: the same random weights in every process."""
    if model_id == TINY_SDXL_ID:
        return build_random_xl_pipeline(TINY)
    if model_id == TINY_SD2_ID:
        return build_random_pipeline(TINY, SD2_V_SCHEDULER_CONFIG)
    if model_id in (TINY_FLUX_ID, TINY_FLUX_SCHNELL_ID):
        return build_random_flux_pipeline(TINY, guidance_embeds=model_id == TINY_FLUX_ID)
    if model_id == TINY_SD3_ID:
        return build_random_sd3_pipeline(TINY)
    if model_id == TINY_CHROMA_ID:
        return build_random_chroma_pipeline(TINY)
    if model_id == TINY_Z_IMAGE_ID:
        return build_random_z_image_pipeline(TINY)
    if model_id == TINY_QWEN_IMAGE_ID:
        return build_random_qwen_image_pipeline()
    return build_random_pipeline(TINY)


TINY_FLOW_MODELS = (
    TINY_FLUX_ID,
    TINY_FLUX_SCHNELL_ID,
    TINY_SD3_ID,
    TINY_CHROMA_ID,
    TINY_Z_IMAGE_ID,
    TINY_QWEN_IMAGE_ID,
)
TINY_MODELS = (TINY_MODEL_ID, TINY_SD2_ID, TINY_SDXL_ID, *TINY_FLOW_MODELS)
