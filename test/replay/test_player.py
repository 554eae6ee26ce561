"""The replay publisher over real DDS: timing, rate, loop/filter/remap, pause/step, /clock,
byte-exact images, and bad bags that publish nothing."""
import json
import logging
import math
import shutil
import sys

import cv2
import numpy as np
import pytest
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.serialization import deserialize_message, serialize_message
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import String
from std_srvs.srv import Trigger

from vla_edge.replay.bag_writer import write_bag
from vla_edge.replay.errors import BagReadError
from vla_edge.replay.player import Player, PlayerOptions, parse_remaps, replay_main

MS = 1_000_000
T0 = 1_700_000_000 * 1_000_000_000
STRING = 'std_msgs/msg/String'


def string_bag(path, topics=('/chatter',), n=10, gap_ms=10.0):
    """Pre-serialized String messages, returned so tests can compare bytes."""
    msgs = [(topic, serialize_message(String(data=f'{topic} {i}')),
             T0 + int(i * gap_ms * MS) + k, STRING)
            for i in range(n) for k, topic in enumerate(topics)]
    write_bag(path, msgs)
    return msgs


def start(ros, ctx, player, collector, topics):
    assert ros.wait_for(lambda: all(player.subscriber_counts()[t] for t in topics))
    ros.wait_for(lambda: False, 0.2)      # let both ends of each match settle


def p95_ms(errors_ns):
    return float(np.percentile(np.abs(errors_ns), 95)) / 1e6


@pytest.mark.parametrize('rate,domain_id,preload', [(1.0, 203, True), (2.0, 204, False)])
def test_intervals_reproduce_the_recording_within_1ms_p95(ros, tmp_path, rate, domain_id,
                                                           preload):
    rng = np.random.default_rng(7)
    gaps_ns = rng.uniform(10 * MS, 20 * MS, 99).astype(np.int64)      # 50-100 Hz
    stamps = T0 + np.concatenate([[0], np.cumsum(gaps_ns)])
    write_bag(tmp_path / 'bag', [('/chatter', serialize_message(String(data=str(i))), int(t),
                                  STRING) for i, t in enumerate(stamps)])
    want_ns = np.diff(stamps) / rate
    with ros.domain(domain_id) as ctx:
        options = PlayerOptions(rate=rate, preload_max_bytes=2**30 if preload else 0)
        player = Player(tmp_path / 'bag', options, context=ctx)
        assert player.source.streaming is not preload
        collector = ros.collector(ctx, {'/chatter': STRING})
        with ros.spinning(ctx, player, collector):
            start(ros, ctx, player, collector, ['/chatter'])
            player.play()
            assert player.wait(10.0) and player.error is None
            assert ros.wait_for(lambda: len(collector.got) == 100, 2.0)
            stats = player.timing_stats()
    published_s = np.array([p for _, _, _, p in player.publish_log])
    pub_err = np.diff(published_s) * 1e9 - want_ns
    recv_err = np.diff([g[2] for g in collector.got]) - want_ns
    total_s = published_s[-1] - published_s[0]
    source = 'preloaded' if preload else 'streamed'
    print(f'\nrate {rate} ({source}): interval error p95 publisher side {p95_ms(pub_err):.3f} ms '
          f'(max {np.abs(pub_err).max() / 1e6:.3f}), subscriber receive stamps '
          f'{p95_ms(recv_err):.3f} ms (max {np.abs(recv_err).max() / 1e6:.3f}); stats {stats}')
    assert p95_ms(pub_err) < 1.0
    assert p95_ms(recv_err) < 1.0
    assert stats['interval_error_p95_ms'] < 1.0
    assert total_s == pytest.approx((stamps[-1] - stamps[0]) / 1e9 / rate, abs=0.005)


