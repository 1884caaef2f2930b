"""pytest hooks every Python suite's conftest.py re-exports: with MLKV_ALL_SKIPPED_EXIT_CODE set
(as CTest does), a run in which every test skipped (no grpcio, no stubs, no binary, no reference
library) exits with that code, so that CTest reports the suite as skipped rather than passed."""
import os

_outcomes = {"passed": 0, "failed": 0, "skipped": 0}


def pytest_runtest_logreport(report):
    if report.when == "call" or report.skipped:
        if report.skipped:
            _outcomes["skipped"] += 1
        elif report.passed:
            _outcomes["passed"] += 1
        else:
            _outcomes["failed"] += 1
    elif report.failed:  # a failing fixture
        _outcomes["failed"] += 1


def pytest_collectreport(report):
    # A module-level skip (no grpcio, no stubs) happens at collection.
    if report.skipped:
        _outcomes["skipped"] += 1


def pytest_sessionfinish(session, exitstatus):
    code = os.environ.get("MLKV_ALL_SKIPPED_EXIT_CODE")
    # 5: nothing was collected, which is what a module-level skip leaves.
    nothing_ran = not _outcomes["passed"] and not _outcomes["failed"]
    if code and exitstatus in (0, 5) and _outcomes["skipped"] and nothing_ran:
        session.exitstatus = int(code)
