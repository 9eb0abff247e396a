"""Shared fixtures: real data from ../shared/data, skipped on a user's clone, required in CI."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from textdecade.data.shared import shared_path

REQUIRE_DATA = os.environ.get("TEXTDECADE_REQUIRE_DATA") == "1"


def pytest_configure(config):
    """Under pytest-xdist, each worker takes its share of the cores for torch's threads:
    two workers of two threads each on two cores would stall at every intra-op barrier
    (the commands a test starts inherit the share through ``OMP_NUM_THREADS``)."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        import torch

        from textdecade.pretrain.cpu_share import affinity_cores

        share = max(1, affinity_cores() // workers)
        torch.set_num_threads(share)
        os.environ["OMP_NUM_THREADS"] = str(share)  # for the CLI runs tests start


def data_path(*parts: str) -> Path:
    """Return ``shared/data/<parts>``; skip the test when absent (fail under CI)."""
    path = shared_path(*parts)
    if path is None:
        message = f"shared data {'/'.join(parts)} not found (set TEXTDECADE_DATA)"
        if REQUIRE_DATA:
            pytest.fail(message + " and TEXTDECADE_REQUIRE_DATA=1")
        pytest.skip(message)
    return path


@pytest.fixture
def shared_data():
    """The :func:`data_path` function, as a fixture."""
    return data_path


@pytest.fixture(scope="session")
def corpus_lines():
    """Return ``n`` lines of a file in ``shared/data/corpus_en`` (real English text)."""

    def read(name: str = "gensim_lee.txt", n: int | None = None) -> list[str]:
        path = data_path("corpus_en", name)
        lines = []
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if line:
                    lines.append(line)
                if n is not None and len(lines) >= n:
                    break
        return lines

    return read


@pytest.fixture(autouse=True)
def _idle_cores(request, monkeypatch):
    """Runs choose their thread count from the free cores (pretrain/cpu_share): pinned to
    'all free' here so a test's numerics never depend on what else the machine runs. Tests
    of the measurement itself opt out with ``@pytest.mark.real_cpu_share``."""
    if request.node.get_closest_marker("real_cpu_share") is None:
        from textdecade.pretrain import cpu_share

        monkeypatch.setattr(cpu_share, "busy_cores_of_others", lambda interval=0.2: 0.0)
