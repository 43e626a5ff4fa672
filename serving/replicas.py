"""How many replicas of the model Ray Serve runs: read from --replicas without Ray installed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Replicas:
    """How many replicas: a fixed number, or Serve's autoscaling between two numbers."""

    least: int
    most: int

    @classmethod
    def parse(cls, text: str) -> Replicas:
        """'N', or 'MIN-MAX' for autoscaling."""
        low, dash, high = text.partition("-")
        try:
            least, most = int(low), int(high if dash else low)
        except ValueError:
            raise ValueError(f"{text!r} is not N or MIN-MAX (2, or 1-4)") from None
        if least < 1 or most < least:
            raise ValueError(f"{text!r}: at least 1 replica, and MIN no more than MAX")
        return cls(least, most)

    def options(self) -> dict[str, Any]:
        if self.least == self.most:
            return {"num_replicas": self.least}
        return {"autoscaling_config": {"min_replicas": self.least, "max_replicas": self.most}}
