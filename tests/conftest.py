"""Shared pytest fixtures for cconv's test suite.

Makes tests/reference.py importable whatever pytest's import mode, gives each test that asks
for it a seeded random generator (`rng`), and puts cconv's thread count back to its default
after every test so that no test depends on another's set_num_threads call.
"""
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cconv  # noqa: E402


@pytest.fixture(autouse=True)
def default_threads():
    """Restore the default thread count (None = OpenMP's default) after each test."""
    yield
    cconv.set_num_threads(None)


@pytest.fixture
def rng():
    """A random generator with a fixed seed, so every run sees the same data."""
    return np.random.default_rng(20240611)
