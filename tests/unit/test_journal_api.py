"""Our own API's arithmetic: nearest-rank percentiles and the claim-wait histogram."""

from taskjournal.services.api_gateway.journal_api import claim_wait_ms, percentile
from taskjournal.shared.metrics import Registry


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


def test_a_histogram_counts_each_observation_in_every_bucket_at_or_above_it():
    registry = Registry()
    for seconds in (0.2, 3, 3):
        registry.histogram("wait", seconds, (1, 5), queue="q")
    text = registry.render()
    assert 'wait_bucket{le="1",queue="q"} 1.0' in text
    assert 'wait_bucket{le="5",queue="q"} 3.0' in text
    assert 'wait_bucket{le="+Inf",queue="q"} 3.0' in text
    assert 'wait_count{queue="q"} 3' in text and 'wait_sum{queue="q"} 6.2' in text
