"""Argument types and the help formatter shared by every `vla-edge` verb and the standalone
record/replay entry points: a bad value is refused while parsing, before any work, naming the
flag. No rclpy, torch or onnxruntime here, so every CLI can import it cheaply."""
from __future__ import annotations

import argparse
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def _number(text: str, kind: type) -> int | float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'{text!r} is not {"an integer" if kind is int else "a number"}') from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f'must be a finite number, got {text}')
    return value


def _ranged(name: str, kind: type, rule: str, ok: Callable[[float], bool], doc: str):
    """An argparse type: a `kind` number for which `ok` holds, else 'must be RULE, got X'."""
    def parse(text: str) -> int | float:
        value = _number(text, kind)
        if not ok(value):
            shown = value if kind is int else f'{value:g}'
            raise argparse.ArgumentTypeError(f'must be {rule}, got {shown}')
        return value
    parse.__name__, parse.__doc__ = name, doc
    return parse


positive_int = _ranged('positive_int', int, '>= 1', lambda v: v >= 1,
                       'A count that must be at least 1 (episodes, repeats, steps, batch size).')
non_negative_int = _ranged('non_negative_int', int, '>= 0', lambda v: v >= 0,
                           'A whole number >= 0 (seeds, thread counts with 0 = automatic).')
positive_float = _ranged('positive_float', float, '> 0', lambda v: v > 0,
                         'A number > 0 (rates, durations).')
non_negative_float = _ranged('non_negative_float', float, '>= 0', lambda v: v >= 0,
                             'A number >= 0 (delays, weights, 0 = off).')
fraction = _ranged('fraction', float, 'in [0, 1]', lambda v: 0.0 <= v <= 1.0,
                   'A number in [0, 1].')
realtime_priority = _ranged('realtime_priority', int, 'in 0-99 (0: off)',
                           lambda v: 0 <= v <= 99, 'A SCHED_FIFO priority, 1-99; 0: off.')
domain_id = _ranged('domain_id', int, 'in 0-232', lambda v: 0 <= v <= 232,
                    'A ROS_DOMAIN_ID: 0-232 (Fast DDS derives its ports from it).')
latency_ms = _ranged('latency_ms', float, 'in [0, 60000) ms', lambda v: 0.0 <= v < 60_000.0,
                     'An inference latency in ms, as the virtual clock accepts it: [0, 60000).')


def _check_parent_folder(path: Path) -> None:
    """The nearest existing ancestor of `path` must be a folder we can write in (the rest of
    the way is created)."""
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise argparse.ArgumentTypeError(f'{path}: {parent} is not a folder')
            if not os.access(parent, os.W_OK | os.X_OK):
                raise argparse.ArgumentTypeError(f'{path}: cannot write in {parent}')
            try:   # os.access says yes to root everywhere, /proc included: try it
                with tempfile.TemporaryFile(dir=parent):
                    pass
            except OSError as exc:
                raise argparse.ArgumentTypeError(f'{path}: cannot write in {parent} '
                                                 f'({exc.strerror or exc})') from exc
            return


def output_file(text: str) -> Path:
    """A file the verb writes (JSON, PNG): checked up front, not after a long run."""
    path = Path(text)
    if not text:
        raise argparse.ArgumentTypeError('the path is empty')
    if path.is_dir():
        raise argparse.ArgumentTypeError(f'{path} is a folder; give a file path')
    if path.exists():   # an existing file is rewritten in place: its folder need not be ours
        if not os.access(path, os.W_OK):
            raise argparse.ArgumentTypeError(f'{path} is not writable')
    else:
        _check_parent_folder(path)
    return path


def output_folder(text: str) -> Path:
    """A folder the verb creates or writes into."""
    path = Path(text)
    if not text:
        raise argparse.ArgumentTypeError('the path is empty')
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f'{path} exists and is not a folder')
    _check_parent_folder(path)
    return path


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends '(default: X)' to an option's help unless the help already states its default,
    the default is None (nothing to say) or the option is an on/off flag."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ''
        default = action.default
        if ('default' in text.lower() or default is None or default is argparse.SUPPRESS
                or isinstance(default, bool) or default == []
                or not (action.option_strings
                        or action.nargs in (argparse.OPTIONAL, argparse.ZERO_OR_MORE))):
            return text
        if isinstance(default, (list, tuple)):
            shown = ' '.join(map(str, default))
        else:
            shown = str(default)
        return f'{text} (default: {shown.replace("%", "%%")})'
