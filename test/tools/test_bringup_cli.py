"""How `vla-edge bringup --processes` stops its node processes (real processes, real signals)."""
import contextlib
import os
import select
import signal
import subprocess
import sys
import textwrap
import time

from vla_edge.tools import bringup_cli

# A stand-in node process: says when it is up, notes when SIGINT arrives and when it exits.
NODE = textwrap.dedent('''
    import signal, sys, time
    log, name, stop_s = sys.argv[1], sys.argv[2], float(sys.argv[3])

    def note(what):
        with open(log, 'a') as f:
            f.write(f'{time.monotonic():.6f} {name} {what}\\n')

    def on_stop(signum, frame):
        note(signal.Signals(signum).name.lower())
        time.sleep(stop_s)
        note('exit')
        sys.exit(0)

    signal.signal(signal.SIGINT, on_stop if stop_s >= 0 else signal.SIG_IGN)
    signal.signal(signal.SIGTERM, on_stop)
    note('up')
    while True:
        time.sleep(0.01)
''')


def start_nodes(tmp_path, stop_s: dict[str, float]) -> tuple[list[str], list, object]:
    script, log = tmp_path / 'node.py', tmp_path / 'log.txt'
    script.write_text(NODE)
    names = list(stop_s)
    procs = [subprocess.Popen([sys.executable, str(script), str(log), n, str(stop_s[n])])
             for n in names]
    end = time.monotonic() + 20
    while time.monotonic() < end and (not log.exists()
                                      or log.read_text().count(' up\n') < len(names)):
        time.sleep(0.05)
    return names, procs, log


def events(log) -> list[tuple[str, str]]:
    return [tuple(line.split()[1:]) for line in log.read_text().splitlines()
            if not line.endswith(' up')]


def test_nodes_are_stopped_one_after_another_robot_facing_first_and_the_robot_last(tmp_path):
    """Each node gets SIGINT only once the one before it has exited: the watchdog and the
    executor first (the robot's last command at once), the sim robot last (it still listens
    while they send it), whatever order they were started in."""
    names, procs, log = start_nodes(tmp_path, {'vla_node': 0.3, 'chunk_executor': 0.3,
                                               'watchdog_node': 0.3, 'sim': 0.0})
    bringup_cli.stop_in_order(names, procs)
    order = ['watchdog_node', 'chunk_executor', 'vla_node', 'sim']
    assert events(log) == [(n, what) for n in order for what in ('sigint', 'exit')]
    assert [p.returncode for p in procs] == [0, 0, 0, 0]


def test_a_node_that_does_not_stop_is_killed_and_named_and_the_rest_still_stop(
        tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bringup_cli, 'STOP_WAIT_S', 1.5)
    names, procs, log = start_nodes(tmp_path, {'vla_node': 0.0, 'chunk_executor': -1,
                                               'sim': 0.0})   # -1: SIGINT ignored
    t0 = time.monotonic()
    try:
        bringup_cli.stop_in_order(names, procs)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in procs] == [0, -9, 0]
    assert events(log) == [('vla_node', 'sigint'), ('vla_node', 'exit'),
                           ('sim', 'sigint'), ('sim', 'exit')]
    vla_sigint = next(float(line.split()[0]) for line in log.read_text().splitlines()
                      if line.endswith('vla_node sigint'))
    assert vla_sigint - t0 >= 1.5, 'vla_node was stopped before the executor was killed'
    err = capsys.readouterr().err
    assert f'chunk_executor (pid {procs[1].pid}) did not stop within 1.5 s' in err, err


def test_a_node_that_already_exited_is_passed_over(tmp_path):
    names, procs, log = start_nodes(tmp_path, {'vla_node': 0.0, 'sim': 0.0})
    procs[0].kill()
    procs[0].wait()
    bringup_cli.stop_in_order(names, procs)
    assert events(log) == [('sim', 'sigint'), ('sim', 'exit')]
    assert procs[0].returncode == -9 and procs[1].returncode == 0


def test_a_node_process_is_out_of_the_terminals_reach_and_stops_when_bringup_dies(tmp_path):
    """Own session: Ctrl-C (SIGINT to the terminal's foreground group) reaches bringup alone,
    which stops the nodes in order. And a bringup killed outright does not leave them running:
    each gets SIGTERM, a stop for our nodes."""
    script, log = tmp_path / 'node.py', tmp_path / 'log.txt'
    script.write_text(NODE)
    parent = subprocess.Popen([sys.executable, '-c', textwrap.dedent(f'''
        import sys, time
        from vla_edge.tools.bringup_cli import start_node_process
        child = start_node_process([sys.executable, {str(script)!r}, {str(log)!r}, 'sim', '0'])
        print(child.pid, flush=True)
        time.sleep(60)
    ''')], stdout=subprocess.PIPE, text=True)
    child_pid = None
    try:
        ready, _, _ = select.select([parent.stdout], [], [], 30)
        assert ready, 'the parent never started its node'
        child_pid = int(parent.stdout.readline())
        end = time.monotonic() + 20
        while time.monotonic() < end and not (log.exists() and ' up' in log.read_text()):
            time.sleep(0.05)
        assert log.exists() and ' up' in log.read_text(), 'the node never came up'
        assert os.getsid(child_pid) == child_pid != os.getsid(0)
        assert os.getpgid(child_pid) != os.getpgid(0)
        parent.kill()
        parent.wait()
        end = time.monotonic() + 10
        while time.monotonic() < end and 'exit' not in log.read_text():
            time.sleep(0.05)
        assert events(log) == [('sim', 'sigterm'), ('sim', 'exit')]
    finally:
        parent.kill()
        if child_pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child_pid, signal.SIGKILL)
