"""Fixtures of the unit tests: an agent runtime over fakes."""

import pytest
from agent_support import close, runtime


@pytest.fixture
def machine(tmp_path):
    """``start(job, served, **agent)``: a runtime of machine 1 over fakes, closed at the end."""
    made = []

    def start(job, served, **agent):
        made.append(runtime(tmp_path, job, served, **agent))
        return made[-1]

    yield start
    for rt in made:
        close(rt)
