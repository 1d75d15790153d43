"""The benchmark CLI measures every client and counts connections right.

It asserts what was counted, never how fast anything was.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from microrequests import _bench
from microrequests._loopback import LoopbackServer


def _rows(output: str) -> dict[str, list[str]]:
    names = ("urllib3.PoolManager", "requests.get (unpooled)", "requests.Session",
             "microrequests.init()", "httpx.Client")  # fmt: skip
    rows = {}
    for line in output.splitlines():
        for name in names:
            if line.startswith(name):
                rows[name] = line[len(name) :].split()
    return rows


def _bench_cli(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "microrequests", "bench", "--rounds", "2", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


def test_cli_compares_every_client_and_plots(tmp_path: Path) -> None:
    png = tmp_path / "bench.png"
    result = _bench_cli("--requests", "100", "--env-vars", "350", "--plot", str(png))
    rows = _rows(result.stdout)
    assert len(rows) == 5, result.stdout
    # p50, p99, req/s, connections, ratio; warm-up is 20 requests per client.
    assert rows["microrequests.init()"][3] == "1"
    assert rows["requests.Session"][3] == "1"
    assert rows["urllib3.PoolManager"][3] == "1"
    assert rows["requests.get (unpooled)"][3] == "120"
    assert rows["urllib3.PoolManager"][4] == "1.00x"
    assert re.search(r"\b3[89]\d environment variables", result.stdout), result.stdout
    assert "round 2/2" in result.stderr  # progress while it runs
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_threads_and_tls() -> None:
    result = _bench_cli("--requests", "80", "--threads", "4", "--tls")
    rows = _rows(result.stdout)
    assert "HTTPS" in result.stdout
    assert 1 <= int(rows["microrequests.init()"][3]) <= 4  # at most one per thread
    assert int(rows["requests.get (unpooled)"][3]) == 20 + 80


def test_measuring_a_given_url_counts_our_connections_with_stats() -> None:
    with LoopbackServer() as server:
        rows, _ = _bench.run(server.url + "/x", requests_per_client=40, rounds=2, progress=print)
        served = server.stats().requests
    by_name = {r.client: r for r in rows}
    assert by_name["microrequests.init()"].connections == 1  # from stats()
    assert by_name["requests.Session"].connections is None  # nobody counted those
    assert served == 5 * (20 + 40)
    assert "-" in _bench.table(rows)


def test_environment_variables_are_added_and_removed() -> None:
    before = dict(os.environ)
    with _bench._environment_variables(385):
        assert len(os.environ) == len(before) + 385
    assert dict(os.environ) == before
