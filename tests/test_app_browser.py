"""The app in a real browser: upload two images, watch the previews, stop, download the PNG.

Debian's Chromium (``apt-get install chromium``, ``/usr/bin/chromium``) is driven by Playwright's
Python package (``pip install playwright``; no ``playwright install``: the system browser is
launched by path). The page is served on 127.0.0.1 from a thread of this process, with the
bundled network at 128 px so the run is short and the screenshot it saves to
``docs/images/app.png`` shows a real picture. Skipped, saying why, when Gradio, Playwright or
Chromium is missing.
"""

from __future__ import annotations

import gc
import io
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from neuralstyle import app
from neuralstyle.examples import example_image
from neuralstyle.image import load_image
from neuralstyle.image_output import save_image
from neuralstyle.studio import Studio

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "images" / "app.png"

pytest.importorskip("gradio", reason='needs Gradio: pip install "neuralstyle[app]"')
sync_api = pytest.importorskip("playwright.sync_api", reason="needs pip install playwright")
if not CHROMIUM.is_file():
    pytest.skip(f"needs Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)

# Gradio's server leaves event loops and sockets to the garbage collector when it closes.
pytestmark = [
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    page = app.serve("127.0.0.1", port, Studio(every=3, folder=tmp_path), block=False)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        page.close()
        del page
        gc.collect()


@pytest.fixture
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield launched
        finally:
            launched.close()


def upload(name: str, path: Path) -> Path:
    """A small copy of a bundled example, as a person would upload one."""
    save_image(load_image(example_image(name), size=160), path)
    return path


def previews(page: Any, count: int, timeout: float = 40.0) -> list[str]:
    """Wait until the preview image has shown ``count`` different pictures; their sources."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while len(seen) < count and time.monotonic() < deadline:
        image = page.locator("#ns-image img")
        source = image.first.get_attribute("src") if image.count() else None
        if source and source not in seen:
            seen.append(source)
        page.wait_for_timeout(100)
    return seen


def test_a_run_in_the_browser_previews_stops_and_downloads(
    url: str, browser: Any, tmp_path: Path
) -> None:
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto(url)
    page.locator("#ns-content input[type=file]").set_input_files(
        upload("chelsea", tmp_path / "photo.png")
    )
    page.locator("#ns-styles input[type=file]").set_input_files(
        upload("great_wave", tmp_path / "painting.png")
    )
    page.locator("#ns-size input").fill("128")
    page.locator("#ns-steps input").fill("60")
    page.locator("#ns-start").click()

    assert len(previews(page, 2)) == 2, page.inner_text("#ns-status")
    page.locator("#ns-stop").click()
    status = page.locator("#ns-status")
    status.get_by_text("kept the best picture so far").wait_for(timeout=30_000)
    assert "stopped after" in status.inner_text()

    with page.expect_download() as download:
        page.locator("#ns-save").click()
    saved = tmp_path / "download.png"
    download.value.save_as(saved)
    with Image.open(saved) as picture:
        assert picture.format == "PNG"
        assert max(picture.size) == 128

    save_screenshot(page.screenshot(full_page=True))


def save_screenshot(png: bytes) -> None:
    """Write the page's screenshot for the docs, in 128 colours so the file stays small."""
    with Image.open(io.BytesIO(png)) as image:
        image.convert("RGB").quantize(128).save(SCREENSHOT, optimize=True)
