"""Fixtures for the conformance suite (see test_score_generate.py for how to run it)."""

import os
import sys

import pytest

import harness

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from all_skipped_hooks import (  # noqa: E402,F401  (pytest finds hooks by name here)
    pytest_collectreport, pytest_runtest_logreport, pytest_sessionfinish)


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    """The session's random models (made once each with `mlkv random-model`)."""
    harness.mlkv_bin()  # skip early, with the message, when the CLI is not there
    return harness.ModelStore(tmp_path_factory)


@pytest.fixture(scope="session")
def small_model(tmp_path_factory):
    """A small MLKV model for the bad-input tests: 4 layers x 4 heads, 2 KV layers x 2 heads."""
    harness.mlkv_bin()
    cfg = dict(harness.BASE_CONFIG, hidden_size=64, num_attention_heads=4, num_hidden_layers=4,
               intermediate_size=128, vocab_size=256, num_key_value_heads=2,
               num_key_value_layers=2)
    out = os.path.join(str(tmp_path_factory.mktemp("small")), "model")
    return harness.random_model(out, cfg, seed=7)
