"""The example images bundled with neuralstyle.

Four public-domain example images ship with the package: :func:`example_images` lists them and
:func:`example_image` gives the path of one, from a source checkout, an installed wheel or a zip
import.
"""

from __future__ import annotations

import atexit
import contextlib
import difflib
import pathlib
from importlib import resources

from neuralstyle.errors import ImageError

__all__ = ["example_image", "example_images"]

# Example name -> file in neuralstyle/data/images. A test keeps this in sync with the folder.
_EXAMPLES: dict[str, str] = {
    "astronaut": "astronaut.jpg",
    "chelsea": "chelsea.jpg",
    "great_wave": "great_wave.jpg",
    "starry_night": "starry_night.jpg",
}


def example_images() -> tuple[str, ...]:
    """Names of the example images bundled with neuralstyle.

    Returns:
        The names, sorted; pass one to :func:`example_image`. Provenance and licences are in
        ``neuralstyle/data/images/NOTICE.md``.

    Example:
        >>> example_images()
        ('astronaut', 'chelsea', 'great_wave', 'starry_night')
    """
    return tuple(sorted(_EXAMPLES))


def example_image(name: str) -> pathlib.Path:
    """Path of a bundled example image.

    Works from a source checkout and from an installed wheel; when the package is imported from a
    zip file, the image is extracted to a temporary file that lives until the interpreter exits.

    Args:
        name: One of :func:`example_images` (``"chelsea"``); the file name (``"chelsea.jpg"``)
            is accepted too.

    Returns:
        The path of the JPEG file.

    Raises:
        ImageError: ``name`` is not a bundled example; the message lists the available names,
            closest first.

    Example:
        >>> from neuralstyle.image import load_image
        >>> image = load_image(example_image("starry_night"), size=256)
        >>> tuple(image.shape)
        (1, 3, 160, 256)
    """
    filename = _EXAMPLES[_example_key(name)]
    resource = resources.files("neuralstyle").joinpath("data").joinpath("images")
    resource = resource.joinpath(filename)
    if isinstance(resource, pathlib.Path):
        return resource
    # Zip import: there is no real file until as_file() extracts one.
    extracted = contextlib.ExitStack()
    atexit.register(extracted.close)
    return extracted.enter_context(resources.as_file(resource))


def _example_key(name: str) -> str:
    """Map a name or file name to its key in ``_EXAMPLES``, or raise with the closest names."""
    if not isinstance(name, str):
        raise ImageError(f"example image name must be a str, got {type(name).__name__}")
    key = name.strip()
    if key in _EXAMPLES:
        return key
    by_file = {filename: stem for stem, filename in _EXAMPLES.items()}
    if key in by_file:
        return by_file[key]
    ranked = sorted(_EXAMPLES, key=lambda n: -difflib.SequenceMatcher(None, key.lower(), n).ratio())
    raise ImageError(
        f"unknown example image {name!r}; available (closest first): {', '.join(ranked)}"
    )
