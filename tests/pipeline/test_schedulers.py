import pytest

from pipeline.families import SD1, SDXL
from pipeline.loading import LoadedModel
from pipeline.schedulers import EXCLUDED, SchedulerError, SchedulerRegistry


@pytest.fixture(scope="module")
def registry(tiny: LoadedModel) -> SchedulerRegistry:
    return SchedulerRegistry(tiny.pipe.scheduler)


def test_every_compatible_scheduler_is_offered_or_left_out_with_a_reason(
    tiny: LoadedModel, registry: SchedulerRegistry
) -> None:
    offered = {entry.class_name for entry in registry.entries}
    for cls in tiny.pipe.scheduler.compatibles:
        assert cls.__name__ in offered or cls.__name__ in EXCLUDED
    assert "DPMSolverSDEScheduler" not in offered
    assert {"LMSDiscreteScheduler", "HeunDiscreteScheduler"} <= offered


def test_the_default_comparison_six_are_offered(registry: SchedulerRegistry) -> None:
    assert set(SD1.compare) | set(SDXL.compare) <= set(registry.names)


def test_the_default_is_the_models_own_scheduler(registry: SchedulerRegistry) -> None:
    assert registry.default.class_name == "PNDMScheduler"
    assert registry.default.name == "PNDM"


@pytest.mark.parametrize(
    ("name", "display"),
    [
        ("Euler a", "Euler a"),
        ("euler A", "Euler a"),
        ("EulerAncestralDiscreteScheduler", "Euler a"),
        ("DPMSolverMultistepScheduler", "DPM++ 2M"),
        ("DPM++ 2M Karras", "DPM++ 2M Karras"),
        (" UniPC ", "UniPC"),
    ],
)
def test_display_names_and_class_names_both_work(
    registry: SchedulerRegistry, name: str, display: str
) -> None:
    assert registry.resolve(name).name == display


def test_unknown_names_list_the_choices(registry: SchedulerRegistry) -> None:
    with pytest.raises(SchedulerError, match=r"unknown scheduler 'Eulr'.*DPM\+\+ 2M"):
        registry.resolve("Eulr")


def test_left_out_schedulers_say_why(registry: SchedulerRegistry) -> None:
    with pytest.raises(SchedulerError, match="neighbours"):
        registry.resolve("DPMSolverSDEScheduler")


def test_make_gives_a_fresh_scheduler_from_the_models_config(
    tiny: LoadedModel, registry: SchedulerRegistry
) -> None:
    cached = tiny.pipe.scheduler
    first, second = registry.make("PNDM"), registry.make("PNDM")
    assert first is not cached and second is not first
    assert dict(first.config) == dict(cached.config)
    karras = registry.make("DPM++ 2M Karras")
    assert karras.config.use_karras_sigmas is True
    assert karras.config.beta_schedule == cached.config.beta_schedule
    assert registry.make("DPM++ 2M SDE").config.algorithm_type == "sde-dpmsolver++"
