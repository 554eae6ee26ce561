"""Every bad model folder named in the foundation issue gets a clear ModelLoadError."""
import shutil

import numpy as np
import pytest
import yaml

from vla_edge.core.errors import InputError, ModelLoadError
from vla_edge.core.manifest import load_manifest, sha256_of
from vla_edge.core.runtime import PolicyRuntime


@pytest.fixture
def model_copy(tmp_path, reference_model_dir):
    dst = tmp_path / 'model'
    dst.mkdir()
    for f in reference_model_dir.iterdir():
        if f.name == 'instruction_encoder.onnx':   # 90 MB: a link is enough, it is only read
            (dst / f.name).symlink_to(f)
        else:
            shutil.copyfile(f, dst / f.name)
    return dst


def _edit_manifest(folder, edit):
    path = folder / 'manifest.yaml'
    raw = yaml.safe_load(path.read_text())
    edit(raw)
    path.write_text(yaml.safe_dump(raw, sort_keys=False))


def test_missing_folder(tmp_path):
    with pytest.raises(ModelLoadError, match='does not exist'):
        PolicyRuntime(tmp_path / 'nope')


def test_folder_without_manifest(tmp_path):
    with pytest.raises(ModelLoadError, match='no manifest.yaml'):
        PolicyRuntime(tmp_path)


def test_missing_stage_file(model_copy):
    (model_copy / 'backbone.onnx').unlink()
    with pytest.raises(ModelLoadError, match='backbone.onnx is missing'):
        PolicyRuntime(model_copy)


def test_sha256_mismatch(model_copy):
    data = bytearray((model_copy / 'action_expert.onnx').read_bytes())
    data[len(data) // 2] ^= 0xFF
    (model_copy / 'action_expert.onnx').write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match='sha256 mismatch for action_expert.onnx'):
        PolicyRuntime(model_copy)


def test_tampered_tokenizer_is_caught_by_its_hash(model_copy):
    with open(model_copy / 'tokenizer.json', 'a') as f:
        f.write(' ')
    with pytest.raises(ModelLoadError, match='tokenizer.json'):
        load_manifest(model_copy)


@pytest.mark.parametrize('field', ['chunk_length', 'normalization', 'stages', 'denoising_steps'])
def test_manifest_missing_a_field(model_copy, field):
    _edit_manifest(model_copy, lambda raw: raw.pop(field))
    with pytest.raises(ModelLoadError, match=f'missing required field.*{field}'):
        PolicyRuntime(model_copy)


def test_manifest_missing_normalization_entry(model_copy):
    _edit_manifest(model_copy, lambda raw: raw['normalization'].pop('action_std'))
    with pytest.raises(ModelLoadError, match='normalization is missing action_std'):
        PolicyRuntime(model_copy)


def test_manifest_not_yaml(model_copy):
    (model_copy / 'manifest.yaml').write_text('stages: [unclosed')
    with pytest.raises(ModelLoadError, match='not valid YAML'):
        PolicyRuntime(model_copy)


def test_onnx_input_name_disagrees_with_manifest(model_copy):
    def rename(raw):
        inputs = raw['stages']['backbone']['inputs']
        inputs['robot_state'] = inputs.pop('state')
    _edit_manifest(model_copy, rename)
    with pytest.raises(ModelLoadError, match='stage backbone: ONNX inputs .* disagree'):
        PolicyRuntime(model_copy)


def test_inputs_the_runtime_does_not_feed_are_refused_at_load(model_copy):
    """Manifest and ONNX agree on a name the runtime does not feed: refused at load, not with an
    onnxruntime error at the first chunk."""
    import onnx

    path = model_copy / 'backbone.onnx'
    graph = onnx.load(str(path))
    for node in graph.graph.node:
        node.input[:] = ['robot_state' if n == 'state' else n for n in node.input]
    next(i for i in graph.graph.input if i.name == 'state').name = 'robot_state'
    onnx.save(graph, str(path))

    def rename(raw):
        inputs = raw['stages']['backbone']['inputs']
        inputs['robot_state'] = inputs.pop('state')
        raw['stages']['backbone']['sha256'] = sha256_of(path)
    _edit_manifest(model_copy, rename)
    with pytest.raises(ModelLoadError, match=r"stage backbone: inputs \['instruction_embedding', "
                                             r"'robot_state', 'visual_tokens'\], but this "
                                             r"runtime feeds .*'state'"):
        PolicyRuntime(model_copy)


def test_onnx_shape_disagrees_with_manifest(model_copy):
    _edit_manifest(model_copy, lambda raw: raw['stages']['vision_encoder']['inputs']['image']
                   .update(shape=['batch', 96, 96, 3]))
    with pytest.raises(ModelLoadError, match="input 'image' has shape"):
        PolicyRuntime(model_copy)


def test_onnx_dtype_disagrees_with_manifest(model_copy):
    _edit_manifest(model_copy, lambda raw: raw['stages']['vision_encoder']['inputs']['image']
                   .update(dtype='float32'))
    with pytest.raises(ModelLoadError, match='uint8 in the ONNX file but float32'):
        PolicyRuntime(model_copy)


def test_file_that_is_not_onnx(model_copy):
    (model_copy / 'backbone.onnx').write_bytes(b'this is not a protobuf')
    digest = sha256_of(model_copy / 'backbone.onnx')
    _edit_manifest(model_copy, lambda raw: raw['stages']['backbone'].update(sha256=digest))
    with pytest.raises(ModelLoadError, match='not a loadable ONNX model'):
        PolicyRuntime(model_copy)


