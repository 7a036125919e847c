"""Layer maps: which network layers carry the content and the style, and how much each counts.

A :class:`LayerMap` names layers the paper's way (``relu4_2``, not ``features.22``) so it reads the
same
on every backbone that provides those names.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from neuralstyle.errors import ConfigError, LayerNotFoundError, closest_names

__all__ = ["CLASSIC_STYLE_LAYERS", "LayerMap", "closest_names"]

CLASSIC_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
"""The style layers of Gatys et al. (2016) and jcjohnson's neural-style."""


def _checked_weights(kind: str, weights: Mapping[str, float]) -> dict[str, float]:
    if not isinstance(weights, Mapping):
        raise ConfigError(
            f"{kind} layers must be a mapping of layer name to weight, e.g. {{'relu4_2': 1.0}}, "
            f"got {type(weights).__name__}"
        )
    checked: dict[str, float] = {}
    for name, weight in weights.items():
        if not isinstance(name, str):
            raise ConfigError(f"{kind} layer names must be strings, got {name!r}")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)):
            raise ConfigError(f"{kind} weight of {name!r} must be a number, got {weight!r}")
        if not math.isfinite(weight) or weight < 0:
            raise ConfigError(
                f"{kind} weight of {name!r} must be finite and >= 0, got {weight!r}; "
                "use 0 to switch a layer off"
            )
        checked[name] = float(weight)
    return checked


@dataclass(frozen=True)
class LayerMap:
    """Content and style layers, each with a non-negative weight.

    Args:
        content: Layer name -> weight of that layer's content term.
        style: Layer name -> weight of that layer's style term.

    Frozen all the way down: ``content`` and ``style`` are read-only views of the map's own
    copies, so a map can be hashed, shared and used as a dictionary key.

    Raises:
        ConfigError: A weight is negative, NaN or infinite, or every weight is zero.

    Example:
        >>> LayerMap(content={"relu4_2": 1.0}, style={"relu1_1": 1.0, "relu2_1": 1.0}).layers
        ('relu4_2', 'relu1_1', 'relu2_1')
    """

    content: Mapping[str, float] = field(default_factory=dict)
    style: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        content = _checked_weights("content", self.content)
        style = _checked_weights("style", self.style)
        if not any(content.values()) and not any(style.values()):
            raise ConfigError(
                "the layer map has no term with a positive weight; give at least one content or "
                "style layer a weight > 0, e.g. LayerMap(content={'relu4_2': 1.0})"
            )
        # Read-only views of private copies: neither the caller's dict nor the map's own
        # fields can change after validation.
        object.__setattr__(self, "content", MappingProxyType(content))
        object.__setattr__(self, "style", MappingProxyType(style))

    def __repr__(self) -> str:
        return f"LayerMap(content={dict(self.content)!r}, style={dict(self.style)!r})"

    def __hash__(self) -> int:
        return hash((frozenset(self.content.items()), frozenset(self.style.items())))

    def __reduce__(self) -> tuple[type[LayerMap], tuple[dict[str, float], dict[str, float]]]:
        # Read-only views do not pickle; the plain dicts rebuild (and re-check) the map.
        return (LayerMap, (dict(self.content), dict(self.style)))

    @property
    def layers(self) -> tuple[str, ...]:
        """Every layer the map uses, content layers first, each once."""
        return tuple(dict.fromkeys([*self.content, *self.style]))

    def check_available(self, available: Iterable[str]) -> None:
        """Raise :class:`LayerNotFoundError` for the first layer not in ``available``.

        Args:
            available: The layer names a feature extractor provides.

        Raises:
            LayerNotFoundError: With the closest valid names in the message.
        """
        provided = list(available)
        for name in self.layers:
            if name not in provided:
                hint = closest_names(name, provided)
                suggestion = f"; did you mean {', '.join(hint)}?" if hint else ""
                raise LayerNotFoundError(
                    f"layer {name!r} is not provided by the feature extractor (it has "
                    f"{', '.join(provided)}){suggestion}"
                )
