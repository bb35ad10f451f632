"""Registry, timing helpers and report writers of the benchmark suite."""

from __future__ import annotations

import json
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class Result:
    name: str  # the hot path: import_…, locate_…, geocode_…, tile_…, export_…, heat_…
    unit: str  # what ``ours`` and ``peer`` count, higher is better (rows/s, req/s …)
    ours: float
    peer_name: str
    peer: float
    target_ratio: float  # the ratio ours/peer the issue asks for
    scale: str
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.ours / self.peer if self.peer else float("inf")

    @property
    def met(self) -> bool:
        return self.ratio >= self.target_ratio

    def as_dict(self) -> dict:
        return asdict(self) | {"ratio": round(self.ratio, 3), "met": self.met}


BENCHMARKS: dict[str, Callable[..., list[Result]]] = {}
#: The data set each benchmark runs on: "city" (the generated city-scale demo, realistic shapes
#: and addresses) or "synthetic" (8,700 rectangular grids and a generated address file, for the
#: import benchmark, which empties the address table it loads).
DATA: dict[str, str] = {}


def benchmark(name: str, *, data: str = "city"):
    """Register a benchmark function under ``name`` (it takes ``repeats`` and ``rows`` and
    returns Results) and the data set it needs."""

    def decorate(function: Callable[..., list[Result]]):
        BENCHMARKS[name] = function
        DATA[name] = data
        return function

    return decorate


def median_seconds(action: Callable[[], object], *, repeats: int, before: Callable[[], object] | None = None) -> float:
    """Median wall time of ``action`` over ``repeats`` runs; ``before`` runs untimed each time."""
    timings = []
    for _ in range(repeats):
        if before:
            before()
        start = time.perf_counter()
        action()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def machine() -> dict:
    cpu = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        cpu = next(
            (line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if "model name" in line), ""
        )
    import os

    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version()}


def _figure(value: float) -> str:
    """A figure for the table: whole numbers from 100 up, three significant digits below (a
    budget of 30 s is 0.0333 a second, not 0)."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def write_reports(results: list[Result], directory: Path) -> tuple[Path, Path]:
    """Write the results, keeping earlier rows of benchmarks this run did not measure, so that
    running one benchmark (or one data set) refreshes its rows and leaves the rest."""
    directory.mkdir(parents=True, exist_ok=True)
    json_path = directory / "results.json"
    measured = {r.name for r in results}
    if json_path.exists():
        earlier = [row for row in json.loads(json_path.read_text()) if row["name"] not in measured]
        fields = Result.__dataclass_fields__
        results = [Result(**{k: v for k, v in row.items() if k in fields}) for row in earlier] + results
    results = sorted(results, key=lambda r: r.name)
    json_path.write_text(json.dumps([r.as_dict() for r in results], indent=2, ensure_ascii=False) + "\n")
    lines = [
        "| benchmark | unit | ours | peer | peer value | ratio | target | met | scale |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.name} | {r.unit} | {_figure(r.ours)} | {r.peer_name} | {_figure(r.peer)} | {r.ratio:.2f}× | "
            f"≥ {r.target_ratio:,.4g}× | {'yes' if r.met else 'NO'} | {r.scale} |"
        )
    info = machine()
    lines.append("")
    lines.append(f"Machine: {info['cpu']}, {info['cores']} cores, Python {info['python']}. Medians of repeated runs.")
    notes = [f"- {r.name} vs {r.peer_name}: {r.note}" for r in results if r.note]
    if notes:
        lines += ["", *notes]
    md_path = directory / "results.md"
    md_path.write_text("\n".join(lines) + "\n")
    return json_path, md_path


def bench_reader(username: str, *, superuser: bool = False):
    """The benchmark's own user in the benchmark database: an analyst (who reads the whole city,
    as the peers do), or a superuser where the peer reads every field."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    user, _ = get_user_model().objects.get_or_create(username=username)
    if user.is_superuser != superuser:
        user.is_superuser = superuser
        user.save(update_fields=["is_superuser"])
    user.groups.add(Group.objects.get_or_create(name="analyst")[0])
    return user