def test_stage_swapped_for_another_graph(model_copy):
    """A wrong model file with a correct hash (e.g. the wrong stage copied) fails on its I/O."""
    (model_copy / 'backbone.onnx').write_bytes((model_copy / 'vision_encoder.onnx').read_bytes())
    digest = sha256_of(model_copy / 'backbone.onnx')
    _edit_manifest(model_copy, lambda raw: raw['stages']['backbone'].update(sha256=digest))
    with pytest.raises(ModelLoadError, match='stage backbone'):
        PolicyRuntime(model_copy)


def test_wrong_image_size_is_resized_with_a_log_line(reference_runtime, caplog):
    caplog.set_level('INFO', logger='vla_edge.runtime')
    emb = reference_runtime.encode_image(np.zeros((480, 640, 3), np.uint8))
    assert emb.tokens.shape[0] == 1
    assert 'resizing image from 640x480' in caplog.text


def test_wrong_channel_count_is_a_clear_error(reference_runtime):
    with pytest.raises(InputError, match='1, 3 or 4 channels'):
        reference_runtime.encode_image(np.zeros((128, 128, 5), np.uint8))


def test_rgba_frame_is_converted(reference_runtime):
    rgba = np.zeros((128, 128, 4), np.uint8)
    rgb = np.zeros((128, 128, 3), np.uint8)
    assert np.allclose(reference_runtime.encode_image(rgba).tokens,
                       reference_runtime.encode_image(rgb).tokens)


@pytest.mark.parametrize('state,match', [(np.zeros(4), 'must have 5 values'),
                                         (np.array([0, 0, np.nan, 0, 0]), 'NaN')])
def test_bad_state_is_a_clear_error(reference_runtime, state, match):
    v = reference_runtime.encode_image(np.zeros((128, 128, 3), np.uint8))
    with pytest.raises(InputError, match=match):
        reference_runtime.plan_chunk(v, 'put the tea bag in the mug', state)


@pytest.mark.parametrize('text,match', [('', 'empty'), ('   ', 'empty'), (42, 'string'),
                                        ('x' * 5000, 'limit')])
def test_bad_instruction_is_a_clear_error(reference_runtime, text, match):
    with pytest.raises(InputError, match=match):
        reference_runtime.encode_instruction(text)


@pytest.mark.parametrize('key,value,match', [
    ('action_std', [1.0, 1.0], 'action_std must list 3 values'),
    ('state_std', [1.0, 0.0, 1.0, 1.0, 1.0], 'state_std must be positive'),
])
def test_normalization_statistics_are_checked(model_copy, key, value, match):
    _edit_manifest(model_copy, lambda raw: raw['normalization'].update({key: value}))
    with pytest.raises(ModelLoadError, match=match):
        PolicyRuntime(model_copy)


@pytest.mark.parametrize('field,value,message', [
    ('control_rate_hz', 0, 'control_rate_hz must be a finite number > 0, got 0'),
    ('control_rate_hz', -5, 'control_rate_hz must be a finite number > 0, got -5'),
    ('control_rate_hz', '.nan', 'control_rate_hz must be a finite number > 0'),
    ('control_rate_hz', 'fast', "control_rate_hz must be a finite number > 0, got 'fast'"),
    ('chunk_length', 'fifty', "chunk_length must be a positive integer, got 'fifty'"),
    ('chunk_length', 0, 'chunk_length must be a positive integer, got 0'),
    ('chunk_length', 12.5, 'chunk_length must be a positive integer, got 12.5'),
    ('denoising_steps', -1, 'denoising_steps must be a positive integer, got -1'),
    ('action_dim', True, 'action_dim must be a positive integer, got True'),
    ('state_dim', None, 'state_dim must be a positive integer, got None'),
    ('image', [128, 128], 'image must be a mapping'),
    ('training', 'none', "training must be a mapping, got 'none'"),
    ('training', {'training_seed_range': 5}, 'training_seed_range must be [first, end) '
                                             'integers, got 5'),
    ('training', {'training_seed_range': [9, 3]}, 'training_seed_range must be'),
    ('action_names', ['vx', 'vx', 'grip'], r'action_names must list 3 distinct names'),
    ('action_names', 'vx vy grip', 'action_names must list 3'),
])
def test_manifest_values_are_checked_naming_file_and_field(model_copy, field, value, message):
    value = float('nan') if value == '.nan' else value
    _edit_manifest(model_copy, lambda raw: raw.update({field: value}))
    with pytest.raises(ModelLoadError) as err:
        load_manifest(model_copy, verify_hashes=False)
    assert str(model_copy / 'manifest.yaml') in str(err.value)
    assert message in str(err.value)


def test_image_size_and_normalization_values_are_checked(model_copy):
    _edit_manifest(model_copy, lambda raw: raw['image'].update(height=0))
    with pytest.raises(ModelLoadError, match=r'manifest.yaml: image.height must be a positive '
                                             r'integer, got 0'):
        load_manifest(model_copy, verify_hashes=False)
    _edit_manifest(model_copy, lambda raw: (raw['image'].update(height=128),
                                            raw['normalization']['action_mean'].__setitem__(
                                                0, 'x')))
    with pytest.raises(ModelLoadError, match='action_mean must be finite numbers'):
        load_manifest(model_copy, verify_hashes=False)


def test_a_zero_control_rate_stops_the_cli_with_one_line(model_copy, capsys):
    from vla_edge.cli import main

    _edit_manifest(model_copy, lambda raw: raw.update(control_rate_hz=0))
    assert main(['demo', '--skip-ros', '--model', str(model_copy), '--eval-episodes', '1',
                 '--json', str(model_copy / 'demo.json')]) == 2
    err = capsys.readouterr().err
    assert 'control_rate_hz must be a finite number > 0, got 0' in err
    assert 'manifest.yaml' in err and 'Traceback' not in err and len(err.splitlines()) == 1
