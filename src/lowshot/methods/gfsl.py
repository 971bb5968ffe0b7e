"""What a method of the GFSL recipe may additionally know about its inputs."""

from __future__ import annotations

from dataclasses import dataclass

from lowshot.methods.base import InputSpec


@dataclass(frozen=True)
class GFSLInputSpec(InputSpec):
    """:class:`InputSpec` plus the number of classes ``C`` of the benchmark (classifier heads).

    Attributes:
        num_classes: ``C``, all classes of the dataset (0 = unknown: a classifier method refuses it).
    """

    num_classes: int = 0
