"""Check parameter files and overrides against the nodes' declared parameters before any node
starts.

Why: rcl merges the `--params-file` layers itself, and a later file's value of the wrong type is
dropped without a word (the earlier value stays); a misspelt key or node name is ignored the same
way. The robot would then run on a value nobody chose. Reading the files here lets bringup refuse
them, naming the file, the node and the key.
"""
from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from vla_edge.nodes.params import BUILTIN_PARAMETERS, ParameterError, Spec

BUILTIN_SPECS = {name: Spec(name, default, 'Declared by rclpy on every node.')
                 for name, default in BUILTIN_PARAMETERS.items()}


def flatten(section: Mapping[str, Any], prefix: str = '') -> dict[str, Any]:
    """{'merge': {'strategy': 'blend'}} -> {'merge.strategy': 'blend'}, as rcl names them."""
    out: dict[str, Any] = {}
    for key, value in section.items():
        name = f'{prefix}{key}'
        if isinstance(value, Mapping):
            out.update(flatten(value, f'{name}.'))
        else:
            out[name] = value
    return out


def yaml_loader():
    """A safe YAML loader that reads numbers as rcl does: YAML 1.2 floats, so `1e-3` is a
    number (PyYAML's YAML 1.1 rules read it as a string)."""
    import re

    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_implicit_resolver(
        'tag:yaml.org,2002:float',
        re.compile(r'^[-+]?(?:[0-9][0-9_]*\.?[0-9_]*|\.[0-9_]+)[eE][-+]?[0-9]+$'),
        list('-+0123456789.'))
    return Loader


def _sections(data: Mapping[str, Any], path: Path, prefix: str = ''
              ) -> dict[str, dict[str, Any]]:
    """{node path: flat parameters}. A key without `ros__parameters` under it is a namespace
    level (rcl allows `ns: {node: {ros__parameters: ...}}`)."""
    shape = 'expected NODE_NAME: {ros__parameters: {PARAM: VALUE, ...}}'
    out = {}
    for key, section in data.items():
        node_path = f'{prefix}/{key}' if prefix else str(key)
        if not isinstance(section, Mapping):
            raise ParameterError(f'{path}: section {node_path!r} has no ros__parameters '
                                 f'mapping ({shape})')
        if 'ros__parameters' in section:
            params = section['ros__parameters']
            if params is not None and not isinstance(params, Mapping):
                raise ParameterError(f'{path}: {node_path}.ros__parameters must be a mapping '
                                     f'({shape})')
            out[node_path] = flatten(params or {})
        else:
            if not section or not all(isinstance(v, Mapping) for v in section.values()):
                raise ParameterError(f'{path}: section {node_path!r} has no ros__parameters '
                                     f'mapping ({shape})')
            out.update(_sections(section, path, node_path))
    return out


def read_param_file(path: Path) -> dict[str, dict[str, Any]]:
    """{node key as written: {dotted parameter name: value}}; ParameterError naming the file if it
    is not a ROS 2 parameters file. An empty (or all-comment) file sets nothing."""
    import yaml

    try:
        data = yaml.load(Path(path).read_text(), Loader=yaml_loader())
    except OSError as exc:
        raise ParameterError(f'{path}: cannot read the parameter file ({exc})') from exc
    except yaml.YAMLError as exc:
        raise ParameterError(f'{path}: not valid YAML ({exc})') from exc
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ParameterError(f'{path}: not a ROS 2 parameters file (expected NODE_NAME: '
                             '{ros__parameters: {PARAM: VALUE, ...}})')
    return _sections(data, path)


def _nodes_for_key(node_key: str, node_names: Iterable[str]) -> list[str]:
    """Which of our nodes a params-file key addresses: 'chunk_executor', '/ns/chunk_executor',
    '/**' (every node), '/**/chunk_*' (a pattern over the node name)."""
    name = node_key.rstrip('/').rsplit('/', 1)[-1]
    if name in ('*', '**'):
        return list(node_names)
    return [n for n in node_names if fnmatch.fnmatchcase(n, name)]


def key_reaches(node_key: str, node: str, namespace: str = '/') -> bool:
    """Whether rcl applies a params-file section to the node `namespace`/`node`: the key is a
    full node name (a bare name is taken from the root, `/name`), where `*` stands for one name
    and `**` for any number of them, as rcl matches them."""
    tokens = [t for t in node_key.strip('/').split('/') if t]
    pattern = ''
    for token in tokens:
        if token == '**':
            pattern += '(?:/[^/]+)*'
        else:
            pattern += '/' + ''.join('[^/]*' if c == '*' else re.escape(c) for c in token)
    ns = namespace.strip('/')
    return re.fullmatch(pattern, f'/{ns}/{node}' if ns else f'/{node}') is not None


