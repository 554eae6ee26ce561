"""Shipped files are found in a checkout and in an installed package's share folder."""
import sys
from pathlib import Path

from vla_edge.core import package_share
from vla_edge.core.package_share import package_path, share_roots


def test_the_checkout_wins_when_it_has_the_file(tmp_path):
    checkout, share = tmp_path / 'checkout', tmp_path / 'share'
    for root in (checkout, share):
        (root / 'config').mkdir(parents=True)
    assert package_path('config', roots=[checkout, share]) == checkout / 'config'


def test_an_installed_package_finds_its_share_folder(tmp_path):
    """colcon without --symlink-install / plain pip: the code's folder has no config/."""
    checkout, share = tmp_path / 'site-packages', tmp_path / 'share' / 'vla_edge'
    checkout.mkdir()
    (share / 'models' / 'reference').mkdir(parents=True)
    assert package_path('models', 'reference', roots=[checkout, share]) == \
        share / 'models' / 'reference'


def test_nothing_found_names_the_checkout_path(tmp_path):
    assert package_path('config', roots=[tmp_path / 'a', tmp_path / 'b']) == \
        tmp_path / 'a' / 'config'


def test_the_roots_end_with_the_interpreters_share_folder():
    """pip installs setup.py's data_files under sys.prefix."""
    roots = share_roots()
    assert roots[0] == package_share.CHECKOUT
    assert roots[-1] == Path(sys.prefix) / 'share' / 'vla_edge'


def test_setup_installs_what_package_path_looks_for():
    setup = (package_share.CHECKOUT / 'setup.py').read_text()
    for folder in ("'/config'", "'/models/reference'"):
        assert f"('share/' + package_name + {folder}" in setup
