"""Progress bars (tqdm) for long work; silent when stderr is not a terminal-like sink.

Library code reports progress only through these bars and ``logging``. Bars are disabled
when ``TQDM_DISABLE`` is set (``lossvista -q`` sets it) and otherwise shown on stderr.
"""
from __future__ import annotations

import os
from typing import Any

from tqdm.auto import tqdm

__all__ = ["progress_bar"]


def progress_bar(*, total: int | None, desc: str, unit: str = "it", **kwargs: Any) -> tqdm:
    disable = os.environ.get("TQDM_DISABLE", "") not in ("", "0")
    return tqdm(total=total, desc=desc, unit=unit, disable=disable, dynamic_ncols=True, leave=True,
                mininterval=0.5, **kwargs)
