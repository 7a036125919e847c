"""Many pictures: content x style pairs into one folder, with a manifest, resumable.

:func:`stylize_many` runs every pair with one :class:`~neuralstyle.StyleTransfer` (the network is
built once), writes each picture atomically as ``<content stem>__<style stem>.png`` and appends
one JSON line per finished pair to ``manifest.jsonl`` in the same folder: the inputs, the recipe
and its hash, the seed, the seconds, the final loss and the status. A pair that fails (an
unreadable file, a size the memory check refuses, a run that diverged) is recorded with its
reason and the others go on.

Run it again with the same recipe and it skips every pair whose picture and manifest line are
complete, so an interrupted job resumes where it stopped (a picture is only ever renamed into
place whole, and its manifest line is written after it). Run it with another recipe over
pictures of the old one and it refuses, naming the folder, unless ``overwrite=True``: the
folder's pictures then all come from one recipe again.
"""

from __future__ import annotations

import csv
import dataclasses
import glob
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from PIL import Image
from torch import Tensor

from neuralstyle.callbacks import Callback
from neuralstyle.errors import ConfigError, ImageError, NeuralStyleError
from neuralstyle.image import ImageSource, fitted_size
from neuralstyle.image_output import save_image
from neuralstyle.transfer import StyleTransfer

__all__ = [
    "IMAGE_SUFFIXES",
    "MANIFEST",
    "BatchReport",
    "Made",
    "Outcome",
    "Pair",
    "Runner",
    "every_pair",
    "find_images",
    "in_process",
    "make",
    "make_batch",
    "read_pairs",
    "recipe",
    "recipe_hash",
    "stylize_many",
]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp"})
"""The file suffixes a folder's images are found by (any case)."""

MANIFEST = "manifest.jsonl"
"""The manifest's file name inside the output folder."""

# Runtime options that change how fast a picture is made, not the picture.
_NOT_RECIPE = frozenset({"device", "compile", "check_memory", "channels_last"})

# EXIF orientations 5 to 8 turn the picture a quarter: width and height swap when shown.
_EXIF_ORIENTATION = 0x0112
_TURNED = frozenset({5, 6, 7, 8})

Status = Literal["done", "skipped", "failed"]


@dataclass(frozen=True)
class Pair:
    """One content image with one style image."""

    content: Path
    style: Path

    @property
    def output_name(self) -> str:
        """The picture's file name: ``<content stem>__<style stem>.png``."""
        return f"{self.content.stem}__{self.style.stem}.png"


@dataclass(frozen=True)
class Outcome:
    """What became of one pair.

    Attributes:
        pair: The pair.
        status: ``"done"`` (made now), ``"skipped"`` (made by an earlier run of the same
            recipe) or ``"failed"``.
        output: The picture's path (None when it failed).
        seconds: Wall time of its run (0 when skipped).
        loss: Its final total loss (None when it failed or was skipped).
        reason: Why it failed, in one line (None otherwise).
    """

    pair: Pair
    status: Status
    output: Path | None
    seconds: float = 0.0
    loss: float | None = None
    reason: str | None = None


@dataclass(frozen=True)
class BatchReport:
    """Every pair's :class:`Outcome`, in the order of the pairs."""

    outcomes: tuple[Outcome, ...]

    def count(self, status: Status) -> int:
        """How many pairs ended with ``status``."""
        return sum(outcome.status == status for outcome in self.outcomes)

    @property
    def failed(self) -> tuple[Outcome, ...]:
        """The pairs that failed."""
        return tuple(outcome for outcome in self.outcomes if outcome.status == "failed")

    @property
    def ok(self) -> bool:
        """True when no pair failed."""
        return not self.failed


# -- which pairs ---------------------------------------------------------------------------------


