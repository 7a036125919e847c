"""The seed's style-transfer loop, re-implemented from its blog post as the speed baseline.

Source: Jay Gala, "Neural Style Transfer" (2020), /work/shared/seed/neural-style-transfer.md.
Kept faithful on purpose, including what makes it slow, since its cost is what we measure:

* every step recomputes the content and style features along with the target's;
* the network's parameters are not frozen, so every backward also computes weight gradients,
  through all three forward passes;
* the whole ``vgg19().features`` runs, past the deepest layer used (conv5_1);
* the network's ReLUs are in-place, so the collected "conv" outputs are really ReLU outputs
  (relu1_1, relu2_1, relu3_1, relu4_1, relu5_1);
* Gram / (a*b*c*d), ``torch.mean`` squared errors for both terms on all five layers;
* content weight 1e-2, style weight 1e4, Adam lr 0.02 betas (0.99, 0.999), content init;
* the image is optimized in ImageNet-normalized space.

Run ``python benchmarks/seed_baseline.py --steps 20`` to watch its loss fall.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from _common import load_pixels, seeded_vgg19_features
from torch import Tensor, nn

__all__ = [
    "BETAS",
    "CONTENT_WEIGHT",
    "LEARNING_RATE",
    "SEED_LAYERS",
    "STYLE_WEIGHT",
    "denormalize",
    "get_feature_maps",
    "gram_matrix",
    "make_optimizer",
    "normalize",
    "run_neural_style_transfer",
    "seed_loss",
    "seed_model",
    "seed_step",
]

SEED_LAYERS = ("0", "5", "10", "19", "28")
"""Indices of conv1_1, conv2_1, conv3_1, conv4_1, conv5_1 in ``vgg19().features``."""
CONTENT_WEIGHT = 1e-2
STYLE_WEIGHT = 1e4
LEARNING_RATE = 0.02
BETAS = (0.99, 0.999)
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


def seed_model(seed: int, device: torch.device) -> nn.Sequential:
    """The seed's network: the whole ``vgg19().features``, eval mode, parameters left trainable.

    Example:
        >>> model = seed_model(0, torch.device("cpu"))
        >>> all(p.requires_grad for p in model.parameters())
        True
    """
    model = seeded_vgg19_features(seed)
    model.to(device).eval()
    return model


def _channel_stats(like: Tensor) -> tuple[Tensor, Tensor]:
    mean = torch.tensor(_MEAN, dtype=like.dtype, device=like.device).view(1, 3, 1, 1)
    std = torch.tensor(_STD, dtype=like.dtype, device=like.device).view(1, 3, 1, 1)
    return mean, std


def normalize(pixels: Tensor) -> Tensor:
    """Pixels in [0, 1] -> the seed's ImageNet-normalized space (its ``transforms.Normalize``).

    Example:
        >>> float(normalize(torch.full((1, 3, 1, 1), 0.485))[0, 0, 0, 0])
        0.0
    """
    mean, std = _channel_stats(pixels)
    return (pixels - mean) / std


def denormalize(image: Tensor) -> Tensor:
    """The seed's normalized space -> pixels (``x * std + mean``), without its clipping.

    Example:
        >>> x = torch.rand(1, 3, 2, 2)
        >>> torch.allclose(denormalize(normalize(x)), x, atol=1e-6)
        True
    """
    mean, std = _channel_stats(image)
    return image * std + mean


def get_feature_maps(
    image: Tensor, model: nn.Sequential, layers: Sequence[str] = SEED_LAYERS
) -> list[Tensor]:
    """The seed's feature collection: every module runs, the listed outputs are kept.

    The kept conv outputs are overwritten by the next (in-place) ReLU, as in the seed.

    Example:
        >>> model = seed_model(0, torch.device("cpu"))
        >>> [f.shape[1] for f in get_feature_maps(torch.zeros(1, 3, 32, 32), model)]
        [64, 128, 256, 512, 512]
    """
    features = []
    x = image
    for name, layer in model.named_children():
        x = layer(x)
        if name in layers:
            features.append(x)
    return features


def gram_matrix(input: Tensor) -> Tensor:
    """The seed's Gram matrix: ``(a*b, c*d)`` features times their transpose, over ``a*b*c*d``.

    Example:
        >>> gram_matrix(torch.ones(1, 2, 2, 2)).tolist()
        [[0.5, 0.5], [0.5, 0.5]]
    """
    a, b, c, d = input.size()
    features = input.view(a * b, c * d)
    gram = torch.mm(features, features.t())
    return gram.div(a * b * c * d)


def seed_loss(
    model: nn.Sequential,
    target: Tensor,
    content: Tensor,
    style: Tensor,
    *,
    content_weight: float = CONTENT_WEIGHT,
    style_weight: float = STYLE_WEIGHT,
) -> tuple[Tensor, Tensor, Tensor]:
    """The seed's objective, recomputing all three images' features as its loop does.

    Args:
        model: From :func:`seed_model`.
        target: The image being optimized, normalized ``(1, 3, H, W)``.
        content: The normalized content image, ``target``'s shape.
        style: The normalized style image (any size).
        content_weight: The seed's alpha.
        style_weight: The seed's beta.

    Returns:
        ``(total, style_loss, content_loss)``, unweighted terms after the total.

    Example:
        >>> model = seed_model(0, torch.device("cpu"))
        >>> x = torch.zeros(1, 3, 32, 32)
        >>> float(seed_loss(model, x, x, x)[0])
        0.0
    """
    target_features = get_feature_maps(target, model)
    content_features = get_feature_maps(content, model)
    style_features = get_feature_maps(style, model)
    style_loss: Tensor | float = 0.0
    content_loss: Tensor | float = 0.0
    for f1, f2, f3 in zip(target_features, content_features, style_features, strict=True):
        content_loss = content_loss + torch.mean((f1 - f2) ** 2)
        style_loss = style_loss + torch.mean((gram_matrix(f1) - gram_matrix(f3)) ** 2)
    if not isinstance(style_loss, Tensor) or not isinstance(content_loss, Tensor):
        raise ValueError("the seed's loss needs at least one feature layer")
    return content_loss * content_weight + style_loss * style_weight, style_loss, content_loss


def make_optimizer(target: Tensor, learning_rate: float = LEARNING_RATE) -> torch.optim.Adam:
    """The seed's optimizer: Adam over the (normalized) target image, betas (0.99, 0.999)."""
    return torch.optim.Adam([target.requires_grad_()], lr=learning_rate, betas=BETAS)


