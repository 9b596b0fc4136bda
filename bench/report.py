"""What a benchmark run measured: each TalIA figure beside its floor and their ratio, as a table and JSON.

A floor is the same work done the barest way on the same stack in the same run (a raw SQL query on the
same tables, the crawler without the indexer...), so the ratio says how much TalIA adds, whatever the
machine. Each row carries the load average when it was taken: on a shared machine, read it first.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def p(samples: list[float], share: float) -> float:
    """The `share` percentile (0.5, 0.99...) of `samples`, nearest rank."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def latency(samples_ms: list[float]) -> dict[str, float]:
    return {
        "n": len(samples_ms),
        "p50_ms": round(statistics.median(samples_ms), 3),
        "p95_ms": round(p(samples_ms, 0.95), 3),
        "p99_ms": round(p(samples_ms, 0.99), 3),
        "max_ms": round(max(samples_ms), 3),
    }


@dataclass
class Row:
    scenario: str
    work: str
    talia: str  # the figure as printed
    floor: str = ""  # the floor's figure as printed ("" when there is none)
    ratio: float | None = None  # TalIA / floor for times, floor / TalIA for rates: >1 means slower
    figures: dict[str, object] = field(default_factory=dict)  # the raw numbers, for the JSON
    load: tuple[float, float, float] = field(default_factory=os.getloadavg)


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    started: float = field(default_factory=time.time)

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        ratio = f"{row.ratio:.1f}×" if row.ratio is not None else ""
        print(f"  {row.work:<52} {row.talia:<34} {row.floor:<34} {ratio}", flush=True)
        return row

    def table(self) -> str:
        lines = [
            "| scenario | work | TalIA | floor, same run | ratio | load (1 min) |",
            "|---|---|---|---|---|---|",
        ]
        for row in self.rows:
            ratio = f"{row.ratio:.1f}×" if row.ratio is not None else ""
            lines.append(f"| {row.scenario} | {row.work} | {row.talia} | {row.floor} | {ratio} | {row.load[0]:.2f} |")
        return "\n".join(lines)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started)),
            "seconds": round(time.time() - self.started, 1),
            "commit": _commit(),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "system": platform.platform()},
            "load_at_end": os.getloadavg(),
            "rows": [asdict(row) for row in self.rows],
        }
        path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def ms(figures: dict[str, float]) -> str:
    """ "p50 1.23 ms, p99 4.56 ms" from `latency()` figures."""
    return f"p50 {figures['p50_ms']:.2f} ms, p99 {figures['p99_ms']:.2f} ms"
