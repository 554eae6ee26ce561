"""Recording real DDS traffic into mcap and sqlite3 bags, read back with rosbags' own reader."""
import json
import os
import signal
import threading
import time

import numpy as np
import pytest
import yaml
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, qos_profile_sensor_data
from rclpy.serialization import serialize_message
from rosbags.interfaces import QosDurability, QosReliability
from rosbags.rosbag2 import Reader
from sensor_msgs.msg import CompressedImage
from std_msgs.msg import String

from vla_edge.replay.recorder import parse_topic_specs, record_main, start_recording

N = 20


def _traffic(node):
    """Publishers with three QoS flavours; messages pre-serialized so bytes can be compared."""
    pubs = {
        '/chatter': node.create_publisher(String, '/chatter', 10),
        '/camera/compressed': node.create_publisher(CompressedImage, '/camera/compressed',
                                                    qos_profile_sensor_data),
        '/latched': node.create_publisher(String, '/latched', QoSProfile(
            depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)),
    }
    rng = np.random.default_rng(1)
    data = {
        '/chatter': [serialize_message(String(data=f'msg {i}')) for i in range(N)],
        '/camera/compressed': [serialize_message(CompressedImage(
            format='jpeg', data=rng.integers(0, 256, 2000, dtype=np.uint8).tobytes()))
            for _ in range(N)],
        '/latched': [serialize_message(String(data='map'))],
    }
    return pubs, data


@pytest.mark.parametrize('storage,domain_id', [('mcap', 200), ('sqlite3', 201)])
def test_records_real_messages_with_types_qos_and_receive_times(ros, tmp_path, storage,
                                                                domain_id):
    path = tmp_path / 'rec'
    with ros.domain(domain_id) as ctx:
        talker = Node('talker', context=ctx)
        pubs, data = _traffic(talker)
        recorder = start_recording(path, list(pubs), storage, context=ctx)
        with ros.spinning(ctx, talker, recorder):
            assert ros.wait_for(lambda: len(recorder.subscribed_topics) == 3)
            assert ros.wait_for(lambda: all(p.get_subscription_count() for p in pubs.values()))
            time.sleep(0.2)
            t_before = time.time_ns()
            for i in range(N):
                for topic, msgs in data.items():
                    if i < len(msgs):
                        pubs[topic].publish(msgs[i])
                time.sleep(0.005)
            counts = recorder.writer.summary.message_counts
            assert ros.wait_for(lambda: counts.get('/chatter', 0) == N
                                and counts.get('/latched', 0) == 1)
            assert ros.wait_for(lambda: counts.get('/camera/compressed', 0) >= N * 0.9, 1.0)
            t_after = time.time_ns()
            summary = recorder.close()
    assert summary.path == path and summary.message_count == sum(counts.values())
    assert not (tmp_path / '.rec.partial').exists()

    with Reader(path) as reader:
        conns = {c.topic: c for c in reader.connections}
        assert conns['/chatter'].msgtype == 'std_msgs/msg/String'
        assert conns['/camera/compressed'].msgtype == 'sensor_msgs/msg/CompressedImage'
        assert all(c.ext.serialization_format == 'cdr' for c in conns.values())
        (cam_qos,) = conns['/camera/compressed'].ext.offered_qos_profiles
        assert cam_qos.reliability == QosReliability.BEST_EFFORT
        (latched_qos,) = conns['/latched'].ext.offered_qos_profiles
        assert latched_qos.durability == QosDurability.TRANSIENT_LOCAL
        got = {}
        for conn, stamp, raw in reader.messages():
            assert t_before <= stamp <= t_after      # receive time, ns since the epoch
            got.setdefault(conn.topic, []).append(bytes(raw))
    assert got['/chatter'] == data['/chatter'] and got['/latched'] == data['/latched']
    assert set(got['/camera/compressed']) <= set(data['/camera/compressed'])

    meta = yaml.safe_load((path / 'metadata.yaml').read_text())['rosbag2_bagfile_information']
    for key in ('version', 'storage_identifier', 'duration', 'starting_time', 'message_count',
                'topics_with_message_count', 'compression_format', 'compression_mode',
                'relative_file_paths', 'files', 'custom_data', 'ros_distro'):
        assert key in meta, key
    assert meta['storage_identifier'] == storage and meta['message_count'] == summary.message_count
    topic_qos = {t['topic_metadata']['name']: t['topic_metadata']['offered_qos_profiles']
                 for t in meta['topics_with_message_count']}
    assert topic_qos['/camera/compressed'][0]['reliability'] == 'best_effort'


