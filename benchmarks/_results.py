"""Writing benchmark results: JSON-safe values, one line printed and saved."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

__all__ = ["json_safe", "write_results"]


def json_safe(value: Any) -> Any:
    """Replace non-finite floats by None: JSON has no Infinity or NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [json_safe(item) for item in value]
    return value


def write_results(results: dict[str, Any], output: Path | None) -> None:
    """Print ``results`` as the last line of JSON and write the same line to ``output``."""
    line = json.dumps(results, allow_nan=False)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(line + "\n")
    print(line)
