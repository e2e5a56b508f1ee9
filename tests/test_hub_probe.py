"""Offline first run: an unreachable hub is detected once, quickly, and ``auto`` falls back.

No test touches the real network: the endpoint is a closed local port (refused at once) or an
address that never answers (the probe's time bound), set through huggingface_hub's constant.
"""
from __future__ import annotations

import socket
import time
import warnings

import pytest

from deepcut.backbones import BackboneFallbackWarning, resolve_backbone
from deepcut.backbones import weights as weights_mod
from deepcut.errors import WeightsError


def _closed_port() -> int:
    with socket.socket() as s:  # bind, read the port, close: nothing listens there now
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def dead_hub(monkeypatch):
    """Downloads allowed (no HF_HUB_OFFLINE), but the hub endpoint refuses connections."""
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setattr(weights_mod, "_reachable", {})
    return constants


def test_unreachable_hub_is_probed_once(dead_hub, monkeypatch, tmp_path):
    calls = []
    real = weights_mod._probe
    monkeypatch.setattr(weights_mod, "_probe", lambda e, t: calls.append(e) or real(e, t))
    name = "vit_small_patch8_224.dino"
    assert weights_mod.hub_weights_status(name, cache_dir=str(tmp_path)) == "unreachable"
    assert weights_mod.hub_weights_status(name, cache_dir=str(tmp_path)) == "unreachable"
    assert calls == [dead_hub.ENDPOINT]  # one probe per process and endpoint


def test_auto_falls_back_at_once_with_one_warning(dead_hub, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # an empty cache, whatever this machine has
    monkeypatch.setattr(dead_hub, "HF_HUB_CACHE", str(tmp_path))
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bb = resolve_backbone("auto", size=64)
    elapsed = time.perf_counter() - t0
    assert bb.name == "classic"
    fallback = [w for w in caught if issubclass(w.category, BackboneFallbackWarning)]
    assert len(fallback) == 1
    assert "cannot be reached" in str(fallback[0].message)
    # No download retries (~45 s before the probe existed); generous for a busy 2-core box.
    assert elapsed < 15, elapsed


def test_named_backbone_with_unreachable_hub_names_the_reason(dead_hub, monkeypatch, tmp_path):
    from deepcut.backbones import create_backbone

    monkeypatch.setattr(dead_hub, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(WeightsError, match="cannot be reached.*--weights PATH"):
        create_backbone("dino_vits8", size=64)


def test_probe_is_bounded_when_the_hub_never_answers(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(weights_mod, "_reachable", {})
    monkeypatch.setattr(constants, "ENDPOINT", "http://never.invalid")
    monkeypatch.setattr(weights_mod, "_probe", lambda e, t: time.sleep(30) or True)
    t0 = time.perf_counter()
    assert weights_mod.hub_reachable(timeout=0.2) is False  # the join bound, not the 30 s
    assert time.perf_counter() - t0 < 5


def test_reachable_hub_is_online(monkeypatch):
    """Any HTTP answer counts: a local server that replies 404 is a reachable hub."""
    import http.server
    import threading

    class Quiet(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        from huggingface_hub import constants

        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(weights_mod, "_reachable", {})
        monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{server.server_port}")
        assert weights_mod.hub_reachable() is True
    finally:
        server.shutdown()
        server.server_close()
