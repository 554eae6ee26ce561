"""Bag writing and reading without DDS: safe finalize, bad bags, unknown types, missing topics."""
import logging
import shutil

import pytest
import yaml
from rclpy.serialization import serialize_message
from rosbags.rosbag2 import Reader
from std_msgs.msg import Float64MultiArray, String

from vla_edge.replay.bag_reader import BagReader, read_messages
from vla_edge.replay.bag_writer import BagWriter, write_bag
from vla_edge.replay.errors import BagReadError, BagWriteError
from vla_edge.replay.msg_types import message_definition

MS = 1_000_000


def _messages(n=50):
    # Serialized once: rclpy's CDR leaves alignment padding uninitialized, so two serializations
    # of one message may differ in those bytes. A bag must return exactly the bytes it was given.
    return [m for i in range(n) for m in (
        ('/chatter', serialize_message(String(data=f'hello {i}')), 10**18 + i * 10 * MS,
         'std_msgs/msg/String'),
        ('/numbers', serialize_message(Float64MultiArray(data=[float(i), -1.0])),
         10**18 + i * 10 * MS + 1, 'std_msgs/msg/Float64MultiArray'))]


MESSAGES = _messages()


@pytest.fixture(scope='module')
def good_bags(tmp_path_factory):
    root = tmp_path_factory.mktemp('bags')
    for storage in ('mcap', 'sqlite3'):
        write_bag(root / storage, MESSAGES, storage=storage)
    return root


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_written_bag_round_trips_bytes_and_has_rosbag2_metadata(good_bags, storage):
    path = good_bags / storage
    got = read_messages(path)
    want = [m[:3] for m in MESSAGES]
    assert [(m.topic, m.data, m.timestamp_ns) for m in got] == want
    assert not (good_bags / f'.{storage}.partial').exists()
    meta = yaml.safe_load((path / 'metadata.yaml').read_text())['rosbag2_bagfile_information']
    assert meta['version'] == 9 and meta['storage_identifier'] == storage
    assert meta['message_count'] == 100
    assert meta['starting_time']['nanoseconds_since_epoch'] == 10**18
    assert meta['duration']['nanoseconds'] == 49 * 10 * MS + 1
    assert meta['compression_format'] == '' and meta['compression_mode'] == ''
    assert isinstance(meta['custom_data'], dict)       # rosbag2 parses it as a map
    (only_file,) = meta['relative_file_paths']
    assert (path / only_file).is_file()
    assert meta['files'][0]['path'] == only_file and meta['files'][0]['message_count'] == 100
    topics = {t['topic_metadata']['name']: t for t in meta['topics_with_message_count']}
    assert topics['/chatter']['message_count'] == 50
    md = topics['/numbers']['topic_metadata']
    assert md['type'] == 'std_msgs/msg/Float64MultiArray' and md['serialization_format'] == 'cdr'
    assert md['type_description_hash'].startswith('RIHS01_')
    with Reader(path) as reader:              # rosbags' own reader sees the definitions
        conn = next(c for c in reader.connections if c.topic == '/numbers')
        assert 'MultiArrayLayout layout' in conn.msgdef.data


def test_an_error_inside_the_writer_still_leaves_a_closed_valid_bag(tmp_path, caplog):
    path = tmp_path / 'bag'
    with pytest.raises(RuntimeError, match='boom'), BagWriter(path) as bag:
        bag.add_topic('/chatter', 'std_msgs/msg/String')
        for i in range(3):
            bag.write('/chatter', 10**18 + i, serialize_message(String(data=str(i))))
        raise RuntimeError('boom')
    assert bag.summary.message_count == 3 and 'boom' in bag.summary.stopped_early
    assert 'stopped early' in caplog.text
    assert len(read_messages(path)) == 3
    assert not (tmp_path / '.bag.partial').exists()


def test_a_failed_finalize_is_reported_and_nothing_is_left_under_the_bag_name(tmp_path,
                                                                              monkeypatch):
    path = tmp_path / 'bag'
    bag = BagWriter(path).open()
    bag.add_topic('/chatter', 'std_msgs/msg/String')
    bag.write('/chatter', 1, serialize_message(String(data='x')))

    def broken_close():
        raise OSError('disk full')
    monkeypatch.setattr(bag._writer, 'close', broken_close)
    with pytest.raises(BagWriteError, match='NOT a valid bag') as err:
        bag.close()
    assert str(tmp_path / '.bag.partial') in str(err.value)
    assert not path.exists()
    with pytest.raises(BagReadError, match='did not finish'):
        BagReader(path).open()                   # the reader says where the leftover is
    with pytest.raises(BagWriteError, match='did not finish'):
        BagWriter(path).open()                   # the leftover is never silently reused


