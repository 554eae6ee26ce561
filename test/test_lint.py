"""One ruff run replaces ament's copyright/flake8/pep257 tests."""
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_ruff_is_clean():
    ruff = shutil.which('ruff') or str(Path(sys.executable).parent / 'ruff')
    out = subprocess.run([ruff, 'check', str(REPO)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
