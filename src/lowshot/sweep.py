"""Sweeps: paper settings x seeds, one run directory per (setting, seed), optionally as Ray tasks.

The run directories are the single source of truth: a job whose ``RUNS/<setting>/seed_<s>``
holds a ``result.json`` is collected, never rerun; a job being run holds
``RUNS/<setting>/seed_<s>.lock`` (created exclusively, with host and pid), so two sweeps (or
two Ray workers) never run the same job; a lock whose process is gone (same host, dead pid)
is taken over, and a killed run resumes from its own checkpoints (every recipe resumes).
With ``address`` the pending jobs are Ray tasks (``local``: a Ray instance on this machine;
on a cluster RUNS must be a shared file system); without it they run one after the other.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lowshot.errors import LowshotError
from lowshot.utils.distributed import ray_connect
from lowshot.utils.results import RunNotReadable, RunResult, has_result, read_result

#: ``done``: collected from a finished run dir; ``ran``: run now; ``claimed``: another process holds its lock.
STATUSES = ("done", "ran", "claimed")


@dataclass(frozen=True)
class Job:
    """One (setting, seed) run: ``overrides`` are ``key=value`` strings applied to the setting."""

    setting: str
    seed: int
    run_dir: Path
    overrides: tuple[str, ...] = ()

    def result(self) -> RunResult | None:
        """The finished run's result (None if not finished); creates and cleans nothing."""
        return finished(self.run_dir)

    @property
    def lock(self) -> Path:
        """The claim file next to the run directory."""
        return self.run_dir.with_name(self.run_dir.name + ".lock")


def run_dir(runs: str | Path, setting: str, seed: int) -> Path:
    """Where one (setting, seed) run lives: ``runs/<setting>/seed_<seed>``."""
    return Path(runs) / setting / f"seed_{seed}"


def finished(path: Path) -> RunResult | None:
    """The result of a finished run dir, or None (absent, unfinished, or not a readable result)."""
    if not has_result(path):
        return None
    try:
        return read_result(path)
    except (RunNotReadable, LowshotError):
        return None  # e.g. a seed record left by a kill between the seed's and the run's result


def seed_override(config: dict[str, Any], seed: int) -> str:
    """The override that runs one seed: ``train.seeds=[s]`` (GZSL, GFSL, adverbs) or ``seeds=[s]`` (comm)."""
    return f"train.seeds=[{seed}]" if "train" in config or config.get("recipe") != "comm" else f"seeds=[{seed}]"


def plan(settings: Sequence[str], seeds: Sequence[int], runs: str | Path, overrides: Sequence[str] = ()) -> list[Job]:
    """Every (setting, seed) job, run directory ``runs/<setting>/seed_<seed>``.

    Raises:
        ConfigError: an unknown setting or a bad override (checked here, before anything is submitted).
    """
    from lowshot.config.paper import load_paper_config

    for setting in settings:
        load_paper_config(setting, list(overrides))
    return [Job(s, int(seed), run_dir(runs, s, seed), tuple(overrides)) for s in settings for seed in seeds]


def _claim(job: Job) -> bool:
    """Create the job's lock exclusively (taking over one whose process on this host is gone)."""
    job.lock.parent.mkdir(parents=True, exist_ok=True)
    me = {"host": socket.gethostname(), "pid": os.getpid()}
    for _ in range(2):
        try:
            fd = os.open(job.lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                owner = json.loads(job.lock.read_text())
            except (OSError, ValueError):
                return False  # being written by its owner right now
            if owner.get("host") != me["host"] or _alive(int(owner.get("pid", -1))):
                return False
            job.lock.unlink(missing_ok=True)  # stale: its process is gone
            continue
        with os.fdopen(fd, "w") as fh:
            json.dump(me, fh)
        return True
    return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_job(job: Job, data_root: str | Path | None = None) -> tuple[str, RunResult | None]:
    """Collect, run or skip one job: ``(status, result or None)`` (status in :data:`STATUSES`)."""
    from lowshot.catalog import load_recipe
    from lowshot.config.paper import load_paper_config

    done = job.result()
    if done is not None:
        return "done", done
    if not _claim(job):
        return "claimed", None
    try:
        done = job.result()  # finished between the check and the claim
        if done is not None:
            return "done", done
        base = load_paper_config(job.setting, list(job.overrides))
        config = load_paper_config(job.setting, [*job.overrides, seed_override(base, job.seed)])
        load_recipe(config["recipe"])(config, job.run_dir, Path(data_root) if data_root else None)
        return "ran", read_result(job.run_dir)
    finally:
        job.lock.unlink(missing_ok=True)


def sweep(jobs: Sequence[Job], address: str | None = None, data_root: str | Path | None = None,
          num_cpus: int | None = None) -> list[tuple[str, RunResult | None]]:
    """Run ``jobs`` (finished ones are only collected): in this process, or as Ray tasks on ``address``.

    Returns:
        ``(status, result)`` per job, in the order of ``jobs``.
    """
    out: list[Any] = [None] * len(jobs)
    pending = []
    for i, job in enumerate(jobs):
        done = job.result()
        if done is not None:
            out[i] = ("done", done)
        else:
            pending.append(i)
    if address is None:
        for i in pending:
            out[i] = run_job(jobs[i], data_root)
        return out
    ray = ray_connect(address, num_cpus)
    task = ray.remote(num_cpus=1)(run_job)
    refs = {i: task.remote(jobs[i], data_root) for i in pending}
    for i, ref in refs.items():
        out[i] = ray.get(ref)
    return out
