"""The run as one Markdown table (figure, value, reference, ratio, target, met) and its notes.

One row per figure, numbered by the issue's stages; each target of the issue is judged once, in
:func:`ev_bench.report.targets`, and only shown here.
"""

from __future__ import annotations

from dataclasses import dataclass

from ev_bench.aggregate import AggregateFigures
from ev_bench.alarms import AlarmFigures
from ev_bench.api import ApiFigures
from ev_bench.catalogue import CatalogueFigures
from ev_bench.csv_export import CsvFigures
from ev_bench.ingest import IngestFigures
from ev_bench.latency import LatencyFigure
from ev_bench.memory import MemoryFigures
from ev_bench.profiling import format_entries
from ev_bench.report import E2E_TARGET_RATE, Results, targets
from ev_bench.simulator import SimulatorFigures
from ev_bench.stats import ratio


def _n(value: float | None, unit: str = "") -> str:
    return "-" if value is None else f"{value:,.0f}{unit}"


def _r(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _met(met: bool | None) -> str:
    return {True: "yes", False: "**no**", None: "-"}[met]


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the table; ``stage`` is the issue's numbering of the measurements."""

    stage: int
    figure: str
    value: str
    reference: str = ""
    ratio: str = ""
    goal: str = ""
    met: str = ""


def _ingest_rows(ing: IngestFigures, met: dict[str, bool | None]) -> list[Row]:
    reps = f"median of {len(ing.ceiling)}" if len(ing.ceiling) > 1 else "1 run"
    drain = "no-op pika drain, quorum queues, prefetch 1000, ack per 500"
    rows = [
        Row(1, f"{drain} ({ing.backlog:,} backlog, {reps})", _n(ing.ceiling_per_s, "/s")),
        Row(
            2,
            f"ev_consumer, 1 process ({reps})",
            _n(ing.consumer_per_s, "/s"),
            "drain ceiling",
            _r(ing.consumer_per_s / ing.ceiling_per_s),
            ">= 0.80",
            _met(met["ingest_ratio"]),
        ),
    ]
    if ing.two_consumers is not None:
        rows.append(
            Row(
                2,
                "ev_consumer, 2 processes",
                _n(ing.two_consumers, "/s"),
                "1 process",
                _r(ratio(ing.two_consumers, ing.consumer_per_s)),
                "> 1.00",
                _met(met["two_consumers"]),
            )
        )
    if ing.naive is not None:
        rows.append(
            Row(
                2,
                "naive consumer: validate, 1 Redis round trip, 1 ack per message; prefetch 100 "
                f"({ing.naive_backlog:,} backlog)",
                _n(ing.naive, "/s"),
                "drain ceiling",
                _r(ratio(ing.naive, ing.ceiling_per_s)),
            )
        )
    return rows


def _latency_rows(figures: list[LatencyFigure], met: dict[str, bool | None]) -> list[Row]:
    rows = []
    for index, fig in enumerate(figures):
        label = f"{fig.target_per_s:,.0f}/s"
        if index == 2 and len(figures) == 3:
            label += " (80% of ingest)"
        lat = fig.latency_ms
        value = "no samples"
        if lat is not None:
            value = f"p50 {lat.p50:.1f} / p99 {lat.p99:.1f} / max {lat.max:.1f} ms"
        if (stored := fig.stored_ms) is not None:
            value += f"; stored p50 {stored.p50:.1f} / p99 {stored.p99:.1f}"
        reference = ratio_text = ""
        if (broker := fig.broker_ms) is not None:
            reference = f"no-op consumer: p50 {broker.p50:.1f} / p99 {broker.p99:.1f} ms"
            if lat is not None:
                ratio_text = f"p99 {lat.p99 / broker.p99:.1f}x"
        is_target = fig.target_per_s == E2E_TARGET_RATE
        rows.append(
            Row(
                3,
                f"publish -> WebSocket push at {label}: achieved {fig.achieved_per_s:,.0f}/s, "
                f"{fig.watched} sensors watched, {0 if lat is None else lat.count:,} samples, "
                f"{fig.missing} missing",
                value,
                reference,
                ratio_text,
                goal="p99 <= 20 ms" if is_target else "",
                met=_met(met["e2e_p99_ms_2000"]) if is_target else "",
            )
        )
    return rows


def _api_rows(api: ApiFigures, met: dict[str, bool | None]) -> list[Row]:
    bare = api.results.get("bare")
    where = "server and wrk on separate cores" if api.pinned else "not pinned"
    titles = {
        "bare": f"bare FastAPI route (constant), wrk -c{api.connections}, {where}",
        "latest": "GET /sensor/{id}/{type} (latest)",
        "sensor": "GET /sensor/{id} (every type)",
        "history": "GET /sensor/{id}/history, 1,000 points",
    }
    rows = []
    for name, result in api.results.items():
        value = (
            f"{result.requests_per_s:,.0f} req/s, "
            f"p50 {result.p50_ms:.2f} / p99 {result.p99_ms:.2f} ms"
        )
        if name == "bare" or bare is None:
            rows.append(Row(4, titles[name], value))
            continue
        rps = result.requests_per_s / bare.requests_per_s
        p99 = result.p99_ms / bare.p99_ms
        is_target = name == "latest"
        rows.append(
            Row(
                4,
                titles[name],
                value,
                "bare route",
                f"{rps:.2f} (p99 {p99:.1f}x)",
                ">= 0.70, p99 <= 2x" if is_target else "",
                _met(met["api_latest"]) if is_target else "",
            )
        )
    return rows


def _memory_rows(mem: MemoryFigures, met: dict[str, bool | None]) -> list[Row]:
    exact = "yes" if mem.exact else "NO"
    return [
        Row(
            5,
            f"history bytes per reading ({mem.readings:,} readings of one sensor and type; "
            f"disordered + duplicated delivery stored identically: {exact})",
            f"{mem.history_bytes_per_reading:.2f} B",
            goal="<= 16 B, exact",
            met=_met(met["history_bytes_per_reading"]),
        ),
        Row(5, f"latest + summary per sensor ({mem.types} types)", f"{mem.sensor_bytes:,} B"),
    ]


def _simulator_rows(sim: SimulatorFigures, met: dict[str, bool | None]) -> list[Row]:
    return [
        Row(6, "bare pika publisher, no confirms, 1 process", _n(sim.bare_per_s, "/s")),
        Row(
            6,
            "simulator, every message confirmed, 1 process",
            _n(sim.one_process_per_s, "/s"),
            "bare publisher",
            _r(sim.one_process_per_s / sim.bare_per_s),
            ">= 0.70",
            _met(met["simulator_ratio"]),
        ),
        Row(
            6,
            "simulator, every message confirmed, 2 processes",
            _n(sim.two_processes_per_s, "/s"),
            "bare publisher",
            _r(sim.two_processes_per_s / sim.bare_per_s),
        ),
    ]


def _csv_rows(csv: CsvFigures, met: dict[str, bool | None]) -> list[Row]:
    return [
        Row(
            7,
            "raw read: HGETALL + decode every record (bench process)",
            _n(csv.ceiling_rows_per_s, " rows/s"),
        ),
        Row(
            7,
            f"GET history.csv, {csv.rows:,} readings of 4 types, streamed whole "
            f"({csv.bytes / 1e6:.0f} MB in {csv.seconds:.1f} s)",
            _n(csv.rows_per_s, " rows/s"),
            "raw read",
            _r(csv.rows_per_s / csv.ceiling_rows_per_s),
            ">= 200,000 rows/s",
            _met(met["csv_rows_per_s"]),
        ),
        Row(
            7,
            f"API RSS growth during the export (peak; {csv.rss_before_mb:.0f} MB before)",
            f"{csv.rss_growth_mb:.1f} MB",
            goal="< 50 MB",
            met=_met(met["csv_rss_growth_mb"]),
        ),
    ]


def _aggregate_rows(agg: AggregateFigures, met: dict[str, bool | None]) -> list[Row]:
    return [
        Row(
            8,
            "write script without rollups: server time per stored reading",
            f"{agg.write_us_without:.1f} µs",
        ),
        Row(
            8,
            "write script with rollups (1 min, 15 min): server time per stored reading",
            f"{agg.write_us_with:.1f} µs",
            "without",
            _r(agg.write_cost_ratio),
            "<= 1.25",
            _met(met["write_cost_ratio_with_rollups"]),
        ),
        Row(8, "raw read: HGETALL + decode the week (bench process)", f"{agg.raw_read_ms:.0f} ms"),
        Row(
            8,
            f"GET aggregate from every reading (no rollups), p50 of {len(agg.raw_latencies_ms)}",
            f"{agg.raw_p50_ms:.0f} ms",
        ),
        Row(
            8,
            f"GET aggregate, {agg.readings:,} readings into {agg.buckets} buckets through the "
            f"rollups, p99 of {len(agg.latencies_ms)} (p50 {agg.p50_ms:.0f} ms)",
            f"{agg.p99_ms:.0f} ms",
            "raw read",
            _r(agg.p99_ms / agg.raw_read_ms),
            "< 50 ms",
            _met(met["aggregate_7d_p99_ms"]),
        ),
    ]


def _alarm_rows(alarms: AlarmFigures, met: dict[str, bool | None]) -> list[Row]:
    without = sorted(alarms.without)[len(alarms.without) // 2]
    with_rules = sorted(alarms.with_rules)[len(alarms.with_rules) // 2]
    return [
        Row(
            10,
            "ingest, no alarm rules: consumer + Redis CPU per reading",
            f"{without * 1e6:.1f} µs",
        ),
        Row(
            10,
            f"ingest, 20 alarm rules ({alarms.transitions} episodes): CPU per reading",
            f"{with_rules * 1e6:.1f} µs",
            "no rules",
            _r(alarms.ratio),
            "<= 1.15",
            _met(met["alarm_ingest_ratio"]),
        ),
    ]


def _catalogue_rows(cat: CatalogueFigures, met: dict[str, bool | None]) -> list[Row]:
    health = cat.health_p99_ms
    return [
        Row(9, "GET /health through the same API (one Redis round trip), p99", f"{health:.1f} ms"),
        Row(
            9,
            f"GET sensors, page of 100 by id and by last seen, {cat.sensors:,} sensors x "
            f"{cat.types} types, p99 of {len(cat.page_ms)}",
            f"{cat.page_p99_ms:.1f} ms",
            "/health",
            _r(cat.page_p99_ms / health),
            "<= 20 ms",
            _met(met["catalogue_page_p99_ms"]),
        ),
        Row(
            9,
            f"GET sensors/count, plain and prefix + type + seen_after, p99 of {len(cat.count_ms)}",
            f"{cat.count_p99_ms:.1f} ms",
            "/health",
            _r(cat.count_p99_ms / health),
            "<= 50 ms",
            _met(met["catalogue_count_p99_ms"]),
        ),
        Row(
            9,
            "catalogue index memory per sensor and type",
            f"{cat.bytes_per_sensor_type:.1f} B",
            goal="<= 100 B",
            met=_met(met["catalogue_bytes_per_sensor_type"]),
        ),
    ]


def table(results: Results) -> str:
    """The run as one Markdown table: figure, value, reference, ratio, target, met."""
    met = {t.name: t.met for t in targets(results)}
    rows: list[Row] = []
    if results.ingest is not None:
        rows += _ingest_rows(results.ingest, met)
    rows += _latency_rows(results.latency, met)
    if results.api is not None:
        rows += _api_rows(results.api, met)
    if results.memory is not None:
        rows += _memory_rows(results.memory, met)
    if results.simulator is not None:
        rows += _simulator_rows(results.simulator, met)
    if results.csv is not None:
        rows += _csv_rows(results.csv, met)
    if results.aggregate is not None:
        rows += _aggregate_rows(results.aggregate, met)
    if results.catalogue is not None:
        rows += _catalogue_rows(results.catalogue, met)
    if results.alarms is not None:
        rows += _alarm_rows(results.alarms, met)
    lines = [
        f"{results.date}: {'; '.join(filter(None, [results.machine.line(), results.load_text()]))}",
        "",
        "| # | figure | value | reference (same run) | ratio | target | met |",
        "| --- | --- | ---: | --- | ---: | --- | --- |",
    ]
    lines += [
        f"| {r.stage} | {r.figure} | {r.value} | {r.reference} | {r.ratio} | {r.goal} | {r.met} |"
        for r in rows
    ]
    return "\n".join(lines)


def notes(results: Results) -> str:
    """Where the cores went during each drain, and Redis's time per write: the why of (1)-(2)."""
    ing = results.ingest
    if ing is None or not ing.cpu:
        return ""
    lines = ["Cores busy during each drain (1.0 = one core; from /proc):", ""]
    for name, shares in ing.cpu.items():
        script = ing.script_us.get(name)
        extra = "" if script is None else f"; Redis {script:.1f} us in the write script per reading"
        lines.append(f"- {name}: {shares.text()}{extra}")
    return "\n".join(lines)


def profiles_text(results: Results) -> str:
    return "\n\n".join(
        format_entries(f"profile: {name} (py-spy, share of samples)", entries)
        for name, entries in results.profiles.items()
        if entries
    )
