"""`rtmdl train | export | profile | evaluate`: the model-zoo commands (torch imported lazily)."""
from __future__ import annotations

import functools
import os


class CommandError(Exception):
    """Bad input to a model command: printed as one line by the CLI (exit 2)."""


def one_line_errors(func):
    """Turn the model stack's input errors into CommandError (the CLI prints one line)."""
    @functools.wraps(func)
    def wrapper(args):
        from .backends import BackendError
        from .core.taskset import TasksetError
        from .data import DatasetError
        from .models.families import InputError
        from .models.zoo import ZooError
        try:
            return func(args)
        except (ZooError, DatasetError, BackendError, InputError, TasksetError, ValueError) as e:
            raise CommandError(str(e)) from None
    return wrapper


@one_line_errors
def cmd_train(args) -> int:
    import torch

    from .models import zoo
    from .models.train import DEFAULT_EPOCHS, train
    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    tasks = zoo.tasks() if args.task == 'all' else [args.task]
    for task in tasks:
        epochs = args.epochs or DEFAULT_EPOCHS[task]
        net, info = train(task, epochs, seed=args.seed, data_size=args.data_size, progress=not args.quiet,
                          data_root=args.data_root)
        command = f'rtmdl train {task} --epochs {epochs} --seed {args.seed}' + (
            f' --data-size {args.data_size}' if args.data_size else '') + (
            f' --data-root {args.data_root}' if args.data_root else '')
        meta = {**info, 'epochs': epochs, 'seed': args.seed, 'command': command,
                'torch': str(torch.__version__), 'data_size': args.data_size}
        path = zoo.save(net, task, meta, args.zoo)
        best = max(info['test_metric'].values())
        worst = min(info['test_metric'].values())
        print(f'{task}: {info["metric"]} {worst:.3f}..{best:.3f} over {len(info["test_metric"])} variants, '
              f'{info["train_s"]:.0f} s -> {path}', flush=True)
    return 0


# The zoo's tasks, named here so that the CLI starts without importing the
# model stack (scipy alone takes a second); test_zoo checks it against FAMILIES.
TASKS = ('sign', 'traffic_light', 'audio')


@one_line_errors
def cmd_export(args) -> int:
    from tqdm import tqdm

    from .models import export, zoo
    tasks = zoo.tasks() if args.task == 'all' else [args.task]
    print(f'{"task":<14}{"variant":<10}{"metric":>8}{"params":>9}{"onnx KiB":>10}{"max |diff|":>12}')
    for task in tasks:
        with tqdm(total=12, desc=f'export {task}', leave=False, disable=args.quiet) as bar:
            manifest = export.export_task(task, args.zoo, args.out, check=True, progress=lambda *_: bar.update(1))
        for v, e in manifest['variants'].items():
            metric = f'{e["test_metric"]:.3f}' if e['test_metric'] is not None else '-'
            print(f'{task:<14}{v:<10}{metric:>8}{e["parameters"]:>9}{e["bytes"] / 1024:>10.1f}{e["max_abs_diff"]:>12.2e}')
        rep = export.storage_report(manifest)
        print(f'{task}: pool as one shared checkpoint {rep["shared_checkpoint_mb"]:.3f} MB, as separate variant '
              f'files {rep["separate_files_mb"]:.3f} MB ({export.onnx_dir(task, args.zoo, args.out)})')
    return 0


@one_line_errors
def cmd_profile(args) -> int:
    from tqdm import tqdm

    from .profiling import profile
    with tqdm(total=36, desc='profile', disable=args.quiet) as bar:
        out, prof = profile(args.config, args.out, args.backend, args.device, args.samples, args.warmup,
                            args.zoo, progress=lambda t, v: bar.set_postfix_str(f'{t}/{v}') or bar.update(1))
    print(f'wrote {prof}\nwrote {out}  (next: rtmdl optimize {out} --out plan.yaml)')
    return 0


@one_line_errors
def cmd_evaluate(args) -> int:
    from tqdm import tqdm

    from .evaluation import evaluate
    from .report import comparisons, level_label
    if not (args.duration_s > 0):
        raise ValueError(f'--duration-s must be positive, got {args.duration_s}')
    if any(not 0 <= load <= 64 for load in args.loads):
        raise ValueError(f'--loads are background cores in 0..64, got {args.loads}')
    if any(not 0 <= n <= 32 for n in args.cameras):
        raise ValueError(f'--cameras are extra camera streams in 0..32, got {args.cameras}')
    total = len(args.loads) * len(args.cameras) * len(args.policies)
    with tqdm(total=total, desc='evaluate', disable=args.quiet) as bar:
        def step(load, cameras, policy, run):
            bar.set_postfix_str(f'{level_label(load, cameras)} {policy}: DMR {run["dmr"]:.3f}')
            bar.update(1)
        if args.graph:
            from .graph_evaluation import evaluate_graph
            results = evaluate_graph(args.config, args.out, args.loads, args.cameras, args.policies, args.duration_s,
                                     args.calibrate_s, args.profile_samples, args.backend, args.device, args.zoo,
                                     args.time_limit_s, progress=step)
        else:
            results = evaluate(args.config, args.out, args.loads, args.policies, args.duration_s,
                               args.profile_samples, args.backend, args.device, args.zoo, args.time_limit_s,
                               args.seed, progress=step, cameras=args.cameras)
    if results['platform_note']:
        print(f'platform: {results["platform_note"]}')
    for r in results['runs']:
        print(f'{level_label(r["load"], r["cameras"])} {r["policy"]:<7} DMR {r["dmr"]:.3f}  '
              f'mean accuracy {100 * r["mean_accuracy"]:.1f}%' + (f'  ({r["note"]})' if r['note'] else ''))
    for c in comparisons(results):
        red = f'{100 * c["dmr_reduction"]:.1f}%' if c['dmr_reduction'] is not None else 'n/a'
        print(f'{c["level"]}: rtmdl vs {c["baseline"]}: DMR reduction {red}, '
              f'accuracy loss {c["accuracy_loss_points"]:+.2f} points')
    print(f'wrote {args.out}/table.md, results.json' + ('' if args.graph else ' and plots'))
    return 0


