"""Fixtures for the conformance suite (see test_score_generate.py for how to run it)."""

import os

import pytest

import harness


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


# With MLKV_ALL_SKIPPED_EXIT_CODE set (as CTest does), a run in which every test skipped exits
# with that code, so that CTest reports the suite as skipped rather than passed.
_outcomes = {"passed": 0, "failed": 0, "skipped": 0}


def pytest_runtest_logreport(report):
    if report.when == "call" or report.outcome != "passed":
        _outcomes[report.outcome] = _outcomes.get(report.outcome, 0) + 1


def pytest_sessionfinish(session, exitstatus):
    code = os.environ.get("MLKV_ALL_SKIPPED_EXIT_CODE")
    if code and exitstatus == 0 and _outcomes["skipped"] and not _outcomes["passed"] \
            and not _outcomes["failed"]:
        session.exitstatus = int(code)
