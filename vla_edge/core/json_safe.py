"""JSON that strict readers accept: NaN and inf become null."""
from __future__ import annotations

import math


def finite_for_json(o: object) -> object:
    """A copy of `o` (dicts, lists, tuples, scalars) with non-finite floats replaced by None."""
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, dict):
        return {k: finite_for_json(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [finite_for_json(v) for v in o]
    return o
