import numpy as np
import pytest
import torch

from pipeline.families import SD1
from pipeline.preview import latents_to_previews

FACTORS = SD1.preview_factors


def latent_of_colour(rgb: tuple[int, int, int], height: int = 8, width: int = 8) -> torch.Tensor:
    """A latent that the cheap map sends to `rgb` everywhere (least squares through the map)."""
    target = torch.tensor(rgb, dtype=torch.float32) / 127.5 - 1.0
    solution = torch.linalg.lstsq(torch.tensor(FACTORS).T, target[:, None]).solution
    return solution[:, 0].reshape(1, 4, 1, 1).expand(1, 4, height, width).clone()


def test_one_preview_per_latent_with_the_latent_shape() -> None:
    previews = latents_to_previews(torch.randn(3, 4, 8, 16), FACTORS)
    assert len(previews) == 3
    assert all(preview.mode == "RGB" and preview.size == (16, 8) for preview in previews)


def test_previews_resize_to_the_final_image_size() -> None:
    previews = latents_to_previews(torch.randn(2, 4, 8, 12), FACTORS, size=(96, 64))
    assert [preview.size for preview in previews] == [(96, 64), (96, 64)]


@pytest.mark.parametrize("rgb", [(230, 40, 128), (20, 200, 90), (128, 128, 128)])
def test_a_latent_made_to_be_a_colour_shows_that_colour(rgb: tuple[int, int, int]) -> None:
    latent = latent_of_colour(rgb)
    pixels = np.asarray(latents_to_previews(latent, FACTORS)[0]).astype(int)
    assert np.abs(pixels - np.array(rgb)).max() <= 1


def test_each_channel_maps_to_its_published_rgb_weights() -> None:
    latent = torch.zeros(2, 4, 2, 2)
    latent[0, 0] = 1.0
    latent[1, 3] = 1.0
    first, fourth = (
        np.asarray(preview)[0, 0].tolist() for preview in latents_to_previews(latent, FACTORS)
    )
    assert first == [172, 157, 169]  # (0.3512, 0.2297, 0.3227)
    assert fourth == [100, 94, 36]  # (-0.2120, -0.2616, -0.7177)


def test_values_beyond_the_range_saturate() -> None:
    pixels = np.asarray(latents_to_previews(latent_of_colour((230, 40, 200)) * 50, FACTORS)[0])
    assert pixels[0, 0].tolist() == [255, 0, 255]


def test_batch_tiles_are_previewed_apart() -> None:
    latents = torch.cat([latent_of_colour((230, 40, 128)), latent_of_colour((20, 200, 90))])
    first, second = latents_to_previews(latents, FACTORS)
    assert first.getpixel((0, 0)) != second.getpixel((0, 0))


def test_half_precision_latents_preview_like_full_precision() -> None:
    latents = torch.randn(2, 4, 16, 16, generator=torch.Generator().manual_seed(0))
    full = latents_to_previews(latents, FACTORS)
    half = latents_to_previews(latents.half(), FACTORS)
    for a, b in zip(full, half, strict=True):
        assert np.abs(np.asarray(a).astype(int) - np.asarray(b).astype(int)).max() <= 1


@pytest.mark.parametrize("channels", [1, 3, 16])
def test_other_channel_counts_get_a_grey_preview(channels: int) -> None:
    latents = torch.full((2, channels, 4, 6), 0.5)
    latents[1] = -0.5
    bright, dark = (
        np.asarray(preview) for preview in latents_to_previews(latents, FACTORS, size=(12, 8))
    )
    assert bright.shape == dark.shape == (8, 12, 3)
    assert (bright == 191).all()
    assert (dark == 64).all()


def test_an_overflowed_latent_previews_grey_instead_of_garbage() -> None:
    latents = torch.full((1, 4, 2, 2), float("nan"), dtype=torch.float16)
    assert (
        np.asarray(latents_to_previews(latents, FACTORS)[0]).tolist() == [[[128, 128, 128]] * 2] * 2
    )


def test_a_latent_without_a_batch_dimension_is_refused() -> None:
    with pytest.raises(ValueError, match="batch, channels, height, width"):
        latents_to_previews(torch.randn(4, 8, 8), FACTORS)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_latents_preview_like_cpu_latents() -> None:
    latents = torch.randn(2, 4, 16, 16, generator=torch.Generator().manual_seed(0))
    on_gpu = latents_to_previews(latents.to("cuda", torch.float16), FACTORS)
    on_cpu = latents_to_previews(latents.half(), FACTORS)
    assert [p.tobytes() for p in on_gpu] == [p.tobytes() for p in on_cpu]
