"""A hub dataset with the hub offline or unreachable fails in seconds, in one line that
names it and points at ``--corpus FILE``, instead of retrying for a minute.

Nothing here touches the network: name lookups of anything but loopback fail, and the hub
endpoint is a loopback port that nobody listens on.
"""

from __future__ import annotations

import socket
import time

import pytest

from tests.test_cli import assert_one_line_error, run
from textdecade.data.corpus import Corpus
from textdecade.data.hub import hub_reachable, is_hub_id
from textdecade.data.parallel import ParallelCorpus
from textdecade.errors import CorpusError

MADE_UP = "nobody-zz-textdecade/no-such-dataset-7f3a"  # cannot be in any cache
PROXIES = [f"{s}_proxy" for s in ("http", "https", "all")]
PROXIES += [name.upper() for name in PROXIES]


@pytest.fixture
def empty_caches(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf" / "datasets"))


def no_network(monkeypatch) -> str:
    """Name lookups of anything but loopback fail (as with no DNS), whatever endpoint the
    libraries froze at import; returns a hub endpoint on a loopback port nobody listens on."""
    lookup = socket.getaddrinfo

    def loopback_only(host, *args, **kwargs):
        if host not in ("127.0.0.1", "localhost"):
            raise socket.gaierror(socket.EAI_NONAME, f"no network in tests ({host})")
        return lookup(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", loopback_only)
    for name in PROXIES:  # a proxy would skip the connect probe
        monkeypatch.delenv(name, raising=False)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture
def closed_endpoint(monkeypatch, empty_caches):
    """The hub at a refused loopback port, offline mode off, no network."""
    endpoint = no_network(monkeypatch)
    for name in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    return endpoint


def timed_error(fn) -> tuple[str, float]:
    start = time.perf_counter()
    with pytest.raises(CorpusError) as caught:
        fn()
    return str(caught.value), time.perf_counter() - start


def offline_after_import(monkeypatch):
    """Offline mode set after ``datasets`` and ``huggingface_hub`` read it at import (their
    flags stay False): textdecade must still hold them offline."""
    import datasets.config
    import huggingface_hub.constants

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


def test_offline_dataset_fails_fast_and_suggests_corpus(monkeypatch, closed_endpoint):
    offline_after_import(monkeypatch)  # were they not held offline: 20 s of retries
    msg, seconds = timed_error(lambda: list(Corpus(dataset=MADE_UP)))
    assert seconds < 10
    assert "\n" not in msg and repr(MADE_UP) in msg
    assert "offline" in msg and "HF_DATASETS_OFFLINE" in msg and "--corpus FILE" in msg
    # a translation dataset goes through the same door
    msg, seconds = timed_error(lambda: ParallelCorpus.from_dataset(MADE_UP, "de", "en"))
    assert seconds < 10 and "--corpus FILE" in msg


def test_offline_dataset_cli_exits_2(monkeypatch, closed_endpoint, capsys, tmp_path):
    offline_after_import(monkeypatch)
    out = tmp_path / "tok.json"
    code, _, err = run(capsys, "tokenizer", "train", "--dataset", MADE_UP, "-o", str(out))
    assert_one_line_error(code, err, "--corpus FILE")
    assert MADE_UP in err and not out.exists()


def test_unreachable_hub_fails_fast(closed_endpoint):
    assert not hub_reachable()
    msg, seconds = timed_error(lambda: list(Corpus(dataset=f"{MADE_UP}:some-config")))
    assert seconds < 10
    assert "cannot be reached" in msg and "--corpus FILE" in msg and repr(MADE_UP) in msg


def test_local_names_are_never_hub_names(closed_endpoint, tmp_path):
    # a missing local path keeps the plain "cannot load" message: no hub, no probe
    assert not is_hub_id(str(tmp_path / "missing")) and not is_hub_id("./data")
    msg, _ = timed_error(lambda: list(Corpus(dataset=str(tmp_path / "missing"))))
    assert "cannot load dataset" in msg and "--corpus" not in msg


def test_behind_a_proxy_the_probe_is_not_tried(monkeypatch):
    no_network(monkeypatch)  # huggingface.co cannot be looked up: a connect would fail
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    assert not hub_reachable()
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    assert hub_reachable()  # only the proxy could tell; datasets goes through it
