"""The timeline's inference bars pair each chunk with the request it answered."""
from vla_edge.tools.timeline_plot import inference_intervals


def test_a_resent_request_and_a_late_extra_reply_do_not_shift_the_pairs():
    events = [('request', 0.0), ('arrival', 0.3),
              ('request', 1.0),                      # timed out ...
              ('request', 3.0), ('arrival', 3.2),    # ... sent again, answered
              ('arrival', 3.5),                      # the first one's late reply: no bar
              ('request', 4.0), ('arrival', 4.25)]
    assert inference_intervals(events) == [(0.0, 0.3), (3.0, 3.2), (4.0, 4.25)]


def test_events_out_of_order_are_sorted_by_time():
    assert inference_intervals([('arrival', 0.4), ('request', 0.1)]) == [(0.1, 0.4)]
