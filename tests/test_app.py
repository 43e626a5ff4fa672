"""The command line: flags, their environment variables, and a model that cannot load."""

import logging
import os
from pathlib import Path

import gradio as gr
import pytest
import torch

import app
from pipeline import builder
from pipeline.accel import Speedups
from pipeline.builder import EngineSettings
from pipeline.determinism import deterministic_enabled, enable_deterministic
from pipeline.engine import Engine
from pipeline.loading import ModelLoadError
from pipeline.lora import LoraSpec
from pipeline.plan import Defaults
from pipeline.requests import GridRequest, Limits


def clear_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start from no settings in the environment, as on a fresh machine."""
    for name in list(os.environ):
        if name.startswith("SEED_EXPLORER_") or name in {
            "SPACE_ID",
            "GRADIO_SERVER_NAME",
            "GRADIO_SERVER_PORT",
        }:
            monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
def fresh_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_settings(monkeypatch)


def test_flags_default_to_loopback_and_read_the_environment(monkeypatch) -> None:
    assert app.parse_args([]).host == "127.0.0.1"
    monkeypatch.setenv("SEED_EXPLORER_MODEL", "tiny")
    monkeypatch.setenv("SEED_EXPLORER_MAX_TILES", "4")
    args = app.parse_args([])
    assert (args.model, args.max_tiles) == ("tiny", 4)
    assert app.parse_args(["--model", "./mine"]).model == "./mine"


def test_defaults_are_the_safe_local_ones() -> None:
    args = app.parse_args([])
    assert args.auth is None and not args.share
    assert args.safety_checker and not args.deterministic
    assert (args.micro_batch, args.outputs, args.previews) == (8, Path("outputs"), True)
    limits = Limits()
    assert (args.max_tiles, args.max_steps, args.max_side) == (
        limits.max_tiles,
        limits.max_steps,
        limits.max_side,
    )


def test_new_flags_and_their_environment_variables(monkeypatch, tmp_path) -> None:
    flags = app.parse_args(
        ["--no-safety-checker", "--deterministic", "--no-previews", "--micro-batch", "0",
         "--outputs", str(tmp_path)]
    )  # fmt: skip
    assert not flags.safety_checker and flags.deterministic and not flags.previews
    assert (flags.micro_batch, flags.outputs) == (0, tmp_path)
    assert app.parse_args(["--no-save"]).outputs is None

    for name, value in {
        "SAFETY_CHECKER": "0",
        "DETERMINISTIC": "1",
        "MICRO_BATCH": "2",
        "PREVIEWS": "0",
        "OUTPUTS": str(tmp_path),
    }.items():
        monkeypatch.setenv(f"SEED_EXPLORER_{name}", value)
    env = app.parse_args([])
    assert not env.safety_checker and env.deterministic and not env.previews
    assert (env.micro_batch, env.outputs) == (2, tmp_path)
    monkeypatch.setenv("SEED_EXPLORER_SAVE", "0")
    assert app.parse_args([]).outputs is None
    assert app.parse_args(["--outputs", "mine"]).outputs == Path("mine")


def test_offload_alone_means_model_offload_as_it_did_before_the_modes(monkeypatch) -> None:
    assert app.parse_args([]).offload is None
    assert app.parse_args(["--offload"]).offload == "model"
    assert app.parse_args(["--offload", "sequential"]).offload == "sequential"
    monkeypatch.setenv("SEED_EXPLORER_OFFLOAD", "1")
    assert app.parse_args([]).offload == "model"
    monkeypatch.setenv("SEED_EXPLORER_OFFLOAD", "sequential")
    settings = app.engine_settings(app.parse_args(["--quantize", "torchao_int8wo"]))
    assert (settings.offload, settings.quantize) == ("sequential", "torchao_int8wo")


def test_an_offload_variable_that_is_no_mode_is_refused_naming_it(monkeypatch) -> None:
    monkeypatch.setenv("SEED_EXPLORER_OFFLOAD", "gpu")
    with pytest.raises(app.SettingsError, match="SEED_EXPLORER_OFFLOAD must be model"):
        app.parse_args([])


def test_the_queue_runs_one_job_at_a_time_and_polls_every_10_ms() -> None:
    """Gradio's own 1 ms polling costs an idle app about 5% of a core (docs/PERFORMANCE.md);
    a Gradio whose queue lacks these attributes fails here, not silently in speed."""
    demo = gr.Blocks()
    app.queue(demo, max_size=3)
    assert (demo._queue.max_size, demo._queue.default_concurrency_limit) == (3, 1)
    assert {name: getattr(demo._queue, name) for name in app.QUEUE_POLL_S} == app.QUEUE_POLL_S


def test_a_negative_micro_batch_is_refused() -> None:
    with pytest.raises(SystemExit):
        app.parse_args(["--micro-batch", "-1"])


def test_auth_takes_several_users_from_the_flag_or_the_environment(monkeypatch) -> None:
    assert app.parse_args(["--auth", "ann:s3cret, bob:pa:ss"]).auth == [
        ("ann", "s3cret"),
        ("bob", "pa:ss"),
    ]
    monkeypatch.setenv("SEED_EXPLORER_AUTH", "cy:pw")
    assert app.parse_args([]).auth == [("cy", "pw")]
    assert app.parse_args(["--auth", "dee:pw2"]).auth == [("dee", "pw2")]


@pytest.mark.parametrize("value", ["ann", "ann:", ":s3cret", "ann:s3cret,", ""])
def test_a_malformed_auth_is_refused_without_echoing_it(value: str) -> None:
    with pytest.raises(app.SettingsError) as caught:
        app.parse_args(["--auth", value])
    assert "user:password" in str(caught.value)
    assert "s3cret" not in str(caught.value)


def exit_line(monkeypatch: pytest.MonkeyPatch, *argv: str) -> str:
    """What `python app.py ARGV` exits with, in-process: the one line it prints on stderr
    (sys.exit with a message: status 1). The app would launch only past the model."""
    monkeypatch.setattr(app, "keep_freed_memory", lambda: False)  # this process's malloc
    monkeypatch.setattr(app, "build_demo", lambda *args, **kwargs: pytest.fail("launched"))
    with pytest.raises(SystemExit) as caught:
        app.main(list(argv))
    assert isinstance(caught.value.code, str) and "\n" not in caught.value.code
    return caught.value.code


def started(argv: list[str], monkeypatch: pytest.MonkeyPatch, caplog) -> list[str]:
    """What `python app.py ARGV` logs from its start to serving, in-process: the model loads
    and the page is made as there, but a stand-in page is launched (no server)."""

    class Page:
        local_url, share_url = "http://127.0.0.1:7860/", None

        def launch(self, **kwargs: object) -> None:
            assert kwargs["quiet"]  # Gradio's own lines name its launch(), not our flags

        def block_thread(self) -> None:
            pass

    monkeypatch.setattr(app, "keep_freed_memory", lambda: False)  # this process's malloc
    monkeypatch.setattr(app, "build_demo", lambda *args, **kwargs: Page())
    monkeypatch.setattr(app, "queue", lambda demo, size: None)
    with caplog.at_level(logging.INFO):
        app.main(argv)
    return caplog.messages


def test_offline_the_default_model_falls_back_saying_so_in_one_line_of_ours(
    monkeypatch: pytest.MonkeyPatch, caplog, capfd: pytest.CaptureFixture[str]
) -> None:
    messages = started([], monkeypatch, caplog)
    notices = [m for m in messages if "is not in the Hugging Face cache" in m]
    assert len(notices) == 1 and "\n" not in notices[0]
    assert "this machine is offline" in notices[0] and "--model tiny" in notices[0]
    printed = "\n".join(messages) + "".join(capfd.readouterr())
    for noise in ("model_index.json", "Retrying", "local_dir_use_symlinks", "Loading pipeline"):
        assert noise not in printed
    assert messages[-2:] == ["Seed Explorer is serving at http://127.0.0.1:7860/",
                             "For a public link, start with --share"]  # fmt: skip


def test_exposed_without_a_login_the_log_warns_loudly(
    monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    messages = started(["--model", "tiny", "--host", "0.0.0.0"], monkeypatch, caplog)
    warning = [line for m in messages for line in m.splitlines() if line.startswith("WARNING:")]
    assert len(warning) >= 4 and any("--auth" in line for line in warning)
    assert "Seed Explorer is reachable beyond this machine (listening on 0.0.0.0)" in warning[0]


def test_a_malformed_auth_exits_with_one_line_before_loading_anything(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(app, "create_engine", lambda args: pytest.fail("loaded a model"))
    line = exit_line(monkeypatch, "--model", "tiny", "--auth", "ann:s3cret,bob")
    assert line == (
        "error: --auth / SEED_EXPLORER_AUTH entry 2 is not user:password "
        "(several: user1:password1,user2:password2)"
    )
    assert "s3cret" not in "".join(capfd.readouterr())


@pytest.mark.parametrize(
    ("argv", "level"),
    [
        ([], None),
        (["--host", "localhost"], None),
        (["--host", "::1"], None),
        (["--host", "0.0.0.0"], logging.WARNING),
        (["--host", "192.168.1.5"], logging.WARNING),
        (["--host", "my-box.local"], logging.WARNING),
        (["--share"], logging.WARNING),
        (["--host", "0.0.0.0", "--auth", "ann:s3cret"], logging.INFO),
        (["--share", "--auth", "ann:s3cret"], logging.INFO),
    ],
)
def test_exposure_beyond_loopback_without_a_login_is_a_loud_warning(argv, level) -> None:
    notice = app.exposure_notice(app.parse_args(argv))
    if level is None:
        assert notice is None
        return
    assert notice[0] == level
    assert "s3cret" not in notice[1]
    if level == logging.WARNING:
        assert len(notice[1].splitlines()) >= 5 and "--auth" in notice[1]
        assert ("gradio.live" in notice[1]) == ("--share" in argv)


def test_a_named_model_that_cannot_load_exits_with_one_line_and_a_hint(
    tmp_path, monkeypatch
) -> None:
    line = exit_line(monkeypatch, "--model", str(tmp_path / "missing"))
    assert line.startswith("error: cannot load model") and "Hint:" in line
    assert "--model tiny" in line


def test_help_lists_every_flag_and_never_a_password_from_the_environment(
    monkeypatch, capsys
) -> None:
    monkeypatch.setenv("SEED_EXPLORER_AUTH", "ann:s3cret")
    with pytest.raises(SystemExit) as caught:
        app.parse_args(["--help"])
    assert caught.value.code == 0
    result = capsys.readouterr()
    for flag in (
        "--model",
        "--host",
        "--port",
        "--share",
        "--auth",
        "--device",
        "--devices",
        "--generator-device",
        "--deterministic",
        "--no-safety-checker",
        "--micro-batch",
        "--outputs",
        "--no-save",
        "--no-previews",
        "--config",
        "--lora",
        "--default-steps",
        "--default-guidance",
        "--default-scheduler",
    ):
        assert flag in result.out
    assert "s3cret" not in result.out


def test_step_sharing_is_on_unless_turned_off_and_a_call_holds_an_image_with_cfg(
    monkeypatch,
) -> None:
    shared = app.engine_settings(app.parse_args(["--max-batch", "6"]))
    assert (shared.share_steps, shared.max_batch) == (True, 6)
    monkeypatch.setenv("SEED_EXPLORER_SHARE_STEPS", "0")
    assert not app.engine_settings(app.parse_args([])).share_steps
    with pytest.raises(SystemExit):
        app.parse_args(["--max-batch", "1"])


def test_the_flags_become_the_engines_settings(monkeypatch) -> None:
    args = ["--model", "tiny-sdxl", "--device", "cpu", "--dtype", "bfloat16", "--no-safety-checker"]
    assert app.engine_settings(app.parse_args(args)) == EngineSettings(
        model="tiny-sdxl", device="cpu", dtype="bfloat16", safety_checker=False, share_steps=True
    )
    monkeypatch.setenv("SEED_EXPLORER_DTYPE", "float16")
    other = app.engine_settings(app.parse_args(["--max-tiles", "6", "--micro-batch", "0"]))
    assert (other.model, other.dtype, other.fall_back_to_tiny) == (
        app.DEFAULT_MODEL_ID, "float16", True
    )  # fmt: skip
    assert other.limits == Limits(max_tiles=6, max_steps=150, max_side=1536)
    assert other.micro_batch is None  # 0: a whole run in one call


def test_checkpoint_lora_and_default_flags_and_their_environment_variables(monkeypatch) -> None:
    flags = app.parse_args(
        ["--model", "m.safetensors", "--config", "cfg", "--lora", "a.safetensors:0.5",
         "--lora", "owner/b", "--default-steps", "4", "--default-guidance", "0",
         "--default-scheduler", "LCM"]
    )  # fmt: skip
    settings = app.engine_settings(flags)
    assert (settings.model, settings.config) == ("m.safetensors", "cfg")
    assert settings.loras == (LoraSpec("a.safetensors", 0.5), LoraSpec("owner/b"))
    assert settings.defaults == Defaults(scheduler="LCM", steps=4, guidance_scale=0.0)
    for name, value in [
        ("SEED_EXPLORER_CONFIG", "cfg2"),
        ("SEED_EXPLORER_LORA", "c.safetensors:2, owner/d"),
        ("SEED_EXPLORER_DEFAULT_STEPS", "8"),
        ("SEED_EXPLORER_DEFAULT_GUIDANCE", "1.5"),
        ("SEED_EXPLORER_DEFAULT_SCHEDULER", "TCD"),
    ]:
        monkeypatch.setenv(name, value)
    env = app.engine_settings(app.parse_args([]))
    assert env.config == "cfg2"
    assert env.loras == (LoraSpec("c.safetensors", 2.0), LoraSpec("owner/d"))
    assert env.defaults == Defaults(scheduler="TCD", steps=8, guidance_scale=1.5)
    monkeypatch.delenv("SEED_EXPLORER_DEFAULT_GUIDANCE")
    assert app.engine_settings(app.parse_args([])).defaults.guidance_scale is None
    with pytest.raises(app.SettingsError, match="--lora"):
        app.parse_args(["--lora", ":0.5"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_asking_for_cuda_without_it_exits_with_one_line_and_a_hint_that_fits(
    monkeypatch,
) -> None:
    line = exit_line(monkeypatch, "--model", "tiny", "--device", "cuda")
    assert line.startswith("error: ") and "--device cuda, but this torch" in line
    assert "Hint: use --device cpu" in line and "--model tiny" not in line


def test_speed_switches_come_from_flags_or_the_environment_and_reach_the_model(
    monkeypatch, tiny
) -> None:
    assert not app.parse_args([]).attention_slicing and not app.parse_args([]).compile
    flags = app.parse_args(["--attention-slicing", "--compile"])
    assert flags.attention_slicing and flags.compile
    monkeypatch.setenv("SEED_EXPLORER_ATTENTION_SLICING", "1")
    monkeypatch.setenv("SEED_EXPLORER_COMPILE", "1")
    env = app.parse_args([])
    assert env.attention_slicing and env.compile

    applied = []
    monkeypatch.setattr(builder, "load_model", lambda *args, **kwargs: tiny)
    monkeypatch.setattr(builder.accel, "apply", lambda pipe, on: applied.append((pipe, on)))
    engine = app.create_engine(app.parse_args(["--model", "tiny", "--device", "cpu"]))
    assert applied == [(tiny.pipe, Speedups(attention_slicing=True, compile=True))]
    assert engine.provenance.speedups == {
        "channels_last": False, "attention_slicing": True, "compile": True
    }  # fmt: skip


def test_deterministic_mode_is_switched_on_before_the_model_loads(monkeypatch) -> None:
    calls = []
    monkeypatch.setattr(app, "enable_deterministic", lambda: calls.append("deterministic"))

    def create_engine(args):
        calls.append("load")
        raise ModelLoadError("not needed here")

    monkeypatch.setattr(app, "create_engine", create_engine)
    with pytest.raises(SystemExit):
        app.main(["--deterministic"])
    assert calls == ["deterministic", "load"]


def test_deterministic_mode_sets_the_three_switches_and_a_grid_still_renders(
    monkeypatch: pytest.MonkeyPatch, engine: Engine
) -> None:
    # torch's switch is global: put back as it was, so that no other test runs under it.
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", "")
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", True)
    assert not deterministic_enabled()
    try:
        enable_deterministic()
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":16:8"
        assert torch.backends.cudnn.benchmark is False
        assert torch.are_deterministic_algorithms_enabled()
        assert deterministic_enabled()
        assert len(engine.run(GridRequest("a kite", (0, 1), steps=2))) == 2
    finally:
        torch.use_deterministic_algorithms(False)


def test_served_files_expire_after_an_hour_or_the_flags_or_the_environments_seconds(
    monkeypatch,
) -> None:
    assert app.parse_args([]).expire_after == 3600
    assert app.parse_args(["--expire-after", "90"]).expire_after == 90
    monkeypatch.setenv("SEED_EXPLORER_EXPIRE_AFTER", "600")
    assert app.parse_args([]).expire_after == 600
    with pytest.raises(SystemExit):
        app.parse_args(["--expire-after", "0"])


@pytest.mark.parametrize(
    ("devices", "gpus", "says"),
    [
        ("cpu,gpu1", 0, "entry 2 ('gpu1') is not a device"),
        ("cpu,,cpu", 0, "entry 2 ('') is not a device"),
        ("all", 0, "'all' is every CUDA device, and this machine has none"),
        ("cuda:0,cuda:2", 2, "cuda:2 is not on this machine, which has 2 CUDA devices"),
        ("cuda:1,cuda,cuda:0", 2, "cuda:0 is named twice: one engine per GPU"),
    ],
)
def test_devices_that_cannot_be_served_are_refused_naming_the_flag(
    monkeypatch, capsys, devices: str, gpus: int, says: str
) -> None:
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    with pytest.raises(SystemExit) as caught:
        app.parse_args(["--devices", devices])
    assert caught.value.code == 2
    assert f"argument --devices: {says}" in capsys.readouterr().err


def test_devices_all_is_every_cuda_device(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    assert app.parse_args(["--devices", "all"]).devices == ("cuda:0", "cuda:1", "cuda:2")
    monkeypatch.setenv("SEED_EXPLORER_DEVICES", "cpu, cpu")
    assert app.parse_args([]).devices == ("cpu", "cpu")


def test_replicas_are_a_number_or_a_range_to_autoscale_in(monkeypatch, capsys) -> None:
    assert app.parse_args(["--replicas", "3"]).replicas.options() == {"num_replicas": 3}
    autoscaled = app.parse_args(["--replicas", "1-4"]).replicas.options()
    assert autoscaled == {"autoscaling_config": {"min_replicas": 1, "max_replicas": 4}}
    with pytest.raises(SystemExit):
        app.parse_args(["--replicas", "4-1"])
    assert "argument --replicas: '4-1': at least 1 replica" in capsys.readouterr().err
    line = exit_line(monkeypatch, "--ray", "--devices", "cpu,cpu")
    assert line.startswith("error: --devices and --ray cannot go together")
