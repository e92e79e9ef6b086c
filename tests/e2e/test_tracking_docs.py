"""docs/tracking.md lists no metric or artifact that the session's real runs did not log.

The other direction (every name a run logs is listed) is checked in each end-to-end test right
after its run (tests/e2e/_logged_names.py). This test runs after all of them (conftest.py)."""

from __future__ import annotations

import pytest

from tests.e2e._logged_names import RUNS

pytestmark = pytest.mark.slow


def test_every_name_docs_tracking_lists_was_logged_by_a_real_run(logged_names):
    missing_runs = [label for label in RUNS if label not in logged_names.matched]
    if missing_runs:
        pytest.skip(f"needs every end-to-end run of the session (run tests/e2e whole); not checked: "
                    f"{', '.join(missing_runs)}")
    never = logged_names.never_logged()
    assert not never, ("docs/tracking.md lists names that none of the session's runs logged (remove them, or "
                       f"say when they are logged and add a run that does): {', '.join(never)}")