def test_record_main_stops_cleanly_on_ctrl_c(ros, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv('ROS_DOMAIN_ID', '202')
    path, summary_json = tmp_path / 'cli_bag', tmp_path / 'summary.json'
    stop = threading.Event()
    with ros.domain(202) as ctx:
        talker = Node('talker', context=ctx)
        pub = talker.create_publisher(String, '/chatter', 10)

        def talk():
            i = 0
            while not stop.is_set():
                pub.publish(String(data=f'{i}'))
                i += 1
                time.sleep(0.02)
            os.kill(os.getpid(), signal.SIGINT)          # the operator's Ctrl-C

        def stop_when_recorded():
            ros.wait_for(lambda: (tmp_path / '.cli_bag.partial').exists(), 10.0)
            time.sleep(1.0)
            stop.set()

        threads = [threading.Thread(target=talk), threading.Thread(target=stop_when_recorded)]
        for t in threads:
            t.start()
        try:
            code = record_main(['/chatter', '-o', str(path), '-s', 'sqlite3',
                                '--json', str(summary_json)])
        finally:
            stop.set()
            for t in threads:
                t.join()
            talker.destroy_node()
    out = capsys.readouterr().out
    assert code == 0, out
    summary = json.loads(summary_json.read_text())
    assert summary['message_counts']['/chatter'] > 10 and summary['stopped_early'] == ''
    assert f'bag {path}' in out and '/chatter:' in out
    with Reader(path) as reader:
        assert reader.message_count == summary['message_count']


def test_topic_specs():
    assert parse_topic_specs(['chatter', '/cam:sensor_msgs/Image']) == {
        '/chatter': None, '/cam': 'sensor_msgs/msg/Image'}
    with pytest.raises(ValueError, match='pkg/msg/Name'):
        parse_topic_specs(['/x:nonsense'])


@pytest.mark.parametrize('argv, message', [
    (['bad topic!'], "'/bad topic!' is not a valid topic name"),
    (['/ok', '/also bad'], "'/also bad' is not a valid topic name"),
    (['camera/image_raw:not/a/Type'], 'message type not/a/Type does not import here'),
    (['/x:nonsense'], 'is not of the form pkg/msg/Name'),
])
def test_record_refuses_bad_topics_and_types_before_making_a_bag(tmp_path, capsys, argv,
                                                                  message):
    assert record_main(['-o', str(tmp_path / 'bag'), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.splitlines()) == 1 and 'Traceback' not in err
    assert list(tmp_path.iterdir()) == []          # no bag, no staging folder


@pytest.mark.parametrize('flags, message', [
    (['--duration', '-1'], 'argument --duration: must be >= 0, got -1'),
    (['--max-messages', '-3'], 'argument --max-messages: must be >= 0, got -3'),
])
def test_record_refuses_bad_limits_while_parsing(tmp_path, capsys, flags, message):
    with pytest.raises(SystemExit) as exit_:
        record_main(['-o', str(tmp_path / 'bag'), '/chatter', *flags])
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_record_refuses_an_existing_output_while_parsing(tmp_path, capsys):
    (tmp_path / 'bag').mkdir()
    with pytest.raises(SystemExit):
        record_main(['-o', str(tmp_path / 'bag'), '/chatter'])
    assert 'exists already' in capsys.readouterr().err


def test_record_with_a_duration_says_how_long_not_ctrl_c(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv('ROS_DOMAIN_ID', '177')
    monkeypatch.setenv('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    t0 = time.monotonic()
    assert record_main(['-o', str(tmp_path / 'bag'), '/nobody_publishes', '--duration',
                        '0.3']) == 0
    assert time.monotonic() - t0 < 10
    out = capsys.readouterr().out
    assert f'recording to {tmp_path / "bag"} for 0.3 s' in out and 'Ctrl-C' not in out