def test_filter_remap_loop_and_missing_topic_warning(ros, tmp_path, caplog):
    msgs = string_bag(tmp_path / 'bag', topics=('/a', '/b', '/c'), n=5)
    a_bytes = [m[1] for m in msgs if m[0] == '/a']
    options = PlayerOptions(topics=['/a', '/b', '/nope'], remap=parse_remaps(['/a:=/renamed']),
                            loop=True, preload_max_bytes=0)      # streamed: loops re-read it
    with ros.domain(205) as ctx:
        with caplog.at_level(logging.WARNING, logger='vla_edge.replay'):
            player = Player(tmp_path / 'bag', options, context=ctx)
        assert any('/nope' in r.getMessage() and '/c [std_msgs/msg/String]' in r.getMessage()
                   for r in caplog.records)
        assert player.topic_names == {'/a': '/renamed', '/b': '/b'}
        collector = ros.collector(ctx, {t: STRING for t in ('/renamed', '/a', '/b', '/c')})
        with ros.spinning(ctx, player, collector):
            start(ros, ctx, player, collector, ['/a', '/b'])
            player.play()
            assert ros.wait_for(lambda: sum(g[0] == '/b' for g in collector.got) >= 15, 5.0)
            assert not player.wait(0.0)           # looping: never finishes on its own
            player.stop()
    topics = {g[0] for g in collector.got}
    assert topics == {'/renamed', '/b'}           # /a only under its new name, /c filtered out
    renamed = [g[1] for g in collector.got if g[0] == '/renamed']
    assert len(renamed) >= 15 and renamed[:15] == a_bytes * 3


def test_start_paused_then_step_then_resume(ros, tmp_path):
    msgs = string_bag(tmp_path / 'bag', n=10)
    with ros.domain(206) as ctx:
        player = Player(tmp_path / 'bag', PlayerOptions(start_paused=True), context=ctx)
        collector = ros.collector(ctx, {'/chatter': STRING})
        with ros.spinning(ctx, player, collector):
            start(ros, ctx, player, collector, ['/chatter'])
            player.play()
            assert not ros.wait_for(lambda: collector.got, 0.3)     # paused: nothing
            assert player.step().data == msgs[0][1]
            assert ros.wait_for(lambda: len(collector.got) == 1)
            client = collector.create_client(Trigger, '/vla_edge_player/play_next')
            assert client.wait_for_service(timeout_sec=5.0)
            future = client.call_async(Trigger.Request())     # the service form of step()
            assert ros.wait_for(future.done) and future.result().success
            assert ros.wait_for(lambda: len(collector.got) == 2)
            assert not ros.wait_for(lambda: len(collector.got) > 2, 0.2)
            player.resume()
            assert player.step() is None                            # running: no stepping
            assert player.wait(2.0) and player.error is None
            assert ros.wait_for(lambda: len(collector.got) == 10)
    assert [g[1] for g in collector.got] == [m[1] for m in msgs]
    deadlines = [d for _, _, d, _ in player.publish_log]
    assert math.isnan(deadlines[0]) and math.isnan(deadlines[1])
    assert not any(math.isnan(d) for d in deadlines[2:])


def test_clock_drives_a_sim_time_node(ros, tmp_path):
    string_bag(tmp_path / 'bag', n=30, gap_ms=10.0)           # 290 ms of bag time
    with ros.domain(207) as ctx:
        player = Player(tmp_path / 'bag', PlayerOptions(clock_hz=200.0), context=ctx)
        collector = ros.collector(ctx, {'/clock': 'rosgraph_msgs/msg/Clock'})
        sim_node = Node('sim_time_user', context=ctx,
                        parameter_overrides=[Parameter('use_sim_time', value=True)])
        with ros.spinning(ctx, player, collector, sim_node):
            assert ros.wait_for(lambda: player.count_subscribers('/clock') >= 2)
            ros.wait_for(lambda: False, 0.2)
            player.play()
            assert player.wait(2.0)
            assert ros.wait_for(lambda: sim_node.get_clock().now().nanoseconds >= T0 + 280 * MS)
            sim_now = sim_node.get_clock().now().nanoseconds
    clocks = [deserialize_message(g[1], Clock).clock for g in collector.got]
    ns = np.array([c.sec * 1_000_000_000 + c.nanosec for c in clocks])
    assert len(ns) >= 30 and ns[0] >= T0 and np.all(np.diff(ns) >= 0)
    assert ns[-1] <= T0 + 300 * MS and T0 + 280 * MS <= sim_now <= T0 + 300 * MS


