"""Autorun's scheduler: first in, first out, first fit of jobs' cores over a machine's slots."""

from services.agent.scheduler import Scheduler


def test_jobs_start_in_order_wherever_their_cores_fit():
    line = Scheduler(slots=4)
    for job_id, ncpus in [(1, 2), (2, 1), (3, 2), (4, 1)]:
        assert line.add(job_id, ncpus)
    assert line.pick() == ([1, 2, 4], [])
    assert line.used_cores == 4
    assert [j for j, _ in line.waiting] == [3]


def test_a_smaller_later_job_fills_cores_a_bigger_one_cannot_use():
    line = Scheduler(slots=4)
    line.add(1, 3)
    line.add(2, 2)
    line.add(3, 1)
    assert line.pick() == ([1, 3], [])
    assert line.release(1)
    assert line.pick() == ([2], [])
    assert not line.waiting and line.used_cores == 3


def test_a_job_bigger_than_the_machine_is_refused_and_others_go_on():
    line = Scheduler(slots=2)
    line.add(1, 3)
    line.add(2, 2)
    assert line.pick() == ([2], [(1, 3)])
    assert not line.waiting


def test_a_known_job_is_not_added_twice_and_ncpus_is_at_least_one():
    line = Scheduler(slots=2)
    assert line.add(1, None)
    assert not line.add(1, 1)
    assert line.pick() == ([1], [])
    assert not line.add(1, 1)
    assert line.active == {1: 1}
    assert line.add(2, 0) and line.waiting[-1] == (2, 1)


def test_held_cores_count_until_released():
    line = Scheduler(slots=2)
    line.hold(7, 2)
    line.add(1, 1)
    assert line.pick() == ([], [])
    assert line.release(7) and not line.release(7)
    assert line.pick() == ([1], [])
