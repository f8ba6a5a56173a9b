"""Look-ups into a benchmark run's results.json, shared by its tables and its goals."""

from __future__ import annotations


def find_run(results: dict, contender: str, task: str) -> dict | None:
    return next(
        (r for r in results["runs"] if r["contender"] == contender and r["task"] == task), None
    )


def level(run: dict | None, concurrency: int) -> dict | None:
    if run is None:
        return None
    return next((lv for lv in run["levels"] if lv["concurrency"] == concurrency), None)


def fastest_ceiling(
    results: dict,
    task: str,
    *,
    processes: int | None = None,
    compiled: bool | None = None,
    with_decoding: bool = False,
) -> dict | None:
    """The ceiling entry of ``task`` with the most images/s, whatever its layout, among the
    bare ones (or, ``with_decoding``, those with the services' input path in the loop);
    ``processes`` and ``compiled`` narrow the choice when given."""
    entries = [
        entry
        for entry in results.get("ceiling", {}).get(task, [])
        if bool(entry.get("with_decoding")) == with_decoding
        and (processes is None or entry["processes"] == processes)
        and (compiled is None or bool(entry.get("compiled")) == compiled)
    ]
    return max(entries, key=lambda entry: entry["best"]["images_per_s"], default=None)
