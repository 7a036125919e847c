"""Named recipes: a layer map and a config, each with the source it follows."""

from __future__ import annotations

from dataclasses import dataclass

from neuralstyle.config import TransferConfig
from neuralstyle.errors import ConfigError, closest_names
from neuralstyle.layers import CLASSIC_STYLE_LAYERS, LayerMap

__all__ = ["DEFAULT", "GATYS", "NEURAL_STYLE", "PRESETS", "SEED", "Preset", "get_preset"]


@dataclass(frozen=True)
class Preset:
    """A named layer map and config.

    Attributes:
        name: The preset's name.
        layer_map: Its content and style layers.
        config: Its run options.
        source: Where the recipe comes from.
    """

    name: str
    layer_map: LayerMap
    config: TransferConfig
    source: str


SEED = Preset(
    name="seed",
    layer_map=LayerMap(
        content=dict.fromkeys(CLASSIC_STYLE_LAYERS, 1.0),
        style=dict.fromkeys(CLASSIC_STYLE_LAYERS, 1.0),
    ),
    config=TransferConfig(
        steps=2000,
        optimizer="adam",
        # The seed steps 0.02 in ImageNet-normalized units; pixels in [0, 1] move std times less
        # (std 0.229/0.224/0.225, mean 0.226), and their gradients are 1/std times larger, so
        # Adam's epsilon scales by 1/std too: the same trajectory in other units.
        learning_rate=0.02 * 0.226,
        adam_betas=(0.99, 0.999),
        adam_eps=1e-8 / 0.226,
        content_weight=1e-2,
        style_weight=1e4,
        gram_normalize="chw",
        balance="none",
        init="content",
        clamp=False,
    ),
    source=(
        "Jay Gala, 'Neural Style Transfer' (blog post, 2020): content and style on "
        "relu1_1..relu5_1 (the seed collects conv outputs that its in-place ReLU overwrites), "
        "Gram / (a*b*c*d), mean squared errors, content weight 1e-2, style weight 1e4, "
        "Adam betas (0.99, 0.999), content init"
    ),
)

GATYS = Preset(
    name="gatys",
    layer_map=LayerMap(content={"relu4_2": 1.0}, style=dict.fromkeys(CLASSIC_STYLE_LAYERS, 0.2)),
    # The paper's alpha/beta (1e-3) was set for its VGG19 rescaled to unit mean activations and
    # does not carry to another network. In balanced terms style weight 1 (content and the five
    # style layers' sum equal) keeps the subject under the painting's texture; 10 and 100 paint
    # texture over everything (astronaut x the_scream at 256 px: luma 0.06 at 1, -0.06 at 10,
    # -0.03 at 100; benchmarks/results/gatys-preset-2026-12-03.txt).
    config=TransferConfig(
        steps=500, optimizer="lbfgs", style_weight=1.0, init="noise", precision="auto"
    ),
    source=(
        "Gatys, Ecker & Bethge, 'Image Style Transfer Using Convolutional Neural Networks' (CVPR "
        "2016) and jcjohnson/neural-style: content relu4_2, style relu1_1..relu5_1 weighted 1/5, "
        "L-BFGS from noise; terms balanced by target magnitude so the weights carry across "
        "networks, style and content equal in sum"
    ),
)

# neural-style's total variation (1e-3) is left out. Converted from its sum over 0..256 pixels to
# our mean over [0, 1] pixels (1e-3 / 2 * 256**2 * 3 * 512 * 384 = 1.93e7 for 512 x 384) it
# assumes VGG19's activation magnitudes; against the bundled VGG16's content and style terms it
# smoothed every picture into colour fields, and a hundredth of it still washed out the middle
# of the picture, while without it the preset gives neural-style's look
# (benchmarks/results/neural-style-preset-2026-12-03.txt).

