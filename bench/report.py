"""The results table (medians with min-max over repetitions, ratios) and the JSON file."""

from __future__ import annotations

import json
import math
import platform
from collections.abc import Sequence
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.scenarios import Block, Context, Run
from bench.stats import ratio, summarize

# metric -> (label, format of one value)
METRICS: dict[str, tuple[str, str]] = {
    "delivered_per_s": ("delivered msgs/s (all receivers)", "{:.0f}"),
    "acked_per_s": ("sent msgs/s (acked)", "{:.0f}"),
    "stored_per_s": ("stored msgs/s", "{:.0f}"),
    "requests_per_s": ("requests/s", "{:.0f}"),
    "p50_ms": ("p50 latency ms", "{:.1f}"),
    "p99_ms": ("p99 latency ms", "{:.1f}"),
    "max_ms": ("max latency ms", "{:.0f}"),
    "loss_pct": ("undelivered after drain %", "{:.2f}"),
    "lost": ("undelivered after drain", "{:.0f}"),
    "disconnects": ("disconnects", "{:.0f}"),
    "connect_failures": ("failed connects", "{:.0f}"),
    "errors": ("error frames/responses", "{:.0f}"),
    "unconfirmed": ("acked - stored rows", "{:.0f}"),
    "kib_per_conn": ("RSS KiB per connection", "{:.1f}"),
    "rss_before_mb": ("RSS before MiB", "{:.1f}"),
    "rss_after_mb": ("RSS after MiB", "{:.1f}"),
    "connected": ("connected", "{:.0f}"),
    "server_cpu_net_pct": ("server CPU % of a core above quiet", "{:.1f}"),
    "typing_sent": ("typing frames sent", "{:.0f}"),
    "typing_delivered_per_s": ("typing frames delivered/s", "{:.0f}"),
    "churn_connects_per_s": ("churned sockets opened/s", "{:.0f}"),
    "churn_failures": ("churned sockets that failed to open", "{:.0f}"),
    "server_cpu_us_per_delivery": ("server CPU us per delivery", "{:.1f}"),
    "connect_s": ("seconds to open the sockets", "{:.1f}"),
    "loadgen_cpu_pct": ("load generator CPU % of a core", "{:.0f}"),
    "server_cpu_pct": ("server CPU % of a core", "{:.0f}"),
    "other_cpu_pct": ("other processes CPU %", "{:.0f}"),
}


def summary(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """Median, min and max per (scenario, variant, server, metric) over the repetitions."""
    groups: dict[tuple[str, str, str, str], list[float]] = {}
    for run in runs:
        for metric, value in run.metrics.items():
            groups.setdefault((run.scenario, run.variant, run.server, metric), []).append(value)
    return [
        {
            "scenario": scenario,
            "variant": variant,
            "server": server,
            "metric": metric,
            "n": len(values),
            **summarize(values),
        }
        for (scenario, variant, server, metric), values in groups.items()
    ]


def _cell(stats: dict[str, Any] | None, fmt: str) -> str:
    if stats is None or math.isnan(stats["median"]):
        return "-"
    median, low, high = (fmt.format(stats[key]) for key in ("median", "min", "max"))
    return median if low == high else f"{median} ({low}-{high})"


def _ratio_cell(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.2f}"


def render_block(block: Block, stats: dict[tuple[str, str, str, str], dict[str, Any]]) -> str:
    header = ["metric", *block.columns, *(f"{a}/{b}" for a, b in block.ratios)]
    rows = [header]
    for metric in block.metrics:
        label, fmt = METRICS.get(metric, (metric, "{:.3g}"))
        found = [stats.get((block.scenario, block.variant, col, metric)) for col in block.columns]
        if all(cell is None for cell in found):
            continue
        row = [label, *(_cell(cell, fmt) for cell in found)]
        for a, b in block.ratios:
            num = stats.get((block.scenario, block.variant, a, metric))
            den = stats.get((block.scenario, block.variant, b, metric))
            value = ratio(num["median"], den["median"]) if num and den else math.nan
            row.append(_ratio_cell(value))
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [block.title]
    for number, row in enumerate(rows):
        cells = [
            row[0].ljust(widths[0]),
            *(c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)),
        ]
        lines.append("  " + "  ".join(cells))
        if number == 0:
            lines.append("  " + "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def render(ctx: Context) -> str:
    stats = {(s["scenario"], s["variant"], s["server"], s["metric"]): s for s in summary(ctx.runs)}
    parts = [render_block(block, stats) for block in ctx.blocks]
    parts.append(_load_note(ctx.runs))
    parts.append(
        "Cells: median (min-max) over repetitions. Ratios are of medians: above 1 means chat has"
        " more of it (better for rates, worse for latency, memory and loss)."
    )
    return "\n\n".join(parts)


def _load_note(runs: Sequence[Run]) -> str:
    """Say how busy the rest of the machine was: the figures assume it was idle."""
    own = [r.metrics["loadgen_cpu_pct"] for r in runs if "loadgen_cpu_pct" in r.metrics]
    other = [r.metrics["other_cpu_pct"] for r in runs if "other_cpu_pct" in r.metrics]
    if not other:
        return "Load generator CPU: see each table."
    own_stats, other_stats = summarize(own), summarize(other)
    note = (
        f"Load generator CPU over all runs: median {own_stats['median']:.0f} %, max"
        f" {own_stats['max']:.0f} % of a core. Other processes on the machine: median"
        f" {other_stats['median']:.0f} %, max {other_stats['max']:.0f} % of a core"
    )
    if other_stats["median"] > 25:
        note += " -- the machine was busy with other work: treat the figures as rough"
    return note + "."


def machine() -> dict[str, Any]:
    import psutil

    packages = ("websockets", "tornado", "uvicorn", "starlette", "sqlalchemy", "aiosqlite")
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": psutil.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        **{name: metadata.version(name) for name in packages},
    }


def write_json(ctx: Context, path: Path, extra: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        **extra,
        "machine": machine(),
        "options": asdict(ctx.options),
        "blocks": [asdict(block) for block in ctx.blocks],
        "summary": summary(ctx.runs),
        "runs": [asdict(run) for run in ctx.runs],
        "server_logs": ctx.server_logs,
    }
    path.write_text(json.dumps(_clean(document), indent=1, default=str) + "\n")


def _clean(value: Any) -> Any:
    """NaN is not JSON: write null instead."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: _clean(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(item) for item in value]
    return value
