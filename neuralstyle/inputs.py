"""A run's inputs: read and check the content, styles and masks once, encode them per scale.

:func:`load_inputs` reads everything before any network work, so a bad file fails first;
:func:`encode` turns the loaded inputs into the objective's targets at one scale's size, loading
each style at the size that scale needs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from neuralstyle._checks import check_float_tensor
from neuralstyle.config import TransferConfig
from neuralstyle.errors import ConfigError
from neuralstyle.image import ImageSource, load_image
from neuralstyle.masks import load_mask
from neuralstyle.objective import Objective
from neuralstyle.scales import resize, spatial_size
from neuralstyle.targets import RunInputs, Targets, check_style_counts

__all__ = ["ImageSources", "encode", "load_content", "load_inputs", "load_style"]

ImageSources = ImageSource | list[ImageSource] | tuple[ImageSource, ...]
"""One image, or a list/tuple of images (a content batch, or styles to blend)."""


def load_content(
    content: ImageSources, *, size: int | None = None, device: torch.device | str = "cpu"
) -> Tensor:
    """Load one image, or a list or tuple of images, as a ``(B, 3, H, W)`` batch on ``device``.

    Args:
        content: A path, PIL image, array or tensor (a 4-d tensor may hold a batch), or a list
            or tuple of those; every item is resized to the first item's size.
        size: The long side of the first item, or None for its own size.
        device: Where the batch goes.

    Raises:
        ConfigError: An empty list or tuple.
    """
    if isinstance(content, (list, tuple)):
        if not content:
            raise ConfigError("content is an empty sequence; pass at least one image")
        first = _load_batch(content[0], size, device)
        rest = [_load_batch(item, spatial_size(first), device) for item in content[1:]]
        return torch.cat([first, *rest])
    return _load_batch(content, size, device)


def _load_batch(
    source: ImageSource, size: int | tuple[int, int] | None, device: torch.device | str
) -> Tensor:
    if isinstance(source, Tensor) and source.dim() == 4 and source.shape[0] > 1:
        check_float_tensor(source, "content")
        items = [load_image(item, size=size) for item in source]
        return torch.cat(items).to(device)
    return load_image(source, size=size).to(device)


def load_style(
    style: ImageSource,
    content_shape: Sequence[int],
    *,
    style_scale: float | None,
    device: torch.device | str = "cpu",
    scale: float = 1.0,
) -> Tensor:
    """Load a style image with its long side ``style_scale`` times the content's long side.

    With ``style_scale=None`` the style keeps its own size, times ``scale``: the current size
    relative to the output's in a coarse-to-fine run, so the strokes keep their size relative to
    the picture at every scale.
    """
    long_side: int | None = None
    if style_scale is not None:
        long_side = max(1, round(max(content_shape[-2:]) * style_scale))
    elif scale < 1:
        long_side = max(1, round(max(load_image(style).shape[-2:]) * scale))
    return load_image(style, size=long_side).to(device)


def load_inputs(
    content: ImageSources,
    style: ImageSources,
    *,
    config: TransferConfig,
    style_masks: Sequence[ImageSource] | None = None,
    content_mask: ImageSource | None = None,
    device: torch.device | str = "cpu",
) -> RunInputs:
    """Load and check everything a run reads, before any network work.

    Args:
        content: The content image(s), loaded at ``config.size`` (see :func:`load_content`).
        style: One style image or a list of them (each is read now to check it, and loaded per
            scale by :func:`encode`).
        style_masks: One region mask per style image, or None.
        content_mask: Where the picture may change, or None.
        config: Its ``size`` and ``style_blend`` apply.
        device: Where the images go.

    Raises:
        ConfigError: The style, blend-weight and mask counts do not go together.
        ShapeError: A mask's aspect ratio is not the content's.
        ImageError: An image cannot be read, or a mask has values outside [0, 1].
    """
    content_image = load_content(content, size=config.size, device=device)
    styles = tuple(style) if isinstance(style, (list, tuple)) else (style,)
    check_style_counts(config, len(styles), None if style_masks is None else len(style_masks))
    for source in styles:  # read each one now, so a bad file fails before any work
        load_image(source)
    size = spatial_size(content_image)
    masks = None
    if style_masks is not None:
        masks = tuple(
            load_mask(mask, size=size, name=f"style mask {index}").to(device)
            for index, mask in enumerate(style_masks, start=1)
        )
    region = None
    if content_mask is not None:
        region = load_mask(content_mask, size=size, name="content mask").to(device)
    return RunInputs(content_image, styles, masks, region)


def encode(objective: Objective, inputs: RunInputs, size: tuple[int, int]) -> Targets:
    """The objective's targets of loaded ``inputs`` with the output at ``size`` (one scale).

    The styles are loaded at the size this scale needs (see :func:`load_style`).
    """
    content_image = resize(inputs.content_image, size).clamp_(0, 1)
    scale = max(size) / max(inputs.content_image.shape[-2:])
    style_scale, device = objective.config.style_scale, objective.device
    styles = [
        load_style(style, content_image.shape, style_scale=style_scale, device=device, scale=scale)
        for style in inputs.styles
    ]
    return objective.targets(
        content_image, styles, style_masks=inputs.style_masks, content_mask=inputs.content_mask
    )