def _type_problem(spec: Spec, value: Any) -> str | None:
    """Why `value` cannot be `spec`'s type (rcl would drop it or rclpy refuse it), or None."""
    def kind(v: Any) -> str:
        if isinstance(v, bool):
            return 'bool'
        if isinstance(v, int):
            return 'int'
        return {float: 'float', str: 'string'}.get(type(v), type(v).__name__)

    def fits(want: str, v: Any) -> bool:
        return kind(v) == want or (want == 'float' and kind(v) == 'int')

    default = spec.default
    if isinstance(default, list):
        item = kind(default[0]) if default else None
        if not isinstance(value, list):
            return f'expected a list{f" of {item}" if item else ""}, got {kind(value)} {value!r}'
        if not value:
            return 'ROS 2 parameters cannot carry an empty list; give at least one element'
        bad = [v for v in value if item is not None and not fits(item, v)]
        return f'expected a list of {item}, got {value!r}' if bad else None
    want = kind(default)
    return None if fits(want, value) else f'expected {want}, got {kind(value)} {value!r}'


def _check_one(where: str, node: str, name: str, value: Any,
               specs: Mapping[str, Spec]) -> str | None:
    spec = specs.get(name) or BUILTIN_SPECS.get(name)
    if spec is None:
        close = difflib.get_close_matches(name, list(specs), n=1)
        hint = f' (did you mean {close[0]!r}?)' if close else ''
        return f'{where}: {node}.{name}: unknown parameter{hint}'
    problem = _type_problem(spec, value)
    if problem is None:
        try:
            spec.check(value)
        except ParameterError as exc:
            problem = str(exc)
    return None if problem is None else f'{where}: {node}.{name}: {problem}'


def check_parameters(files: Iterable[Path], overrides: Mapping[str, Mapping[str, Any]],
                     specs_by_node: Mapping[str, Iterable[Spec]],
                     namespace: str = '/') -> list[str]:
    """Every key and value for our nodes in `files` and `overrides` ({node: {param: value}})
    must be one the node declares, of the declared type and in range. Raises ParameterError
    listing every problem, one per line.

    Returns warnings: sections for nodes this pipeline does not run and `/**` keys none of ours
    declares are what a robot-wide file shares with other nodes (a driver), so they are only
    noted; a section whose name is close to one of ours is taken for a typo and refused. A
    section for our nodes in another namespace than `namespace` (the one they run in) is checked
    all the same, and noted: rcl will not apply it there."""
    specs = {node: {s.name: s for s in node_specs} for node, node_specs in specs_by_node.items()}
    problems: list[str] = []
    notes: list[str] = []

    def other_node(where: str, key: str) -> None:
        close = difflib.get_close_matches(key.rsplit('/', 1)[-1], list(specs), n=1, cutoff=0.7)
        if close:
            problems.append(f'{where}: {key!r} is not a node of this pipeline (did you mean '
                            f'{close[0]!r}?); nodes: {", ".join(specs)}')
        else:
            notes.append(f'{where}: section {key!r} is for a node this pipeline does not run; '
                         'skipped')

    layers = [(str(f), read_param_file(f)) for f in files]
    layers.append(('-p override', {node: dict(params) for node, params in overrides.items()}))
    for where, sections in layers:
        for key, params in sections.items():
            nodes = _nodes_for_key(key, specs)
            if not nodes:
                if where == '-p override':   # typed on this command line: never another node's
                    problems.append(f'{where}: {key!r} is not a node of this pipeline; nodes: '
                                    f'{", ".join(specs)}')
                else:
                    other_node(where, key)
                continue
            if where != '-p override' and not any(key_reaches(key, n, namespace) for n in nodes):
                notes.append(f'{where}: section {key!r} does not reach nodes in namespace '
                             f'{namespace!r}: checked, but not applied')
            wildcard = len(nodes) > 1
            for name, value in params.items():
                found = [_check_one(where, n, name, value, specs[n]) for n in nodes]
                # A wildcard section may set a parameter only some nodes have: it must fit those.
                relevant = [p for p, n in zip(found, nodes)
                            if not (wildcard and name not in specs[n]
                                    and name not in BUILTIN_PARAMETERS)]
                if not wildcard:
                    problems.extend(p for p in found if p)
                elif not relevant:
                    notes.append(f'{where}: {key}.{name}: none of this pipeline\'s nodes has '
                                 'this parameter; skipped')
                else:
                    problems.extend(p for p in relevant if p)
    if problems:
        raise ParameterError('bad parameters:\n  ' + '\n  '.join(dict.fromkeys(problems)))
    return list(dict.fromkeys(notes))


def merged_parameters(files: Iterable[Path], overrides: Mapping[str, Mapping[str, Any]],
                      specs_by_node: Mapping[str, Iterable[Spec]],
                      namespace: str = '/') -> dict[str, dict[str, Any]]:
    """What each node will start with: its declared defaults, then each file in order, then the
    overrides, later layers winning (as rcl layers --params-file and -p). For checks that span
    nodes, before any node starts; call `check_parameters` first."""
    values = {node: {s.name: s.default for s in node_specs}
              for node, node_specs in specs_by_node.items()}
    for f in files:
        for key, params in read_param_file(f).items():
            for node in _nodes_for_key(key, values):
                if key_reaches(key, node, namespace):
                    values[node].update({k: v for k, v in params.items() if k in values[node]})
    for node, params in overrides.items():   # -p: always for the node named
        if node in values:
            values[node].update({k: v for k, v in params.items() if k in values[node]})
    return values

