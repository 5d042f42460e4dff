"""The circuit breaker around pattern retrieval: its three states, by hand, with an injected clock."""

from dualhrq.patterns.breaker import BreakerConfig, BreakerState, CircuitBreaker


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_breaker_states_by_hand():
    clock = FakeClock()
    br = CircuitBreaker(BreakerConfig(failure_threshold=2, cooldown_s=10), clock)
    assert br.state is BreakerState.CLOSED
    br.failure()
    assert br.state is BreakerState.CLOSED  # one failure in a row < threshold
    br.success()
    br.failure()
    assert br.state is BreakerState.CLOSED  # the success reset the count
    br.failure()
    assert br.state is BreakerState.OPEN and not br.allow()
    clock.now = 9.9
    assert br.state is BreakerState.OPEN
    clock.now = 10.0
    assert br.state is BreakerState.HALF_OPEN and br.allow()
    br.failure()  # the half-open trial failed: open again, for a new cool-down
    assert br.state is BreakerState.OPEN and br.trips == 2
    clock.now = 20.0
    br.success()
    assert br.state is BreakerState.CLOSED