def _default_config() -> str:
    from .nodes.resources import default_taskset_file
    return default_taskset_file()


def _default_out() -> str:
    import os
    ros_home = os.environ.get('ROS_HOME') or os.path.join(os.path.expanduser('~'), '.ros')
    return os.path.join(ros_home, 'rtmdl_ros', 'f1tenth_taskset.yaml')


def _add_machine_args(p) -> None:
    """Where the models run and which zoo they come from (profile, evaluate)."""
    p.add_argument('--backend', choices=('onnxruntime', 'torch'), default='onnxruntime')
    p.add_argument('--device', choices=('cpu', 'cuda'), default='cpu')
    p.add_argument('--zoo', help='zoo folder (default: the shipped zoo)')
    p.add_argument('--quiet', action='store_true', help='no progress bar')


def add_parsers(sub) -> None:
    t = sub.add_parser('train', help='train a task\'s supernet (all variants) into the zoo')
    t.add_argument('task', choices=[*TASKS, 'all'])
    t.add_argument('--epochs', type=int, help='default: the shipped zoo\'s epochs per task')
    t.add_argument('--seed', type=int, default=0)
    t.add_argument('--data-size', type=int, help='training examples (default: the full synthetic split)')
    t.add_argument('--zoo', help='zoo folder (default: the package\'s shipped zoo)')
    t.add_argument('--threads', type=int, help='torch CPU threads (default: all cores)')
    t.add_argument('--quiet', action='store_true', help='no progress bar')
    t.add_argument('--data-root', help='train on a real data set: GTSRB (sign) or UrbanSound8K (audio) folder')
    t.set_defaults(func=cmd_train)

    e = sub.add_parser('export', help='export every variant to ONNX and check it against torch')
    e.add_argument('task', nargs='?', default='all', choices=[*TASKS, 'all'])
    e.add_argument('--zoo', help='zoo folder (default: the shipped zoo)')
    e.add_argument('--out', help='ONNX root folder (default: the rtmdl_ros cache)')
    e.add_argument('--quiet', action='store_true')
    e.set_defaults(func=cmd_export)

    p = sub.add_parser('profile', help='measure every variant here; write a task set for rtmdl optimize')
    p.add_argument('--config', default=_default_config(), help='periods, deadlines and bounds (default: %(default)s)')
    p.add_argument('--out', default=_default_out(), help='task set to write (default: %(default)s)')
    p.add_argument('--samples', type=int, default=200, help='timed jobs per variant')
    p.add_argument('--warmup', type=int, default=20)
    _add_machine_args(p)
    p.set_defaults(func=cmd_profile)

    v = sub.add_parser('evaluate', help='compare rtmdl with the baselines on the real runtime, here')
    v.add_argument('--config', default=_default_config(), help='task requirements (default: %(default)s)')
    v.add_argument('--out', default='results/evaluation', help='results folder (default: %(default)s)')
    v.add_argument('--loads', type=float, nargs='+', default=[0.0, 0.5, 1.0],
                   help='background CPU load levels, in cores (default: 0 0.5 1)')
    v.add_argument('--cameras', type=int, nargs='+', default=[0],
                   help='extra 30 fps cameras running the traffic-light detector, per level (default: 0); '
                        'every --loads x --cameras pair is a level')
    v.add_argument('--policies', nargs='+', choices=('rtmdl', 'dm-nmc', 'dm-mc', 'um-nmc'),
                   default=['rtmdl', 'dm-nmc', 'dm-mc', 'um-nmc'])
    v.add_argument('--duration-s', type=float, default=60.0, help='run time per policy and level')
    v.add_argument('--profile-samples', type=int, default=40, help='profiling samples per variant and load')
    v.add_argument('--time-limit-s', type=float, default=20.0, help='rtmdl optimizer time limit')
    v.add_argument('--seed', type=int, default=0)
    v.add_argument('--graph', action='store_true',
                   help='run every level and policy through the ROS graph (one process per node, responses from '
                        'the sensor stamp), calibrated per level, instead of the core runtime')
    v.add_argument('--calibrate-s', type=float, default=15.0, help='with --graph: calibration run per level')
    _add_machine_args(v)
    v.set_defaults(func=cmd_evaluate)
