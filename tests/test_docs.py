"""Every code example in README.md and docs/ runs.

Each ```python block is executed offline, in page order and sharing one namespace per page, in a
fresh folder holding ``photo.jpg`` and ``painting.jpg`` (the bundled examples, small). Presets are
shortened to a few steps so the whole page runs in seconds; nothing else is changed, so an
example cannot rely on anything the page does not show. Each ``neuralstyle ...`` line of a
```bash block must parse with the real command-line parser. A block preceded by
``<!-- no-test: reason -->`` is skipped; there must be few of them.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
import shlex
from pathlib import Path

import pytest

import neuralstyle
from neuralstyle import _cli_batch, app, cli, objective, presets
from neuralstyle.examples import example_image
from neuralstyle.image import load_image
from neuralstyle.image_output import save_image

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
NO_TEST = re.compile(r"<!--\s*no-test:\s*(.+?)\s*-->\s*$")
MAX_SKIPPED = 3
STEPS = 3
PHOTO_SIZE = 64


@dataclasses.dataclass(frozen=True)
class Block:
    language: str
    code: str
    line: int  # line of the opening fence, from 1
    skip_reason: str | None


def blocks(page: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        reason = NO_TEST.search(before)
        found.append(
            Block(
                language=match.group(1),
                code=match.group(2),
                line=text.count("\n", 0, match.start()) + 1,
                skip_reason=reason.group(1) if reason else None,
            )
        )
    return found


def page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


PYTHON_PAGES = [page for page in PAGES if any(b.language == "python" for b in blocks(page))]


@pytest.fixture
def example_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder with the images the examples name, and presets of a few steps."""
    save_image(load_image(example_image("chelsea"), size=PHOTO_SIZE), tmp_path / "photo.jpg")
    save_image(load_image(example_image("great_wave"), size=PHOTO_SIZE), tmp_path / "painting.jpg")
    monkeypatch.chdir(tmp_path)
    for name, preset in list(presets.PRESETS.items()):
        short = dataclasses.replace(preset, config=dataclasses.replace(preset.config, steps=STEPS))
        monkeypatch.setitem(presets.PRESETS, name, short)
        monkeypatch.setattr(presets, name.upper().replace("-", "_"), short)
    # StyleTransfer() and Objective() fall back to the module-level default preset.
    monkeypatch.setattr(objective, "DEFAULT", presets.PRESETS["default"])
    return tmp_path


def test_the_docs_have_examples() -> None:
    assert ROOT / "README.md" in PYTHON_PAGES
    assert len(PYTHON_PAGES) >= 8
    total = sum(1 for page in PAGES for b in blocks(page) if b.language == "python")
    assert total >= 20


def test_few_examples_are_skipped_and_each_says_why() -> None:
    skipped = [
        f"{page_id(page)}:{b.line}: {b.skip_reason}"
        for page in PAGES
        for b in blocks(page)
        if b.skip_reason is not None
    ]
    assert len(skipped) <= MAX_SKIPPED, skipped
    assert all(len(entry.split(": ", 1)[1]) > 5 for entry in skipped)


def test_the_shortened_presets_reach_style_transfer(example_folder: Path) -> None:
    assert neuralstyle.StyleTransfer().config.steps == STEPS
    assert neuralstyle.StyleTransfer.from_preset("gatys").config.steps == STEPS
    assert load_image("photo.jpg").shape[-1] == PHOTO_SIZE


@pytest.mark.usefixtures("no_network")
@pytest.mark.parametrize("page", PYTHON_PAGES, ids=page_id)
def test_python_examples_run(page: Path, example_folder: Path) -> None:
    namespace: dict[str, object] = {"__name__": "__docs__"}
    for block in blocks(page):
        if block.language != "python" or block.skip_reason is not None:
            continue
        # Pad so tracebacks point at the page's own line numbers.
        source = "\n" * block.line + block.code
        exec(compile(source, str(page), "exec"), namespace)


def shell_commands(page: Path) -> list[tuple[int, list[str]]]:
    commands = []
    for block in blocks(page):
        if block.language not in ("bash", "sh", "console") or block.skip_reason is not None:
            continue
        for offset, raw in enumerate(block.code.splitlines(), start=1):
            words = shlex.split(raw.split(" #", 1)[0].lstrip("$ "))
            # `pip install -e . && neuralstyle demo`: check the part after the last &&.
            if "&&" in words:
                words = words[len(words) - words[::-1].index("&&") :]
            if words[:1] == ["neuralstyle"]:
                commands.append((block.line + offset, words[1:]))
            elif words[:3] == ["python", "-m", "neuralstyle"]:
                commands.append((block.line + offset, words[3:]))
    return commands


SHELL = [(page, line, argv) for page in PAGES for line, argv in shell_commands(page)]


def test_the_docs_show_commands() -> None:
    assert len(SHELL) >= 8


@pytest.mark.parametrize(
    ("page", "line", "argv"),
    SHELL,
    ids=[f"{page_id(page)}:{line}" for page, line, _ in SHELL],
)
def test_command_examples_parse(page: Path, line: int, argv: list[str]) -> None:
    command = argv[0] if argv[:1] in (["demo"], ["batch"], ["app"]) else None
    rest = argv[1:] if command else argv
    if command == "batch":
        parser = _cli_batch._parser(rest)
    elif command == "app":
        parser = app._parser()
    else:
        parser = cli._build_parser(rest, demo=command == "demo")
    if "--help" in rest:
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args(rest)
        assert exit_info.value.code == 0
    else:
        # A command that no longer parses exits with status 2 here, failing the test.
        parser.parse_args(rest)


def test_no_docstring_example_hides_code_after_a_comment() -> None:
    # doctest skips an example whose source is only a comment, and the lines under it become
    # its (unchecked) expected output: code there silently tests nothing.
    import doctest
    import importlib
    import pkgutil

    hidden = []
    for info in pkgutil.iter_modules(neuralstyle.__path__, "neuralstyle."):
        module = importlib.import_module(info.name)
        for test in doctest.DocTestFinder().find(module):
            lines = (test.docstring or "").splitlines()
            for line, after in itertools.pairwise(lines):
                comment_only = re.match(r"\s*>>> #", line)
                if comment_only and after.strip() and not re.match(r"\s*(>>>|\.\.\.)", after):
                    hidden.append(f"{test.name}: {after.strip()}")
    assert hidden == []


def test_the_dev_extra_installs_every_tool_the_readme_names() -> None:
    # README, Developing: `pip install -e ".[dev]"` gives pytest, Hypothesis, ruff, mypy, the
    # docs toolchain and nox.
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    dev = " ".join(extras["dev"])
    included = [extra for extra in ("test", "lint", "docs") if extra in dev]
    wanted = " ".join([dev, *(" ".join(extras[extra]) for extra in included)])
    for tool in ("pytest", "hypothesis", "ruff", "mypy", "mkdocs-material", "mkdocstrings", "nox"):
        assert tool in wanted, tool
    assert 'pip install -e ".[dev]"' in (ROOT / "README.md").read_text()
