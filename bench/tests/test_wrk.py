from __future__ import annotations

import pytest

from ev_bench.errors import BenchError
from ev_bench.wrk import INSTALL_HINT, parse, to_ms

OUTPUT = """\
Running 10s test @ http://127.0.0.1:8000/hello
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.21ms  510.00us  40.00ms   90.00%
    Req/Sec    14.20k     1.00k   15.00k    80.00%
  Latency Distribution
     50%    2.10ms
     75%    2.30ms
     90%    2.50ms
     99%    4.40ms
  142000 requests in 10.00s, 20.00MB read
Requests/sec:  14200.55
Transfer/sec:      2.00MB
"""


def test_parse_reads_rate_and_percentiles() -> None:
    result = parse(OUTPUT)
    assert result.requests_per_s == pytest.approx(14200.55)
    assert result.p50_ms == pytest.approx(2.10)
    assert result.p99_ms == pytest.approx(4.40)
    assert result.errors == 0


def test_parse_counts_failed_requests_and_socket_errors() -> None:
    output = OUTPUT.replace(
        "Requests/sec",
        "  Socket errors: connect 0, read 2, write 0, timeout 3\n"
        "  Non-2xx or 3xx responses: 5\nRequests/sec",
    )
    assert parse(output).errors == 10


def test_parse_converts_units() -> None:
    output = OUTPUT.replace("50%    2.10ms", "50%  850.00us")
    output = output.replace("99%    4.40ms", "99%    1.20s")
    result = parse(output)
    assert result.p50_ms == pytest.approx(0.85)
    assert result.p99_ms == pytest.approx(1200.0)


def test_parse_rejects_other_output() -> None:
    with pytest.raises(BenchError, match="unexpected wrk output"):
        parse("wrk: command failed")


def test_to_ms() -> None:
    assert to_ms("2", "m") == 120_000.0


def test_install_hint_names_the_debian_package() -> None:
    assert "apt-get install -y wrk" in INSTALL_HINT
