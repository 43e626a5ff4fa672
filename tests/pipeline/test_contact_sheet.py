import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFont
from PIL.PngImagePlugin import PngInfo

from pipeline.contact_sheet import (
    SHEET_NAME,
    contact_sheet,
    default_columns,
    font_px,
    labelled_grid,
    tile_scale,
    wrap,
    zip_bundle,
)
from pipeline.metadata import MATRIX_KEY, grid_png_bytes
from tests.pipeline.test_metadata import sample_recipe

LONG_PROMPT = (
    "A photograph of an astronaut riding a horse on Mars, high resolution, high definition, "
    "golden hour light over red dunes, dust in the air, a distant lander with its legs in the "
    "sand, the Earth a pale blue dot in the sky, shot on a medium format camera, 80 mm lens, "
    "fine grain, cinematic colour grading, sharp focus on the visor"
)


def noise_tiles(count: int, side: int, seed: int = 0) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [
        Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)) for _ in range(count)
    ]


def png_bytes(image: Image.Image, recipe: str) -> bytes:
    info = PngInfo()
    info.add_text("parameters", recipe)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("count", "columns", "grid"),
    [(1, 1, (1, 1)), (4, 2, (2, 2)), (8, 3, (3, 3)), (9, 3, (3, 3)), (16, 4, (4, 4))],
)
def test_default_shape_is_near_square_like_automatic1111(
    count: int, columns: int, grid: tuple[int, int]
) -> None:
    assert default_columns(count) == columns
    sheet_columns, sheet_rows = grid
    sheet = contact_sheet(noise_tiles(count, 128), [f"seed {i}" for i in range(count)], [])
    single = contact_sheet(noise_tiles(1, 128), ["seed 0"], [])
    gap = (single.width - 128) // 2
    row_h = single.height - gap
    assert sheet.size == (
        sheet_columns * (128 + gap) + gap,
        sheet_rows * row_h + gap,
    )
    column = contact_sheet(noise_tiles(count, 128), ["x"] * count, [], columns=1)
    assert column.size == (single.width, count * row_h + gap)


def test_size_follows_tiles_columns_and_rows() -> None:
    tiles = noise_tiles(6, 256)
    one_row = contact_sheet(tiles, ["a"] * 6, [], columns=6)
    two_rows = contact_sheet(tiles, ["a"] * 6, [], columns=3)
    gap = (one_row.width - 6 * 256) // 7
    assert one_row.width == 6 * 256 + 7 * gap
    assert two_rows.width == 3 * 256 + 4 * gap
    row_h = one_row.height - gap
    assert two_rows.height == 2 * row_h + gap


def test_columns_never_exceed_the_tiles() -> None:
    assert contact_sheet(noise_tiles(2, 128), ["a", "b"], [], columns=8).width == (
        contact_sheet(noise_tiles(2, 128), ["a", "b"], [], columns=2).width
    )


def test_small_tiles_are_enlarged_pixel_for_pixel() -> None:
    tiles = noise_tiles(1, 64)
    sheet = contact_sheet(tiles, [""], [])
    assert tile_scale(tiles) == 2
    gap = (sheet.width - 128) // 2
    shown = sheet.crop((gap, gap, gap + 128, gap + 128))
    assert shown.tobytes() == tiles[0].resize((128, 128), Image.Resampling.NEAREST).tobytes()


def test_font_grows_with_the_tile_within_bounds() -> None:
    assert font_px(128) == 14
    assert font_px(1024) > font_px(512) > 14
    assert font_px(4096) == 48


def test_labels_are_drawn_under_their_tiles() -> None:
    tiles = noise_tiles(4, 64)
    labelled = np.asarray(contact_sheet(tiles, [f"seed {i}" for i in range(4)], []))
    blank = np.asarray(contact_sheet(tiles, [""] * 4, []))
    assert labelled.shape == blank.shape
    gap = (labelled.shape[1] - 2 * 128) // 3
    first_strip = (slice(gap + 128, gap + 128 + 3 * gap), slice(gap, gap + 128))
    assert (labelled[first_strip] != blank[first_strip]).any()
    tiles_only = (slice(gap, gap + 128), slice(gap, gap + 128))
    assert (labelled[tiles_only] == blank[tiles_only]).all()


