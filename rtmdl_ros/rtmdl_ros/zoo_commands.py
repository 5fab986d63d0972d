"""`rtmdl train | export | profile | evaluate`: the model-zoo commands (torch imported lazily)."""
from __future__ import annotations

import functools
import os

from .backends import DEVICES


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
        except KeyError as e:                  # an unknown zoo family: its message, without quotes
            raise CommandError(str(e.args[0]) if e.args else 'unknown name') from None
    return wrapper


@one_line_errors
def cmd_train(args) -> int:
    """A zoo family (by name, or all), or a family for the user's labelled folder."""
    import torch
    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    if os.path.isdir(args.what) or os.sep in args.what:
        return _train_folder(args)
    from .models import zoo
    from .models.families import family
    tasks = zoo.tasks() if args.what == 'all' else [args.what]
    for task in tasks:
        fam = family(task)                     # an unknown name: one line listing the zoo
        if args.out or args.input or args.widths or args.depths or args.roi:
            raise ValueError('--out, --input, --widths, --depths and --roi are for a labelled folder, not the zoo')
        epochs = args.epochs or fam.epochs
        from .models.train import train
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


def _train_folder(args) -> int:
    from .accuracy import measure
    from .backends import create
    from .models.jobs import limit_library_threads
    from .models.user_train import train_family
    if not args.out:
        raise ValueError('rtmdl train FOLDER needs --out FAMILY_FOLDER (where family.yaml and the ONNX files go)')
    if args.roi and not (0 <= args.roi[0] < args.roi[2] <= 1 and 0 <= args.roi[1] < args.roi[3] <= 1):
        raise ValueError(f'--roi: need 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1, got {args.roi}')
    if args.data_root or args.data_size or args.zoo:
        raise ValueError('--data-root, --data-size and --zoo are for the zoo\'s families, not a labelled folder')
    command = ' '.join(['rtmdl train', args.what, '--out', args.out, '--seed', str(args.seed)]
                       + (['--epochs', str(args.epochs)] if args.epochs else [])
                       + (['--input', *map(str, args.input)] if args.input else [])
                       + (['--widths', *map(str, args.widths)] if args.widths else [])
                       + (['--depths', *map(str, args.depths)] if args.depths else [])
                       + (['--roi', *map(str, args.roi)] if args.roi else []))
    backend = create('onnxruntime', 'cpu')

    def measure_here(fam, samples):
        limit_library_threads()                # measured as the executor runs them
        return measure(fam, samples, backend)
    spec = train_family(args.what, args.out, measure_here, name=args.name, epochs=args.epochs,
                        input_size=tuple(args.input) if args.input else None, widths=args.widths, depths=args.depths,
                        seed=args.seed, progress=not args.quiet, command=command, roi=args.roi)
    acc = [v['accuracy'] for v in spec['variants'].values()]
    st = spec['trained']['storage']
    print(f'{args.out}: {spec["trained"]["kind"]} family of {len(acc)} variants, {len(spec["labels"])} labels, '
          f'{spec["accuracy_measured"]["metric"]} {min(acc):.3f}..{max(acc):.3f} on '
          f'{spec["accuracy_measured"]["images"]} held-out images, {spec["trained"]["train_s"]:.0f} s; storage: '
          f'shared {st["shared_checkpoint_bytes"] / 2**20:.2f} MB vs separate variants '
          f'{st["separate_onnx_bytes"] / 2**20:.2f} MB', flush=True)
    print(f'use it with  model: {os.path.abspath(args.out)}  (a task set path, or relative to the task set)')
    return 0


@one_line_errors
def cmd_example_data(args) -> int:
    from .data.rear_scenes import write_example_data
    if not 10 <= args.scenes <= 100000:
        raise ValueError(f'--scenes must be in 10..100000, got {args.scenes}')
    paths = write_example_data(args.out, args.scenes, seed=args.seed)
    print(f'wrote {args.scenes} rear-camera scenes: classification folder {paths["markings"]}, YOLO set '
          f'{paths["obstacles"]}, camera replay {paths["stream"]}')
    return 0


@one_line_errors
def cmd_export(args) -> int:
    from tqdm import tqdm

    from .models import export, zoo
    if args.task != 'all':
        from .models.families import family
        family(args.task)                      # an unknown name: one line listing the zoo
    tasks = zoo.tasks() if args.task == 'all' else [args.task]
    print(f'{"task":<14}{"variant":<10}{"metric":>8}{"params":>9}{"onnx KiB":>10}{"max |diff|":>12}')
    for task in tasks:
        with tqdm(total=12, desc=f'export {task}', leave=False, disable=True if args.quiet else None) as bar:
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

    from .profiling import profile, profile_steps
    # disable=None: bars on a terminal only; a log (make demo > log) gets no line per update
    with tqdm(total=profile_steps(args.config, args.zoo), desc='profile', disable=True if args.quiet else None) as bar:
        out, prof = profile(args.config, args.out, args.backend, args.device, args.samples, args.warmup,
                            args.zoo, args.lanes, progress=lambda t, v: bar.set_postfix_str(f'{t}/{v}') or bar.update(1),
                            packing=args.packing)
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
    if not 0 <= args.plan_rounds <= 10:
        raise ValueError(f'--plan-rounds must be in 0..10, got {args.plan_rounds}')
    total = len(args.loads) * len(args.cameras) * len(args.policies)
    with tqdm(total=total, desc='evaluate', disable=True if args.quiet else None) as bar:
        def step(load, cameras, policy, run):
            bar.set_postfix_str(f'{level_label(load, cameras)} {policy}: DMR {run["dmr"]:.3f}')
            bar.update(1)
        if args.graph:
            from .graph_evaluation import evaluate_graph
            results = evaluate_graph(args.config, args.out, args.loads, args.cameras, args.policies, args.duration_s,
                                     args.calibrate_s, args.profile_samples, args.backend, args.device, args.zoo,
                                     args.time_limit_s, progress=step, plan_rounds=args.plan_rounds)
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
    p.add_argument('--device', choices=DEVICES, default='cpu')
    p.add_argument('--zoo', help='zoo folder (default: the shipped zoo)')
    p.add_argument('--quiet', action='store_true', help='no progress bar')