def _image_messages():
    rng = np.random.default_rng(3)
    scene = cv2.GaussianBlur(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8), (9, 9), 3)
    out = []
    for i in range(3):
        frame = np.roll(scene, 7 * i, axis=1)
        jpeg = cv2.imencode('.jpg', frame, [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes()
        png = cv2.imencode('.png', cv2.resize(frame, (320, 240)))[1].tobytes()
        mono16 = (cv2.cvtColor(cv2.resize(frame, (160, 120)), cv2.COLOR_BGR2GRAY)
                  .astype(np.uint16) * 257)
        odd = cv2.resize(frame, (33, 17))
        odd_padded = np.zeros((17, 100), np.uint8)            # bgr8 with row padding
        odd_padded[:, :99] = odd.reshape(17, 99)
        stamp = T0 + i * 50 * MS
        out += [
            ('/cam/jpeg', CompressedImage(format='jpeg', data=jpeg), stamp),
            ('/cam/png', CompressedImage(format='png', data=png), stamp + 1),
            ('/cam/rgb8', Image(height=480, width=640, encoding='rgb8', step=640 * 3,
                                data=frame[..., ::-1].tobytes()), stamp + 2),
            ('/cam/mono16', Image(height=120, width=160, encoding='mono16', step=320,
                                  is_bigendian=0, data=mono16.tobytes()), stamp + 3),
            ('/cam/bgr8_padded', Image(height=17, width=33, encoding='bgr8', step=100,
                                       data=odd_padded.tobytes()), stamp + 4),
        ]
    return [(t, serialize_message(m), s, f'sensor_msgs/msg/{type(m).__name__}')
            for t, m, s in out]


def test_images_of_every_encoding_replay_byte_for_byte(ros, tmp_path):
    msgs = _image_messages()
    write_bag(tmp_path / 'bag', msgs)
    topics = {m[0]: m[3] for m in msgs}
    with ros.domain(208) as ctx:
        player = Player(tmp_path / 'bag', context=ctx)
        collector = ros.collector(ctx, topics)
        with ros.spinning(ctx, player, collector):
            start(ros, ctx, player, collector, list(topics))
            player.play()
            assert player.wait(3.0) and player.error is None
            assert ros.wait_for(lambda: len(collector.got) == len(msgs), 5.0)
    for topic in topics:
        sent = [m[1] for m in msgs if m[0] == topic]
        assert [g[1] for g in collector.got if g[0] == topic] == sent, topic
    jpeg = deserialize_message(next(g[1] for g in collector.got if g[0] == '/cam/jpeg'),
                               CompressedImage)
    assert cv2.imdecode(np.frombuffer(bytes(jpeg.data), np.uint8), cv2.IMREAD_COLOR).shape == \
        (480, 640, 3)


@pytest.mark.parametrize('damage', ['truncate', 'garbage'])
def test_a_bad_bag_fails_before_anything_is_published(ros, tmp_path, damage, monkeypatch,
                                                      capsys):
    string_bag(tmp_path / 'good', n=200)
    shutil.copytree(tmp_path / 'good', tmp_path / 'bad')
    (mcap,) = (tmp_path / 'bad').glob('*.mcap')
    raw = mcap.read_bytes()
    mcap.write_bytes(raw[:len(raw) // 2] if damage == 'truncate' else bytes(len(raw)))
    with ros.domain(209) as ctx:
        observer = Node('observer', context=ctx)
        with pytest.raises(BagReadError, match='bad'):
            Player(tmp_path / 'bad', context=ctx)
        assert observer.count_publishers('/chatter') == 0
        assert 'vla_edge_player' not in observer.get_node_names()
        observer.destroy_node()
    monkeypatch.setenv('ROS_DOMAIN_ID', '209')
    assert replay_main([str(tmp_path / 'bad')]) == 2
    assert 'truncated or corrupt' in capsys.readouterr().err


def test_replay_main_plays_a_bag_and_reports_timing(ros, tmp_path, monkeypatch, capfd):
    msgs = string_bag(tmp_path / 'bag', n=20)
    monkeypatch.setenv('ROS_DOMAIN_ID', '210')
    with ros.domain(210) as ctx:
        collector = ros.collector(ctx, {'/renamed': STRING})
        with ros.spinning(ctx, collector):
            # rcl must not read the tool's argv: a --remap value looks like a legacy remap rule
            monkeypatch.setattr(sys, 'argv', ['vla-edge', 'replay', '--remap',
                                             '/chatter:=/renamed'])
            code = replay_main([str(tmp_path / 'bag'), '--rate', '4', '--delay', '1.0',
                                '--remap', '/chatter:=/renamed', '--json',
                                str(tmp_path / 'timing.json')])
            assert ros.wait_for(lambda: len(collector.got) == 20, 2.0)
    assert code == 0
    assert [g[1] for g in collector.got] == [m[1] for m in msgs]
    out, err = capfd.readouterr()
    assert 'playing /chatter as /renamed' in out and 'published 20 messages' in out
    assert 'deprecated' not in err, err
    assert json.loads((tmp_path / 'timing.json').read_text())['count'] == 20


@pytest.mark.parametrize('flags, missing', [
    (['--topics', '/nosuch'], '/nosuch'),
    (['--topics', 'a', 'nope'], '/nope'),
    (['--exclude', '/typo'], '/typo'),
    (['--remap', '/old:=/new'], '/old'),
])
def test_replay_of_topics_the_bag_lacks_is_an_error_naming_what_it_has(tmp_path, capsys, flags,
                                                                      missing):
    string_bag(tmp_path / 'bag', topics=('/a', '/b'), n=2)
    assert replay_main([str(tmp_path / 'bag'), *flags]) == 2
    err = capsys.readouterr().err
    assert f'has no topic {missing}; it has: /a [{STRING}, 2], /b [{STRING}, 2]' in err, err
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize('flags, message', [
    (['--exclude', '/a', '/b'], 'nothing to play from .*: the selected topics have no messages'),
    (['--start-offset', '100'], r'--start-offset 100 s is past the end of .* \(0\.\d+ s long\)'),
])
def test_a_replay_that_would_publish_nothing_is_an_error(tmp_path, capsys, flags, message):
    """Exit 0 with 'published 0 messages' would pass for a replay in a script."""
    import re

    string_bag(tmp_path / 'bag', topics=('/a', '/b'), n=2)
    assert replay_main([str(tmp_path / 'bag'), *flags]) == 2
    err = capsys.readouterr().err
    assert re.search(message, err), err


@pytest.mark.parametrize('flags, message', [
    (['--rate', '0'], 'argument -r/--rate: must be > 0, got 0'),
    (['--start-offset', '-1'], 'argument --start-offset: must be >= 0'),
    (['--delay', '-0.5'], 'argument --delay: must be >= 0'),
    (['--realtime-priority', '100'], 'argument --realtime-priority: must be in 0-99'),
])
def test_replay_refuses_bad_values_while_parsing(tmp_path, capsys, flags, message):
    with pytest.raises(SystemExit) as exit_:
        replay_main([str(tmp_path / 'bag'), *flags])
    assert exit_.value.code == 2 and message in capsys.readouterr().err