def test_an_existing_bag_is_never_overwritten(good_bags):
    with pytest.raises(BagWriteError, match='exists already'):
        BagWriter(good_bags / 'mcap').open()


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
@pytest.mark.parametrize('damage', ['truncate', 'garbage'])
def test_truncated_or_corrupt_bags_raise_a_clear_error(good_bags, tmp_path, storage, damage):
    path = tmp_path / 'bag'
    shutil.copytree(good_bags / storage, path)
    (data_file,) = [p for p in path.iterdir() if p.suffix in ('.mcap', '.db3')]
    raw = data_file.read_bytes()
    data_file.write_bytes(raw[:len(raw) // 2] if damage == 'truncate'
                          else bytes(b ^ 0x5A for b in raw))
    with pytest.raises(BagReadError, match=str(path)):
        read_messages(path)


def test_a_storage_with_fewer_messages_than_its_index_is_reported_as_truncated(good_bags,
                                                                               tmp_path):
    path = tmp_path / 'bag'
    shutil.copytree(good_bags / 'sqlite3', path)
    meta_path = path / 'metadata.yaml'
    meta = yaml.safe_load(meta_path.read_text())
    meta['rosbag2_bagfile_information']['topics_with_message_count'][0]['message_count'] = 60
    meta_path.write_text(yaml.safe_dump(meta))
    with pytest.raises(BagReadError, match=r'truncated.*/chatter: 50 of 60'):
        read_messages(path)


def test_missing_bag_and_folder_without_metadata(tmp_path):
    with pytest.raises(BagReadError, match='no bag at'):
        read_messages(tmp_path / 'nope')
    (tmp_path / 'empty').mkdir()
    with pytest.raises(BagReadError, match='no metadata.yaml'):
        read_messages(tmp_path / 'empty')


def test_unknown_types_are_skipped_with_one_warning_per_topic(tmp_path, caplog):
    path = tmp_path / 'bag'
    with BagWriter(path) as bag:
        bag.add_topic('/foo', 'sensor_msgs/msg/Foo', msgdef='float64 x',
                      rihs01='RIHS01_' + '0' * 64)
        bag.add_topic('/custom', 'my_robot_msgs/msg/Gripper', msgdef='float64 width',
                      rihs01='RIHS01_' + '1' * 64)
        bag.add_topic('/chatter', 'std_msgs/msg/String')
        for i in range(5):
            bag.write('/foo', i * MS, bytes(12))
            bag.write('/custom', i * MS, bytes(12))
            bag.write('/chatter', i * MS, serialize_message(String(data=str(i))))
    with caplog.at_level(logging.WARNING, logger='vla_edge.replay'):
        got = read_messages(path)
    assert {m.topic for m in got} == {'/chatter'} and len(got) == 5
    warnings = [r.getMessage() for r in caplog.records]
    assert sum('sensor_msgs/msg/Foo' in w for w in warnings) == 1
    assert sum('my_robot_msgs/msg/Gripper' in w for w in warnings) == 1


def test_requested_topics_missing_from_the_bag_warn_with_what_the_bag_has(good_bags, caplog):
    with caplog.at_level(logging.WARNING, logger='vla_edge.replay'):
        got = read_messages(good_bags / 'mcap', topics=['chatter', '/camera/image'])
    assert len(got) == 50 and {m.topic for m in got} == {'/chatter'}
    (warning,) = [r.getMessage() for r in caplog.records]
    assert '/camera/image' in warning and '/numbers [std_msgs/msg/Float64MultiArray]' in warning


def test_custom_message_definitions_come_from_share_folders(tmp_path, monkeypatch):
    msg_dir = tmp_path / 'prefix' / 'share' / 'my_robot_msgs' / 'msg'
    msg_dir.mkdir(parents=True)
    (msg_dir / 'Gripper.msg').write_text('std_msgs/Header header\nFinger[] fingers\n')
    (msg_dir / 'Finger.msg').write_text('float64 width\nstring name\n')
    monkeypatch.setenv('AMENT_PREFIX_PATH', str(tmp_path / 'prefix'))
    msgdef, rihs01 = message_definition('my_robot_msgs/Gripper')
    assert 'MSG: my_robot_msgs/Finger' in msgdef and 'MSG: std_msgs/Header' in msgdef
    assert rihs01.startswith('RIHS01_')
    with pytest.raises(BagWriteError, match='no message definition for nobody_msgs/msg/X'):
        message_definition('nobody_msgs/msg/X')
