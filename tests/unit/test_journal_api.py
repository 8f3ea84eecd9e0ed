"""Our own API's arithmetic: nearest-rank percentiles and claim waits."""

from taskjournal.services.api_gateway.journal_api import claim_wait_ms, percentile


def test_percentiles_are_nearest_rank():
    waits = list(range(10, 1010, 10))  # 100 values: 10, 20, ... 1000
    assert (percentile(waits, 50), percentile(waits, 95), percentile(waits, 99)) == (500, 950, 990)
    assert percentile([7], 50) == percentile([7], 99) == 7
    assert percentile([1, 2, 3], 50) == 2 and percentile([1, 2, 3], 95) == 3
    assert percentile([], 50) is None


def test_a_claim_wait_is_started_minus_the_runs_scheduled():
    status = '{"runs": [{"scheduled": "2026-01-01T00:00:00.000Z"}, {"scheduled": "2026-01-01T00:00:01.000Z"}]}'
    started = 1767225601000 + 250  # 2026-01-01T00:00:01.250Z
    assert claim_wait_ms({"run_id": 1, "status": status, "started": started}) == 250
