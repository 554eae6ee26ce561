"""When an instruction text is usable, in one place: the encoder refuses what it cannot embed,
and the nodes refuse it on arrival, before it replaces the task the robot is doing."""
from __future__ import annotations

from vla_edge.core.errors import InputError

MAX_INSTRUCTION_CHARS = 1000


def normalise_instruction(text: object) -> str:
    """Lower case, single spaces: the cache key of the embedding. Raises InputError for text
    that is not a string, empty, or longer than MAX_INSTRUCTION_CHARS."""
    if not isinstance(text, str):
        raise InputError(f'instruction must be a string, got {type(text).__name__}')
    key = ' '.join(text.strip().lower().split())
    if not key:
        raise InputError('instruction is empty')
    if len(key) > MAX_INSTRUCTION_CHARS:
        raise InputError(f'instruction is {len(key)} characters long; the limit is '
                         f'{MAX_INSTRUCTION_CHARS}')
    return key