NEURAL_STYLE = Preset(
    name="neural-style",
    layer_map=LayerMap(content={"relu4_2": 1.0}, style=dict.fromkeys(CLASSIC_STYLE_LAYERS, 1.0)),
    config=TransferConfig(
        steps=1000,
        optimizer="lbfgs",
        content_weight=5.0,
        style_weight=100.0,
        gram_normalize="chw",
        balance="none",
        init="noise",
        size=512,
        style_scale=1.0,
        precision="auto",
    ),
    source=(
        "jcjohnson/neural-style's documented defaults (neural_style.lua): content relu4_2 weight "
        "5, style relu1_1..relu5_1 weight 100 each, mean squared errors of feature maps and of "
        "Grams divided by C*H*W, L-BFGS "
        "for 1000 evaluations with 100 correction pairs and no tolerance stop, from the mean "
        "colour with faint noise (-init random), 512 px, the style image scaled to the output's "
        "long side. It ran VGG19 (Caffe); this preset runs the network it is given, and leaves its "
        "total variation (1e-3) out, which on this network smooths the painting away"
    ),
)

# neural-style's raw weights (content 5, style 100 per layer, Gram / CHW) expressed against
# balanced terms for the bundled network come out as relu1_1..relu5_1 at 400, 340, 2.6, 0.02 and
# 5e-4: the deep layers barely count, which keeps the subject's structure but leaves relu5_1's
# Gram where the photo had it. The default raises relu4_1 and relu5_1 to 0.5 and 0.1 (large
# shapes take the painting's arrangement) and halves the style weight to keep the fine structure.
_STYLE_BALANCE = {
    "relu1_1": 400.0,
    "relu2_1": 340.0,
    "relu3_1": 2.6,
    "relu4_1": 0.5,
    "relu5_1": 0.1,
}

DEFAULT = Preset(
    name="default",
    layer_map=LayerMap(
        content={"relu4_2": 1.0, "relu2_2": 3.0, "relu1_2": 1.0}, style=_STYLE_BALANCE
    ),
    # Chosen by pictures and the quality protocol at 512 px (benchmarks/results/quality.json).
    # Style on relu1_1..relu5_1 at 20 each painted over the subject (astronaut x the_scream:
    # edge 0.035, no face). Content on relu2_2 as well as relu4_2 keeps the fine structure (the
    # eyes); style weight 0.15 with relu4_1/relu5_1 at 0.5/0.1 takes the painting's large shapes
    # and keeps the face (0.98); at style weight 0.3 those layers paint the Scream's hollow eyes
    # over the astronaut's (face 0.0). That recipe still lost 4 of 10 portrait faces under
    # colour-heavy paintings (the Scream, Shipwreck, the Great Wave): every global lever that
    # brought one back cost the style on all pairs. The content weight that follows the photo's
    # detail (content_structure 8, with relu1_2 for colour where that detail is) brings back all
    # four and lets flat regions take more of the painting. Starting from the photo in the
    # painting's colours (init "recolored") took the palette further where the photo's colours
    # had stayed (histogram distance 0.373 against 0.434 on five pairs) with as much structure,
    # and brought back the last lost face (astronaut x shipwreck: 0.99 against 0.0). Coarse to
    # fine from 128 px with a fresh Adam at each scale; the learning rate is left to the
    # optimizer (Adam's 0.02), so switching the preset to L-BFGS gets L-BFGS's own 1.
    config=TransferConfig(
        steps=300,
        optimizer="adam",
        style_weight=0.15,
        content_structure=8.0,
        init="recolored",
        start_size=128,
        precision="auto",
    ),
    source=(
        "neuralstyle's default: neural-style's shallow layer weights in balanced terms with the "
        "deep ones raised (style relu1_1..relu5_1 at 400, 340, 2.6, 0.5, 0.1 against content "
        "relu4_2 at 1) at style weight 0.15, content on relu2_2 (3) and relu1_2 (1) as well for "
        "fine structure and colour, weighted per position by the photo's local detail "
        "(content_structure 8), bfloat16 where the CPU has it, Adam at 0.02 per step "
        "in pixel units from the content image in the style's colours, coarse to fine from "
        "128 px (as crowsonkb's "
        "style-transfer-pytorch), 300 steps shared by the scales"
    ),
)

PRESETS: dict[str, Preset] = {
    preset.name: preset for preset in (DEFAULT, NEURAL_STYLE, GATYS, SEED)
}
"""Every preset by name."""


def get_preset(name: str) -> Preset:
    """Look a preset up by name.

    Raises:
        ConfigError: No preset has that name; the message lists them.
    """
    if name not in PRESETS:
        hint = closest_names(name, PRESETS)
        suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
        raise ConfigError(
            f"unknown preset {name!r}{suggestion}; choose one of {', '.join(sorted(PRESETS))}"
        )
    return PRESETS[name]
