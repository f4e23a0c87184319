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

try:
    import strideconv._core  # noqa: F401
except ImportError as exc:  # the source tree shadows the installed package, or none is installed
    raise ImportError(
        "strideconv's compiled core is not importable: install the package first "
        "(`pip install ./python` or `make -C python install`) and run pytest from the "
        "repository root, not `python -m pytest` inside python/"
    ) from exc