def find_images(sources: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """The images named by files, folders (their images, sorted, not recursive) and globs.

    Raises:
        ImageError: A source is neither a file, nor a folder with images, nor a pattern that
            matches files; the message names it.
    """
    found: list[Path] = []
    for source in sources:
        path = Path(source)
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not images:
                suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
                raise ImageError(f"folder {str(path)!r} holds no images ({suffixes})")
            found.extend(images)
        else:
            matches = sorted(Path(match) for match in glob.glob(str(source)))
            files = [match for match in matches if match.is_file()]
            if not files:
                raise ImageError(
                    f"{str(source)!r} is not a file, a folder or a pattern that matches files"
                )
            found.extend(files)
    return found


def every_pair(contents: Sequence[Path], styles: Sequence[Path]) -> list[Pair]:
    """Every content with every style, content-major."""
    return [Pair(content, style) for content in contents for style in styles]


def read_pairs(path: str | os.PathLike[str]) -> list[Pair]:
    """The pairs listed in a CSV file (rows ``content,style``, an optional header row naming
    those two columns) or a JSON file (a list of ``[content, style]`` or of
    ``{"content": ..., "style": ...}``). Relative paths are relative to the list's folder.

    Raises:
        ConfigError: The file is not such a list; the message says which entry is wrong.
        ImageError: The file cannot be read.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ImageError(f"cannot read the pair list {str(path)!r}: {error.strerror}") from error
    parse = _json_pairs if path.suffix.lower() == ".json" else _csv_pairs
    entries = parse(text, path)
    return [Pair(path.parent / content, path.parent / style) for content, style in entries]


def _json_pairs(text: str, path: Path) -> list[tuple[str, str]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"pair list {str(path)!r} is not valid JSON: {error}") from error
    if not isinstance(data, list):
        raise ConfigError(f"pair list {str(path)!r} must be a JSON list of pairs")
    entries = []
    for index, entry in enumerate(data, start=1):
        if isinstance(entry, dict) and set(entry) == {"content", "style"}:
            entry = [entry["content"], entry["style"]]
        if not (
            isinstance(entry, list) and len(entry) == 2 and all(isinstance(x, str) for x in entry)
        ):
            raise ConfigError(
                f"pair {index} of {str(path)!r} must be [content, style] or "
                f'{{"content": ..., "style": ...}} with two paths, got {entry!r}'
            )
        entries.append((entry[0], entry[1]))
    return entries


def _csv_pairs(text: str, path: Path) -> list[tuple[str, str]]:
    rows = [row for row in csv.reader(text.splitlines()) if any(cell.strip() for cell in row)]
    if rows and [cell.strip().lower() for cell in rows[0]] == ["content", "style"]:
        rows = rows[1:]
    entries = []
    for number, row in enumerate(rows, start=1):
        cells = [cell.strip() for cell in row]
        if len(cells) != 2 or not all(cells):
            raise ConfigError(
                f"row {number} of {str(path)!r} must be 'content,style' (two paths), got {row!r}"
            )
        entries.append((cells[0], cells[1]))
    return entries


# -- the recipe ----------------------------------------------------------------------------------


def recipe(transfer: StyleTransfer) -> dict[str, Any]:
    """What decides a run's picture, as plain JSON data: the layer map, the network and every
    config field except the runtime ones that only change the speed (device, compile,
    check_memory, channels_last).

    Raises:
        ConfigError: The config's optimizer is a factory: a function has no record to compare,
            so a batch needs ``"adam"`` or ``"lbfgs"``.
    """
    config = transfer.config
    if not isinstance(config.optimizer, str):
        raise ConfigError(
            "a batch records its recipe, and an optimizer factory cannot be recorded; use "
            "optimizer='adam' or 'lbfgs'"
        )
    fields = {
        field.name: getattr(config, field.name)
        for field in dataclasses.fields(config)
        if field.name not in _NOT_RECIPE
    }
    extractor = transfer.extractor
    return {
        "content_layers": dict(transfer.layer_map.content),
        "style_layers": dict(transfer.layer_map.style),
        "network": {
            "backbone": extractor.backbone_name,
            "weights": str(extractor.source),
            "pooling": extractor.pooling,
            "padding": extractor.padding,
        },
        "config": json.loads(json.dumps(fields, default=list)),
    }


def recipe_hash(data: dict[str, Any]) -> str:
    """A short, stable digest of a :func:`recipe`."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


# -- the job -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Made:
    """What one pair's run gave, wherever it ran: the picture, or why there is none.

    Attributes:
        image: The picture ``(1, 3, H, W)`` on the CPU, or None when the pair failed.
        seconds: Wall time of the run.
        loss: Its final total loss, or None when it failed.
        reason: Why it failed, in one line, or None.
    """

    image: Tensor | None
    seconds: float
    loss: float | None = None
    reason: str | None = None


Runner = Callable[[Sequence[Pair]], Iterator[tuple[Pair, Made]]]
"""Runs pairs and yields each one's :class:`Made` as it finishes (in any order)."""


def make(transfer: StyleTransfer, pair: Pair, callbacks: Sequence[Callback] = ()) -> Made:
    """Run one pair; a failure (a bad file, the memory check, a divergence) becomes its
    :class:`Made` instead of an exception."""
    start = time.perf_counter()
    try:
        result = transfer.run(str(pair.content), str(pair.style), callbacks=callbacks)
    except (NeuralStyleError, OSError) as error:
        return Made(None, time.perf_counter() - start, reason=_one_line(error))
    seconds = time.perf_counter() - start
    if result.stop_reason is not None:  # the divergence guard: not the recipe's picture
        return Made(None, seconds, reason=f"the run stopped early: {result.stop_reason}")
    return Made(result.image[:1].detach().cpu(), seconds, result.best_loss)


def make_batch(
    transfer: StyleTransfer, pairs: Sequence[Pair], callbacks: Sequence[Callback] = ()
) -> list[Made]:
    """Run pairs that share one style and one content shape at the run's size as one batch, a
    :class:`Made` each.

    Each item's picture is the one it would get alone: the loss is a sum of per-item terms and
    Adam's steps are per pixel. When the batch cannot run (a bad file, the memory check) or
    stops early, every pair runs alone instead, so only a bad pair fails.
    """
    if len(pairs) == 1:
        return [make(transfer, pairs[0], callbacks)]
    start = time.perf_counter()
    contents: list[ImageSource] = [str(pair.content) for pair in pairs]
    try:
        result = transfer.run(contents, str(pairs[0].style), callbacks=callbacks)
    except (NeuralStyleError, OSError):
        return [make(transfer, pair, callbacks) for pair in pairs]
    if result.stop_reason is not None:
        return [make(transfer, pair, callbacks) for pair in pairs]
    share = (time.perf_counter() - start) / len(pairs)
    images = result.image.detach().cpu()
    return [
        Made(images[item : item + 1], share, loss) for item, loss in enumerate(result.best_losses)
    ]


def in_process(
    transfer: StyleTransfer, callbacks: Sequence[Callback] = (), *, batch_size: int = 1
) -> Runner:
    """The default runner: the pairs one after another in this process, with one network.

    Args:
        transfer: The recipe and network.
        callbacks: Given to every run.
        batch_size: Up to this many pairs with the same style and contents of the same shape
            at the run's size run as one batch (:func:`make_batch`). Faster where one picture
            leaves the hardware idle: a GPU, or small pictures on a CPU
            (``docs/howto/performance.md`` has the figures).

    Raises:
        ConfigError: ``batch_size`` is not a positive int.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive int, got {batch_size!r}")

    def run(pairs: Sequence[Pair]) -> Iterator[tuple[Pair, Made]]:
        for group in _batches(pairs, batch_size, transfer.config.size):
            yield from zip(group, make_batch(transfer, group, callbacks), strict=True)

    return run


def _batches(pairs: Sequence[Pair], batch_size: int, size: int | None) -> Iterator[list[Pair]]:
    """The pairs in groups of up to ``batch_size`` with one style and one content shape at the
    run's ``size``, each group given as soon as it is full; a content whose size cannot be
    read goes alone."""
    if batch_size == 1:
        yield from ([pair] for pair in pairs)
        return
    open_groups: dict[tuple[Path, tuple[int, int]], list[Pair]] = {}
    for pair in pairs:
        shown = _upright_size(pair.content)
        if shown is None:
            yield [pair]
            continue
        key = (pair.style, fitted_size(*shown, size))
        group = open_groups.setdefault(key, [])
        group.append(pair)
        if len(group) == batch_size:
            yield open_groups.pop(key)
    yield from open_groups.values()


def _upright_size(path: Path) -> tuple[int, int] | None:
    """An image file's (height, width) as shown (EXIF rotation applied), from its header only;
    None when it cannot be read (its pair then runs alone and fails with the reason)."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            orientation = image.getexif().get(_EXIF_ORIENTATION, 1)
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    return (width, height) if orientation in _TURNED else (height, width)


def stylize_many(
    pairs: Sequence[Pair],
    output_dir: str | os.PathLike[str],
    *,
    transfer: StyleTransfer | None = None,
    overwrite: bool = False,
    on_outcome: Callable[[Outcome], None] | None = None,
    callbacks: Sequence[Callback] = (),
    runner: Runner | None = None,
) -> BatchReport:
    """Stylize every pair into ``output_dir`` (created if missing), resuming an earlier run.

    Args:
        pairs: The pairs, e.g. from :func:`every_pair` or :func:`read_pairs`.
        output_dir: The folder of the pictures and of ``manifest.jsonl``.
        transfer: The recipe and network (built once for every pair); None uses the default
            preset.
        overwrite: Redo pairs whose pictures an earlier run made with another recipe, instead
            of refusing.
        on_outcome: Called after each pair (a progress display, a log).
        callbacks: Given to every pair's run (e.g. a :class:`~neuralstyle.callbacks.Progress`
            per pair).
        runner: Where the pairs run: None runs them here (:func:`in_process`);
            :func:`neuralstyle.many_ray.on_ray` runs them on a Ray cluster. Pictures and the
            manifest are always written here.

    Returns:
        The outcome of every pair, in the order of ``pairs``; a failed pair does not stop the
        others.

    Raises:
        ConfigError: Two pairs would write the same file name, ``output_dir`` holds pictures of
            another recipe and ``overwrite`` is False, or the recipe cannot be recorded.
        ImageError: ``output_dir`` is a file or cannot be created.
    """
    transfer = transfer if transfer is not None else StyleTransfer.from_preset("default")
    folder = _output_folder(output_dir)
    _check_names(pairs)
    record = recipe(transfer)
    digest = recipe_hash(record)
    manifest = folder / MANIFEST
    done = _done_before(pairs, folder, digest, overwrite=overwrite)
    outcomes = {pair: Outcome(pair, "skipped", folder / pair.output_name) for pair in done}
    for pair in done:
        if on_outcome is not None:
            on_outcome(outcomes[pair])
    protect = [path for pair in pairs for path in (pair.content, pair.style)]
    todo = [pair for pair in dict.fromkeys(pairs) if pair not in done]
    run = runner if runner is not None else in_process(transfer, callbacks)
    for pair, made in run(todo):
        outcome = _keep(made, pair, folder, protect)
        _append(manifest, _entry(outcome, record, digest, transfer.config.seed))
        outcomes[pair] = outcome
        if on_outcome is not None:
            on_outcome(outcome)
    return BatchReport(tuple(outcomes[pair] for pair in pairs))


def _done_before(pairs: Sequence[Pair], folder: Path, digest: str, *, overwrite: bool) -> set[Pair]:
    """The pairs an earlier run of this recipe finished (picture and manifest line).

    Raises:
        ConfigError: Pictures of another recipe are there and ``overwrite`` is False.
    """
    previous = _read_manifest(folder / MANIFEST)
    finished = {
        pair: previous[pair.output_name]
        for pair in pairs
        if previous.get(pair.output_name, {}).get("status") == "done"
        and (folder / pair.output_name).is_file()
    }
    stale = sorted(
        pair.output_name for pair, entry in finished.items() if entry.get("recipe_hash") != digest
    )
    if stale and not overwrite:
        raise ConfigError(
            f"{str(folder)!r} holds {len(stale)} picture(s) made with another recipe (see "
            f"{MANIFEST}), e.g. {stale[0]!r}; pass overwrite=True (--overwrite) to redo them, or "
            "choose another output folder"
        )
    return {pair for pair, entry in finished.items() if entry.get("recipe_hash") == digest}


def _keep(made: Made, pair: Pair, folder: Path, protect: list[Path]) -> Outcome:
    """Write a made picture atomically; a failure to write fails the pair."""
    if made.image is None:
        return Outcome(pair, "failed", None, made.seconds, reason=made.reason)
    try:
        path = save_image(made.image, folder / pair.output_name, protect=protect)
    except (NeuralStyleError, OSError) as error:
        return Outcome(pair, "failed", None, made.seconds, reason=_one_line(error))
    return Outcome(pair, "done", path, made.seconds, made.loss)


def _output_folder(output_dir: str | os.PathLike[str]) -> Path:
    folder = Path(output_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as error:
        raise ImageError(f"output folder {str(folder)!r} is a file; name a folder") from error
    except OSError as error:
        raise ImageError(
            f"cannot create the output folder {str(folder)!r}: {error.strerror}"
        ) from error
    return folder


def _check_names(pairs: Sequence[Pair]) -> None:
    """Refuse two pairs that would write one file (same stems from different folders)."""
    seen: dict[str, Pair] = {}
    for pair in pairs:
        other = seen.setdefault(pair.output_name, pair)
        if other != pair:
            raise ConfigError(
                f"pairs ({other.content}, {other.style}) and ({pair.content}, {pair.style}) would "
                f"both be saved as {pair.output_name!r}; rename one of the files"
            )


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


# -- the manifest --------------------------------------------------------------------------------


def _entry(outcome: Outcome, record: dict[str, Any], digest: str, seed: int) -> dict[str, Any]:
    pair = outcome.pair
    return {
        "content": str(pair.content),
        "style": str(pair.style),
        "output": pair.output_name,
        "status": outcome.status,
        "reason": outcome.reason,
        "seconds": round(outcome.seconds, 3),
        "loss": outcome.loss,
        "seed": seed,
        "recipe_hash": digest,
        "recipe": record,
    }


def _read_manifest(path: Path) -> dict[str, dict[str, Any]]:
    """Output name -> its latest manifest entry. A line cut short by a crash is ignored (its
    pair is redone)."""
    entries: dict[str, dict[str, Any]] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return entries
    for line in lines:
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("output"), str):
            entries[entry["output"]] = entry
    return entries


def _append(path: Path, entry: dict[str, Any]) -> None:
    """Append one line and make it durable before the next pair starts."""
    with path.open("a+b") as file:
        file.seek(0, os.SEEK_END)
        if file.tell():
            file.seek(-1, os.SEEK_END)
            if file.read(1) != b"\n":  # a line cut short by a crash: end it, keep ours whole
                file.write(b"\n")
        file.write((json.dumps(entry, sort_keys=True) + "\n").encode())
        file.flush()
        os.fsync(file.fileno())
