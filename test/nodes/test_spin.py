"""The node executables' main loop (`spin_nodes`) under the signals ros2 launch sends: Ctrl-C
(SIGINT) and SIGTERM end the spin with the context still up, so every node is destroyed while
it can still publish (the robot-facing nodes send their last, safe command then)."""
import os
import signal
import subprocess
import sys
import textwrap

import pytest

PROBE = textwrap.dedent('''
    import os, signal, sys, threading, time
    from rclpy.node import Node
    from vla_edge.nodes.spin import spin_nodes

    class Probe(Node):
        def __init__(self):
            super().__init__('spin_probe')
            self.create_timer(0.05, self.tick)
            self.started = time.monotonic()

        def tick(self):
            if os.environ.get('PROBE_FAIL') and time.monotonic() - self.started > 0.5:
                raise RuntimeError('a callback failed')

        def destroy_node(self):
            print('destroyed with context ok:', self.context.ok(), flush=True)
            # a slow stop: the second signal (if any) arrives meanwhile
            time.sleep(float(os.environ.get('PROBE_STOP_S', '0.5')))
            super().destroy_node()

    def stop_later():
        time.sleep(1.0)
        for sig in sys.argv[1:]:
            os.kill(os.getpid(), getattr(signal, sig))
            time.sleep(0.2)

    threading.Thread(target=stop_later, daemon=True).start()
    spin_nodes(lambda: [Probe()], args=[])
    print('main returned', flush=True)
''')


@pytest.mark.parametrize('signals, sigint_ignored', [
    (['SIGINT'], False), (['SIGTERM'], False), (['SIGINT', 'SIGINT'], False),
    (['SIGINT', 'SIGTERM'], False), (['SIGINT'], True)])
def test_a_signal_ends_the_spin_with_the_context_still_up(signals, sigint_ignored, tmp_path):
    """A second signal while the nodes are being destroyed (an impatient Ctrl-C, ros2
    launch's SIGTERM) must not break the stop off half-way; and a node started with SIGINT
    ignored (a background job of a shell script) still stops on it."""
    script = tmp_path / 'probe.py'
    script.write_text(PROBE)
    env = {**os.environ, 'ROS_DOMAIN_ID': str(150 + os.getpid() % 50),
           'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST'}

    def ignore_sigint():
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    done = subprocess.run([sys.executable, str(script), *signals], env=env,
                          capture_output=True, text=True, timeout=30,
                          preexec_fn=ignore_sigint if sigint_ignored else None)
    assert 'destroyed with context ok: True' in done.stdout, done.stdout + done.stderr
    assert 'main returned' in done.stdout and done.returncode == 0, done.stderr
    assert 'Traceback' not in done.stderr, done.stderr
    assert 'most recent call first' not in done.stderr, done.stderr   # no hang report


def test_a_stop_that_hangs_prints_where_while_the_process_can_still_say_it(tmp_path):
    """ros2 launch and bringup SIGKILL a node that has not stopped 5 s after SIGINT, and a
    killed process says nothing: a stop still running after STOP_REPORT_S prints every thread's
    stack (here: the node's destroy_node, asleep), and the stop then finishes normally."""
    from vla_edge.nodes.spin import STOP_REPORT_S

    script = tmp_path / 'probe.py'
    script.write_text(PROBE)
    env = {**os.environ, 'ROS_DOMAIN_ID': str(150 + os.getpid() % 50),
           'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST', 'PROBE_STOP_S': str(STOP_REPORT_S + 1)}
    done = subprocess.run([sys.executable, str(script), 'SIGINT'], env=env,
                          capture_output=True, text=True, timeout=30)
    assert 'most recent call first' in done.stderr, done.stderr
    assert 'in destroy_node' in done.stderr and 'in spin_nodes' in done.stderr, done.stderr
    assert 'main returned' in done.stdout and done.returncode == 0, done.stderr


def test_a_stop_after_a_failed_callback_that_hangs_prints_where_too(tmp_path):
    """No signal: the spin ends on a callback's exception, and the nodes' destruction (their
    last commands) still runs, under the same report."""
    from vla_edge.nodes.spin import STOP_REPORT_S

    script = tmp_path / 'probe.py'
    script.write_text(PROBE)
    env = {**os.environ, 'ROS_DOMAIN_ID': str(150 + os.getpid() % 50), 'PROBE_FAIL': '1',
           'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST', 'PROBE_STOP_S': str(STOP_REPORT_S + 1)}
    done = subprocess.run([sys.executable, str(script)], env=env,
                          capture_output=True, text=True, timeout=30)
    assert 'destroyed with context ok: True' in done.stdout, done.stdout + done.stderr
    assert 'most recent call first' in done.stderr and 'in destroy_node' in done.stderr
    assert 'RuntimeError: a callback failed' in done.stderr and done.returncode == 1


def test_the_runtimes_python_log_lines_reach_the_ros_log(tmp_path):
    """vla_edge's Python loggers (the runtime's 'resized' and 'loaded model' notes) were never
    configured in a node executable, so INFO notes vanished; they now go through rclpy."""
    script = tmp_path / 'log_probe.py'
    script.write_text(textwrap.dedent('''
        import logging, os, signal, threading, time
        from rclpy.node import Node
        from vla_edge.nodes.spin import spin_nodes

        class Probe(Node):
            def __init__(self):
                super().__init__('log_probe')
                logging.getLogger('vla_edge.runtime').info('frame 1x20000 resized (said once)')
                logging.getLogger('vla_edge.runtime').warning('provider missing')
                logging.getLogger('vla_edge.runtime').debug('not shown at INFO')

        threading.Thread(target=lambda: (time.sleep(0.5), os.kill(os.getpid(), signal.SIGINT)),
                         daemon=True).start()
        spin_nodes(lambda: [Probe()], args=[])
    '''))
    env = {**os.environ, 'ROS_DOMAIN_ID': str(150 + os.getpid() % 50),
           'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST'}
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True,
                          text=True, timeout=30)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert '[INFO]' in out and '[vla_edge.runtime]: frame 1x20000 resized (said once)' in out, out
    assert '[WARN]' in out and '[vla_edge.runtime]: provider missing' in out, out
    assert out.count('provider missing') == 1, out    # not also through Python's last resort
    assert 'not shown at INFO' not in out


def test_stop_signals_take_the_signals_they_are_given():
    """bringup --processes stops on SIGHUP (a closed terminal) too: its nodes, in their own
    session, would otherwise be stopped all at once by their death signal."""
    from vla_edge.nodes.spin import StopSignals

    stop = StopSignals(signals=(signal.SIGHUP,))
    try:
        assert not stop.requested
        os.kill(os.getpid(), signal.SIGHUP)
        assert stop.requested
        os.kill(os.getpid(), signal.SIGHUP)   # a second one is noted, not acted on
    finally:
        stop.restore()
    assert signal.getsignal(signal.SIGHUP) is signal.SIG_DFL
