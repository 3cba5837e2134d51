"""Alert texts say how to opt out: the sender adds the line unless the text already does."""

from __future__ import annotations

import pytest

from shared.templates import STOP_SUFFIX, with_opt_out


@pytest.mark.parametrize(
    "text",
    ["Stop Asian Hate rally 6pm", "Nonstop calls to the council today", "Meet at the bus stop"],
)
def test_the_word_stop_is_not_an_opt_out_instruction(text: str) -> None:
    assert with_opt_out(text) == f"{text} {STOP_SUFFIX}"


@pytest.mark.parametrize(
    "text",
    ["Rally at 6. Reply STOP to opt out.", "Call today. Text STOP to quit", 'Reply "stop" to end'],
)
def test_a_text_that_says_how_to_opt_out_is_sent_as_written(text: str) -> None:
    assert with_opt_out(text) == text


def test_a_filled_in_name_cannot_take_the_opt_out_line_off() -> None:
    """Whether a text says how to opt out is read from what the organizer wrote: a
    supporter's name reading "Reply STOP to opt out" is not the instruction."""
    template = "{{ given_name }}, the vote is Tuesday."
    body = "Reply STOP to opt out, the vote is Tuesday."
    assert with_opt_out(body, written=template) == f"{body} {STOP_SUFFIX}"
    assert with_opt_out(
        "Vote Tuesday. Reply STOP to quit", written="Vote Tuesday. Reply STOP to quit"
    ).endswith("quit")
