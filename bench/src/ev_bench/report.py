"""The run's figures: the targets judged, one flat JSON object, and a dated docs row.

Absolute numbers are for context; the ratios to ceilings measured in the same run are the figures
to compare across runs and machines. Each target of the issue is checked here, once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ev_bench.aggregate import AggregateFigures
from ev_bench.alarms import AlarmFigures
from ev_bench.api import ApiFigures
from ev_bench.catalogue import CatalogueFigures
from ev_bench.csv_export import CsvFigures
from ev_bench.ingest import IngestFigures
from ev_bench.latency import LatencyFigure
from ev_bench.machine import Machine
from ev_bench.memory import MemoryFigures
from ev_bench.profiling import Entry
from ev_bench.simulator import SimulatorFigures

HISTORY_HEADING = "## Run history"
HISTORY_HEADER = (
    "| date (UTC) | machine | drain ceiling /s | ev_consumer /s (ratio) | 2 consumers /s "
    "| naive /s | e2e p99 @2,000/s | API latest req/s ratio (p99 ratio) | history B/reading "
    "| simulator confirmed /s (ratio) |\n"
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
)
E2E_TARGET_RATE = 2000.0
#: The keys the issue asks for; always in the JSON, null when their stage did not run.
REQUIRED_KEYS = (
    "ingest_ratio",
    "ingest_per_s",
    "ceiling_per_s",
    "e2e_p99_ms_2000",
    "api_latest_ratio",
    "api_latest_p99_ms",
    "history_bytes_per_reading",
    "simulator_confirmed_per_s",
    "csv_rows_per_s",
    "csv_rss_growth_mb",
    "aggregate_7d_p99_ms",
    "write_cost_ratio_with_rollups",
    "catalogue_page_p99_ms",
    "catalogue_count_p99_ms",
    "catalogue_bytes_per_sensor_type",
    "alarm_ingest_ratio",
)


@dataclass
class Results:
    """Everything one run measured; a stage that was skipped stays None."""

    date: str
    machine: Machine
    ingest: IngestFigures | None = None
    latency: list[LatencyFigure] = field(default_factory=list)
    api: ApiFigures | None = None
    memory: MemoryFigures | None = None
    simulator: SimulatorFigures | None = None
    csv: CsvFigures | None = None
    aggregate: AggregateFigures | None = None
    catalogue: CatalogueFigures | None = None
    alarms: AlarmFigures | None = None
    profiles: dict[str, list[Entry]] = field(default_factory=dict)
    #: 1-minute load average when the run started and ended: other work on the machine.
    load: tuple[float, float] | None = None

    def load_text(self) -> str:
        if self.load is None:
            return ""
        return f"load average {self.load[0]:.1f} at start, {self.load[1]:.1f} at end"

    def latency_at(self, per_s: float) -> LatencyFigure | None:
        for figure in self.latency:
            if figure.target_per_s == per_s:
                return figure
        return None


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    goal: str
    met: bool | None  # None: not measured in this run


def targets(results: Results) -> list[Target]:
    """The issue's targets, checked against this run."""
    found: list[Target] = []
    ingest = results.ingest
    found.append(
        Target(
            "ingest_ratio",
            "ev_consumer / no-op drain >= 0.80",
            None if ingest is None else ingest.consumer_per_s / ingest.ceiling_per_s >= 0.80,
        )
    )
    two = None if ingest is None or ingest.two_consumers is None else ingest.two_consumers
    found.append(
        Target(
            "two_consumers",
            "2 consumers > 1 (or the 2-core limit explained)",
            None if two is None or ingest is None else two > ingest.consumer_per_s,
        )
    )
    at_2000 = results.latency_at(E2E_TARGET_RATE)
    p99 = None if at_2000 is None or at_2000.latency_ms is None else at_2000.latency_ms.p99
    found.append(
        Target(
            "e2e_p99_ms_2000",
            "publish -> WS push p99 at 2,000/s <= 20 ms",
            None if p99 is None else p99 <= 20.0,
        )
    )
    latest_ok = None
    if results.api is not None and {"bare", "latest"} <= results.api.results.keys():
        bare, latest = results.api.results["bare"], results.api.results["latest"]
        latest_ok = (
            latest.requests_per_s >= 0.70 * bare.requests_per_s and latest.p99_ms <= 2 * bare.p99_ms
        )
    found.append(
        Target("api_latest", "GET latest / bare route req/s >= 0.70, p99 <= 2x", latest_ok)
    )
    memory = results.memory
    found.append(
        Target(
            "history_bytes_per_reading",
            "<= 16 B per reading, exact under disorder and duplicates",
            None if memory is None else memory.history_bytes_per_reading <= 16 and memory.exact,
        )
    )
    sim = results.simulator
    found.append(
        Target(
            "simulator_ratio",
            "simulator confirmed / bare pika without confirms >= 0.70",
            None if sim is None else sim.one_process_per_s >= 0.70 * sim.bare_per_s,
        )
    )
    csv = results.csv
    found.append(
        Target(
            "csv_rows_per_s",
            "CSV export of 1,000,000 readings >= 200,000 rows/s",
            None if csv is None else csv.rows >= 1_000_000 and csv.rows_per_s >= 200_000,
        )
    )
    found.append(
        Target(
            "csv_rss_growth_mb",
            "API RSS growth during that export < 50 MB",
            None if csv is None else csv.rss_growth_mb < 50,
        )
    )
    agg = results.aggregate
    found.append(
        Target(
            "aggregate_7d_p99_ms",
            "aggregate of 7 days at 1 Hz into <= 1,000 buckets, p99 < 50 ms",
            None if agg is None else agg.p99_ms < 50,
        )
    )
    found.append(
        Target(
            "write_cost_ratio_with_rollups",
            "rollups cost <= 25% more Redis time per stored reading",
            None if agg is None else agg.write_cost_ratio <= 1.25,
        )
    )
    cat = results.catalogue
    found += [
        Target(
            "catalogue_page_p99_ms",
            "catalogue page of 100 (100,000 sensors x 3 types), p99 <= 20 ms",
            None if cat is None else cat.page_p99_ms <= 20,
        ),
        Target(
            "catalogue_count_p99_ms",
            "catalogue count (plain and prefix + type + seen_after), p99 <= 50 ms",
            None if cat is None else cat.count_p99_ms <= 50,
        ),
        Target(
            "catalogue_bytes_per_sensor_type",
            "catalogue index <= 100 B per sensor and type",
            None if cat is None else cat.bytes_per_sensor_type <= 100,
        ),
    ]
    alarms = results.alarms
    found.append(
        Target(
            "alarm_ingest_ratio",
            "ingest CPU per reading with 20 alarm rules / without <= 1.15",
            None if alarms is None else alarms.ratio <= 1.15,
        )
    )
    return found