def add_parsers(sub) -> None:
    t = sub.add_parser('train', help='train a weight-shared family: a zoo family, or one for your labelled folder')
    t.add_argument('what', metavar='FAMILY_OR_FOLDER',
                   help='a zoo family (or all), or a folder: one subfolder per class, or a YOLO set '
                        '(images/, labels/, classes.txt)')
    t.add_argument('--out', help='folder: where a labelled folder\'s family goes (family.yaml + ONNX variants)')
    t.add_argument('--name', help='weight group of the family (default: the --out folder\'s name)')
    t.add_argument('--input', type=int, nargs=2, metavar=('W', 'H'),
                   help='network input size (default 32 32 for classifiers, 128 96 for detectors)')
    t.add_argument('--widths', type=float, nargs='+', help='width multipliers (default 0.25 0.5 0.75 1)')
    t.add_argument('--depths', type=int, nargs='+', help='blocks per stage (default 1 2 3)')
    t.add_argument('--roi', type=float, nargs=4, metavar=('X0', 'Y0', 'X1', 'Y1'),
                   help='the images are this crop of the camera frame (fractions); the family crops it at run time')
    t.add_argument('--epochs', type=int, help='default: the shipped zoo\'s epochs per family, 12 / 20 for a folder')
    t.add_argument('--seed', type=int, default=0)
    t.add_argument('--data-size', type=int, help='zoo: training examples (default: the full synthetic split)')
    t.add_argument('--zoo', help='zoo folder (default: the package\'s shipped zoo)')
    t.add_argument('--threads', type=int, help='torch CPU threads (default: all cores)')
    t.add_argument('--quiet', action='store_true', help='no progress bar')
    t.add_argument('--data-root', help='zoo: train on a real data set: GTSRB (sign) or UrbanSound8K (audio) folder')
    t.set_defaults(func=cmd_train)

    x = sub.add_parser('example-data', help='write the two-camera example\'s rear-camera data: a classification '
                                            'folder, a YOLO set and frames to replay')
    x.add_argument('--out', required=True, help='folder to write markings/, obstacles/ and stream/ into')
    x.add_argument('--scenes', type=int, default=900, help='labelled scenes (default: %(default)s)')
    x.add_argument('--seed', type=int, default=0)
    x.set_defaults(func=cmd_example_data)

    e = sub.add_parser('export', help='export every variant to ONNX and check it against torch')
    e.add_argument('task', nargs='?', default='all', help='a zoo family, or all (default)')
    e.add_argument('--zoo', help='zoo folder (default: the shipped zoo)')
    e.add_argument('--out', help='ONNX root folder (default: the rtmdl_ros cache)')
    e.add_argument('--quiet', action='store_true')
    e.set_defaults(func=cmd_export)

    p = sub.add_parser('profile', help='measure every variant here; write a task set for rtmdl optimize')
    p.add_argument('--config', default=_default_config(), help='periods, deadlines and bounds (default: %(default)s)')
    p.add_argument('--out', default=_default_out(), help='task set to write (default: %(default)s)')
    p.add_argument('--samples', type=int, default=200, help='timed jobs per variant')
    p.add_argument('--warmup', type=int, default=20)
    p.add_argument('--lanes', type=int, default=4, choices=range(1, 9), metavar='1..8',
                   help='packing is measured with 1..LANES lanes busy (default: %(default)s)')
    p.add_argument('--packing', choices=('each', 'probe'),
                   help='each: every variant against the heaviest on the other lanes (default on a GPU); '
                        'probe: one mid-size variant packed with itself (default on the CPU)')
    _add_machine_args(p)
    p.set_defaults(func=cmd_profile)

    v = sub.add_parser('evaluate', help='compare rtmdl with the baselines on the real runtime, here')
    v.add_argument('--config', default=_default_config(), help='task requirements (default: %(default)s)')
    v.add_argument('--out', default='results/evaluation', help='results folder (default: %(default)s)')
    v.add_argument('--loads', type=float, nargs='+', default=[0.0, 0.5, 1.0],
                   help='background CPU load levels, in cores (default: 0 0.5 1)')
    v.add_argument('--cameras', type=int, nargs='+', default=[0],
                   help='extra 30 fps cameras, each a copy of the most urgent zoo-detector task, per level (default: 0); '
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
    v.add_argument('--plan-rounds', type=int, default=3,
                   help='with --graph: rounds of calibration under the plan per level, as rtmdl calibrate (0..10)')
    _add_machine_args(v)
    v.set_defaults(func=cmd_evaluate)
