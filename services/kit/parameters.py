"""Request parameters a model declares: parsed and validated by the core, described in OpenAPI.

Torch-free on purpose: the web service (which has no torch) documents the model services'
parameters from these declarations as the services report them (``/v1/models``), with the
running configuration's defaults (services.kit.openapi).
"""

from __future__ import annotations

from dataclasses import dataclass

from services.kit.errors import ApiError

_KIND_NAMES = {int: "an integer", float: "a number"}


@dataclass(frozen=True)
class Parameter:
    """One query parameter: ``name=value``, a number of ``kind`` within [minimum, maximum]."""

    name: str
    kind: type  # int or float
    default: float
    minimum: float
    maximum: float
    description: str

    def parse(self, raw: str | None) -> float:
        """The value of ``raw`` (the default when absent), else 400 ``invalid_parameter``."""
        if raw is None or raw == "":
            return self.default
        try:
            value = self.kind(raw)
        except ValueError:
            raise ApiError(
                400,
                "invalid_parameter",
                f"Query parameter {self.name}={raw!r} is not {_KIND_NAMES[self.kind]}.",
            ) from None
        if not self.minimum <= value <= self.maximum:
            raise ApiError(
                400,
                "invalid_parameter",
                f"Query parameter {self.name}={raw!r} is out of range "
                f"[{self.minimum}, {self.maximum}].",
            )
        return value

    def describe(self) -> dict:
        """JSON form (in ``/v1/models``), from which the OpenAPI documents are built."""
        return {
            "name": self.name,
            "type": "integer" if self.kind is int else "number",
            "default": self.default,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "description": self.description,
        }