def _put(out: dict[str, Any], key: str, value: Any, digits: int = 3) -> None:
    out[key] = round(value, digits) if isinstance(value, float) else value


def as_json(results: Results) -> dict[str, Any]:
    """One flat object; the keys the issue names are always present (null when not measured)."""
    out: dict[str, Any] = {"date": results.date, "machine": results.machine.as_dict()}
    out["load_average"] = None if results.load is None else list(results.load)
    for key in REQUIRED_KEYS:
        out[key] = None
    ing = results.ingest
    if (ingest := ing) is not None:
        _put(out, "ceiling_per_s", ingest.ceiling_per_s, 0)
        _put(out, "ingest_per_s", ingest.consumer_per_s, 0)
        _put(out, "ingest_ratio", ingest.consumer_per_s / ingest.ceiling_per_s)
        out["ceiling_runs_per_s"] = [round(v) for v in ingest.ceiling]
        out["ingest_runs_per_s"] = [round(v) for v in ingest.consumer]
        out["ingest_run_ratios"] = [round(v, 3) for v in ingest.ratios]
        out["backlog"] = ingest.backlog
        out["bare_publish_runs_per_s"] = [round(v) for v in ingest.bare_publish]
        if ingest.two_consumers is not None:
            _put(out, "ingest_2proc_per_s", ingest.two_consumers, 0)
            _put(out, "ingest_2proc_vs_1", ingest.two_consumers / ingest.consumer_per_s)
        if ingest.naive is not None:
            _put(out, "naive_per_s", ingest.naive, 0)
            _put(out, "naive_ratio", ingest.naive / ingest.ceiling_per_s)
            out["naive_backlog"] = ingest.naive_backlog
    for index, figure in enumerate(results.latency):
        tag = f"{figure.target_per_s:.0f}"
        if index == 2 and len(results.latency) == 3:
            tag = "80pct"
            _put(out, "e2e_rate_80pct", figure.target_per_s, 0)
        _put(out, f"e2e_achieved_per_s_{tag}", figure.achieved_per_s, 0)
        out[f"e2e_missing_{tag}"] = figure.missing
        if figure.latency_ms is not None:
            _put(out, f"e2e_p50_ms_{tag}", figure.latency_ms.p50)
            _put(out, f"e2e_p99_ms_{tag}", figure.latency_ms.p99)
            _put(out, f"e2e_max_ms_{tag}", figure.latency_ms.max)
            out[f"e2e_samples_{tag}"] = figure.latency_ms.count
        if figure.stored_ms is not None:
            _put(out, f"e2e_stored_p50_ms_{tag}", figure.stored_ms.p50)
            _put(out, f"e2e_stored_p99_ms_{tag}", figure.stored_ms.p99)
        if figure.cpu is not None:
            out[f"e2e_cpu_{tag}"] = {k: round(v, 3) for k, v in figure.cpu.shares.items()}
        if figure.broker_ms is not None:
            _put(out, f"e2e_broker_p50_ms_{tag}", figure.broker_ms.p50)
            _put(out, f"e2e_broker_p99_ms_{tag}", figure.broker_ms.p99)
    if results.api is not None:
        bare = results.api.results.get("bare")
        for name, result in results.api.results.items():
            _put(out, f"api_{name}_rps", result.requests_per_s, 0)
            _put(out, f"api_{name}_p50_ms", result.p50_ms)
            _put(out, f"api_{name}_p99_ms", result.p99_ms)
            if bare is not None and name != "bare":
                _put(out, f"api_{name}_ratio", result.requests_per_s / bare.requests_per_s)
                _put(out, f"api_{name}_p99_ratio", result.p99_ms / bare.p99_ms)
        out["api_connections"] = results.api.connections
        out["api_pinned"] = results.api.pinned
    if (memory := results.memory) is not None:
        _put(out, "history_bytes_per_reading", memory.history_bytes_per_reading, 2)
        out["history_readings"] = memory.readings
        out["history_exact"] = memory.exact
        out["sensor_latest_summary_bytes"] = memory.sensor_bytes
        _put(out, "storage_writes_per_s", memory.writes_per_s, 0)
    if (sim := results.simulator) is not None:
        _put(out, "simulator_confirmed_per_s", sim.one_process_per_s, 0)
        _put(out, "simulator_confirmed_2proc_per_s", sim.two_processes_per_s, 0)
        _put(out, "simulator_bare_per_s", sim.bare_per_s, 0)
        _put(out, "simulator_ratio", sim.one_process_per_s / sim.bare_per_s)
    if (csv := results.csv) is not None:
        out["csv_rows"] = csv.rows
        _put(out, "csv_seconds", csv.seconds)
        _put(out, "csv_bytes", csv.bytes, 0)
        _put(out, "csv_rows_per_s", csv.rows_per_s, 0)
        _put(out, "csv_rss_growth_mb", csv.rss_growth_mb, 1)
        _put(out, "csv_rss_before_mb", csv.rss_before_mb, 1)
        _put(out, "csv_raw_read_rows_per_s", csv.ceiling_rows_per_s, 0)
        _put(out, "csv_ratio", csv.rows_per_s / csv.ceiling_rows_per_s)
    if (agg := results.aggregate) is not None:
        _put(out, "aggregate_7d_p99_ms", agg.p99_ms, 1)
        _put(out, "aggregate_7d_p50_ms", agg.p50_ms, 1)
        out["aggregate_readings"] = agg.readings
        out["aggregate_buckets"] = agg.buckets
        out["aggregate_requests"] = len(agg.latencies_ms)
        _put(out, "aggregate_raw_read_ms", agg.raw_read_ms, 1)
        _put(out, "aggregate_7d_raw_p50_ms", agg.raw_p50_ms, 1)
        _put(out, "write_cost_ratio_with_rollups", agg.write_cost_ratio)
        _put(out, "write_us_per_reading_with_rollups", agg.write_us_with, 2)
        _put(out, "write_us_per_reading_without_rollups", agg.write_us_without, 2)
    if (cat := results.catalogue) is not None:
        _put(out, "catalogue_page_p99_ms", cat.page_p99_ms, 1)
        _put(out, "catalogue_count_p99_ms", cat.count_p99_ms, 1)
        _put(out, "catalogue_bytes_per_sensor_type", cat.bytes_per_sensor_type, 1)
        _put(out, "catalogue_health_p99_ms", cat.health_p99_ms, 2)
        out["catalogue_sensors"] = cat.sensors
        out["catalogue_requests"] = len(cat.page_ms) + len(cat.count_ms)
    if (alarms := results.alarms) is not None:
        _put(out, "alarm_ingest_ratio", alarms.ratio)
        out["alarm_cpu_us_per_reading_without"] = [round(v * 1e6, 2) for v in alarms.without]
        out["alarm_cpu_us_per_reading_with"] = [round(v * 1e6, 2) for v in alarms.with_rules]
        out["alarm_ingest_per_s_without"] = [round(v) for v in alarms.rates_without]
        out["alarm_ingest_per_s_with"] = [round(v) for v in alarms.rates_with]
        out["alarm_episodes"] = alarms.transitions
    if ing is not None:
        out["cpu"] = {
            name: {group: round(share, 3) for group, share in shares.shares.items()}
            for name, shares in ing.cpu.items()
        }
        out["redis_us_per_write"] = {name: round(us, 1) for name, us in ing.script_us.items()}
    out["targets"] = {t.name: {"goal": t.goal, "met": t.met} for t in targets(results)}
    out["profiles"] = {
        name: [
            {"function": e.frame, "self": round(e.self_share, 4), "total": round(e.total_share, 4)}
            for e in entries
        ]
        for name, entries in results.profiles.items()
    }
    return out


