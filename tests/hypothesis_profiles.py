"""Hypothesis settings profiles for cconv's property-based tests (imported by those test files).

    ci       (default) 80 examples per @given test: 400 over the five tests of
             test_properties.py (about 2 s), derandomized (the same examples every run, so CI
             is reproducible) and without a saved database.
    nightly  2,000 examples per test: 10,000 in all (about 25 s on 2 cores), freshly random on
             every run, failures saved in .hypothesis/ and replayed first on the next run.
    sanitize a quarter of ci's examples, derandomized: for the run under AddressSanitizer
             (tools/sanitize.sh), whose instrumented kernels are several times slower; the
             ordinary run covers the rest.

Tests that set their own example count take it through examples(n), which scales it likewise.

Select one with the environment variable CCONV_HYPOTHESIS_PROFILE, e.g.
`CCONV_HYPOTHESIS_PROFILE=nightly pytest tests/test_properties.py --hypothesis-show-statistics`.
"""
import os

from hypothesis import HealthCheck, settings

PROFILE_ENV = "CCONV_HYPOTHESIS_PROFILE"

# The autouse thread-count fixture in conftest.py is function scoped; it only restores a default
# after the whole test, which is harmless across examples.
_COMMON = dict(deadline=None, print_blob=True,
               suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

settings.register_profile("ci", max_examples=80, derandomize=True, database=None, **_COMMON)
settings.register_profile("nightly", max_examples=2000, **_COMMON)
settings.register_profile("sanitize", max_examples=20, derandomize=True, database=None, **_COMMON)
_SCALE = {"ci": 1.0, "nightly": 25.0, "sanitize": 0.25}

PROFILE = os.environ.get(PROFILE_ENV, "ci")
settings.load_profile(PROFILE)


def examples(n):
    """The example count of a test that asks for n under the 'ci' profile, in the profile loaded."""
    return max(5, round(n * _SCALE.get(PROFILE, 1.0)))
