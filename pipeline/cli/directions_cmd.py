"""`losscape directions`."""
from __future__ import annotations

from . import not_built


def register(sub) -> None:
    p = sub.add_parser("directions", help="(not built yet)", description="Not built yet.")
    p.set_defaults(func=not_built("directions", "see the open issues"))
