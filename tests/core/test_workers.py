import os

from binsal.core.workers import default_workers, spawn_pool, usable_cpus


def test_default_workers_is_the_usable_cpus_up_to_the_cap():
    assert usable_cpus() >= 1
    assert default_workers() == min(4, usable_cpus())
    assert default_workers(cap=1) == 1


def test_spawn_pool_runs_in_other_processes():
    with spawn_pool(1) as pool:
        assert pool.submit(os.getpid).result() != os.getpid()
