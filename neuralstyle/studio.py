"""What a page that runs transfers needs, with no web framework in it: :class:`Studio` turns
:meth:`StyleTransfer.start <neuralstyle.StyleTransfer.start>`'s steps into :class:`Frame`
updates (a picture every few steps, how the run ended, the PNG to download), :class:`Settings`
are the few options a page offers with a preset's defaults, and :func:`explain` says in one
sentence why a run could not start or failed.

``neuralstyle app`` (:mod:`neuralstyle.app`) lays these out as a Gradio page; they can be driven
and tested without a browser.
"""

from __future__ import annotations

import dataclasses
import html
import logging
import shutil
import tempfile
import typing
import uuid
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from neuralstyle.callbacks import StepState
from neuralstyle.config import TransferConfig
from neuralstyle.errors import ConfigError, ImageError, InsufficientMemoryError, NeuralStyleError
from neuralstyle.examples import example_image
from neuralstyle.features import FeatureExtractor
from neuralstyle.image_output import save_image, to_pil
from neuralstyle.layers import LayerMap
from neuralstyle.presets import get_preset
from neuralstyle.run import TransferRun
from neuralstyle.targets import check_style_counts
from neuralstyle.transfer import StyleTransfer

__all__ = [
    "PRESERVE_COLORS",
    "Frame",
    "Session",
    "Settings",
    "Studio",
    "explain",
    "settings_for",
    "sources",
    "style_sources",
]

_LOG = logging.getLogger(__name__)

PRESERVE_COLORS: tuple[str, ...] = typing.get_args(
    typing.get_type_hints(TransferConfig)["preserve_color"]
)
"""The ``preserve_color`` choices the page offers (all of the config's)."""


@dataclass(frozen=True)
class Settings:
    """The page's options: the few that matter, each defaulting to the preset's value.

    Attributes:
        preset: A name of :data:`neuralstyle.PRESETS`.
        size: Long side of the picture in pixels; None keeps the content's own size.
        style_strength: The config's ``style_weight``.
        preserve_color: The config's ``preserve_color``.
        steps: Steps of the whole run.
        blend: Blend weights of the styles as typed, one number per style (``"2 1"``); empty
            weighs them equally.
    """

    preset: str
    size: int | None
    style_strength: float
    preserve_color: str
    steps: int
    blend: str = ""

    def config(self, styles: int) -> TransferConfig:
        """The preset's config with these options, checked for ``styles`` style images.

        Raises:
            ConfigError: An unknown preset, a value out of range, or blend weights that are not
                one number per style.
        """
        base = get_preset(self.preset).config
        config = dataclasses.replace(
            base,
            size=_whole(self.size, "size") if self.size else None,
            style_weight=_number(self.style_strength, "style strength"),
            preserve_color=self.preserve_color,  # type: ignore[arg-type]  # the config checks it
            steps=_whole(_number(self.steps, "steps"), "steps"),
            style_blend=_weights(self.blend),
        )
        check_style_counts(config, styles)
        return config


def settings_for(preset: str) -> Settings:
    """The options a preset starts from (what the page shows when it is chosen).

    Example:
        >>> settings_for("gatys").steps
        500
    """
    config = get_preset(preset).config
    return Settings(preset, config.size, config.style_weight, config.preserve_color, config.steps)


def _number(value: float | None, name: str) -> float:
    """A form's number; an emptied field is refused by name (the form sends None)."""
    if value is None:
        raise ConfigError(f"{name} is empty; enter a number")
    return float(value)


def _whole(value: float, name: str) -> int:
    """A number typed in a form as an int; a fraction is refused rather than rounded."""
    if float(value) != int(value):
        raise ConfigError(f"{name} must be a whole number, got {value!r}")
    return int(value)


def _weights(text: str) -> tuple[float, ...] | None:
    words = text.replace(",", " ").split()
    if not words:
        return None
    try:
        return tuple(float(word) for word in words)
    except ValueError:
        raise ConfigError(
            f"blend weights must be numbers, one per style (like 2 1), got {text!r}"
        ) from None


@dataclass(frozen=True)
class Frame:
    """One update of the page.

    Attributes:
        image: The picture now (at the current scale's size), or None before the first step or
            after an error.
        step: Steps done.
        total: Steps the run will do unless stopped.
        text: What is happening, in words (step, scale, loss; or how the run ended).
        error: A message for the person at the page, or None.
        download: The finished picture as a PNG file, once the run has ended.
    """

    image: Image.Image | None
    step: int = 0
    total: int = 0
    text: str = ""
    error: str | None = None
    download: Path | None = None

    def html(self) -> str:
        """The status line with a progress bar, escaped for the page."""
        bar = f'<progress value="{self.step}" max="{max(self.total, 1)}"></progress>'
        line = f"<p>{html.escape(self.text)}</p>" if self.text else ""
        if self.error:
            line += f'<p class="ns-error" role="alert">{html.escape(self.error)}</p>'
        return f'<div class="ns-status">{bar}{line}</div>'


class Session:
    """What one browser tab owns: its Stop button's request.

    Each tab gets its own (a Gradio ``State``), so Stop in one tab never stops another's run.

    Attributes:
        stop_requested: Whether Stop was pressed since the tab's run started.
    """

    def __init__(self) -> None:
        self.stop_requested = False


