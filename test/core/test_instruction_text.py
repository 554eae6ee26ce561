"""One rule for a usable instruction, shared by the encoder, vla_node and the executor."""
import pytest

from vla_edge.core.errors import InputError
from vla_edge.core.instruction_text import normalise_instruction


def test_case_and_spacing_do_not_make_another_instruction():
    assert normalise_instruction('  Put the TEA bag\tin the mug \n') == \
        normalise_instruction('put the tea bag in the mug') == 'put the tea bag in the mug'


@pytest.mark.parametrize('text', ['\u200b\u200b\u200b', '\x07\x1b', '\u2060\ufeff \u200d'])
def test_text_with_no_visible_character_is_refused(text):
    """The tokenizer drops these, so they would embed as an empty instruction."""
    with pytest.raises(InputError, match='no visible characters'):
        normalise_instruction(text)


def test_invisible_characters_inside_words_are_dropped_not_kept_as_another_task():
    assert normalise_instruction('put the\u200b tea bag\x1b in the mug') == \
        'put the tea bag in the mug'


def test_non_latin_text_is_kept():
    assert normalise_instruction('把茶包放进杯子 🍵') == '把茶包放进杯子 🍵'


@pytest.mark.parametrize('text,match', [('', 'empty'), ('  ', 'empty'), (3, 'string'),
                                        ('x' * 1001, 'limit')])
def test_unusable_instructions_are_refused(text, match):
    with pytest.raises(InputError, match=match):
        normalise_instruction(text)
