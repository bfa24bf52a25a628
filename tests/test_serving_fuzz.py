"""Fuzzing the live protocol on one connection: every frame gets a documented reply and the connection lives on."""

from __future__ import annotations

import json
import logging
import os
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.fuzz_strategies import ANSWERS, LIMITS, UNCHECKED, Case, fuzz_cases, message, shown
from tests.server_support import ServerThread, serve_config

# Matrices of huge numbers overflow float32 on the way to their `invalid_field` reply, and NumPy warns;
# the server's keepalive pings draw from `random` while hypothesis generates, and hypothesis warns.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning"),
    pytest.mark.filterwarnings("ignore:Do not use the `random` module:hypothesis.errors.HypothesisDeprecationWarning"),
]

CASES = int(os.environ.get("DEMNISTIFY_FUZZ_CASES", "3000"))
# Messages per hypothesis example: generating an example costs more than a round trip.
BATCH = 20
LOGGERS = ("serving", "websockets", "asyncio")


class FuzzClient:
    """One connection to the fuzzed server, reopened only after a failure so that shrinking can go on."""

    def __init__(self, url: str) -> None:
        self.url, self.ws, self.opened = url, None, 0

    def exchange(self, frame: str | bytes) -> str | bytes:
        """Send one frame and return the one reply it gets."""
        assert len(frame) < LIMITS.max_message_bytes, "the fuzzer must stay below the frame limit"
        if self.ws is None:
            self.ws, self.opened = connect(self.url, max_size=None, ping_interval=None), self.opened + 1
            assert json.loads(self.ws.recv(timeout=30))["type"] == "hello"
        try:
            self.ws.send(frame)
            return self.ws.recv(timeout=30)
        except (ConnectionClosed, TimeoutError) as error:
            self.ws = self.ws.close()
            raise AssertionError(f"no reply ({error!r}) to {shown(frame)}") from None


def check(fuzz: Case, reply: str | bytes) -> str:
    """The reply is one the case allows, carries the request's id, and says what to fix; returns its kind."""
    if isinstance(reply, str) and not reply.startswith("{"):
        assert "digit" in fuzz.allowed and len(reply) == 1 and reply.isdigit(), (shown(fuzz.frame), reply)
        return "digit"
    event = json.loads(reply)
    kind = event["code"] if event["type"] == "error" else event["type"]
    assert kind in fuzz.allowed, f"{kind} not in {sorted(fuzz.allowed)} for {shown(fuzz.frame)}: {reply[:300]}"
    expected_id = None if kind == "bad_json" else fuzz.echo
    assert expected_id is UNCHECKED or event["id"] == expected_id, (shown(fuzz.frame), reply[:300])
    assert kind == "result" or event["message"]
    return kind


@pytest.fixture(scope="module")
def fuzz_client(trained_store):
    with ServerThread(serve_config(trained_store, limits=LIMITS)) as server:
        client = FuzzClient(f"ws://127.0.0.1:{server.port}/")
        yield client
        if client.ws is not None:
            client.ws.close()


def server_errors(caplog) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.levelno >= logging.ERROR and record.name.split(".")[0] in LOGGERS
    ]


def test_fuzzed_frames_get_documented_replies_on_one_connection(fuzz_client, caplog):
    caplog.set_level(logging.ERROR)
    sent, failed, kinds = [0], [], Counter()

    @settings(
        max_examples=-(-CASES // BATCH) + CASES // (20 * BATCH) + 20,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.lists(fuzz_cases, min_size=BATCH, max_size=BATCH))
    def batch_is_answered(batch: list[Case]) -> None:
        # Past the requested count the remaining examples send nothing, unless hypothesis is shrinking a failure.
        chosen, _ = batch[: BATCH if failed else max(0, CASES - sent[0])], caplog.clear()
        try:
            for fuzz in chosen:
                kinds[check(fuzz, fuzz_client.exchange(fuzz.frame))] += 1
                sent[0] += 1
            if chosen:
                after = json.loads(fuzz_client.exchange(json.dumps(message("after"))))
                assert (after["type"], after["id"], after.get("text")) == ("result", "after", "17"), after
            assert not server_errors(caplog), (server_errors(caplog), [shown(f.frame) for f in chosen])
        except BaseException:
            failed.append(True)
            raise

    batch_is_answered()
    print(f"fuzz: {sent[0]} messages on {fuzz_client.opened} connection(s), replies {dict(kinds.most_common())}")
    assert sent[0] == CASES and fuzz_client.opened == 1
    # The strategies reach every kind of reply a client can provoke; a valid legacy matrix (a
    # digit reply) is rare enough that only a long run is sure to draw one.
    expected = (
        ANSWERS | {"digit", "bad_json"}
        if CASES >= 20_000
        else {"result", "bad_json", "invalid_field", "bad_image", "unknown_type"}
    )
    assert set(kinds) >= expected, kinds
