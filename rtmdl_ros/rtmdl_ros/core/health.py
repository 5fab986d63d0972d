"""A task's health in one word and one line, for /diagnostics (levels as in
diagnostic_msgs/DiagnosticStatus: OK 0, WARN 1, ERROR 2)."""
from __future__ import annotations

OK, WARN, ERROR = 0, 1, 2


def task_health(shed: bool, jobs: int, miss_rate: float, max_miss_rate: float, malformed: int,
                refused: dict | None = None) -> tuple[int, str]:
    """refused: well-formed inputs the input guard refused, per reason (another clock, another publisher)."""
    if shed:
        return ERROR, 'shed under overload (degraded mode): no results'
    if jobs > 0 and miss_rate > max_miss_rate:
        return WARN, f'miss rate {miss_rate:.3f} over bound {max_miss_rate:g}'
    wrong = {r: n for r, n in (refused or {}).items() if n}
    if malformed or wrong:
        parts = ([f'{malformed} malformed inputs'] if malformed else []) + [f'{n} {r}' for r, n in wrong.items()]
        return WARN, 'refused: ' + ', '.join(parts)
    return OK, 'meeting its bound'
