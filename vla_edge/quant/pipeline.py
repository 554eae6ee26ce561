"""The whole quantize run: calibrate -> candidates -> measure -> allocate -> compensate -> write.

Every figure is taken on this machine in this run: stage latencies beside FP32 in one interleaved
loop, closed-loop drift against the FP32 trajectories from the same seeds and noise, and finally the
chosen mix's whole policy step (vision + backbone + all denoising steps) timed beside FP32.

Calibration comes from seeded sim episodes or from a rosbag2 (`calib` = a bag path). Closed-loop
drift needs a world that reacts to the policy, so it is measured in the sim either way: on the
calibration episodes' seeds, or with a bag on the sim seeds seed_offset .. seed_offset+episodes-1.
The open-loop action error is taken on the calibration observations (the bag's frames, if any).
"""
from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from tqdm import tqdm

from vla_edge.core.errors import VlaEdgeError
from vla_edge.core.joint_state import DEFAULT_POSITION_JOINTS, DEFAULT_VELOCITY_JOINTS
from vla_edge.core.onnx_session import SessionOptions
from vla_edge.core.runtime import PolicyRuntime
from vla_edge.quant import candidates as cand
from vla_edge.quant.allocation import Option, allocate
from vla_edge.quant.bag_calibration import DEFAULT_INSTRUCTION, DEFAULT_MAX_FRAMES, BagTopicNames
from vla_edge.quant.calibration import (
    CALIBRATION_SEED_OFFSET,
    QUANTIZED_STAGES,
    CalibrationSet,
    collect_bag,
    collect_sim,
)
from vla_edge.quant.compensation import INTERFACE, compensate, fit_affine
from vla_edge.quant.drift import compare, open_loop_error, planned_chunks, rollouts, stage_files
from vla_edge.quant.even_spread import evenly_spread
from vla_edge.quant.latency import interleaved_medians_s, open_session, stage_latency_s
from vla_edge.quant.model_folder import check_out_folder, write_model_folder
from vla_edge.quant.report import pareto_png, stage_table, write_json

log = logging.getLogger('vla_edge.quant')
UNIFORM_INT8 = cand.Recipe('qdq_int8', method='minmax')


@dataclass
class QuantizeConfig:
    """Everything one quantize run needs; the CLI maps its flags onto this."""

    model_dir: Path
    out_dir: Path
    calib: str | Path = 'sim'               # 'sim' or a rosbag2 path
    episodes: int = 10                      # drift-evaluation episodes K (= calibration's, sim)
    calib_max_frames: int = DEFAULT_MAX_FRAMES   # bag: at most this many frames, evenly spread
    calib_topics: BagTopicNames = field(default_factory=BagTopicNames)
    calib_position_joints: tuple[str, ...] = DEFAULT_POSITION_JOINTS   # bag: the state vector, as
    calib_velocity_joints: tuple[str, ...] = DEFAULT_VELOCITY_JOINTS   # vla_node's parameters
    calib_instruction: str = DEFAULT_INSTRUCTION   # bag: for frames before any instruction
    seed_offset: int = CALIBRATION_SEED_OFFSET
    latency_budget_ms: float | None = None
    drift_budget: float | None = None       # default when neither budget is given: 0.01
    methods: tuple[str, ...] = ('minmax', 'percentile')
    recipes: list[cand.Recipe] | None = None  # candidates of every stage (None: the defaults)
    stage_recipes: dict[str, tuple[cand.Recipe, ...]] = field(default_factory=dict)  # and extras
    repeats: int = 100                      # latency repeats per candidate
    max_calib_feeds: int = 256
    max_open_loop_observations: int = 64    # open-loop action error on at most this many frames
    max_success_drop: float = 0.1
    min_gain: float = 0.02
    heldout_episodes: int = 0               # also evaluate FP32 vs chosen on held-out seeds
    options: SessionOptions = field(default_factory=SessionOptions)
    progress: bool = True
    keep_candidates: bool = False           # keep OUT/_candidates (every built file)


