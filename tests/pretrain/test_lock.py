"""The run lock: one holder at a time, its pid named, nothing on platforms without flock."""

from __future__ import annotations

import os
import sys

import pytest

from textdecade.pretrain import lock as run_lock


@pytest.mark.skipif(sys.platform == "win32", reason="no flock on Windows")
def test_one_holder_at_a_time_and_the_pid_is_named(tmp_path):
    run_dir = tmp_path / "run"
    first = run_lock.RunLock(run_dir).acquire()
    assert first.held and first.path.read_text() == f"{os.getpid()}\n"
    with pytest.raises(run_lock.RunLocked, match=rf"in use by .* \(pid {os.getpid()}\)"):
        run_lock.RunLock(run_dir).acquire()
    first.acquire()  # re-entrant for its holder
    first.release()
    with run_lock.RunLock(run_dir) as second:
        assert second.held
    assert not second.held


def test_without_flock_there_is_no_lock(tmp_path, monkeypatch):
    monkeypatch.setattr(run_lock, "fcntl", None)  # as on Windows
    a = run_lock.RunLock(tmp_path).acquire()
    b = run_lock.RunLock(tmp_path).acquire()
    assert not a.held and not b.held
    a.release()


def test_a_file_system_without_locks_runs_unlocked(tmp_path, monkeypatch):
    import errno

    class NoLocks:
        LOCK_EX, LOCK_NB, LOCK_UN = 2, 4, 8

        @staticmethod
        def flock(fd, op):
            raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(run_lock, "fcntl", NoLocks)
    assert not run_lock.RunLock(tmp_path).acquire().held
