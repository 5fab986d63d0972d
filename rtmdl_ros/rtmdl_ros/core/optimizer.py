"""Joint variant selection and priority assignment (RT-mDL's execution strategy).

    minimise  sum_i (acc_i^max - acc_i(v_i)) / acc_i^max
    s.t.      miss_rate_bound_i <= max_miss_rate_i   for every task i
              storage(v) <= storage_budget_mb        (a weight group is stored once)

Branch and bound in Audsley's direction: priorities are filled from the least
urgent upwards; at each level one remaining task and one of its variants is
placed. A task placed at the lowest free level knows its blocking exactly (all
lower tasks are placed) and has every unplaced task above it, each taken at its
shortest live variant with no jitter. The bound only grows with interference,
jitter and blocking, so a task that fails there fails in every completion and
the branch is cut. Likewise a remaining task that fails with no interference at
all and the blocking of the tasks already below it can be placed nowhere: its
variant is dropped from the branch (forward checking), and the cheapest live
variant of each remaining task bounds the objective. Every complete plan is
checked with the exact analysis before it is accepted, so the search returns an
optimal plan (or proves there is none) when it finishes within its time limit.
A greedy plan seeds the search so that the objective bound prunes from the start.

The search is anytime. Sets of more than EXACT_TASKS tasks, where the exact
search cannot finish, are improved by local search instead (and so are
smaller sets whose exact search has not finished in half the budget): from the best
greedy plan, random moves (a task one variant up; two tasks' priorities
swapped, each then moved up as far as the plan stays feasible; one task down,
on sets of up to SWEEP_TASKS to any less accurate variant, and others up) are
kept when the plan stays feasible and the objective does not grow, until the
time budget; at its start and after each restart every variant is re-chosen at once
for the order in hand (core/reselect.py). Either way the result says whether it is
proven optimal and how far it can be from the optimum (the gap to a lower
bound: the loss of each task's best variant that meets its deadline alone).
"""
from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from typing import Callable, Mapping

from .analysis import (RESOURCES, RUN_JOBS, Analyzer, TaskAnalysis, blocking, blocking_candidates, bound_task,
                       deadline_monotonic, explain_bound, job_blocking, miss_rate_bound, pool_items, release_blocking,
                       top_items)
from . import reselect
from .plan import Assignment
from .taskset import RESOURCE_OF, SEGMENTS, TaskSet

_EPS = 1e-9
# Up to this many tasks the exact search runs after the warm start (for EXACT_SHARE of
# the budget, then local search if it has not finished); above, local search alone.
EXACT_TASKS = 8
EXACT_SHARE = 0.5
# Above PROOF_TASKS it gets a tenth: in 10 s it proved 4 of 6 bench sets at 5 tasks and none
# of 18 at 6-8, where the local search finds the better plans (docs/benchmarks.md); the short
# exact phase still proves sets whose forward checks decide them early (no plan, one plan).
PROOF_TASKS = 5
EXACT_SHARE_ABOVE = 0.1
RAISE_FAILURES = 2          # local search: a task's walk up stops after this many infeasible variants
EXCHANGE_TRIES = 4          # local search: tasks tried upwards after one steps down
KICK_AFTER = 40             # local search: moves per task without a gain before a restart
# Local search move mix: one task up below MIX_UP, a swap below MIX_SWAP, else one down and
# others up (the move that found 16 of 20 gains in a 40-task run; docs/benchmarks.md).
MIX_UP = 0.1
MIX_SWAP = 0.4
INSERT_SHARE = 0.5          # of the reorder moves up to SWEEP_TASKS tasks: one task to another level
SWEEP_TASKS = 10            # local search up to this many tasks: a step down goes to any less accurate
                            # variant and every other task is then tried upwards
RESELECT_START = True       # local search: every variant re-chosen at once (core/reselect.py) at its start
RESELECT_KICK = True        # ... and after each restart
RESELECT_FEEDBACK = True    # ... solved again with less slack for the tasks the exact check failed
RESELECT_EVERY = 5          # ... and every this many moves per task, where the plan has changed since


def storage_mb(taskset: TaskSet, choice: Mapping[str, str]) -> float:
    """Storage of the chosen variants; a weight group costs its largest member once."""
    total, groups = 0.0, {}
    for task, variant in choice.items():
        v = taskset.tasks[task].variants[variant]
        if v.weight_group is None:
            total += v.storage_mb
        else:
            groups[v.weight_group] = max(groups.get(v.weight_group, 0.0), v.storage_mb)
    return total + sum(groups.values())