def quantize(cfg: QuantizeConfig) -> dict:
    """Run everything; write the model folder, report JSON and PNG; return the report."""
    if cfg.latency_budget_ms is not None and cfg.drift_budget is not None:
        raise ValueError('give at most one of latency_budget_ms and drift_budget')
    # Cheap checks first: everything below takes minutes.
    if cfg.episodes < 1:
        raise ValueError(f'drift episodes must be >= 1, got {cfg.episodes}')
    if cfg.repeats < 1:
        raise ValueError(f'latency repeats must be >= 1, got {cfg.repeats}')
    out = Path(cfg.out_dir)
    check_out_folder(cfg.model_dir, out)
    work = out / '_candidates'
    rt = PolicyRuntime(cfg.model_dir, cfg.options)
    m = rt.manifest
    steps = rt.denoising_steps
    calls = {'vision_encoder': 1, 'backbone': 1, 'action_expert': steps}

    def bar(it, desc):
        return tqdm(it, desc=desc, disable=not cfg.progress)

    base = cfg.recipes or cand.default_recipes(tuple(cfg.methods))
    recipes = cand.stage_candidates(base, cfg.stage_recipes, QUANTIZED_STAGES)
    cand.check_exclusions({s: m.stages[s].path for s in QUANTIZED_STAGES}, cfg.stage_recipes)
    # 1. calibration; drift is measured on sim seeds either way (a bag cannot react)
    if str(cfg.calib) == 'sim':
        calib = collect_sim(cfg.model_dir, cfg.episodes, cfg.seed_offset, rt, cfg.progress)
        seeds = calib.seeds
    else:
        calib = collect_bag(cfg.calib, cfg.model_dir, rt, cfg.progress, cfg.calib_max_frames,
                            cfg.calib_topics, position_joints=tuple(cfg.calib_position_joints),
                            velocity_joints=tuple(cfg.calib_velocity_joints),
                            default_instruction=cfg.calib_instruction)
        seeds = list(range(cfg.seed_offset, cfg.seed_offset + cfg.episodes))
    calibration = _calibration_meta(calib, seeds)
    # 2. candidates
    built: dict[str, dict[str, Path]] = {s: {} for s in QUANTIZED_STAGES}
    rows: dict[str, list[dict]] = {s: [] for s in QUANTIZED_STAGES}
    recipe_of = {s: {r.name: r for r in recipes[s]} for s in QUANTIZED_STAGES}
    jobs = [(s, r) for s in QUANTIZED_STAGES for r in recipes[s]]
    for stage, recipe in bar(jobs, 'build candidates'):
        path = work / stage / f'{recipe.name}.onnx'
        try:
            built[stage][recipe.name] = cand.build(m.stages[stage].path, path, recipe,
                                                   calib.subsample(stage, cfg.max_calib_feeds))
        except VlaEdgeError as exc:
            rows[stage].append({'name': recipe.name, 'recipe': recipe.to_dict(),
                                'error': str(exc)})
    # 3. latency, per stage, every candidate beside FP32 in one loop
    lat: dict[str, dict[str, float]] = {}
    for stage in bar(QUANTIZED_STAGES, 'latency per stage'):
        feed = calib.feeds[stage][len(calib.feeds[stage]) // 2]
        lat[stage] = stage_latency_s(built[stage], feed, cfg.repeats, cfg.options,
                                     desc=f'latency {stage}', progress=cfg.progress)
    # 4. closed-loop drift and open-loop action error, one stage swapped at a time
    reference = rollouts(rt, seeds)
    # Evenly spread, so a 200-frame bag costs no more per candidate than the sim episodes do.
    open_loop_obs = evenly_spread(calib.observations, cfg.max_open_loop_observations)
    ref_chunks = planned_chunks(rt, open_loop_obs)
    fp32_success = float(np.mean([t.success for t in reference]))
    jobs = [(s, n) for s in QUANTIZED_STAGES for n in built[s]]
    for stage, name in bar(jobs, 'closed-loop drift'):
        if name == 'fp32':
            row = {**compare(reference, reference), 'action_error_open_loop': 0.0}
        else:
            with stage_files(rt, {stage: built[stage][name]}):
                row = compare(reference, rollouts(rt, seeds))
                row['action_error_open_loop'] = open_loop_error(
                    ref_chunks, planned_chunks(rt, open_loop_obs))
        ratio = lat[stage][name] / lat[stage]['fp32']
        rows[stage].append({'name': name, 'recipe': recipe_of[stage][name].to_dict(),
                            'latency_ms': lat[stage][name] * 1e3, 'latency_ratio': ratio,
                            **row})
    # 5. allocation
    options = {s: [Option(s, r['name'], r['latency_ms'] / 1e3, r['drift_mean'],
                          r['success_rate']) for r in rows[s] if 'error' not in r]
               for s in QUANTIZED_STAGES}
    drift_budget = cfg.drift_budget
    if cfg.latency_budget_ms is None and drift_budget is None:
        drift_budget = 0.01
    alloc = allocate(options, calls, None if cfg.latency_budget_ms is None
                     else cfg.latency_budget_ms / 1e3, drift_budget, cfg.min_gain,
                     cfg.max_success_drop)
    for stage in QUANTIZED_STAGES:
        for r in rows[stage]:
            r['note'] = alloc.excluded.get(stage, {}).get(
                r['name'], 'CHOSEN' if alloc.chosen.choice[stage] == r['name'] else '')
    chosen_files = {s: built[s][n] for s, n in alloc.chosen.choice.items()}
    uniform = {s: built[s].get(UNIFORM_INT8.name) for s in QUANTIZED_STAGES}
    # 6. compensation at the backbone -> expert interface, with and without
    measured, comp = {}, {}
    configs = {'chosen': (alloc.chosen.choice, chosen_files)}
    if all(uniform.values()):
        configs['uniform_int8'] = ({s: UNIFORM_INT8.name for s in QUANTIZED_STAGES}, uniform)
    for label, (choice, files) in bar(list(configs.items()), 'compensation'):
        measured[label] = {'choice': choice, **compare(reference, _rollouts(rt, files, seeds))}
        if choice['backbone'] == 'fp32':
            comp[label] = {'applied': False, 'why': 'backbone is FP32: nothing to compensate'}
            continue
        expert, how, corr = _compensated_expert(m, files, calib, choice['action_expert'],
                                                recipe_of['action_expert'],
                                                work / f'compensated_{label}', cfg)
        with_comp = compare(reference, _rollouts(rt, {**files, 'action_expert': expert}, seeds))
        comp[label] = {'applied': True, 'how': how, 'correction': corr.to_dict(),
                       'drift_without': measured[label]['drift_mean'],
                       'drift_with': with_comp['drift_mean'],
                       'success_without': measured[label]['success_rate'],
                       'success_with': with_comp['success_rate'],
                       'expert_file': str(expert)}
        if label == 'chosen' and with_comp['drift_mean'] < measured[label]['drift_mean']:
            chosen_files['action_expert'] = expert
            measured[label].update(with_comp)
            comp[label]['kept'] = True
    # 7. the whole policy step, chosen mix (and uniform INT8) beside FP32 in one loop
    step_ms = _policy_step_ms(rt, {'chosen': chosen_files,
                                   **({'uniform_int8': uniform} if all(uniform.values()) else {})},
                              calib, cfg)
    for label in measured:
        measured[label]['policy_step_ms'] = step_ms[label]
    speedup = step_ms['fp32'] / step_ms['chosen']
    heldout = _heldout(rt, chosen_files, cfg) if cfg.heldout_episodes else None
    # 8. output
    precision = {s: n + ('+compensated' if s == 'action_expert' and comp.get('chosen', {})
                         .get('kept') else '') for s, n in alloc.chosen.choice.items()}
    decisions = [calibration['summary'], *alloc.decisions]
    for label, c in comp.items():
        if c['applied']:
            verdict = 'reduced' if c['drift_with'] < c['drift_without'] else 'did NOT reduce'
            decisions.append(f'compensation on {label}: {verdict} drift '
                             f'({c["drift_without"]:.4f} -> {c["drift_with"]:.4f}); {c["how"]}'
                             + ('; kept in the output' if c.get('kept') else ''))
    if 'uniform_int8' in measured:
        ratio = measured['chosen']['drift_mean'] / max(measured['uniform_int8']['drift_mean'],
                                                       1e-12)
        decisions.append(f'chosen drift is {ratio:.0%} of uniform INT8 drift '
                         f'({measured["chosen"]["drift_mean"]:.4f} vs '
                         f'{measured["uniform_int8"]["drift_mean"]:.4f})')
    decisions.append(f'policy step: chosen {step_ms["chosen"]:.2f} ms vs FP32 '
                     f'{step_ms["fp32"]:.2f} ms in the same run: x{speedup:.2f} speedup')
    quant_meta = {'source_model': str(m.folder), 'calibration': calibration,
        'stages': {s: recipe_of[s][n].to_dict() for s, n in alloc.chosen.choice.items()},
        'compensation': {k: {kk: vv for kk, vv in v.items() if kk != 'expert_file'}
                         for k, v in comp.items()},
        'policy_step_speedup': speedup, 'report': 'quantization_report.json'}
    manifest = write_model_folder(m, out, chosen_files, precision, quant_meta)
    report = {
        'model': m.name, 'out_dir': str(out), 'threads': cfg.options.intra_op_threads,
        'providers': list(cfg.options.providers), 'denoising_steps': steps,
        'fp32_success_rate_calibration': fp32_success, 'calibration': calibration,
        'candidates': rows, 'chosen': alloc.chosen.choice,
        'budget': {'latency_ms': cfg.latency_budget_ms, 'drift': drift_budget},
        'estimated': {'latency_ms': alloc.chosen.latency_s * 1e3, 'drift': alloc.chosen.drift,
                      'fp32_latency_ms': alloc.fp32.latency_s * 1e3},
        'measured': measured, 'policy_step_ms': step_ms, 'policy_step_speedup': speedup,
        'compensation': comp, 'heldout': heldout, 'decisions': decisions,
        'pareto': [{'choice': p.choice, 'latency_ms': p.latency_s * 1e3, 'drift': p.drift}
                   for p in alloc.pareto],
        'manifest_name': manifest.name}
    png = pareto_png(out / 'quantization_pareto.png', alloc, measured)
    report['pareto_png'] = str(png) if png else 'not written: matplotlib is not installed'
    write_json(out / 'quantization_report.json', report)
    if not cfg.keep_candidates:
        shutil.rmtree(work, ignore_errors=True)
    report['table'] = stage_table(rows)
    return report


def _calibration_meta(calib: CalibrationSet, drift_seeds: list[int]) -> dict:
    """What the calibration was made from and where drift is measured (manifest and report)."""
    feeds = {s: calib.count(s) for s in QUANTIZED_STAGES}
    drift = {'source': 'sim', 'episodes': len(drift_seeds), 'first_seed': drift_seeds[0]}
    if calib.source == 'sim':
        return {'source': 'sim', 'episodes': len(calib.seeds), 'first_seed': calib.seeds[0],
                'feeds': feeds, 'drift': drift,
                'summary': f'calibrated on {len(calib.seeds)} sim episodes (seeds from '
                           f'{calib.seeds[0]}); drift measured on the same seeds'}
    bag = calib.bag or {}
    drift['why'] = 'closed-loop drift needs a simulator: a bag cannot react to the policy'
    keys = ('camera_topic', 'state_topic', 'instruction_topic', 'frames_in_bag', 'frames_used',
            'frames_skipped', 'frames_before_state', 'frames_undecodable', 'states_rejected',
            'default_instruction_frames', 'instructions')
    return {'source': 'bag', 'bag': bag.get('bag'), **{k: bag.get(k) for k in keys},
            'feeds': feeds, 'drift': drift,
            'summary': f'calibrated on {bag.get("frames_used")} of {bag.get("frames_in_bag")} '
                       f'frames of bag {bag.get("bag")} ({bag.get("frames_skipped")} skipped); '
                       f'drift measured in the sim on {len(drift_seeds)} episode(s), seeds '
                       f'from {drift_seeds[0]} (a bag cannot react to the policy)'}


def _rollouts(rt, files, seeds):
    with stage_files(rt, files):
        return rollouts(rt, seeds)


def _compensated_expert(m, files, calib: CalibrationSet, expert_recipe: str, recipe_of,
                        folder: Path, cfg: QuantizeConfig):
    """Fit the affine correction on backbone outputs (FP32 vs chosen) and fold it into the
    expert; if the expert itself is quantized, rebuild its recipe from the folded FP32 file."""
    feeds = calib.subsample('backbone', cfg.max_calib_feeds)
    fp = open_session(m.stages['backbone'].path, cfg.options)
    q = open_session(files['backbone'], cfg.options)
    ref = np.concatenate([fp.run(None, f)[0] for f in feeds], axis=2)
    got = np.concatenate([q.run(None, f)[0] for f in feeds], axis=2)
    corr = fit_affine(ref, got)
    folded, how = compensate(onnx.load(str(m.stages['action_expert'].path)), corr)
    folder.mkdir(parents=True, exist_ok=True)
    fp32_path = folder / 'action_expert_fp32.onnx'
    onnx.save(folded, str(fp32_path))
    if expert_recipe == 'fp32':
        return fp32_path, how, corr
    expert_feeds = [{**f, INTERFACE: ((f[INTERFACE] - corr.shift[:, :, None, None, :])
                                      / corr.scale[:, :, None, None, :]).astype(np.float32)}
                    for f in calib.subsample('action_expert', cfg.max_calib_feeds)]
    path = cand.build(fp32_path, folder / 'action_expert.onnx', recipe_of[expert_recipe],
                      expert_feeds)
    return path, how, corr


def _policy_step_ms(rt: PolicyRuntime, mixes: dict[str, dict[str, Path]], calib: CalibrationSet,
                    cfg: QuantizeConfig) -> dict[str, float]:
    """Whole policy step (vision + backbone + all denoising steps) per mix, one interleaved loop."""
    runtimes = {'fp32': rt}
    for label, files in mixes.items():
        other = PolicyRuntime(rt.manifest.folder, cfg.options)
        other.sessions.update({s: open_session(p, cfg.options) for s, p in files.items()})
        runtimes[label] = other
    obs = calib.observations[len(calib.observations) // 2]
    emb = rt.encode_instruction(obs.instruction)

    def step(r):
        r.plan_chunk(r.encode_image(obs.image), emb, obs.state, seed=0)
    medians = interleaved_medians_s({k: (lambda r=r: step(r)) for k, r in runtimes.items()},
                                    max(cfg.repeats, 5), desc='policy step',
                                    progress=cfg.progress)
    return {k: v * 1e3 for k, v in medians.items()}


def _heldout(rt: PolicyRuntime, files: dict[str, Path], cfg: QuantizeConfig) -> dict:
    from vla_edge.sim.closed_loop import EvalConfig, RuntimePolicy, evaluate

    ecfg = EvalConfig(mode='sync', episodes=cfg.heldout_episodes, latency_s=0.02)
    fp32 = evaluate(RuntimePolicy(rt), ecfg, progress=cfg.progress).success_rate
    with stage_files(rt, files):
        q = evaluate(RuntimePolicy(rt), ecfg, progress=cfg.progress).success_rate
    return {'episodes': cfg.heldout_episodes, 'seed_offset': ecfg.seed_offset,
            'fp32_success_rate': fp32, 'chosen_success_rate': q}
