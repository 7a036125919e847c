"""``neuralstyle app``: a live preview of a run in the browser, a thin page over the public API.

The page (Gradio, ``pip install "neuralstyle[app]"``) takes a content image and one or more
style images, a few options with the chosen preset's defaults, and shows the picture every few
steps while :meth:`StyleTransfer.start <neuralstyle.StyleTransfer.start>` runs; Stop keeps the
best picture so far, ready to download as PNG. Everything the page does goes through
:class:`~neuralstyle.studio.Studio` (:mod:`neuralstyle.studio`); this module only lays it out
and serves it. Gradio is imported when the page is built, so ``import neuralstyle`` works
without it.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator, Sequence
from types import ModuleType
from typing import Any

from neuralstyle._cli_options import Parser, UsageError
from neuralstyle.examples import example_images
from neuralstyle.presets import DEFAULT, PRESETS
from neuralstyle.studio import (
    PRESERVE_COLORS,
    Frame,
    Session,
    Settings,
    Studio,
    settings_for,
    sources,
    style_sources,
)

__all__ = ["build_app", "main", "serve"]

_INSTALL_HINT = 'the app needs Gradio: pip install "neuralstyle[app]"'


# -- the page ---------------------------------------------------------------------------------


def _gradio() -> ModuleType:
    """Import Gradio with its usage analytics off (the app works offline and reports nothing).

    Raises:
        ModuleNotFoundError: Gradio is not installed.
    """
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    # By name: Gradio is no dependency of the library, and the page uses it untyped anyway.
    return importlib.import_module("gradio")


_CSS = ".ns-status progress { width: 100%; } .ns-error { color: #b00020; font-weight: 600; }"


def build_app(studio: Studio | None = None) -> Any:
    """The page as a ``gradio.Blocks``; call its ``launch()`` to serve it.

    Args:
        studio: Runs the transfers; a default :class:`Studio` (bundled network) when None.

    Raises:
        ModuleNotFoundError: Gradio is not installed (``pip install "neuralstyle[app]"``).
    """
    gr = _gradio()
    studio = studio or Studio()
    first = settings_for(DEFAULT.name)
    names = list(example_images())
    with gr.Blocks(title="neuralstyle", analytics_enabled=False) as page:
        session = gr.State(lambda: Session())  # called per tab: each tab its own
        gr.Markdown("## neuralstyle: live preview")
        with gr.Row():
            with gr.Column():
                content_file = gr.File(
                    label="Content image", file_types=["image"], elem_id="ns-content"
                )
                content_example = gr.Dropdown(names, value="chelsea", label="or a bundled one")
                style_files = gr.File(
                    label="Style images (one or more)",
                    file_count="multiple",
                    file_types=["image"],
                    elem_id="ns-styles",
                )
                style_examples = gr.Dropdown(
                    names, value=["starry_night"], multiselect=True, label="and/or bundled ones"
                )
                blend = gr.Textbox(
                    label="Blend weights", placeholder="one per style, uploads first: 2 1"
                )
                preset = gr.Dropdown(sorted(PRESETS), value=first.preset, label="Preset")
                size = gr.Number(
                    first.size,
                    precision=0,
                    label="Size (px, empty: the content's)",
                    elem_id="ns-size",
                )
                strength = gr.Number(first.style_strength, label="Style strength")
                preserve = gr.Dropdown(
                    list(PRESERVE_COLORS), value=first.preserve_color, label="Preserve colour"
                )
                steps = gr.Number(
                    first.steps, precision=0, minimum=1, label="Steps", elem_id="ns-steps"
                )
                with gr.Row():
                    start = gr.Button("Start", variant="primary", elem_id="ns-start")
                    stop = gr.Button("Stop", variant="stop", elem_id="ns-stop")
            with gr.Column():
                preview = gr.Image(
                    label="Preview",
                    type="pil",
                    format="png",
                    interactive=False,
                    height=384,
                    elem_id="ns-image",
                )
                status = gr.HTML(Frame(None).html(), elem_id="ns-status")
                download = gr.DownloadButton("Download PNG", interactive=False, elem_id="ns-save")

        def on_preset(name: str) -> list[Any]:
            chosen = settings_for(name)
            return [chosen.size, chosen.style_strength, chosen.preserve_color, chosen.steps]

        def on_start(
            state: Session,
            content: str | None,
            example: str | None,
            uploads: list[str] | None,
            examples: list[str] | None,
            *options: Any,
        ) -> Iterator[list[Any]]:
            styles = style_sources(uploads, examples)
            for frame in studio.run(state, sources(content, example), styles, Settings(*options)):
                ready = frame.download is not None
                yield [
                    frame.image,
                    frame.html(),
                    gr.DownloadButton(value=frame.download, interactive=ready),
                ]

        preset.change(on_preset, preset, [size, strength, preserve, steps])
        images = [content_file, content_example, style_files, style_examples]
        options = [preset, size, strength, preserve, steps, blend]  # Settings' fields, in order
        start.click(on_start, [session, *images, *options], [preview, status, download])
        # Not queued: Stop must reach a run that holds the queue.
        stop.click(studio.stop, session, None, queue=False)
    return page


def serve(
    host: str = "127.0.0.1", port: int = 7860, studio: Studio | None = None, *, block: bool = True
) -> Any:
    """Serve the page; with ``block`` until interrupted.

    Args:
        host: The address to listen on. Anyone who can reach another address than 127.0.0.1
            can use the page: run transfers on this machine and upload files to it.
        port: The port.
        studio: Runs the transfers; a default :class:`Studio` when None.
        block: Wait until interrupted; False returns at once, the server running in a thread.

    Returns:
        The ``gradio.Blocks`` served; its ``close()`` stops the server.
    """
    studio = studio or Studio()
    page = build_app(studio)
    page.launch(
        server_name=host,
        server_port=port,
        prevent_thread_lock=not block,
        quiet=not block,
        allowed_paths=[str(studio.folder)],
        css=_CSS,
        footer_links=[],
    )
    return page


def _parser() -> Parser:
    parser = Parser(
        prog="neuralstyle app",
        description="Serve a page that shows a run's picture as it forms (needs the app extra: "
        'pip install "neuralstyle[app]").',
        allow_abbrev=False,
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1, this machine only); 0.0.0.0 lets anyone "
        "who can reach this machine run transfers on it and upload files to it",
    )
    parser.add_argument("--port", type=int, default=7860, help="port (default: 7860)")
    return parser


def main(argv: Sequence[str]) -> int:
    """Run ``neuralstyle app`` with ``argv`` (after ``app``); return the exit status.

    Raises:
        UsageError: A port outside 1-65535.
    """
    args = _parser().parse_args(argv)
    if not 0 < args.port < 65536:
        raise UsageError(f"--port must be between 1 and 65535, got {args.port}")
    try:
        _gradio()
    except ModuleNotFoundError:
        print(f"neuralstyle: error: {_INSTALL_HINT}", file=sys.stderr)
        return 1
    serve(args.host, args.port)
    return 0
