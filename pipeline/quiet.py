"""Lines transformers prints at every start that read like faults and are none."""

import logging

from transformers.utils import logging as transformers_logging


class _TorchvisionAdvice(logging.Filter):
    """transformers' image processors would like torchvision; the app needs none."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "requires torchvision" not in record.getMessage()


def leave_out_torchvision_advice() -> None:
    transformers_logging.get_logger()  # makes the handler transformers writes through
    for handler in logging.getLogger("transformers").handlers:
        handler.addFilter(_TorchvisionAdvice())
