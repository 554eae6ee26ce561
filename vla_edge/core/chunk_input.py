"""A received action chunk, conformed to the executor: columns by name, rows on its tick grid.

A policy plans at the rate it was trained for (the manifest's control_rate_hz); the controller it
drives often runs faster (100-200 Hz with a 50 Hz policy) or, on a small board, slower. A chunk's
points carry their times (`time_from_start`), so the executor samples the chunk at its own ticks,
linearly in time, as a joint_trajectory_controller interpolates between points. Played by index
at the wrong rate instead, a chunk's motion would be scaled in time (2x too fast for a 50 Hz plan
at 100 Hz). The columns are matched by joint name, so a chunk listing its joints in another order
cannot turn one joint's action into another's.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SAME_RATE_TOLERANCE = 0.01   # relative: points this close to 1/rate apart are played as they are
MAX_CHUNK_TICKS = 10_000     # a chunk of more points or executor ticks is refused (200 s at 50 Hz)


def columns_by_name(actions: np.ndarray, names: Sequence[str],
                    wanted: Sequence[str]) -> np.ndarray:
    """`actions` (rows, len(names)) with its columns in the order of `wanted`.

    A chunk without names is taken in the executor's order. Raises ValueError naming both lists
    when they are not the same joints."""
    names, wanted = [str(n) for n in names], [str(n) for n in wanted]
    width = actions.shape[1]
    if names and len(names) != width:
        raise ValueError(f'it names {len(names)} joints but has {width} values per point')
    if not names or names == wanted:
        if width != len(wanted):
            raise ValueError(f'it has {width} values per point; this node commands '
                             f'{len(wanted)} joints {wanted}')
        return actions
    if len(set(names)) != len(names) or sorted(names) != sorted(wanted):
        raise ValueError(f'its joint_names {names} are not the joints this node commands '
                         f'{wanted}')
    return actions[:, [names.index(n) for n in wanted]]


def onto_tick_grid(actions: np.ndarray, times_s: Sequence[float],
                   rate_hz: float) -> tuple[np.ndarray, bool]:
    """(rows at ticks k / rate_hz from the chunk's start, whether it was resampled).

    `times_s[i]` is when `actions[i]` applies, from the chunk's observation time. A chunk whose
    points are 1/rate apart from 0 is returned as it is. Otherwise each tick takes the linear
    interpolation of the points around it; the chunk keeps its duration (its last point holds for
    one of its own periods, as it would at its own rate). Raises ValueError for times that are
    not finite, negative, or not increasing."""
    times = np.asarray(times_s, dtype=np.float64)
    if times.shape != (len(actions),):
        raise ValueError(f'{len(times)} point times for {len(actions)} points')
    if not np.all(np.isfinite(times)) or (len(times) and times[0] < 0.0):
        raise ValueError(f'time_from_start must be finite and not negative, got from '
                         f'{times[0]:g} s')
    steps = np.diff(times)
    if np.any(steps <= 0.0):
        bad = int(np.argmax(steps <= 0.0))
        raise ValueError(f'time_from_start must increase point by point; point {bad + 1} is at '
                         f'{times[bad + 1]:g} s after {times[bad]:g} s')
    period = 1.0 / rate_hz
    if len(times) < 2:
        return actions, False
    on_grid = abs(times[0]) <= SAME_RATE_TOLERANCE * period and \
        np.all(np.abs(steps * rate_hz - 1.0) <= SAME_RATE_TOLERANCE)
    if on_grid:
        return actions, False
    duration = times[-1] + steps[-1]
    ticks = int(round(duration * rate_hz))
    if ticks > MAX_CHUNK_TICKS:
        raise ValueError(f'it spans {duration:g} s, {ticks} ticks at {rate_hz:g} Hz (limit '
                         f'{MAX_CHUNK_TICKS})')
    grid = np.arange(max(ticks, 1)) * period
    out = np.empty((len(grid), actions.shape[1]))
    with np.errstate(over='ignore', invalid='ignore'):   # refused below, with a reason
        for d in range(actions.shape[1]):
            out[:, d] = np.interp(grid, times, actions[:, d])
    if not np.all(np.isfinite(out)):   # finite values near the float limit overflow in between
        raise ValueError('sampling it at the control rate overflows (values near the float '
                         'limit)')
    return out, True


def point_rate_hz(times_s: Sequence[float]) -> float | None:
    """The rate a chunk was planned for (from its first two points), for messages; None for a
    single point."""
    if len(times_s) < 2 or times_s[1] <= times_s[0]:
        return None
    return 1.0 / (times_s[1] - times_s[0])
