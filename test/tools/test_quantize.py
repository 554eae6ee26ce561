"""`vla-edge quantize` flags for per-stage exclusions: parsed into extra candidates of that stage
only, with distinct names; bad stages, regexes and fractions are refused before any work, and so
is a regex that names no node of the stage's graph."""
import re

import pytest

from vla_edge.cli import build_parser, main
from vla_edge.quant.candidates import Recipe, default_recipes, stage_candidates
from vla_edge.tools.quantize import stage_recipes

STAGES = ('vision_encoder', 'backbone', 'action_expert')


def parse(*flags):
    return build_parser().parse_args(['quantize', 'models/reference', '--out', 'out', *flags])


def test_exclusions_become_extra_candidates_of_their_stage_only():
    args = parse('--exclude', r'backbone=kv\.2', '--exclude', 'backbone=state_proj',
                 '--keep-tail', 'action_expert=0.3', '--keep-tail', 'action_expert=0.125')
    assert args.exclude == [('backbone', r'kv\.2'), ('backbone', 'state_proj')]
    assert args.keep_tail == [('action_expert', 0.3), ('action_expert', 0.125)]
    base = default_recipes(('minmax',))
    extra = stage_recipes(args.exclude, args.keep_tail, base)
    assert set(extra) == {'backbone', 'action_expert'}
    quantized = [r for r in base if r.kind != 'fp32']
    # backbone: every quantized recipe again, with both regexes (added to its own) kept in float
    assert len(extra['backbone']) == len(quantized)
    for variant, recipe in zip(extra['backbone'], quantized, strict=True):
        assert variant.exclude == (r'kv\.2', 'state_proj')
        assert variant.name == f'{recipe.name}_excl2' and variant.keep_tail == recipe.keep_tail
    # action_expert: one set per fraction; the tail25 recipe collapses into the plain one's
    names = [r.name for r in extra['action_expert']]
    assert len(names) == len(set(names)) == 2 * (len(quantized) - 1)
    assert 'int8_qdq_minmax_tail30fp32' in names and 'int8_dynamic_tail12p5fp32' in names
    merged = stage_candidates(base, extra, STAGES)
    assert [r.name for r in merged['vision_encoder']] == [r.name for r in base]
    assert len(merged['backbone']) == len(base) + len(quantized)


def test_no_flags_no_extra_candidates():
    args = parse()
    assert stage_recipes(args.exclude, args.keep_tail, default_recipes()) == {}


@pytest.mark.parametrize('flags, message', [
    (['--exclude', 'vision=proj'], "unknown stage 'vision'"),
    (['--exclude', 'backbone'], 'is not STAGE=REGEX'),
    (['--exclude', 'backbone=kv[0'], 'is not a valid regular expression'),
    (['--keep-tail', 'expert=0.2'], "unknown stage 'expert'"),
    (['--keep-tail', 'backbone=1.0'], 'must be in [0, 1), got 1'),
    (['--keep-tail', 'backbone=-0.1'], 'must be in [0, 1), got -0.1'),
    (['--keep-tail', 'backbone=half'], "'half' is not a number"),
    (['--calib-max-frames', '0'], 'must be >= 1'),
    (['--episodes', '0'], 'argument --episodes: must be >= 1, got 0'),
    (['--repeats', '-1'], 'argument --repeats: must be >= 1, got -1'),
    (['--heldout-episodes', '-1'], 'argument --heldout-episodes: must be >= 0'),
    (['--max-success-drop', '2'], 'argument --max-success-drop: must be in [0, 1], got 2'),
    (['--latency-budget-ms', '0'], 'argument --latency-budget-ms: must be > 0, got 0'),
    (['--drift-budget', '-0.1'], 'argument --drift-budget: must be >= 0, got -0.1'),
    (['--threads', '-2'], 'argument --threads: must be >= 0, got -2'),
])
def test_bad_values_are_refused_while_parsing(flags, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        parse(*flags)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_keep_tail_names_do_not_collide():
    names = {Recipe('qdq_int8', keep_tail=t).name for t in (0.12, 0.125, 0.25, 0.3)}
    assert len(names) == 4 and 'int8_qdq_minmax_tail25fp32' in names   # as before for 0.25


def test_two_different_candidates_with_one_name_are_refused():
    a = Recipe('dynamic_int8', exclude=('kv',))
    b = Recipe('dynamic_int8', exclude=('proj',))
    with pytest.raises(ValueError, match="two different candidates are both named "
                                         "'int8_dynamic_excl1'"):
        stage_candidates([Recipe('fp32')], {'backbone': (a, b)}, STAGES)
    with pytest.raises(ValueError, match=r"unknown stage\(s\) \['vision'\]"):
        stage_candidates([Recipe('fp32')], {'vision': (a,)}, STAGES)


def test_a_regex_naming_no_node_stops_the_run_before_calibration(reference_model_dir,
                                                                tmp_path, capsys):
    # the bag does not exist either: the regex is reported first, before any calibration
    rc = main(['quantize', str(reference_model_dir), '--out', str(tmp_path / 'out'),
               '--exclude', 'backbone=no_such_node', '--calib', str(tmp_path / 'no_bag'),
               '--no-progress'])
    err = capsys.readouterr().err
    assert rc == 2
    assert re.search(r"backbone: exclusion 'no_such_node' matches none of its \d+ nodes", err)
    assert '/backbone/' in err                 # names some of the graph's nodes
    assert not (tmp_path / 'out').exists()


def test_bag_joint_names_and_instruction_reach_the_quantize_config():
    from vla_edge.tools.quantize import config_from_args

    cfg = config_from_args(parse('--calib', 'bag', '--calib-position-joints', 'a', 'b',
                                 '--calib-velocity-joints', '--calib-instruction', 'wipe it'))
    assert cfg.calib_position_joints == ('a', 'b') and cfg.calib_velocity_joints == ()
    assert cfg.calib_instruction == 'wipe it'
    default = config_from_args(parse())
    assert default.calib_position_joints == ('x', 'y', 'gripper')
    assert default.calib_velocity_joints == ('x', 'y')


def test_out_equal_to_the_source_is_refused_before_any_work(reference_model_dir, capsys,
                                                             monkeypatch):
    import vla_edge.quant.pipeline as pipeline

    def no_work(*args, **kwargs):
        raise AssertionError('the model was loaded before --out was checked')
    monkeypatch.setattr(pipeline, 'PolicyRuntime', no_work)
    before = sorted(p.name for p in reference_model_dir.iterdir())
    for out in (str(reference_model_dir), f'{reference_model_dir}/',
                str(reference_model_dir / '..' / reference_model_dir.name)):
        assert main(['quantize', str(reference_model_dir), '--out', out, '--no-progress']) == 2
        err = capsys.readouterr().err
        assert '--out must differ from the source model folder' in err, err
        assert 'Traceback' not in err and len(err.splitlines()) == 1
    assert sorted(p.name for p in reference_model_dir.iterdir()) == before   # nothing left


def test_an_out_path_that_is_a_file_is_refused_while_parsing(tmp_path, capsys):
    (tmp_path / 'f').write_text('x')
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(['quantize', 'models/reference', '--out', str(tmp_path / 'f')])
    assert exit_.value.code == 2
    assert 'argument --out' in capsys.readouterr().err