def _n(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def history_row(results: Results) -> str:
    """The run's one-line summary for the run history of docs/benchmarks.md."""
    ing, api, mem, sim = results.ingest, results.api, results.memory, results.simulator
    at_2000 = results.latency_at(E2E_TARGET_RATE)
    p99 = None if at_2000 is None or at_2000.latency_ms is None else at_2000.latency_ms.p99
    latest = "-"
    if api is not None and {"bare", "latest"} <= api.results.keys():
        bare, got = api.results["bare"], api.results["latest"]
        latest = f"{got.requests_per_s / bare.requests_per_s:.2f} ({got.p99_ms / bare.p99_ms:.1f}x)"
    ingest = "-"
    if ing is not None:
        ingest = f"{ing.consumer_per_s:,.0f} ({ing.consumer_per_s / ing.ceiling_per_s:.2f})"
    simulator = "-"
    if sim is not None:
        simulator = f"{sim.one_process_per_s:,.0f} ({sim.one_process_per_s / sim.bare_per_s:.2f})"
    cells = [
        results.date,
        "; ".join(filter(None, [results.machine.line(), results.load_text()])),
        _n(None if ing is None else ing.ceiling_per_s),
        ingest,
        _n(None if ing is None else ing.two_consumers),
        _n(None if ing is None else ing.naive),
        "-" if p99 is None else f"{p99:.1f} ms",
        latest,
        "-" if mem is None else f"{mem.history_bytes_per_reading:.2f}",
        simulator,
    ]
    return "| " + " | ".join(cells) + " |"


def append_history(path: Path, row: str) -> None:
    """Append ``row`` to the run history table that ends ``path`` (made if missing)."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    lines = text.rstrip("\n").splitlines()
    if not lines or not lines[-1].startswith("|"):
        text = text.rstrip("\n") + f"\n\n{HISTORY_HEADING}\n\n{HISTORY_HEADER}\n"
    else:
        text = text.rstrip("\n") + "\n"
    path.write_text(text + row + "\n", encoding="utf-8")