def test_a_long_label_is_cut_with_an_ellipsis_inside_its_cell() -> None:
    tiles = noise_tiles(2, 64)
    label = "DPM++ 2M Karras · 30 steps · 12.3 s · 1234567890"
    sheet = np.asarray(contact_sheet(tiles, [label, ""], [], columns=2)).astype(int)
    gap = (sheet.shape[1] - 2 * 128) // 3
    strip = sheet[gap + 128 : gap + 128 + 3 * gap]
    ink_columns = np.nonzero((strip < 200).any(axis=(0, 2)))[0]
    assert ink_columns.size
    assert ink_columns.min() >= gap
    assert ink_columns.max() < gap + 128


def test_footer_wraps_a_long_prompt_within_the_sheet() -> None:
    prompt = (LONG_PROMPT + " ") * 2
    assert len(prompt) >= 300
    font = ImageFont.load_default(size=14)
    lines = wrap(prompt, font, 260)
    assert len(lines) > 3
    assert all(font.getlength(line) <= 260 for line in lines)
    assert " ".join(lines).split() == prompt.split()

    tiles = noise_tiles(2, 64)
    bare = contact_sheet(tiles, ["a", "b"], [])
    short = contact_sheet(tiles, ["a", "b"], ["prompt: short"])
    long = contact_sheet(tiles, ["a", "b"], [f"prompt: {prompt}"])
    assert long.width == short.width == bare.width
    assert long.height > short.height + 2 * (short.height - bare.height)
    gap = (bare.width - 2 * 128) // 3
    footer = np.asarray(long)[bare.height :].astype(int)
    ink_columns = np.nonzero((footer < 200).any(axis=(0, 2)))[0]
    assert ink_columns.min() >= gap
    assert ink_columns.max() < long.width - gap


def test_a_word_longer_than_the_line_is_broken_not_clipped() -> None:
    font = ImageFont.load_default(size=14)
    word = "x" * 200
    lines = wrap(f"start {word} end", font, 100)
    assert len(lines) > 3
    assert "".join(lines).replace(" ", "") == f"start{word}end"
    assert all(font.getlength(line) <= 100 for line in lines)


def test_bad_input_says_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="at least one image"):
        contact_sheet([], [], [])
    with pytest.raises(ValueError, match="2 images but 1 labels"):
        contact_sheet(noise_tiles(2, 64), ["a"], [])
    with pytest.raises(ValueError, match="columns"):
        contact_sheet(noise_tiles(2, 64), ["a", "b"], [], columns=0)


def test_tiles_of_different_sizes_are_centred_in_equal_cells() -> None:
    large = Image.new("RGB", (256, 256), (200, 0, 0))
    small = Image.new("RGB", (128, 64), (0, 0, 200))
    sheet = contact_sheet([large, small], ["large", "small"], [], columns=2)
    gap = (sheet.width - 2 * 256) // 3
    cell = sheet.crop((2 * gap + 256, gap, 2 * gap + 512, gap + 256))
    assert cell.getpixel((128, 128)) == (0, 0, 200)
    assert cell.getpixel((64, 96)) == (0, 0, 200)
    assert cell.getpixel((63, 96)) == cell.getpixel((128, 95)) == (255, 255, 255)


def test_zip_holds_the_tiles_byte_for_byte_and_the_sheet(tmp_path: Path) -> None:
    tiles = noise_tiles(3, 64)
    files = [(f"seed-{i}.png", png_bytes(tile, f"seed {i}")) for i, tile in enumerate(tiles)]
    files.append(("recipe.txt", b"prompt: a lighthouse\n" * 50))
    sheet = png_bytes(contact_sheet(tiles, ["0", "1", "2"], ["a lighthouse"]), "sheet")

    path = zip_bundle(files, sheet, tmp_path / "downloads", "grid-0-2")

    assert path == tmp_path / "downloads" / "grid-0-2.zip"
    assert sorted(p.name for p in path.parent.iterdir()) == ["grid-0-2.zip"]
    with zipfile.ZipFile(path) as bundle:
        assert bundle.namelist() == [name for name, _ in files] + [SHEET_NAME]
        for name, data in files:
            assert bundle.read(name) == data
        assert bundle.read(SHEET_NAME) == sheet
        kinds = {info.filename: info.compress_type for info in bundle.infolist()}
        first = Image.open(io.BytesIO(bundle.read("seed-0.png")))
        assert first.text["parameters"] == "seed 0"
    assert kinds["seed-0.png"] == kinds[SHEET_NAME] == zipfile.ZIP_STORED
    assert kinds["recipe.txt"] == zipfile.ZIP_DEFLATED


