"""When an instruction text is usable, in one place: the encoder refuses what it cannot embed,
and the nodes refuse it on arrival, before it replaces the task the robot is doing."""
from __future__ import annotations

import unicodedata

from vla_edge.core.errors import InputError, shown

MAX_INSTRUCTION_CHARS = 1000
# Text this long is refused before any character is looked at: scanning 1 MB took 126 ms on the
# executor's control thread. The limit stays on the normalised text; this only bounds the work.
MAX_RAW_CHARS = 10 * MAX_INSTRUCTION_CHARS


def normalise_instruction(text: object) -> str:
    """Lower case, single spaces, no invisible characters: the cache key of the embedding.
    Raises InputError for text that is not a string, has no visible character, or is longer
    than MAX_INSTRUCTION_CHARS.

    Control and format characters (terminal escapes, zero-width spaces) are dropped, as the
    encoder's tokenizer drops them: text made only of them would embed as an empty instruction
    and replace the robot's task with nothing."""
    if not isinstance(text, str):
        raise InputError(f'instruction must be a string, got {type(text).__name__}')
    if len(text) > MAX_RAW_CHARS:
        raise InputError(f'instruction is {len(text)} characters long; the limit is '
                         f'{MAX_INSTRUCTION_CHARS} (spaces collapsed)')
    visible = ''.join(ch for ch in text
                      if ch.isspace() or unicodedata.category(ch) not in ('Cc', 'Cf'))
    key = ' '.join(visible.lower().split())
    if not key:
        raise InputError('instruction is empty' if not text.strip() else
                         f'instruction {shown(text)} has no visible characters')
    if len(key) > MAX_INSTRUCTION_CHARS:
        raise InputError(f'instruction is {len(key)} characters long; the limit is '
                         f'{MAX_INSTRUCTION_CHARS}')
    return key
