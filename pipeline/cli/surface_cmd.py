"""`losscape surface`."""
from __future__ import annotations

from . import not_built


def register(sub) -> None:
    p = sub.add_parser("surface", help="(not built yet)", description="Not built yet.")
    p.set_defaults(func=not_built("surface", "see the open issues"))
