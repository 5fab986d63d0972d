"""Junk floods against the running graph: does the most urgent task keep its bound?

    python bench/bench_reliability.py [--taskset TS --plan PLAN] [--phase-s 60] [--flood-s 60]
                                      [--kinds all|malformed|heavy|wrong-clock|second-publisher|replay]
    python bench/bench_reliability.py --load-cores 1.0 [--shed] ...      # competing load instead of a flood

Starts `rtmdl bringup` (one process per node, as launched) on its own DDS
domain, then runs three phases: before, a flood, after. The flood is another
process publishing 10x each task's rate on every input topic (the sensor
topics and the job topics) of malformed and out-of-envelope messages: wrong
encodings, short data, 0x0, declared sizes that do not match, 4096x4096
frames, NaN sound, sound at 191,999 Hz, 30 s of sound in one message.
--kinds malformed floods only the cheap-to-send malformed kinds (a junk flood
at the full 10x rate); --kinds heavy only the costly-but-valid ones (4096x4096
frames, 30 s of sound), which cost DDS its transport before any check of ours.
Well-formed but wrong input (use --factor 4 for "4x the camera's rate"):
--kinds wrong-clock sends valid frames, chunks and jobs stamped 0, 10 s ahead
and an hour old, in turn; second-publisher the same with current stamps (a
second driver on the topic); replay the same stamped as a bag recorded ten
minutes ago would be (a bag replayed beside the live camera). These come from
a publisher other than the camera's, so each refusal has two possible reasons;
the table counts each under the first check that refused it (core/input_guard.py).
Printed: messages sent per kind, inputs refused per task (TaskStatus.malformed,
and per reason TaskStatus.refused_counts),
each task's deadline-miss rate per phase (from the executor's counters), and the
RSS of the executor and of the task nodes before the flood, at its end and
after the last phase. --flood-s 600 is the 10-minute flood of issue 15.
CPU used by other processes is printed per phase (the machine may be shared).
--load-cores C runs C cores of other CPU work (evaluation.BackgroundLoad: numpy in
separate processes, like a localisation or planning node) in the middle phase
instead of the flood; --shed turns on the executor's degraded mode
(shed_on_overload) by adding it to a copy of the plan file.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import threading
import time

import rclpy
import rclpy.executors
from rclpy.node import Node
from process_group import interrupt, pids_matching, rss_mb
from rtmdl_ros.bringup import CpuMeter
from rtmdl_interfaces.msg import SchedulerStatus

RTMDL = [sys.executable, '-c', 'import sys; from rtmdl_ros.cli import main; sys.exit(main())']
WELL_FORMED = ('wrong-clock', 'second-publisher', 'replay')     # valid messages; job topics get valid jobs

FLOODER = textwrap.dedent('''
    import collections, heapq, json, sys, time
    import numpy as np, rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image
    from rtmdl_interfaces.msg import AudioChunk
    from rtmdl_ros.nodes.topics import JOB_QOS
    from rtmdl_interfaces.msg import ImageJob, SoundJob
    spec, seconds, only = json.loads(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
    rclpy.init()
    node = rclpy.create_node('junk_flooder')
    t_start = time.time_ns()
    OFFSET_NS = {'zero stamp': None, 'future stamp': 10 * 10**9, 'old stamp': -3600 * 10**9, 'second publisher': 0,
                 'replay': -600 * 10**9}
    def stamp(m, name=''):
        ns = time.time_ns() + OFFSET_NS.get(name, 0) if OFFSET_NS.get(name, 0) is not None else 0
        m.header.stamp.sec, m.header.stamp.nanosec = ns // 10**9, ns % 10**9; return m
    def image(h, w, enc='bgr8', data=None, step=None):
        m = Image(height=h, width=w, encoding=enc, step=w * 3 if step is None else step)
        m.data = bytes(h * w * 3) if data is None else data
        return m
    def chunk(rate, x):
        m = AudioChunk(sample_rate=rate, channels=1); m.samples = x.astype(np.float32).tolist(); return m
    kinds = {'image': {'yuv422': image(480, 640, 'yuv422'), 'short data': image(480, 640, data=bytes(1000)),
                       '0x0': image(0, 0, data=b''), 'step mismatch': image(480, 640, step=7),
                       '4096x4096': image(4096, 4096)},
             'sound': {'NaN': chunk(16000, np.full(1600, np.nan)), '191999 Hz': chunk(191999, np.zeros(24000)),
                       '30 s': chunk(16000, np.zeros(16000 * 30))}}
    HEAVY, HEAVY_HZ = {'4096x4096', '30 s'}, 15.0        # valid-looking but costly: at a camera's rate
    for kind in kinds.values():
        for name in [k for k in kind if (k in HEAVY) != (only == 'heavy') and only != 'all']:
            del kind[name]
    WRONG = {'wrong-clock': ('zero stamp', 'future stamp', 'old stamp'), 'second-publisher': ('second publisher',),
             'replay': ('replay',)}
    if only in WRONG:                                 # well-formed input: valid frames, chunks and jobs
        def image_job(w, h):
            return ImageJob(width=w, height=h, data=bytes(w * h * 3), source_width=640, source_height=480,
                            scale_x=640 / w, scale_y=480 / h)
        def sound_job(rate, n):
            m = SoundJob(sample_rate=rate); m.samples = np.zeros(n, np.float32).tolist(); return m
        valid = {'image': lambda s: image(480, 640), 'sound': lambda s: chunk(16000, np.zeros(2000)),
                 'image_job': lambda s: image_job(*s['picture']), 'sound_job': lambda s: sound_job(16000, 32000)}
        kinds = {}
        for s in spec:
            kinds[s['topic']] = {name: valid[s['type']](s) for name in WRONG[only]}
    pubs = []
    for k, s in enumerate(spec):
        qos = JOB_QOS if s['topic'].startswith('jobs/') else qos_profile_sensor_data
        types = {'image': Image, 'sound': AudioChunk, 'image_job': ImageJob, 'sound_job': SoundJob}
        pubs.append((node.create_publisher(types[s['type']], s['topic'], qos),
                     s['topic'] if only in WRONG else s['type'], 1.0 / s['rate']))
    sent, last_heavy, n = collections.Counter(), collections.defaultdict(float), collections.Counter()
    start = time.monotonic(); end = start + seconds
    queue = [(start, k) for k in range(len(pubs))]
    while queue and time.monotonic() < end:          # behind schedule: it sends what it can
        when, k = heapq.heappop(queue)
        time.sleep(max(0.0, when - time.monotonic()))
        pub, kind_of, gap = pubs[k]
        names = list(kinds[kind_of])
        name = names[n[k] % len(names)]
        n[k] += 1
        if name in HEAVY and time.monotonic() - last_heavy[k] < 1.0 / HEAVY_HZ:
            if only == 'heavy':
                heapq.heappush(queue, (last_heavy[k] + 1.0 / HEAVY_HZ, k))
                continue
            name = names[0]
        if name in HEAVY:
            last_heavy[k] = time.monotonic()
        try:
            pub.publish(stamp(kinds[kind_of][name], name)); sent[name] += 1
        except Exception:           # a reliable job topic whose reader lags refuses the write: go on
            sent['publish refused by DDS'] += 1
        heapq.heappush(queue, (when + gap, k))
    print(json.dumps(dict(sent)), flush=True)
''')



class Watch(Node):
    def __init__(self):
        super().__init__('reliability_watch')
        self.status = None
        self.create_subscription(SchedulerStatus, 'status', self._on, 10)

    def _on(self, msg):
        self.status = msg

    def counters(self):
        s = self.status
        return {} if s is None else {t.task: (t.jobs, t.missed, t.malformed, t.max_miss_rate, t.shed_inputs,
                                              dict(zip(t.refused_reasons, t.refused_counts))) for t in s.tasks}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--taskset', help='task set (default: the shipped F1/10 one)')
    ap.add_argument('--plan', help='plan file (default: the executor\'s own)')
    ap.add_argument('--phase-s', type=float, default=60.0)
    ap.add_argument('--flood-s', type=float, default=60.0)
    ap.add_argument('--kinds', choices=('all', 'malformed', 'heavy', 'wrong-clock', 'second-publisher', 'replay'),
                    default='all', help='malformed: cheap junk at the full rate; heavy: 4096x4096 frames and 30 s '
                                        'chunks only; wrong-clock, second-publisher, replay: well-formed input '
                                        'with wrong stamps or from another publisher')
    ap.add_argument('--load-cores', type=float, help='middle phase: this much competing CPU work instead of a flood')
    ap.add_argument('--load-nice', type=int, default=0,
                    help='niceness of the competing load (negative: software more important than the graph)')
    ap.add_argument('--shed', action='store_true', help='executor degraded mode on (shed_on_overload)')
    ap.add_argument('--executor-param', action='append', default=[], metavar='NAME=VALUE',
                    help='an executor parameter (YAML value) added to a copy of the plan, e.g. realtime_priority=0')
    ap.add_argument('--nice', type=int, default=0,
                    help='niceness of the flooder: 19 leaves it only idle CPU, as if the junk came from another '
                         'computer (its receipt still costs the graph)')
    ap.add_argument('--factor', type=float, default=10.0,
                    help='flood rate on a topic, as a multiple of the rate of the fastest task reading it')
    args = ap.parse_args()
    env = dict(os.environ, ROS_DOMAIN_ID=str(60 + os.getpid() % 30))
    os.environ.update(env)
    plan = args.plan
    extra = dict(p.split('=', 1) for p in args.executor_param)
    if args.shed or extra:
        import yaml
        body = yaml.safe_load(open(plan, encoding='utf-8')) if plan else {'rtmdl_executor': {'ros__parameters': {}}}
        params = body['rtmdl_executor']['ros__parameters']
        params.update({k: yaml.safe_load(v) for k, v in extra.items()})
        if args.shed:
            params['shed_on_overload'] = True
        plan = os.path.join(tempfile.mkdtemp(prefix='shed_plan_'), 'plan.yaml')
        with open(plan, 'w', encoding='utf-8') as f:
            yaml.safe_dump(body, f)
    cmd = RTMDL + ['bringup', '--quiet'] + (['--taskset', args.taskset] if args.taskset else []) + \
        (['--plan', plan] if plan else [])
    graph = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                             start_new_session=True)
    rclpy.init()
    watch = Watch()
    spin = rclpy.executors.SingleThreadedExecutor()
    spin.add_node(watch)
    spinner = threading.Thread(target=spin.spin, daemon=True)
    spinner.start()
    try:
        end = time.monotonic() + 120
        while watch.status is None and time.monotonic() < end:
            time.sleep(0.5)
        if watch.status is None:
            print('the graph did not come up within 120 s')
            return 1
        time.sleep(5.0)                                       # past start-up
        tasks = sorted(watch.status.tasks, key=lambda t: t.priority)
        top = tasks[0].task
        from rtmdl_ros.models import SOUND
        from rtmdl_ros.models.catalog import read_task_requirements, task_families
        from rtmdl_ros.nodes.graph import task_inputs
        from rtmdl_ros.nodes.resources import default_taskset_file
        path = args.taskset or default_taskset_file()
        families = task_families(read_task_requirements(path), path)
        inputs = task_inputs(path)
        # Every input topic at `factor` x the rate of the fastest task reading it.
        periods = {t.task: t.period_ms for t in tasks}
        spec = {}
        for t, f in families.items():
            kind = 'sound' if f.input == SOUND else 'image'
            for topic in (f'jobs/{t}', inputs[t][1] or ('sound' if kind == 'sound' else 'image_raw')):
                rate = args.factor * 1000.0 / periods[t]
                job = topic.startswith('jobs/') and args.kinds in WELL_FORMED
                spec[topic] = {'topic': topic, 'type': kind + ('_job' if job else ''),
                               'rate': max(rate, spec.get(topic, {}).get('rate', 0)),
                               'picture': list(getattr(f, 'picture_size', (0, 0)))}
        rows, rss = {}, {}

        def phase(name, seconds, flood=False):
            t_start = time.monotonic()
            # The graph's processes are the ones started with --ros-args; the flooder is among the others.
            c0, meter = watch.counters(), CpuMeter(pids_matching(b'--ros-args'))
            sent = None
            if flood and args.load_cores:
                from rtmdl_ros.evaluation import BackgroundLoad
                with BackgroundLoad(args.load_cores) as load:
                    for proc in load.procs:
                        os.setpriority(os.PRIO_PROCESS, proc.pid, args.load_nice)
                    time.sleep(seconds)
            elif flood:
                with tempfile.TemporaryFile('w+') as out:
                    p = subprocess.Popen(['nice', '-n', str(args.nice), sys.executable, '-c', FLOODER, json.dumps(list(spec.values())),
                                          str(seconds), args.kinds], stdout=out, stderr=subprocess.STDOUT, env=env)
                    try:
                        p.wait(timeout=seconds + 60)
                    except subprocess.TimeoutExpired:
                        p.kill()
                        raise
                    out.seek(0)
                    text = out.read()
                    # The counts are the flooder's JSON line; anything else it printed is kept for the reader.
                    sent = [ln for ln in text.splitlines() if ln.startswith('{')][-1:]
                    if not sent:
                        print(f'the flooder printed no counts (exit {p.returncode}):\n{text[-2000:]}', flush=True)
            else:
                time.sleep(seconds)
            c1, cores = watch.counters(), meter.cores() or (float('nan'), float('nan'))
            rows[name] = {t: ((c1[t][1] - c0[t][1]) / max(1, c1[t][0] - c0[t][0]), c1[t][0] - c0[t][0],
                              c1[t][2] - c0[t][2], c1[t][3], c1[t][4] - c0[t][4],
                              {r: n - c0[t][5].get(r, 0) for r, n in c1[t][5].items() if n - c0[t][5].get(r, 0)})
                          for t in c1}
            rss[name] = (rss_mb(b'executor_node'), rss_mb(b'task_nodes'))
            seconds = time.monotonic() - t_start           # what the phase really lasted
            graph_cores, other_cores = cores
            sent_n = sum(v for k, v in json.loads(sent[0]).items() if k != 'publish refused by DDS') if sent else 0
            print(f'{name}: {seconds:.0f} s, machine busy {100 * (graph_cores + other_cores) / os.cpu_count():.0f} % of '
                  f'{os.cpu_count()} cores (graph {graph_cores:.2f}, other processes incl. flooder or load '
                  f'{other_cores:.2f} cores)' + (f'; flood sent {sent_n} messages ({sent_n / seconds:.0f}/s): '
                                             f'{sent[0] if sent else "?"}' if flood and not args.load_cores else '')
                  + (f'; {args.load_cores:g} cores of competing load at nice {args.load_nice}'
                     if flood and args.load_cores else '')
                  + (f'; shed: {", ".join(t.task for t in watch.status.tasks if t.shed) or "none"}'
                     if args.shed else ''), flush=True)
        rss['start'] = (rss_mb(b'executor_node'), rss_mb(b'task_nodes'))
        phase('before', args.phase_s)
        middle = 'load' if args.load_cores else 'flood'
        phase(middle, args.flood_s, flood=True)
        phase('after', args.phase_s)
        print('\nflood: ' + ', '.join(f'{s["topic"]} {s["rate"]:.0f}/s' for s in spec.values())
              + f' (kinds: {args.kinds}; 4096x4096 frames and 30 s chunks at most 15/s per topic)')
        print(f'{"task":<16}{"bound":>7}' + ''.join(f'{p + " DMR":>12}{"jobs":>7}' for p in rows) + f'{"refused":>9}{"shed":>6}')
        for t in sorted(rows['before'], key=lambda n: [x.task for x in tasks].index(n)):
            print(f'{t + (" *" if t == top else ""):<16}{rows["before"][t][3]:>7g}' + ''.join(
                f'{rows[p][t][0]:>12.3f}{rows[p][t][1]:>7}' for p in rows) + f'{rows[middle][t][2]:>9}{rows[middle][t][4]:>6}')
        print('* most urgent task')
        for t in rows[middle]:
            if rows[middle][t][5]:
                print(f'{t}: refused during the {middle} by reason: ' +
                      ', '.join(f'{r} {n}' for r, n in rows[middle][t][5].items()))
        for k, (ex, tn) in rss.items():
            print(f'RSS {k:<7}: executor {ex:7.1f} MB, task nodes {tn:7.1f} MB')
        growth = 100 * (rss['after'][0] - rss['before'][0]) / max(1.0, rss['before'][0])
        print(f'executor RSS growth before -> after: {growth:+.1f} %')
        return 0
    finally:
        interrupt(graph)
        spin.shutdown()
        spinner.join(timeout=5)
        watch.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    sys.exit(main())
