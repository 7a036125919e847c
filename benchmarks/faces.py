"""The face measure of the quality protocol: does a face detector still find the face?

MTCNN (Zhang et al., 2016) from facenet-pytorch, which ships the detector's weights inside its
wheel, so it runs offline. facenet-pytorch pins old torch versions; install it beside the
project without its dependencies (a benchmark tool, never a runtime dependency)::

    pip install --no-deps facenet-pytorch && pip install requests tqdm

Without it, :func:`face_detector` returns None and the report leaves the measure out.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from PIL import Image
from torch import Tensor

from neuralstyle import to_pil

__all__ = ["INSTALL_HINT", "FaceDetector", "face_detector"]

INSTALL_HINT = "pip install --no-deps facenet-pytorch && pip install requests tqdm"
"""How to install the detector (it pins old torch versions, so without its dependencies)."""

FaceDetector = Callable[[Tensor], float]
"""``(1, 3, H, W)`` RGB in [0, 1] -> the best face probability, 0.0 when none is found."""


def face_detector() -> FaceDetector | None:
    """MTCNN on the CPU, or None when facenet-pytorch is not installed."""
    try:
        from facenet_pytorch import MTCNN  # type: ignore[import-not-found]
    except ImportError:
        return None
    detector = MTCNN(keep_all=True, device="cpu")

    def best_probability(image: Tensor) -> float:
        picture: Image.Image = to_pil(image.detach().float().cpu().clamp(0, 1))
        with torch.no_grad():
            _, probabilities = detector.detect(picture)
        found = [float(p) for p in (probabilities if probabilities is not None else []) if p]
        return max(found, default=0.0)

    return best_probability