class Studio:
    """Runs transfers for the page: one :class:`~neuralstyle.transfer.StyleTransfer` per run,
    its step iterator turned into :class:`Frame` updates.

    Args:
        every: Steps between preview images (each one waits for the device once).
        extractor: The network to run every preset with, instead of the bundled VGG16 truncated
            to the preset's layers; for tests and custom networks, with ``layer_map``.
        layer_map: The layers every preset uses with ``extractor`` (which must provide them);
            None keeps each preset's.
        folder: Where finished pictures are written for download; None makes a temporary
            folder, removed when the studio is garbage-collected or the program exits.
    """

    def __init__(
        self,
        *,
        every: int = 10,
        extractor: FeatureExtractor | None = None,
        layer_map: LayerMap | None = None,
        folder: Path | None = None,
    ) -> None:
        if every < 1:
            raise ConfigError(f"every must be a positive number of steps, got {every!r}")
        self.every = every
        self.extractor = extractor
        self.layer_map = layer_map
        if folder is None:
            folder = Path(tempfile.mkdtemp(prefix="neuralstyle-app-"))
            weakref.finalize(self, shutil.rmtree, folder, ignore_errors=True)
        self.folder = folder

    def stop(self, session: Session) -> None:
        """Ask the session's run to end after its current step, keeping its best picture."""
        session.stop_requested = True

    def run(
        self, session: Session, content: str | None, styles: Sequence[str], settings: Settings
    ) -> Iterator[Frame]:
        """Stylize ``content`` with ``styles``, yielding a :class:`Frame` every ``every`` steps
        and a last one with the finished picture (or with an error message).

        Args:
            session: The tab's session; its Stop request ends the run.
            content: The content image's path.
            styles: The style images' paths, blended with ``settings.blend``.
            settings: The page's options.
        """
        session.stop_requested = False
        try:
            if not content or not styles:
                raise ConfigError("choose a content image and at least one style image")
            transfer = self._transfer(settings, len(styles))
            style = styles[0] if len(styles) == 1 else tuple(styles)
            yield Frame(None, text="reading the images and encoding the targets...")
            with transfer.start(content, style) as run:
                for state in run:
                    if session.stop_requested:
                        break
                    if state.step % self.every == 0 or state.step == state.total_steps:
                        yield self._progress(transfer, run, state)
            yield self._finished(transfer, run, stopped=session.stop_requested)
        except Exception as error:  # the page shows a message, never a traceback
            yield Frame(None, text="", error=explain(error))

    def _transfer(self, settings: Settings, styles: int) -> StyleTransfer:
        preset = get_preset(settings.preset)
        layer_map = self.layer_map or preset.layer_map
        config = settings.config(styles)
        extractor = self.extractor or FeatureExtractor(list(layer_map.layers))
        return StyleTransfer(layer_map, config=config, extractor=extractor)

    def _progress(self, transfer: StyleTransfer, run: TransferRun, state: StepState) -> Frame:
        where = f" · scale {state.scale}/{state.scales}" if state.scales > 1 else ""
        text = f"step {state.step}/{state.total_steps}{where} · loss {float(state.loss):.4g}"
        image = to_pil(transfer.output(run.result_image, run.targets)[:1])
        return Frame(image, state.step, state.total_steps, text)

    def _finished(self, transfer: StyleTransfer, run: TransferRun, *, stopped: bool) -> Frame:
        # As StyleTransfer.run: a run that ended early (Stop, divergence) gives its best image,
        # since the last one may be worse or hold NaN.
        early = stopped or run.stop_reason is not None
        final = transfer.output(run.best_image if early else run.result_image, run.targets)[:1]
        path = save_image(final, self.folder / f"neuralstyle-{uuid.uuid4().hex[:12]}.png")
        done = f"{run.steps_done}/{run.total_steps} steps in {run.end_state().elapsed:.1f} s"
        if stopped:
            text, error = f"stopped after {done}; kept the best picture so far", None
        elif run.stop_reason is not None:
            text, error = f"ended after {done}", f"The run {run.stop_reason}"
        else:
            text, error = f"done: {done}", None
        return Frame(to_pil(final), run.steps_done, run.total_steps, text, error, path)


def explain(error: BaseException) -> str:
    """One sentence for the page about why a run could not start or failed.

    Example:
        >>> explain(ImageError("cannot identify image file 'x.png'"))
        "Could not use that image: cannot identify image file 'x.png'."
    """
    text = " ".join(str(error).split())
    if isinstance(error, InsufficientMemoryError):
        return f"That size does not fit in memory here: {text}. Choose a smaller size."
    if isinstance(error, (torch.OutOfMemoryError, MemoryError)):
        return "The run ran out of memory; choose a smaller size."
    if isinstance(error, ImageError):
        return f"Could not use that image: {text}."
    if isinstance(error, NeuralStyleError):
        return text if text.endswith(".") else f"{text}."
    _LOG.error("the run failed", exc_info=error)
    return f"Unexpected {type(error).__name__}: {text[:300]} (the server's log has the details)."


def sources(upload: str | None, example: str | None) -> str | None:
    """The content image: the uploaded file if there is one, else the bundled example's path."""
    if upload:
        return upload
    return str(example_image(example)) if example else None


def style_sources(uploads: Sequence[str] | None, examples: Sequence[str] | None) -> list[str]:
    """The style images: uploaded files first, then bundled examples, in the order given."""
    return [*(uploads or ()), *(str(example_image(name)) for name in examples or ())]
