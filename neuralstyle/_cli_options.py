"""The command line's options, generated from :class:`~neuralstyle.config.TransferConfig`.

Names, types, choices and help text come from the config's fields and docstring, so a new
config field is a new option of every command (``neuralstyle``, ``neuralstyle batch``) without a
change here; defaults are the chosen preset's. Also the parser that prints one-line errors, and
the step from parsed options to a checked config.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import re
import types
import typing
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal, NoReturn

from neuralstyle.backbones import BackboneName, Padding, Pooling
from neuralstyle.config import OPTION_GROUPS, TransferConfig
from neuralstyle.errors import ConfigError, closest_names
from neuralstyle.features import FeatureExtractor
from neuralstyle.presets import DEFAULT, PRESETS

__all__ = [
    "BY_HAND",
    "INIT_NAMES",
    "Parser",
    "UsageError",
    "add_config_options",
    "add_recipe_options",
    "attribute_help",
    "build_network",
    "chosen_preset",
    "config_overrides",
    "configured",
    "flag",
    "one_line",
    "split_init",
]

# Config fields whose command-line spelling differs from the API's (first flag is the main one).
_FLAGS = {"style_blend": ("--style-weights", "--style-blend")}
# Config fields handled by hand: --init also takes the path of a starting image.
BY_HAND = frozenset({"init", "pooling", "padding"})

INIT_NAMES: tuple[str, ...] = typing.get_args(typing.get_type_hints(TransferConfig)["init"])
"""The starts --init names (it also takes an image's path)."""

# Config fields whose flag may be given bare, and the value that means (neural-style's
# `-original_colors 1` habit: a bare --preserve-color keeps the content's colours by luminance).
_BARE = {"preserve_color": "luminance"}
# Where the command line can take less than the API, its own help text.
_CLI_HELP = {
    "optimizer": "adam or lbfgs (the Python API also takes a factory params -> Optimizer).",
}
_CONFIG_DEST = "config."
_METAVARS: dict[object, str] = {int: "N", float: "X"}


class UsageError(Exception):
    """A problem with the command line itself: exit status 2."""


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors that point at ``--help`` and suggest a misspelled option."""

    def error(self, message: str) -> NoReturn:
        unknown = re.match(r"unrecognized arguments: (.*)", message)
        if unknown:
            message += _suggestions(unknown.group(1).split(), self._option_string_actions)
        self.exit(2, f"{self.prog}: error: {message}; see `{self.prog} --help`\n")


def _suggestions(words: Sequence[str], options: Iterable[str]) -> str:
    """`` (did you mean --style-weight?)`` for the first misspelled option, else ``""``."""
    for word in words:
        if word.startswith("--"):
            close = closest_names(word.split("=", 1)[0], options, limit=1)
            if close:
                return f" (did you mean {close[0]}?)"
    return ""


# -- options generated from TransferConfig ----------------------------------------------------


def attribute_help(doc: str) -> dict[str, str]:
    """Field name -> one-line help from the ``Attributes:`` section of a Google docstring."""
    entries: dict[str, list[str]] = {}
    inside, current = False, None
    for line in inspect.cleandoc(doc).splitlines():
        if line.strip() == "Attributes:":
            inside = True
            continue
        if not inside or not line.strip():
            continue
        if not line.startswith(" "):
            break  # the next section
        entry = re.match(r"^ {4}(\w+): (.*)$", line)
        if entry:
            current = entry.group(1)
            entries[current] = [entry.group(2)]
        elif current is not None:
            entries[current].append(line.strip())
    return {name: _plain_text(" ".join(parts)) for name, parts in entries.items()}


def _plain_text(text: str) -> str:
    """Drop reStructuredText markup; escape ``%`` for argparse."""
    text = re.sub(r":\w+:`~?([^`]+)`", r"\1", text)
    # The API's None is spelled "none" on the command line.
    text = re.sub(r"\bNone\b", "none", text)
    return text.replace("``", "").replace("%", "%%")


def _converter(kind: type, optional: bool) -> Callable[[str], object]:
    """An argparse ``type`` that builds ``kind`` and, for optional fields, reads ``none``."""

    def convert(text: str) -> object:
        if optional and text.lower() == "none":
            return None
        try:
            return kind(text)
        except ValueError:
            spelled = f"{kind.__name__} or 'none'" if optional else kind.__name__
            raise argparse.ArgumentTypeError(f"expected {spelled}, got {text!r}") from None

    convert.__name__ = kind.__name__
    return convert


def _spellable(kind: object) -> bool:
    """Whether a value of this type can be typed on a command line."""
    origin = typing.get_origin(kind)
    return kind in (bool, int, float, str) or origin in (Literal, tuple)


def _option_kwargs(kind: object) -> dict[str, Any] | None:
    """argparse keyword arguments for a field of type ``kind``; None when no shell can spell it."""
    optional = False
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        members = typing.get_args(kind)
        optional = type(None) in members
        # A callable (the optimizer factory) has no spelling: offer the other members alone.
        spellable = [m for m in members if m is not type(None) and _spellable(m)]
        if len(spellable) != 1:
            return None
        kind = spellable[0]
    origin = typing.get_origin(kind)
    if kind is bool:
        return None if optional else {"action": argparse.BooleanOptionalAction}
    if origin is Literal:
        choices: list[object] = list(typing.get_args(kind))
        shown = [str(c) for c in choices] + (["none"] if optional else [])
        return {
            "type": _converter(type(choices[0]), optional),
            "choices": choices + ([None] if optional else []),
            "metavar": "{" + ",".join(shown) + "}",
        }
    if origin is tuple:
        items = typing.get_args(kind)
        nargs: int | str = "+" if items[-1] is Ellipsis else len(items)
        return {
            "type": _converter(items[0], optional),
            "nargs": nargs,
            "metavar": _METAVARS.get(items[0]),
        }
    if kind in (int, float, str):
        scalar = typing.cast(type, kind)
        return {"type": _converter(scalar, optional), "metavar": _METAVARS.get(scalar)}
    return None


def _shown(value: object) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, tuple):
        return " ".join(map(_shown, value))
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value) if isinstance(value, (int, str)) else "a callable"


def add_config_options(parser: argparse.ArgumentParser, base: TransferConfig, label: str) -> None:
    groups = {
        name: parser.add_argument_group(f"{name} options (defaults: {label})", about.capitalize())
        for name, about in OPTION_GROUPS.items()
    }
    hints = typing.get_type_hints(TransferConfig)
    helps = attribute_help(TransferConfig.__doc__ or "")
    for field in dataclasses.fields(TransferConfig):
        # A field without a group (a subclass's new option) still gets its option.
        where = field.metadata.get("group", "other")
        if where not in groups:
            groups[where] = parser.add_argument_group(f"{where} options (defaults: {label})")
        group = groups[where]
        if field.name in BY_HAND:
            continue
        kwargs = _option_kwargs(hints[field.name])
        if kwargs is None:
            continue  # the API still has it; a shell cannot spell it
        flags = _FLAGS.get(field.name, ("--" + field.name.replace("_", "-"),))
        default = _shown(getattr(base, field.name))
        if kwargs.get("metavar", "") is None:
            kwargs["metavar"] = field.name.upper()
        text = _CLI_HELP.get(field.name, helps.get(field.name, ""))
        if field.name in _BARE:
            kwargs.update(nargs="?", const=_BARE[field.name])
            text += f" Given bare, {_BARE[field.name]}."
        group.add_argument(
            *flags,
            dest=_CONFIG_DEST + field.name,
            default=argparse.SUPPRESS,
            help=f"{text} (default: {default})".strip(),
            **kwargs,
        )


def chosen_preset(argv: Sequence[str]) -> str:
    """The --preset on the command line, if valid, so --help can show that preset's defaults."""
    early = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    early.add_argument("--preset", default=DEFAULT.name)
    known, _ = early.parse_known_args(argv)
    name = str(known.preset)
    return name if name in PRESETS else DEFAULT.name


def add_recipe_options(parser: argparse.ArgumentParser, base: TransferConfig) -> None:
    group = parser.add_argument_group("recipe and network")
    group.add_argument(
        "--preset",
        default=DEFAULT.name,
        choices=sorted(PRESETS),
        help=f"named layers and run options (default: {DEFAULT.name})",
    )
    group.add_argument(
        "--backbone",
        default="vgg16",
        choices=typing.get_args(BackboneName),
        help="the network (default: vgg16)",
    )
    group.add_argument(
        "--weights",
        metavar="{bundled,imagenet,random,PATH}",
        help="bundled (VGG16, offline), imagenet (torchvision's, downloaded once), random, or a "
        "state-dict file (default: bundled for vgg16, imagenet for vgg19)",
    )

    group.add_argument(
        "--pooling",
        choices=typing.get_args(Pooling),
        default="max",
        help="the network's pooling: avg gives smoother strokes, as Gatys et al. suggest "
        "(default: max)",
    )
    group.add_argument(
        "--padding",
        choices=typing.get_args(Padding),
        default="zeros",
        help="the network's first padding: replicate avoids a dark or bright frame "
        "(default: zeros)",
    )

    init_help = attribute_help(TransferConfig.__doc__ or "").get("init", "")
    group.add_argument(
        "--init",
        metavar=f"{{{','.join(INIT_NAMES)},PATH}}",
        help=f"{init_help} Or the path of an image to start from. (default: {base.init})",
    )


def split_init(init: str | None, overrides: dict[str, Any]) -> str | None:
    """Put a named --init into ``overrides``; return it when it is an image path instead."""
    if init is None:
        return None
    if init in INIT_NAMES:
        overrides["init"] = init
        return None
    if not Path(init).is_file():
        raise UsageError(
            f"--init must be {', '.join(INIT_NAMES)} or an image file; {init!r} is none of them"
        )
    return init


def flag(name: str) -> str:
    return _FLAGS.get(name, ("--" + name.replace("_", "-"),))[0]


def configured(base: TransferConfig, overrides: dict[str, Any]) -> TransferConfig:
    """``base`` with the user's values; a bad value is a usage error naming its option."""
    for name, value in overrides.items():
        try:
            dataclasses.replace(base, **{name: value})
        except ConfigError as error:
            raise UsageError(f"{flag(name)}: {error}") from error
    try:
        return dataclasses.replace(base, **overrides)
    except ConfigError as error:  # values fine alone, not together
        raise UsageError(str(error)) from error


def config_overrides(args: argparse.Namespace) -> dict[str, object]:
    """The config fields the user gave, as the types the config expects."""
    given: dict[str, object] = {}
    for dest, value in vars(args).items():
        if not dest.startswith(_CONFIG_DEST):
            continue
        name = dest.removeprefix(_CONFIG_DEST)
        if isinstance(value, list):
            if None in value and len(value) > 1:
                raise UsageError(f"{flag(name)}: 'none' must be given alone")
            value = None if None in value else tuple(value)
        given[name] = value
    return given


def one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def build_network(args: argparse.Namespace, layers: Sequence[str]) -> FeatureExtractor:
    """The network ``--backbone``, ``--weights``, ``--pooling`` and ``--padding`` ask for;
    an impossible combination is a usage error."""
    try:
        return FeatureExtractor(
            list(layers),
            backbone=args.backbone,
            weights=args.weights,
            pooling=args.pooling,
            padding=args.padding,
        )
    except ConfigError as error:
        raise UsageError(str(error)) from error
