"""neuralstyle: neural style transfer (Gatys, Ecker & Bethge) on PyTorch.

Images enter every public function as RGB floats in [0, 1]; each backbone knows its own input
convention. Importing the package has no side effects: no network, no file access, no global
state changed.
"""

from __future__ import annotations

__version__ = "0.1.0"

# The public API, re-exported from the module that owns each name.
from neuralstyle.callbacks import Callback, RunEnd, RunStart, StepState, Stop
from neuralstyle.color import (
    ColorMatchMethod,
    match_color,
    rgb_to_yiq,
    transfer_luminance,
    yiq_to_rgb,
)
from neuralstyle.config import TransferConfig
from neuralstyle.errors import (
    ConfigError,
    DeviceMismatchError,
    DTypeError,
    ImageError,
    ImageNotFoundError,
    InsufficientMemoryError,
    LayerNotFoundError,
    NeuralStyleError,
    NumericalError,
    ShapeError,
    WeightsError,
    WeightsNotFoundError,
)
from neuralstyle.examples import example_image, example_images
from neuralstyle.features import FeatureExtractor, InputConvention, available_layers
from neuralstyle.image import load_alpha, load_image
from neuralstyle.image_output import check_output_path, save_image, to_pil
from neuralstyle.layers import LayerMap
from neuralstyle.losses import (
    GaussianStatistics,
    GramNormalization,
    Reduction,
    blend_statistics,
    content_loss,
    gaussian_statistics,
    gram_matrix,
    style_loss,
    total_variation,
    wasserstein_style_loss,
)
from neuralstyle.masks import load_mask
from neuralstyle.objective import Loss, Objective
from neuralstyle.presets import PRESETS, Preset, get_preset
from neuralstyle.run import TransferRun
from neuralstyle.targets import RunInputs, StyleRegion, Targets
from neuralstyle.transfer import StyleTransfer, TransferResult

__all__ = [
    "PRESETS",
    "Callback",
    "ColorMatchMethod",
    "ConfigError",
    "DTypeError",
    "DeviceMismatchError",
    "FeatureExtractor",
    "GaussianStatistics",
    "GramNormalization",
    "ImageError",
    "ImageNotFoundError",
    "InputConvention",
    "InsufficientMemoryError",
    "LayerMap",
    "LayerNotFoundError",
    "Loss",
    "NeuralStyleError",
    "NumericalError",
    "Objective",
    "Preset",
    "Reduction",
    "RunEnd",
    "RunInputs",
    "RunStart",
    "ShapeError",
    "StepState",
    "Stop",
    "StyleRegion",
    "StyleTransfer",
    "Targets",
    "TransferConfig",
    "TransferResult",
    "TransferRun",
    "WeightsError",
    "WeightsNotFoundError",
    "__version__",
    "available_layers",
    "blend_statistics",
    "check_output_path",
    "content_loss",
    "example_image",
    "example_images",
    "gaussian_statistics",
    "get_preset",
    "gram_matrix",
    "load_alpha",
    "load_image",
    "load_mask",
    "match_color",
    "rgb_to_yiq",
    "save_image",
    "style_loss",
    "to_pil",
    "total_variation",
    "transfer_luminance",
    "wasserstein_style_loss",
    "yiq_to_rgb",
]
