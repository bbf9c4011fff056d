"""aiostep 0.3.7, the release this project grew from, as a contender: installed by the benchmark
into a cache directory and run in a subprocess (``v037_run.py``), as it is a package named
``aiostep`` too and cannot be imported beside this project's.

``install()`` puts ``aiostep==0.3.7`` into ``benchmarks/.cache/aiostep-0.3.7`` (``pip install
--no-deps --target``), plus every dependency its METADATA declares (extras aside) that the
environment does not satisfy (absent, or a version outside 0.3.7's range, e.g. cachebox 5+ for
its ``cachebox<5``), and so on for theirs. ``timed()`` and ``heap()`` run the subprocess once.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from measure import HeapSample, Sample

VERSION = "0.3.7"
NAME = f"aiostep {VERSION} register_next_step"
FLOOR = "floor: aiogram echo handler"
CACHE = Path(__file__).resolve().with_name(".cache") / f"aiostep-{VERSION}"
WORKER = Path(__file__).resolve().with_name("v037_run.py")


class WorkerFailed(RuntimeError):
    """The 0.3.7 subprocess failed (a wrong dialog, an import error): its stderr says why."""


def _unsatisfied(target: Path) -> list[str]:
    """The requirements of the distributions in ``target`` (extras left out) that neither
    ``target`` nor this interpreter's path satisfies: what the subprocess would lack."""
    from packaging.requirements import Requirement

    search = [str(target), *sys.path]
    wanted: list[str] = []
    for dist in metadata.distributions(path=[str(target)]):
        for line in dist.requires or ():
            req = Requirement(line)
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue
            # the first one found is the one the subprocess imports (target comes first)
            found = next(iter(metadata.distributions(name=req.name, path=search)), None)
            if found is None or not req.specifier.contains(found.version, prereleases=True):
                wanted.append(f"{req.name}{req.specifier}")
    return sorted(set(wanted))


def install(cache: Path = CACHE) -> str | None:
    """Install 0.3.7 and what it lacks into ``cache`` unless it is there already; ``None`` when
    ready, else why not (no network, no such release...), for the report's row."""
    if (cache / "aiostep" / "__init__.py").exists():
        return None
    # into a directory of its own, renamed when complete: an interrupted install is never
    # mistaken for a finished one
    partial = cache.with_name(f"{cache.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        wanted, tried = [f"aiostep=={VERSION}"], set()
        while wanted:
            if tried.issuperset(wanted):
                return f"pip installed {', '.join(wanted)} but they still do not satisfy 0.3.7"
            tried.update(wanted)
            print(f"installing {' '.join(wanted)} into {cache}", file=sys.stderr)
            pip_args = ["--no-deps", "--quiet", "--disable-pip-version-check", "--target"]
            pip = subprocess.run(
                [sys.executable, "-m", "pip", "install", *pip_args, str(partial), *wanted],
                capture_output=True,
                text=True,
            )
            if pip.returncode != 0:
                lines = [ln for ln in pip.stderr.splitlines() if ln.strip()]
                why = lines[-1].strip() if lines else f"exit status {pip.returncode}"
                return f"not installed (pip install {' '.join(wanted)}: {why})"
            wanted = _unsatisfied(partial)
        cache.parent.mkdir(parents=True, exist_ok=True)
        try:
            partial.rename(cache)
        except OSError:
            if not (cache / "aiostep" / "__init__.py").exists():  # not a parallel run's
                raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return None


def _run(mode: str, users: int) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, str(WORKER), str(CACHE), mode, "--users", str(users)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise WorkerFailed(f"{WORKER.name} {mode} failed:\n{proc.stderr.strip()}")
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


@dataclass
class TimedPair:
    """One subprocess run: the echo floor and 0.3.7, each timed once, and the versions that
    ran (0.3.7's pinned dependencies may differ from this environment's)."""

    floor: Sample
    v037: Sample
    versions: dict[str, str]


def timed(users: int) -> TimedPair:
    """Time the floor and 0.3.7 over ``users`` interleaved users, in one new subprocess."""
    out = _run("time", users)
    return TimedPair(Sample(**out[FLOOR]), Sample(**out[NAME]), out["versions"])


def heap(users: int) -> HeapSample:
    """0.3.7's heap per paused and per finished conversation (``measure.heap_run``)."""
    return HeapSample(**_run("heap", users)[NAME])
