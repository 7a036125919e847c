"""Tiling: optimize an image larger than memory one overlapping crop at a time.

Memory of a step grows with the pixels it sees (the activations kept for the backward pass), so a
4096 px picture does not fit where a 1024 px one does. At a scale whose long side exceeds
``config.tile_size`` the run instead optimizes square crops of that side, one after another:

* every crop aims at the **same global targets**: the style's Grams come from the whole style
  image, and the content feature maps of the whole picture are assembled once per scale from
  crops whose borders are cut away (so a crop's target is what the whole image's network sees);
* a crop is a *core* it owns plus a margin of context on every side. Only the core's pixels move,
  and the loss counts only the core's feature positions: the margin shows the network the real
  neighbours instead of zero padding, and its distorted border features never enter a Gram;
* the grid moves between passes (by half a core), so a border of one pass lies inside a core of
  the next and no seam survives.

Crops start on multiples of the network's largest stride, so a crop's feature maps line up
exactly with the whole image's.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

import torch
from torch import Tensor

from neuralstyle._moved import moved_names
from neuralstyle.errors import ConfigError, ShapeError
from neuralstyle.targets import StyleRegion, Targets

__all__ = ["PASSES", "Tile", "TilePlan", "cut", "relative", "steps_per_tile"]

# The tile-by-tile loop moved to neuralstyle.tiled_scale; the old import keeps working.
__getattr__ = moved_names(__name__, {"TiledScale": "neuralstyle.tiled_scale"})

PASSES = 2
"""Passes over the image per tiled scale; the grid moves by ``1 / PASSES`` of a tile between
them."""

FeatureFunction = Callable[[Tensor], Mapping[str, Tensor]]
T = TypeVar("T")


@dataclass(frozen=True)
class Tile:
    """One crop of a pass, as pixel bounds ``[top, bottom) x [left, right)``.

    Attributes:
        crop: The region optimized: the core plus context on every side inside the image.
        core: The region this tile owns in its pass; the cores of a pass cover the image once.
        pass_index: Which pass over the image the tile belongs to, from 0.
    """

    crop: tuple[int, int, int, int]
    core: tuple[int, int, int, int]
    pass_index: int = 0

    @property
    def area(self) -> int:
        """Pixels of the core."""
        top, bottom, left, right = self.core
        return (bottom - top) * (right - left)


@dataclass(frozen=True)
class TilePlan:
    """How to cut images into tiles for one network.

    Attributes:
        tile: Side of a crop in pixels (at most; crops at the image's edge are smaller).
        margin: Context kept on each side of a core, a multiple of ``align``.
        align: The largest stride of the network's layers; crops start on its multiples.
        strides: Layer -> how many input pixels one position of its feature map spans.
    """

    tile: int
    margin: int
    align: int
    strides: Mapping[str, int]

    @classmethod
    def probe(
        cls, tile: int, features: FeatureFunction, min_size: int, device: torch.device
    ) -> TilePlan:
        """Work out the network's strides from one small forward pass and size the margins.

        Raises:
            ConfigError: ``tile`` is too small to hold a core and its margins for this network.
        """
        side = 64
        while side < min_size:
            side *= 2
        with torch.no_grad():
            shapes = {
                name: map_.shape[-1]
                for name, map_ in features(torch.zeros(1, 3, side, side, device=device)).items()
            }
        strides = {name: max(1, side // width) for name, width in shapes.items()}
        align = max(strides.values())
        # A sixteenth of the tile each side: enough context for the core's receptive field to see
        # mostly real pixels, without spending much of each step on pixels thrown away.
        # Never less than the network's smallest input, so a sliver at the image's edge plus its
        # margin still makes a valid crop.
        margin = max(align, _round_down(tile // 16, align), _round_up(min_size, align))
        smallest = max(2 * margin + 2 * align, min_size)
        if tile < smallest:
            raise ConfigError(
                f"tile_size {tile} is too small for this network (largest stride {align}, "
                f"margins {margin}); use tile_size >= {smallest}"
            )
        return cls(tile, margin, align, strides)

    @property
    def core(self) -> int:
        """Side of a full core: the tile less its margins, a multiple of ``align``."""
        return _round_down(self.tile - 2 * self.margin, self.align)

    def needed(self, size: tuple[int, int]) -> bool:
        """Whether an image of ``size`` is larger than one tile."""
        return max(size) > self.tile

    def layout(self, size: tuple[int, int], pass_index: int) -> list[Tile]:
        """The tiles of one pass over an image of ``size``, row by row."""
        height, width = size
        tiles = []
        for top, bottom in self._spans(height, pass_index):
            for left, right in self._spans(width, pass_index):
                crop = (
                    max(0, top - self.margin),
                    min(height, bottom + self.margin),
                    max(0, left - self.margin),
                    min(width, right + self.margin),
                )
                tiles.append(Tile(crop, (top, bottom, left, right), pass_index))
        return tiles

    def visits(self, size: tuple[int, int]) -> list[Tile]:
        """Every tile of every pass, in the order they are optimized."""
        return [tile for index in range(PASSES) for tile in self.layout(size, index)]

    def _spans(self, length: int, pass_index: int) -> list[tuple[int, int]]:
        """Core intervals along one axis for one pass.

        Pass 0 cuts the axis into equal spans of at most a core; pass ``p`` moves every cut by
        ``p / PASSES`` of a span, so its spans straddle the earlier cuts (the edge spans are
        shorter, never slivers).
        """
        if length <= self.tile:
            return [(0, length)]
        count = math.ceil(length / (self.core - self.align))  # rounding adds < align per span
        cuts = [_round_down(index * length // count, self.align) for index in range(count)]
        cuts.append(length)
        if pass_index:
            moved = [
                _round_down(start + (end - start) * pass_index // PASSES, self.align)
                for start, end in itertools.pairwise(cuts)
            ]
            cuts = [0, *moved, length]
        return [(start, end) for start, end in itertools.pairwise(cuts) if end > start]

    def feature_shape(self, name: str, size: tuple[int, int]) -> tuple[int, int]:
        """The feature map size of layer ``name`` for an image of ``size``."""
        stride = self.strides[name]
        return size[0] // stride, size[1] // stride

    @torch.no_grad()
    def content_maps(
        self, features: FeatureFunction, image: Tensor, layers: Sequence[str]
    ) -> dict[str, Tensor]:
        """The whole image's feature maps at ``layers``, assembled from tile cores.

        Each crop's border (where it sees zero padding instead of its neighbours) is cut away, so
        the result is close to what one forward pass of the whole image would give, at the memory
        of one tile.
        """
        size = (image.shape[-2], image.shape[-1])
        maps: dict[str, Tensor] = {}
        for tile in self.layout(size, 0):
            top, bottom, left, right = tile.crop
            found = self._checked(features(image[..., top:bottom, left:right]), tile.crop, layers)
            for name in layers:
                stride = self.strides[name]
                if name not in maps:
                    height, width = self.feature_shape(name, size)
                    maps[name] = (
                        found[name]
                        .float()
                        .new_zeros((image.shape[0], found[name].shape[1], height, width))
                    )
                rows, cols = _feature_slices(tile.core, stride)
                inner_rows, inner_cols = _feature_slices(relative(tile.core, tile.crop), stride)
                maps[name][..., rows, cols] = found[name][..., inner_rows, inner_cols].float()
        return maps

    @torch.no_grad()
    def core_statistics(
        self,
        features: FeatureFunction,
        image: Tensor,
        layers: Sequence[str],
        statistic: Callable[[Tensor, Tensor], T],
    ) -> dict[str, list[tuple[int, T]]]:
        """Layer -> ``statistic(maps, core mask)`` of every tile core of ``image``, each with the
        core's position count at that layer.

        Sums over positions (Grams, means, second moments) pool exactly from these, so a style
        image too large for one forward pass still gets its whole-image targets.
        """
        size = (image.shape[-2], image.shape[-1])
        found: dict[str, list[tuple[int, T]]] = {name: [] for name in layers}
        for tile in self.layout(size, 0):
            maps = self._checked(features(cut(image, tile.crop)), tile.crop, layers)
            for name in layers:
                core = self._core_positions(tile, self.strides[name], image.device)
                found[name].append((int(core.sum()), statistic(maps[name], core)))
        return found

    def _checked(
        self, found: Mapping[str, Tensor], crop: tuple[int, int, int, int], layers: Sequence[str]
    ) -> Mapping[str, Tensor]:
        """Refuse a network whose maps are not the input's size divided by a fixed stride."""
        top, bottom, left, right = crop
        for name in layers:
            stride = self.strides[name]
            expected = (bottom // stride - top // stride, right // stride - left // stride)
            if tuple(found[name].shape[-2:]) != expected:
                raise ShapeError(
                    f"tiling needs feature maps the size of the input divided by the layer's "
                    f"stride; layer {name!r} gave {tuple(found[name].shape[-2:])} for a crop "
                    f"where {expected} was expected; run this network without tile_size"
                )
        return found

    def crop_targets(self, targets: Targets, tile: Tile) -> Targets:
        """``targets`` cut to ``tile``'s crop: the targets of optimizing that crop alone.

        The style targets stay global; the loss counts only the core's feature positions
        (``Targets.counted``), and a region's share is its part of the core.
        """
        counted = {
            name: self._core_positions(tile, stride, targets.content_image.device)
            for name, stride in self.strides.items()
        }
        content = {
            name: cut(maps, tile.crop, self.strides[name]) for name, maps in targets.content.items()
        }
        mask = targets.content_mask
        weights = targets.content_weights
        if weights is not None:
            weights = {
                name: cut(maps, tile.crop, self.strides[name]) for name, maps in weights.items()
            }
        return replace(
            targets,
            content_weights=weights,
            content_image=cut(targets.content_image, tile.crop),
            content=content,
            styles=tuple(self._crop_region(region, tile, counted) for region in targets.styles),
            content_mask=None if mask is None else cut(mask, tile.crop),
            counted=counted,
        )

    def _core_positions(self, tile: Tile, stride: int, device: torch.device) -> Tensor:
        """``(1, 1, h, w)`` map of a crop's feature positions: 1 on the core, 0 on the margin."""
        rows, cols = _feature_slices(tile.crop, stride)
        positions = torch.zeros(1, 1, rows.stop - rows.start, cols.stop - cols.start, device=device)
        cut(positions, relative(tile.core, tile.crop), stride).fill_(1)
        return positions

    def _crop_region(
        self, region: StyleRegion, tile: Tile, counted: Mapping[str, Tensor]
    ) -> StyleRegion:
        """A style region measured over the core of ``tile`` (and inside its own mask)."""
        if region.masks is None:
            masks = {name: counted[name] for name in region.targets}
            return replace(region, masks=masks)
        masks = {
            name: cut(mask, tile.crop, self.strides[name]) * counted[name]
            for name, mask in region.masks.items()
        }
        # The share is the region's part of the core: per pixel, the pull stays that of a run
        # over the whole image.
        finest = min(masks, key=lambda name: self.strides[name])
        share = masks[finest].flatten(1).sum(1) / counted[finest].sum()
        return replace(region, masks=masks, share=share)


def _feature_slices(box: tuple[int, int, int, int], stride: int) -> tuple[slice, slice]:
    """Pixel bounds ``[top, bottom) x [left, right)`` as slices of a map with ``stride``."""
    top, bottom, left, right = box
    return slice(top // stride, bottom // stride), slice(left // stride, right // stride)


def cut(tensor: Tensor, box: tuple[int, int, int, int], stride: int = 1) -> Tensor:
    """The part of a ``(..., H, W)`` map (of the given stride) under pixel bounds ``box``."""
    rows, cols = _feature_slices(box, stride)
    return tensor[..., rows, cols]


def relative(
    inner: tuple[int, int, int, int], outer: tuple[int, int, int, int]
) -> tuple[int, int, int, int]:
    """``inner``'s bounds measured from ``outer``'s top-left corner."""
    return inner[0] - outer[0], inner[1] - outer[0], inner[2] - outer[2], inner[3] - outer[2]


def _round_down(value: int, multiple: int) -> int:
    return value // multiple * multiple


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def steps_per_tile(steps: int) -> int:
    """Steps of one tile visit so that every pixel gets about ``steps`` over all passes."""
    return max(1, math.ceil(steps / PASSES))
