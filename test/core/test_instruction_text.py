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


def test_text_with_many_spaces_is_measured_after_they_collapse():
    assert normalise_instruction('pick  ' + ' ' * 5000 + 'up') == 'pick up'


@pytest.mark.parametrize('text', ['a' * 1_000_000, 'pick up the cup' + ' ' * 1_000_000,
                                  '\x07' * 1_000_000])
def test_megabytes_of_text_are_refused_unread_and_not_quoted_whole(text):
    # Found by fuzzing: 1 MB took 126 ms to scan on the executor's control thread, and a refusal
    # quoted the text, a 4 MB log line. Refused on its length now, before any scan.
    with pytest.raises(InputError, match=r'1\d{6} characters long; the limit is 1000') as err:
        normalise_instruction(text)
    assert len(str(err.value)) < 200


def test_a_refusal_quotes_at_most_a_line_of_the_text():
    with pytest.raises(InputError, match=r"no visible characters") as err:
        normalise_instruction('\x07' * 5000)
    assert len(str(err.value)) < 200 and '(20002 characters)' in str(err.value)