def objective(taskset: TaskSet, choice: Mapping[str, str]) -> float:
    return sum(taskset.tasks[t].loss(v) for t, v in choice.items())


@dataclass
class OptimizeResult:
    plan: dict[str, Assignment] | None
    objective: float | None
    analysis: dict[str, TaskAnalysis] | None
    optimal: bool                 # search finished: the plan is optimal, or none exists
    nodes: int
    elapsed_s: float
    reason: str = ''              # when plan is None: why, naming the binding task
    storage_mb: float | None = None
    lower_bound: float = 0.0      # no plan has a smaller objective
    method: str = 'exact'         # 'exact' (branch and bound) or 'local' (anytime local search)
    moves: int = 0                # local-search moves tried
    step_limited: bool = False    # stopped by max_steps, not the clock: the same plan on any machine

    @property
    def gap(self) -> float | None:
        """objective - lower bound (0 when proven optimal); None without a plan."""
        return None if self.objective is None else (0.0 if self.optimal else max(0.0, self.objective - self.lower_bound))


class _Search:
    def __init__(self, taskset: TaskSet, time_limit_s: float, progress: Callable | None = None):
        self.ts = taskset
        self.an = Analyzer(taskset)
        self.pcts = self.an.percentiles            # (the task set's percentiles..., 100)
        self.names = deadline_monotonic(taskset)
        self.servers = {r: taskset.platform.servers(r) for r in RESOURCES}
        self.deadline = time.monotonic() + time_limit_s
        self.nodes = 0
        self.moves = 0
        # A step is a branch-and-bound node or a local-search move. Under a step limit
        # the search stops at the same point on any machine (if the clock does not stop it first).
        self.step_limit: int | None = None
        self.step_limited = False
        self.stopped = False                       # by the clock or the step limit: nothing proven
        self.best_obj = math.inf
        self.best_order: list[tuple[str, str]] | None = None
        self.best_analysis: list[TaskAnalysis] | None = None
        self.progress = progress                   # progress(best objective, lower bound, elapsed s)
        self.started = time.monotonic()
        self._span_cache: dict = {}
        self.loss = {n: {v: taskset.tasks[n].loss(v) for v in taskset.tasks[n].variants} for n in self.names}
        # Variants per task: cheapest loss first, faster first among equals; only
        # those that meet the deadline alone on the machine.
        no_hp, nothing = self._no_hp(), self._blocking([])
        self.variants = {}
        for n in self.names:
            task = taskset.tasks[n]
            ordered = sorted(task.variants, key=lambda v, n=n, t=task: (self.loss[n][v], t.variants[v].mean_total_ms, v))
            self.variants[n] = [v for v in ordered if self._check(n, v, no_hp, nothing)]
        # What a raise compares: summed segment times at every percentile and storage.
        self._cost = {n: {v: (*(sum(self.an.times(n, v, p).c) for p in self.pcts),
                              taskset.tasks[n].variants[v].storage_mb) for v in self.variants[n]} for n in self.names}
        # Each task's least loss among variants that meet the deadline alone.
        self.lower_bound = (sum(self.loss[n][vs[0]] for n, vs in self.variants.items())
                            if all(self.variants.values()) else math.inf)

    def _out_of_time(self) -> bool:
        if time.monotonic() > self.deadline:
            self.stopped = True
        return self.stopped

    def _out_of_steps(self) -> bool:
        """Checked before each node or move only, so every step taken is taken whole."""
        if self.step_limit is not None and self.nodes + self.moves >= self.step_limit:
            self.step_limited = self.stopped = True
        return self.step_limited

    def _no_hp(self) -> dict:
        return {pct: {'cpu': [], 'gpu': [], 'jobs': []} for pct in self.pcts}

    def _check(self, name: str, variant: str, hp, block) -> bool:
        """Does (name, variant) meet its miss-rate bound under hp[pct] / block[pct], at some
        percentile of the task set's (the analysis keeps the least over them)?"""
        task = self.ts.tasks[name]
        p_hi = 100.0
        at_max = bound_task(task, self.an.times(name, variant, p_hi), self.ts.platform, hp[p_hi], block[p_hi])
        if at_max.response_ms <= task.effective_deadline_ms + _EPS:
            return True                                 # no miss even at the worst sample
        if self.an.single_percentile:
            return task.max_miss_rate >= 1.0 - _EPS     # both bounds miss: rate bound 1
        limit = task.max_miss_rate + _EPS
        for p in self.an.levels:
            times = self.an.times(name, variant, p)
            at_p = bound_task(task, times, self.ts.platform, hp[p], block[p])
            if miss_rate_bound(at_p, at_max, task.effective_deadline_ms, p) <= limit:
                return True
            mixed = bound_task(task, times, self.ts.platform, hp[p_hi], block[p_hi])
            if miss_rate_bound(at_p, at_max, task.effective_deadline_ms, p, mixed=mixed) <= limit:
                return True
        return False

    def _blocking(self, below) -> dict:
        """Least blocking of any task above the placed ones, per percentile: one
        running segment per placed task (no overrun charges, which only add)."""
        out = {}
        for pct in self.pcts:
            timed = [(self.ts.tasks[n], self.an.times(n, v, pct)) for n, v, *_ in below]
            out[pct] = {r: blocking(blocking_candidates(timed, r), self.servers[r]) for r in RESOURCES}
            out[pct]['pool'] = {r: top_items(item for tt in timed for item in pool_items(*tt, r))
                                for r in RESOURCES}
        return out

    def _spans(self, name: str, variant: str, pct: float, block) -> tuple:
        """Per segment (c, least c + jitter). A segment starts no earlier than the
        earlier segments' lengths plus the waits their blocking alone forces
        (or the deadline, if sooner); it may start as early as the best cases."""
        key = (name, variant, pct, block['cpu'][0], block['gpu'][0], block['pool']['cpu'], block['pool']['gpu'])
        spans = self._span_cache.get(key)
        if spans is None:
            t = self.an.times(name, variant, pct)
            task = self.ts.tasks[name]
            # Offsets from the stamp, as in bound_task: the latest start is capped where the job is dropped.
            deadline = task.deadline_ms + (0.0 if task.origin_is_stamp else t.path)
            if self.ts.platform.job_gate:
                # Under the gate a start is capped only by the job's end (gated_bound), which
                # is at least its own time plus the blocking at its release.
                latest = [math.inf] * len(SEGMENTS)
                end = t.own_time + max(w for w, _ in release_blocking(block, self.servers.get).values())
            else:
                latest, forced = [], t.path
                charged = {r: job_blocking(task, t, block['pool'][r]) for r in RESOURCES if self.servers[r] == 1}
                seen = {r: 0 for r in RESOURCES}
                for k, seg in enumerate(SEGMENTS):
                    r = RESOURCE_OF[seg]
                    # Least wait the blocking alone forces: the shortest of M running segments
                    # (one server: the job's k-th blocker on r, as bound_task charges it).
                    segs = block[r][0]
                    if r in charged:
                        segs = tuple(min(x, y) for x, y in zip(segs, charged[r][seen[r]:seen[r] + 1]))
                        seen[r] += 1
                    forced += segs[-1] if segs and len(segs) >= self.servers[r] else 0.0
                    latest.append(forced)
                    forced += t.c[k]
                # bound_task also caps a start at the job's end minus the best cases from it on;
                # that end is at least the own time plus the waits the blocking forces.
                end = t.own_time + forced - t.path - sum(t.c)
            spans, best, rest = [], t.path_best, sum(t.best)
            for k in range(len(SEGMENTS)):
                start = min(latest[k], deadline, end - rest)
                spans.append((t.c[k], t.c[k] + max(0.0, start - best)))
                best += t.best[k]
                rest -= t.best[k]
            self._span_cache[key] = spans = tuple(spans)
        return spans

    def _hp_lower_bound(self, tasks, domains, block) -> dict:
        """Least interference `tasks` can cause from above the placed ones: per
        segment the least length and least span over their live variants, and as
        one job (analysis.add_interference) the least work and least span."""
        out = {}
        for pct in self.pcts:
            items = {'cpu': [], 'gpu': [], 'jobs': []}
            for u in tasks:
                spans = [self._spans(u, v, pct, block[pct]) for v in domains[u]]
                period = self.ts.tasks[u].interarrival_ms
                own = []
                for k, seg in enumerate(SEGMENTS):
                    c = min(sp[k][0] for sp in spans)
                    if c > 0:
                        own.append((c, min(sp[k][1] for sp in spans), period))
                        items[RESOURCE_OF[seg]].append(own[-1])
                jobs = [self._job_item(u, v, pct, sp, period) for v, sp in zip(domains[u], spans)]
                jobs = [j for j in jobs if j is not None]
                # (a variant without a work draw is charged its segments, which the lesser of
                # the two already bounds from below). Per run length the least work and the
                # fewest draws: run_work only grows with either.
                job = (tuple((min(j[0][k][0] for j in jobs), min(j[0][k][1] for j in jobs))
                             for k in range(RUN_JOBS)),
                       min(j[1] for j in jobs), period) if jobs else None
                items['jobs'].append((tuple(own), job))
            out[pct] = items
        return out

    def _job_item(self, name: str, variant: str, pct: float, spans, period: float):
        """SegmentBound.job_item from the least spans (_spans): (runs, span, T) or None."""
        t = self.an.times(name, variant, pct)
        if not math.isfinite(t.work):
            return None
        return t.runs, spans[2][1] + t.best[0] + t.best[1], period

    def _add_exact(self, hp, name: str, variant: str, block) -> dict:
        """hp plus a placed task's segments (known lengths and blocking, least jitter)."""
        out = {}
        period = self.ts.tasks[name].interarrival_ms
        for pct in self.pcts:
            items = {'cpu': list(hp[pct]['cpu']), 'gpu': list(hp[pct]['gpu']), 'jobs': list(hp[pct].get('jobs', ()))}
            spans = self._spans(name, variant, pct, block[pct])
            own = []
            for (c, span), seg in zip(spans, SEGMENTS):
                if c > 0:
                    own.append((c, span, period))
                    items[RESOURCE_OF[seg]].append(own[-1])
            items['jobs'].append((tuple(own), self._job_item(name, variant, pct, spans, period)))
            out[pct] = items
        return out

    def _below_still_ok(self, below, hp) -> bool:
        """Re-check placed tasks now that more of what lies above them is known."""
        for name, variant, block in reversed(below):
            if not self._check(name, variant, hp, block):
                return False
            hp = self._add_exact(hp, name, variant, block)
        return True

    def _orders(self) -> list[list[str]]:
        """Classic priority orders to start local search from."""
        ts = self.ts

        def largest_ms(n):
            return ts.tasks[n].largest_variant.mean_total_ms
        keys = [
            lambda n: (ts.tasks[n].deadline_ms, ts.tasks[n].period_ms),               # deadline-monotonic
            lambda n: (ts.tasks[n].deadline_ms - largest_ms(n), ts.tasks[n].period_ms),  # least slack first
            lambda n: (-largest_ms(n) / ts.tasks[n].period_ms,),                       # utilisation-monotonic
            lambda n: (ts.tasks[n].period_ms, ts.tasks[n].deadline_ms),                 # rate-monotonic
        ]
        orders = []
        for key in keys:
            order = sorted(self.names, key=lambda n: (*key(n), n))
            if order not in orders:
                orders.append(order)
        return orders

    def greedy(self, polish: bool = True) -> None:
        """Warm start from each classic order: best variants, then repeatedly
        downgrade the task that frees the most utilisation per point of
        normalised loss until the plan passes; then polish it by local search
        (or, polish=False, only move each task up once)."""
        if any(not self.variants[n] for n in self.names):
            return
        for names in self._orders():
            if self._out_of_time():
                return
            order = self._downgrade_until_feasible(names)
            if order is None:
                continue
            if polish:
                self._polish(order)
            else:
                order = self._upgrade(order)
                self._leaf(order, objective(self.ts, dict(order)))

    def _downgrade_until_feasible(self, names: list[str]):
        level = {n: 0 for n in names}
        budget = self.ts.platform.storage_budget_mb
        while not self._out_of_time():
            order = [(n, self.variants[n][level[n]]) for n in names]
            if storage_mb(self.ts, dict(order)) <= budget + _EPS and self.an.feasible(order):
                return order
            # Any task can be the culprit: higher ones interfere, lower ones block.
            # Step each task to whichever less accurate variant frees the most time
            # and storage per point of loss: the next one in loss order may be
            # slower (a deeper but narrower net), so look past it.
            best, best_score = None, math.inf
            for n in names:
                task = self.ts.tasks[n]
                cur = task.variants[self.variants[n][level[n]]]
                for k in range(level[n] + 1, len(self.variants[n])):
                    nxt = task.variants[self.variants[n][k]]
                    freed = (cur.mean_total_ms - nxt.mean_total_ms) / task.period_ms
                    if math.isfinite(budget):
                        freed += (cur.storage_mb - nxt.storage_mb) / budget
                    if freed <= 0:
                        continue
                    score = (self.loss[n][nxt.name] - self.loss[n][cur.name] + 1e-6) / freed
                    if score < best_score:
                        best, best_score = (n, k), score
            if best is None:
                return None
            level[best[0]] = best[1]
        return None

    def _feasible(self, order) -> bool:
        choice = dict(order)
        return (storage_mb(self.ts, choice) <= self.ts.platform.storage_budget_mb + _EPS
                and self.an.feasible(order))

    def _fails_early(self, order, trial) -> bool:
        """Analyzer.fails_early: above SWEEP_TASKS tasks its hints too (a wrong one costs a
        move, and checks are dear there); on smaller sets its proofs only, where a check is
        cheap and one wrong hint kept an 8-task search from its best plan (docs/analysis.md)."""
        return self.an.fails_early(order, trial, sound=len(order) <= SWEEP_TASKS)

    def _upgrade(self, order) -> list:
        """Move each task up while the plan stays feasible (_raise)."""
        return self._raise(list(order), range(len(order)))

    def _reselect(self, order) -> list | None:
        """The first of reselect.choices(order) that the exact analysis passes, moved up
        (_upgrade); None where the model finds nothing better that passes."""
        results = self.an.analyze_order(order)
        if not all(r.meets_bound for r in results):
            return None
        steps = reselect.choices(self.an, order, results, self.variants, self.loss,
                                 self.ts.platform.storage_budget_mb)
        chosen = next(steps, None)
        while chosen is not None and not self._out_of_time():
            trial = [(t, chosen[t]) for t, _ in order]
            # One full analysis both decides (feasible() would stop at the first task over
            # its bound) and names every task over its bound for the next solve.
            within = storage_mb(self.ts, chosen) <= self.ts.platform.storage_budget_mb + _EPS
            failing = [r.task for r in self.an.analyze_order(trial) if not r.meets_bound]
            if within and not failing:
                return self._upgrade(trial)
            if not RESELECT_FEEDBACK:
                failing = None
            try:
                chosen = steps.send(failing)
            except StopIteration:
                break
        return None

    def _polish(self, order) -> None:
        """Local search from a feasible plan: upgrades, then adjacent priority swaps
        followed by upgrades, while the objective improves."""
        order = self._upgrade(order)
        best = objective(self.ts, dict(order))
        improved = True
        while improved and not self._out_of_time():
            improved = False
            for i in range(len(order) - 1):
                if self._out_of_time():
                    break
                swapped = order[:i] + [order[i + 1], order[i]] + order[i + 2:]
                if not self._feasible(swapped):
                    continue
                swapped = self._upgrade(swapped)
                obj = objective(self.ts, dict(swapped))
                if obj < best - _EPS:
                    order, best, improved = swapped, obj, True
        self._leaf(order, best)

    def run(self) -> None:
        self.greedy()
        self._dfs([], list(reversed(self.names)), 0.0, {}, 0.0, dict(self.variants))

    def _dfs(self, below, remaining, loss_so_far, groups, used_mb, domains) -> None:
        """`below`: placed (task, variant, blocking), least urgent first; `remaining` go above."""
        if self._out_of_steps():
            return
        self.nodes += 1
        if self.nodes % 64 == 0 and time.monotonic() > self.deadline:
            self.stopped = True
        if self.stopped:
            return
        if not remaining:
            self._leaf([(n, v) for n, v, _ in reversed(below)], loss_so_far)
            return
        # Forward check: a variant failing with no interference and only the
        # blocking of the tasks already below fails at every level still free.
        no_hp, block = self._no_hp(), self._blocking(below)
        live, rest_lb = {}, 0.0
        for u in remaining:
            keep = [v for v in domains[u] if self._check(u, v, no_hp, block)]
            if not keep:
                return
            live[u] = keep
            rest_lb += self.loss[u][keep[0]]
        if loss_so_far + rest_lb >= self.best_obj - _EPS:
            return
        budget = self.ts.platform.storage_budget_mb
        for name in remaining:
            others = [u for u in remaining if u != name]
            others_lb = rest_lb - self.loss[name][live[name][0]]
            hp = self._hp_lower_bound(others, live, block)
            task = self.ts.tasks[name]
            for v in live[name]:
                loss = loss_so_far + self.loss[name][v]
                if loss + others_lb >= self.best_obj - _EPS:
                    break                                   # variants are sorted by loss
                var = task.variants[v]
                new_groups, used = groups, used_mb + var.storage_mb
                if var.weight_group is not None:
                    paid = groups.get(var.weight_group, 0.0)
                    used = used_mb + max(0.0, var.storage_mb - paid)
                    if var.storage_mb > paid:
                        new_groups = {**groups, var.weight_group: var.storage_mb}
                if used > budget + _EPS:
                    continue
                if not self._check(name, v, hp, block):
                    continue
                if below and not self._below_still_ok(below, self._add_exact(hp, name, v, block)):
                    continue
                self._dfs(below + [(name, v, block)], others, loss, new_groups, used, live)
                if self.stopped:
                    return

    def _leaf(self, order, loss) -> None:
        results = self.an.analyze_order(order)
        if all(r.meets_bound for r in results) and loss < self.best_obj - _EPS:
            self.best_obj = loss
            self.best_order = list(order)
            self.best_analysis = results
            if self.progress is not None:
                self.progress(loss, self.lower_bound, time.monotonic() - self.started)

    # -- anytime local search (large sets) ---------------------------------------
    def quick_start(self) -> None:
        """The greedy plans without the polish: the start of the local search."""
        self.greedy(polish=False)

    def _raise(self, order, positions) -> list:
        """Each task at `positions` up to a more accurate variant that keeps the plan feasible.

        Walks up from the current variant, skips a variant that is no faster (summed
        segment times at both percentiles) and no smaller than one that already failed,
        and stops after two failures. Most raises change nothing, and scanning from the
        best variant down paid a feasibility check per better variant for that (86 % of
        all checks of a 20-task search); loss order is not speed order (a deeper,
        narrower net can be the faster), hence the skip rather than a stop at the first
        failure. On hidden 20- and 40-task sets it lands within 1 % of the best of the
        three rules on 5 of 6 (the scan: 1 of 6; docs/benchmarks.md)."""
        for i in positions:
            name, current = order[i]
            better = [v for v in self.variants[name] if self.loss[name][v] < self.loss[name][current] - _EPS]
            failed: list[tuple] = []
            for v in reversed(better):                      # nearest better variant first
                if self._out_of_time():
                    break
                cost = self._cost[name][v]
                if any(all(a >= b for a, b in zip(cost, f)) for f in failed):
                    continue                                # no faster than one that failed
                trial = order[:i] + [(name, v)] + order[i + 1:]
                if not self._fails_early(order, trial) and self._feasible(trial):
                    order = trial
                else:
                    failed.append(cost)
                    if len(failed) >= RAISE_FAILURES:
                        break
        return order

    def local_search(self, seed: int = 0) -> None:
        """Random moves from the best plan until the time budget; keep what is feasible
        and no worse (equal moves let the search cross plateaus)."""
        if self.best_order is None:
            return
        rng = random.Random(seed)
        if RESELECT_START and (better := self._reselect(list(self.best_order))) is not None:
            self._leaf(better, objective(self.ts, dict(better)))
        order, obj = list(self.best_order), self.best_obj
        n = len(order)
        stalled = 0
        last_lp, lp_order = 0, list(order)
        while not self._out_of_steps() and not self._out_of_time():
            self.moves += 1
            stalled += 1
            if RESELECT_EVERY and self.moves - last_lp >= RESELECT_EVERY * n and order != lp_order:
                # The moves change one or two tasks; from the plan they have reached, the LP
                # step re-chooses every variant at once (-2 % summed loss at 20 and 40 tasks).
                last_lp, lp_order = self.moves, list(order)
                if (better := self._reselect(order)) is not None:
                    b_obj = objective(self.ts, dict(better))
                    if b_obj < obj - _EPS:
                        order, obj, stalled = better, b_obj, 0
                        if obj < self.best_obj - _EPS:
                            self._leaf(order, obj)
                continue
            if stalled > KICK_AFTER * n and n > 2:
                # Iterated local search: a local optimum holds the moves above, so restart
                # from the best plan with a stretch of its priority order shuffled, made
                # feasible by the warm start's downgrades and moved up again.
                stalled = 0
                names = [t for t, _ in self.best_order]
                i = rng.randrange(n - 1)
                j = min(n, i + rng.randint(2, max(2, n // 2)))
                stretch = names[i:j]
                rng.shuffle(stretch)
                kicked = self._downgrade_until_feasible(names[:i] + stretch + names[j:])
                if kicked is not None:
                    order = self._upgrade(kicked)
                    if RESELECT_KICK and (better := self._reselect(order)) is not None:
                        order = better
                    obj = objective(self.ts, dict(order))
                    if obj < self.best_obj - _EPS:
                        self._leaf(order, obj)
                continue
            kind = rng.random()
            if kind < MIX_UP:                                   # one task up
                i = rng.randrange(n)
                trial = self._raise(order, [i])
            elif kind < MIX_SWAP and n > 1:                     # reorder, then the two moved up
                trial, moved = reorder(order, rng)
                if not moved or self._fails_early(order, trial) or not self._feasible(trial):
                    continue
                trial = self._raise(trial, moved)
            else:                                               # one down, others up
                i = rng.randrange(n)
                name, cur = order[i]
                worse = [v for v in self.variants[name] if self.loss[name][v] > self.loss[name][cur] + _EPS]
                if not worse:
                    continue
                small = n <= SWEEP_TASKS
                trial = list(order)
                trial[i] = (name, rng.choice(worse) if small else worse[0])
                if self._fails_early(order, trial) or not self._feasible(trial):
                    continue
                # What the step down freed may let others up: try a few, at random (all of
                # them on small sets, where a check is cheap and one deep step down can pay
                # for several others up).
                others = [j for j in range(n) if j != i]
                rng.shuffle(others)
                trial = self._raise(trial, others if small else others[:EXCHANGE_TRIES])
            t_obj = objective(self.ts, dict(trial))
            if t_obj <= obj + _EPS and trial != order:
                if t_obj < obj - _EPS:
                    stalled = 0
                order, obj = trial, t_obj
                if obj < self.best_obj - _EPS:
                    self._leaf(order, obj)


def reorder(order: list, rng: random.Random) -> tuple[list, list[int]]:
    """A local-search reorder move: (the new order, the two levels it changed, sorted; none
    where it drew a task onto its own level). A neighbour or a task drawn at random swaps
    with the task at i; up to SWEEP_TASKS tasks, half the time the task at i is taken to
    level j instead, those between shifting by one: on small sets a task that belongs far
    above gets there in one move (bench set 0 at 8 tasks: the GA's plan, 0.157 against our
    0.183), where swaps pass through orders that fail. From 20 tasks that did worse on hidden
    sets (docs/benchmarks.md)."""
    n = len(order)
    i = rng.randrange(n - 1)
    j = i + 1 if rng.random() < 0.6 else rng.randrange(n)
    trial = list(order)
    if i == j:
        return trial, []
    if n <= SWEEP_TASKS and rng.random() < INSERT_SHARE:
        trial.insert(j, trial.pop(i))
    else:
        trial[i], trial[j] = trial[j], trial[i]
    return trial, sorted((i, j))


def _explain_infeasible(taskset: TaskSet, search: _Search) -> str:
    """Name the constraint that binds: storage, a task on its own, or the mix."""
    fastest = {n: min(t.variants, key=lambda v, t=t: (t.variants[v].storage_mb, v)) for n, t in taskset.tasks.items()}
    least = storage_mb(taskset, fastest)
    if least > taskset.platform.storage_budget_mb + _EPS:
        return (f'storage: even the smallest variants need {least:.2f} MB, '
                f'over the budget of {taskset.platform.storage_budget_mb:.2f} MB')
    for n in search.names:
        if not search.variants[n]:
            t = taskset.tasks[n]
            quickest = min(t.variants, key=lambda v: search.an.times(n, v, taskset.percentile).own_time)
            times = search.an.times(n, quickest, taskset.percentile)
            alone = bound_task(t, times, taskset.platform, {'cpu': [], 'gpu': []},
                               {'cpu': ((), 0), 'gpu': ((), 0)})
            return (f'task {n!r}: no variant meets its {t.effective_deadline_ms:g} ms deadline even alone on '
                    f'the machine; its fastest, {quickest!r}, '
                    + explain_bound(times, alone, t.effective_deadline_ms, taskset.percentile))
    # Fastest variants in deadline-monotonic order: report the most urgent failing task.
    quick = {n: min(taskset.tasks[n].variants,
                    key=lambda v, n=n: search.an.times(n, v, taskset.percentile).own_time) for n in search.names}
    order = [(n, quick[n]) for n in search.names]
    for r in search.an.analyze_order(order):
        if not r.meets_bound:
            at_p, at_max = search.an.final_bounds(order)               # as the analysis charged them
            p = taskset.percentile
            why = explain_bound(search.an.times(r.task, r.variant, p), at_p[r.task], r.effective_deadline_ms, p)
            if at_p[r.task].response_ms <= r.effective_deadline_ms:
                # Under the deadline at p, over it at the worst sample: the union term is what fails.
                why += (f'; but {at_p[r.task].instances} measured times (segments, paths) may each overrun their p{p:g} '
                        f'({at_p[r.task].instances} x {1 - p / 100:.3g} = {r.miss_rate_bound:.3g}), and at the '
                        f'worst samples ' + explain_bound(search.an.times(r.task, r.variant, 100.0), at_max[r.task],
                                                          r.effective_deadline_ms, 100.0).split(': ', 1)[1])
            return (f'task {r.task!r}: cannot meet max_miss_rate {r.max_miss_rate:g} together with the '
                    f'other tasks (every task at its fastest variant, deadline-monotonic; miss-rate bound '
                    f'{r.miss_rate_bound:.3g}): ' + why)
    return 'no priority order and variant choice meets every miss-rate bound within the storage budget'


def optimize(taskset: TaskSet, time_limit_s: float = 30.0, progress: Callable | None = None,
             exact: bool | None = None, seed: int = 0, max_steps: int | None = None) -> OptimizeResult:
    """The rtmdl policy: the best (variant, priority) per task found within the time
    limit, whether it is proven optimal, or why no plan exists. exact (default:
    up to EXACT_TASKS tasks) chooses branch and bound over local search;
    progress(best objective, lower bound, elapsed s) is called on every better plan.
    seed drives the local search's random moves; max_steps (branch-and-bound nodes
    plus local-search moves) stops the search at a point that does not depend on
    the machine's speed: the same task set, seed and max_steps give the same plan
    wherever the time limit is not reached first (result.step_limited says so)."""
    if max_steps is not None and max_steps < 1:
        raise ValueError(f'max_steps must be >= 1, got {max_steps}')
    exact = len(taskset.tasks) <= EXACT_TASKS if exact is None else exact
    if not exact or len(taskset.tasks) > PROOF_TASKS:
        # The local search will run its LP step: load the solver before the clock starts, so
        # that the first search after start-up (the online node's first re-plan) keeps its budget.
        reselect.solver()
    start = time.monotonic()
    search = _Search(taskset, time_limit_s, progress)
    if exact:
        # The exact search gets a share of the budget; if it cannot prove optimality
        # by then, local search spends the rest improving on the best plan it has.
        share = EXACT_SHARE if len(taskset.tasks) <= PROOF_TASKS else EXACT_SHARE_ABOVE
        if max_steps is None:
            search.deadline = start + share * time_limit_s
        else:                   # the steps alone split the phases, so the clock cannot move the split
            search.step_limit = max(1, int(share * max_steps))
        search.run()
        if search.stopped:
            search.deadline = start + time_limit_s
            search.step_limit, search.step_limited = max_steps, False
            search.stopped = False
            search.local_search(seed)
            search.stopped = True
    else:
        search.step_limit = max_steps
        search.quick_start()
        search.local_search(seed)
        # Local search proves nothing, but a task that fails alone, or storage that the
        # smallest variants exceed, proves that no plan exists.
        smallest = {n: min(t.variants, key=lambda v, t=t: t.variants[v].storage_mb) for n, t in taskset.tasks.items()}
        search.stopped = not (search.best_order is None and (
            math.isinf(search.lower_bound)
            or storage_mb(taskset, smallest) > taskset.platform.storage_budget_mb + _EPS))
    elapsed = time.monotonic() - start
    optimal = not search.stopped
    if search.best_order is None:
        reason = (_explain_infeasible(taskset, search) if optimal else
                  f'no feasible plan found within the {time_limit_s:g} s time limit')
        return OptimizeResult(None, None, None, optimal, search.nodes, elapsed, reason=reason,
                              lower_bound=search.lower_bound, method='exact' if exact else 'local',
                              moves=search.moves, step_limited=search.step_limited)
    plan = {n: Assignment(v, prio) for prio, (n, v) in enumerate(search.best_order)}
    analysis = {r.task: r for r in search.best_analysis}
    return OptimizeResult(plan, search.best_obj, analysis, optimal, search.nodes, elapsed,
                          storage_mb=storage_mb(taskset, {n: a.variant for n, a in plan.items()}),
                          lower_bound=search.best_obj if optimal else search.lower_bound,
                          method='exact' if exact else 'local', moves=search.moves,
                          step_limited=search.step_limited)
