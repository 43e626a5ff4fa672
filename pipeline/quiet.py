"""Lines the libraries print at every start that read like faults, or like work of ours, and
are neither: the app says what it loads in its own words (app.py)."""

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import huggingface_hub.utils
from diffusers.utils import logging as diffusers_logging
from transformers.utils import logging as transformers_logging


class _TorchvisionAdvice(logging.Filter):
    """transformers' image processors would like torchvision; the app needs none."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "requires torchvision" not in record.getMessage()


# torchao, where it is installed (--quantize), speaks at every import of diffusers: CUDA-only
# kernels it cannot load on this machine, torch's note on its enums, diffusers' note on its
# tensor types. None of it is a fault of ours or the user's.
_IMPORT_NOISE = (
    "torchao",
    "torch.utils._pytree",
    "diffusers.quantizers.torchao.torchao_quantizer",
)


def leave_out_import_noise() -> None:
    for name in _IMPORT_NOISE:
        logging.getLogger(name).setLevel(logging.ERROR)


def leave_out_torchvision_advice() -> None:
    transformers_logging.get_logger()  # makes the handler transformers writes through
    for handler in logging.getLogger("transformers").handlers:
        handler.addFilter(_TorchvisionAdvice())


@contextmanager
def quiet_loading() -> Iterator[None]:
    """While a model loads: no "Loading pipeline components" or weight-loading progress bars
    (a load takes seconds, and the app logs it once), and no huggingface_hub warning that
    diffusers passes it a deprecated `local_dir_use_symlinks`. Bars are on again after."""
    bars = [
        library
        for library in (diffusers_logging, transformers_logging)
        if library.is_progress_bar_enabled()
    ]
    for library in bars:
        library.disable_progress_bar()
    try:
        with huggingface_hub.utils.disable_progress_bars(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*local_dir_use_symlinks.*")
            yield
    finally:
        for library in bars:
            library.enable_progress_bar()
