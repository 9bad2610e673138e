"""Autorun's scheduler: first in, first out, first fit of jobs' cores over a machine's slots."""

from services.agent.scheduler import Scheduler


def test_jobs_start_in_order_wherever_their_cores_fit():
    line = Scheduler(slots=4)
    for job_id, ncpus in [(1, 2), (2, 1), (3, 2), (4, 1)]:
        assert line.add(job_id, ncpus)
    assert line.pick() == ([1, 2, 4], [], [])
    assert line.used_cores == 4
    assert [j for j, _ in line.waiting] == [3]


def test_a_smaller_later_job_fills_cores_a_bigger_one_cannot_use():
    line = Scheduler(slots=4)
    line.add(1, 3)
    line.add(2, 2)
    line.add(3, 1)
    assert line.pick() == ([1, 3], [], [])
    assert line.release(1)
    assert line.pick() == ([2], [], [])
    assert not line.waiting and line.used_cores == 3


def test_a_job_bigger_than_the_machine_is_refused_and_others_go_on():
    line = Scheduler(slots=2)
    line.add(1, 3)
    line.add(2, 2)
    assert line.pick() == ([2], [(1, 3)], [])
    assert not line.waiting


def test_a_known_job_is_not_added_twice_and_ncpus_is_at_least_one():
    line = Scheduler(slots=2)
    assert line.add(1, None)
    assert not line.add(1, 1)
    assert line.pick() == ([1], [], [])
    assert not line.add(1, 1)
    assert line.active == {1: 1}
    assert line.add(2, 0) and line.waiting[-1] == (2, 1)


def test_held_cores_count_until_released():
    line = Scheduler(slots=2)
    line.hold(7, 2)
    line.add(1, 1)
    assert line.pick() == ([], [], [])
    assert line.release(7) and not line.release(7)
    assert line.pick() == ([1], [], [])


class Clock:
    """A clock the test moves by hand."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def short_line(slots=2, ahead=2):
    """A line whose machine has run one job of 0.1 s: its jobs count as short."""
    clock = Clock()
    line = Scheduler(slots=slots, ahead=ahead, clock=clock)
    line.add(99)
    line.pick()
    clock.now += 0.1
    line.release(99)
    return line, clock


def test_no_job_starts_early_before_the_machine_knows_its_jobs_are_short():
    line = Scheduler(slots=1, ahead=2)
    for job_id in (1, 2, 3):
        line.add(job_id)
    assert line.pick() == ([1], [], [])
    assert not line.short_jobs and line.early == {}


def test_short_jobs_start_early_up_to_ahead_and_get_their_cores_in_line():
    line, clock = short_line(slots=2, ahead=2)
    for job_id in (1, 2, 3, 4, 5):
        line.add(job_id)
    # Two hold the cores, two more are claimed and prepared early, one waits.
    assert line.pick() == ([1, 2, 3, 4], [], [])
    assert line.active == {1: 1, 2: 1} and line.early == {3: 1, 4: 1}
    assert [j for j, _ in line.waiting] == [5]
    assert not line.has_cores(3) and line.started(3) and not line.started(5)
    line.ask(4)
    line.ask(3)
    assert line.pick() == ([], [], [])
    # A core comes free: the first to ask gets it, and the waiting job starts early.
    clock.now += 0.1
    assert line.release(1)
    assert line.pick() == ([5], [], [4])
    assert line.has_cores(4) and line.early == {3: 1, 5: 1}
    assert list(line.asking) == [3]


def test_an_early_job_that_ends_unprepared_gives_its_place_back():
    line, _ = short_line(slots=1, ahead=1)
    line.add(1)
    line.add(2)
    assert line.pick() == ([1, 2], [], [])
    line.ask(2)
    # Its claim was refused, say: it leaves the line and the early start is free again.
    assert line.release(2)
    assert not line.asking and line.early == {}
    line.add(3)
    assert line.pick() == ([3], [], [])
    assert line.early == {3: 1}


def test_long_jobs_stop_early_starts():
    line, clock = short_line(slots=1, ahead=1)
    line.add(1)
    assert line.pick() == ([1], [], [])
    for _ in range(20):
        clock.now += 30
        line.release(1)
        line.add(1)
        line.pick()
    assert not line.short_jobs
    line.add(2)
    assert line.pick() == ([], [], []) and line.early == {}


def test_zero_ahead_never_starts_early():
    line, _ = short_line(slots=1, ahead=0)
    for job_id in (1, 2):
        line.add(job_id)
    assert line.pick() == ([1], [], [])
    assert line.early == {}


def test_a_job_holding_its_cores_long_stops_early_starts_until_it_ends():
    line, clock = short_line(slots=1, ahead=1)
    line.add(1)
    assert line.pick() == ([1], [], [])
    clock.now += 1.0
    # Job 1 runs on: no job is claimed early behind it (a throttle set now must hold).
    line.add(2)
    assert line.pick() == ([], [], []) and not line.short_jobs
    assert line.release(1)
    assert line.pick() == ([2], [], [])
