"""pytest setup for the load generator's integration tests: the shared hooks that report a run
whose every test skipped (no grpcio, stubs or binaries) to CTest as skipped."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from all_skipped_hooks import (  # noqa: E402,F401  (pytest finds hooks by name here)
    pytest_collectreport, pytest_runtest_logreport, pytest_sessionfinish)
