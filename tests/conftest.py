"""Hypothesis profiles of the test suite.

``ci`` (the default): a few hundred generated inputs per parser, no deadline (timings are not asserted
in CI). ``deep`` (``pytest tests/unit --hypothesis-profile=deep``): 10,000 inputs per parser and
every input under one second (README, "Opt-in profiles").
"""

from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "deep",
    max_examples=10_000,
    deadline=1000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
settings.load_profile("ci")