def seed_step(
    model: nn.Sequential,
    content: Tensor,
    style: Tensor,
    target: Tensor,
    optimizer: torch.optim.Optimizer,
) -> tuple[Tensor, Tensor, Tensor]:
    """One iteration of the seed's loop body; returns its ``(total, style, content)`` losses.

    Example:
        >>> model = seed_model(0, torch.device("cpu"))
        >>> x = torch.rand(1, 3, 32, 32)
        >>> target = x.clone()
        >>> _ = seed_step(model, x, torch.rand(1, 3, 32, 32), target, make_optimizer(target))
    """
    loss, style_loss, content_loss = seed_loss(model, target, content, style)
    optimizer.zero_grad()
    torch.autograd.backward(loss)  # the seed's loss.backward(), spelled the typed way
    optimizer.step()
    return loss, style_loss, content_loss


def run_neural_style_transfer(
    model: nn.Sequential,
    content_img: Tensor,
    style_img: Tensor,
    target_img: Tensor,
    num_steps: int = 2000,
    sample_steps: int = 400,
    learning_rate: float = LEARNING_RATE,
    on_sample: Callable[[int, float, float], None] | None = None,
) -> Tensor:
    """The seed's loop: ``num_steps`` Adam steps on ``target_img`` (updated in place).

    Every ``sample_steps`` the seed reads its two terms back (``.item()``) and prints them; here
    they go to ``on_sample(step, style_loss, content_loss)`` when one is given.

    Returns:
        ``target_img``, optimized.

    Example:
        >>> model = seed_model(0, torch.device("cpu"))
        >>> x = torch.rand(1, 3, 32, 32)
        >>> out = run_neural_style_transfer(model, x, x, x.clone(), num_steps=2)
    """
    optimizer = make_optimizer(target_img, learning_rate)
    for step in range(num_steps):
        _, style_loss, content_loss = seed_step(
            model, content_img, style_img, target_img, optimizer
        )
        if (step + 1) % sample_steps == 0:
            style_value, content_value = style_loss.item(), content_loss.item()
            if on_sample is not None:
                on_sample(step + 1, style_value, content_value)
    return target_img


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    images = Path(__file__).resolve().parent.parent / "examples" / "images"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--content", default=str(images / "content" / "chelsea.jpg"))
    parser.add_argument("--style", default=str(images / "style" / "starry_night.jpg"))
    parser.add_argument("--size", type=int, default=128, help="short side, as transforms.Resize")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--sample-steps", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0, help="seed of the random VGG19 weights")
    parser.add_argument("--device", default="cpu")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the seed's loop and print its losses, as the blog post does."""
    args = _parse(argv)
    device = torch.device(args.device)
    model = seed_model(args.seed, device)
    content = normalize(load_pixels(args.content, args.size)).to(device)
    style = normalize(load_pixels(args.style, args.size)).to(device)

    def report(step: int, style_value: float, content_value: float) -> None:
        print(f"run {step}: style loss {style_value:.6g}  content loss {content_value:.6g}")

    began = time.perf_counter()
    result = run_neural_style_transfer(
        model, content, style, content.clone(), args.steps, args.sample_steps, on_sample=report
    )
    seconds = time.perf_counter() - began
    with torch.no_grad():
        total = seed_loss(model, result, content, style)[0].item()
    print(f"{args.steps} steps in {seconds:.1f} s; final total loss {total:.6g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
