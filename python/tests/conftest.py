"""Shared test setup: the reference module on the path, hypothesis profiles."""

import os
import sys

from hypothesis import HealthCheck, settings

sys.path.insert(0, os.path.dirname(__file__))

# "default" keeps the suite to a couple of minutes on two cores; "thorough" for long runs:
#   HYPOTHESIS_PROFILE=thorough pytest python/tests
settings.register_profile(
    "default", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