def test_zip_names_are_flat_safe_and_unique(tmp_path: Path) -> None:
    files = [
        ("../../etc/passwd", b"1"),
        ("a/b\\c.png", b"2"),
        ("..", b"3"),
        ("Seed 1.png", b"4"),
        ("seed 1.png", b"5"),
        (SHEET_NAME, b"6"),
        ('what?<"x">:|*.png', b"7"),
    ]
    path = zip_bundle(files, b"sheet", tmp_path, "../escape")
    assert path.parent == tmp_path
    assert path.name == "escape.zip"
    with zipfile.ZipFile(path) as bundle:
        names = bundle.namelist()
        contents = [bundle.read(name) for name in names]
    assert contents == [b"1", b"2", b"3", b"4", b"5", b"6", b"7", b"sheet"]
    assert names == [
        "etc_passwd",
        "a_b_c.png",
        "file",
        "Seed 1.png",
        "seed 1-2.png",
        "contact-sheet-2.png",
        "what_x_.png",
        SHEET_NAME,
    ]


def test_zip_replaces_an_older_bundle_and_leaves_no_temp_file(tmp_path: Path) -> None:
    zip_bundle([("a.png", b"old")], b"s", tmp_path, "run.zip")
    path = zip_bundle([("a.png", b"new")], b"s", tmp_path, "run.zip")
    assert [p.name for p in tmp_path.iterdir()] == ["run.zip"]
    with zipfile.ZipFile(path) as bundle:
        assert bundle.read("a.png") == b"new"


def test_a_failed_zip_leaves_the_older_bundle_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = zip_bundle([("a.png", b"old")], b"s", tmp_path, "run")

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError("No space left on device")

    monkeypatch.setattr(zipfile.ZipFile, "writestr", disk_full)
    with pytest.raises(OSError, match="No space"):
        zip_bundle([("a.png", b"new")], b"s", tmp_path, "run")
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["run.zip"]
    with zipfile.ZipFile(old) as bundle:
        assert bundle.read("a.png") == b"old"


def label_ink_height(tile: Image.Image, label: str) -> int:
    """How many pixel rows the label under a one-tile sheet's tile inks."""
    sheet = contact_sheet([tile], [label], [])
    side = tile.width * tile_scale([tile])
    gap = (sheet.width - side) // 2
    strip = np.asarray(sheet.convert("L"))[gap + side :]
    rows = np.nonzero((strip < 128).any(axis=1))[0]
    return int(rows.max() - rows.min() + 1) if rows.size else 0


def test_a_sheet_of_large_tiles_labels_them_in_a_larger_font() -> None:
    """A label stays as readable beside a 512 px tile as beside the tiny model's 64 px."""
    label = "Euler · 30 steps"
    small = label_ink_height(Image.new("RGB", (64, 64), "white"), label)
    large = label_ink_height(Image.new("RGB", (512, 512), "white"), label)
    assert small >= 8 and large >= small * 1.5


def test_a_labelled_grid_has_a_header_row_and_column_and_carries_every_cells_recipe() -> None:
    images = [Image.new("RGB", (64, 64), (0, 0, 255)) for _ in range(6)]
    sheet = labelled_grid(images, ["Steps: 1", "Steps: 2", "Steps: 3"], ["CFG 4", "CFG 7"], ["x"])
    scale = 2  # 64 px tiles are enlarged to 128
    assert sheet.width > 3 * 64 * scale and sheet.height > 2 * 64 * scale
    recipes = [sample_recipe(seed=seed) for seed in range(6)]
    with Image.open(io.BytesIO(grid_png_bytes(sheet, recipes))) as png:
        cells = json.loads(png.info[MATRIX_KEY])["cells"]
    assert [cell["seed"] for cell in cells] == list(range(6))
    with pytest.raises(ValueError, match="6 images for 2 x 2 cells"):
        labelled_grid(images, ["a", "b"], ["c", "d"], [])
