"""GPU packing in the plan: the measured slowdown of k busy lanes changes which plan is safe.

Runs on recorded profiles (test/data/profiles/), so it needs no GPU. A profile
recorded by bench/gpu_check.sh on a CUDA machine goes into the same folder.
"""
import copy
import pathlib

import numpy as np
import pytest
import yaml

from rtmdl_ros.core.analysis import analyze
from rtmdl_ros.core.policies import plan_with
from rtmdl_ros.core.simulator import simulate
from rtmdl_ros.core.taskset import _deep_merge, taskset_from_dict

HERE = pathlib.Path(__file__).resolve().parent
PROFILES = sorted((HERE / 'data' / 'profiles').glob('*.yaml'))
CONFIG = HERE.parent / 'config' / 'f1tenth.yaml'


def tasksets(profile: dict, lanes: int, scale: float):
    """(with the measured slowdown, with packing assumed free) for F1/10 at `scale` x its periods."""
    cfg = yaml.safe_load(CONFIG.read_text())
    cfg.pop('sensors', None)
    cfg['platform'].update(gpu_lanes=lanes, storage_budget_mb=64)
    for t in cfg['tasks'].values():
        for key in ('period_ms', 'deadline_ms', 'min_interarrival_ms'):
            if key in t:
                t[key] *= scale
    free = copy.deepcopy(profile)
    free['platform']['gpu_slowdown'] = {k: 1.0 for k in range(1, lanes + 1)}
    return taskset_from_dict(_deep_merge(profile, cfg)), taskset_from_dict(_deep_merge(free, cfg))


@pytest.mark.parametrize('path', PROFILES, ids=[p.stem for p in PROFILES])
def test_measured_packing_slowdown_turns_a_plan_unsafe_and_the_optimizer_avoids_it(path):
    profile = yaml.safe_load(path.read_text())
    slowdown = profile['platform']['gpu_slowdown']
    lanes = max(slowdown, key=lambda k: (slowdown[k], k))
    assert slowdown[lanes] >= 1.3, f'{path.name}: packing costs too little here to make the point'
    for scale in np.arange(0.15, 0.45, 0.05):
        measured, free = tasksets(profile, lanes, float(scale))
        naive = plan_with(free, 'rtmdl', time_limit_s=10).plan
        if naive is None:
            continue
        under_measured = analyze(measured, naive)
        if all(b.meets_bound for b in under_measured.values()):
            continue
        # The plan chosen as if packing were free: some task's bound breaks once the
        # inferences are stretched by the measured slowdown of `lanes` busy lanes.
        assert all(b.meets_bound for b in analyze(free, naive).values())
        late = [t for t, b in under_measured.items() if not b.meets_bound]
        assert any(under_measured[t].response_bound_ms > analyze(free, naive)[t].response_bound_ms for t in late)
        # Planning with the measured slowdown finds another plan, safe under it ...
        safe = plan_with(measured, 'rtmdl', time_limit_s=10).plan
        assert safe is not None
        assert {t: a.variant for t, a in safe.items()} != {t: a.variant for t, a in naive.items()} \
            or {t: a.priority for t, a in safe.items()} != {t: a.priority for t, a in naive.items()}
        bounds = analyze(measured, safe)
        assert all(b.meets_bound for b in bounds.values())
        # ... and the simulator, which packs with the measured slowdown, agrees.
        sim = simulate(measured, safe, 30.0, seed=0).to_json()['tasks']
        for t, b in bounds.items():
            assert sim[t]['miss_rate'] <= measured.tasks[t].max_miss_rate
            assert sim[t]['max_response_ms'] <= b.worst_response_bound_ms + 1e-6
        return
    pytest.fail(f'{path.name}: no period scale in 0.15..0.4 where free packing gives an unsafe plan')
