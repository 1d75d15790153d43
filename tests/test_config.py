"""Bad input is rejected with a message naming the parameter; nothing leaks."""

from __future__ import annotations

import re
from typing import Any

import pytest
from urllib3.util.retry import Retry

import microrequests
from microrequests._manager import _manager
from microrequests._session import live_sessions

BAD_POOL_ARGUMENTS: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"max_retries": "3"}, TypeError, r"max_retries must be an int >= 0 or a urllib3.util.Retry"),
    ({"max_retries": True}, TypeError, r"max_retries .* got True \(bool\)"),
    ({"max_retries": 1.5}, TypeError, r"max_retries .* got 1.5 \(float\)"),
    ({"max_retries": None}, TypeError, r"max_retries"),
    ({"max_retries": -1}, ValueError, r"max_retries must be an int >= 0 .* got -1"),
    ({"pool_connections": 0}, ValueError, r"pool_connections must be an int >= 1, got 0"),
    ({"pool_connections": -5}, ValueError, r"pool_connections must be an int >= 1"),
    ({"pool_connections": True}, TypeError, r"pool_connections must be an int >= 1, got True"),
    ({"pool_connections": "10"}, TypeError, r"pool_connections .* got '10' \(str\)"),
    ({"pool_maxsize": 0}, ValueError, r"pool_maxsize must be an int >= 1, got 0"),
    ({"pool_maxsize": None}, TypeError, r"pool_maxsize must be an int >= 1, got None"),
    ({"pool_maxsize": 2.0}, TypeError, r"pool_maxsize .* \(float\)"),
    ({"pool_size": 0}, ValueError, r"pool_size must be an int >= 1, got 0"),
    ({"pool_size": False}, TypeError, r"pool_size must be an int >= 1, got False"),
    ({"pool_maxsize": 10, "pool_size": 5}, ValueError, r"pool_size is an alias of pool_maxsize"),
    (
        {"keepalive_expiry": 0},
        ValueError,
        r"keepalive_expiry must be None or a number of seconds > 0, got 0",
    ),
    ({"keepalive_expiry": -1.5}, ValueError, r"keepalive_expiry .* got -1.5"),
    ({"keepalive_expiry": float("inf")}, ValueError, r"keepalive_expiry .* got inf"),
    ({"keepalive_expiry": "30"}, TypeError, r"keepalive_expiry .* got '30' \(str\)"),
    ({"keepalive_expiry": True}, TypeError, r"keepalive_expiry .* got True \(bool\)"),
    (
        {"pool_timeout": 0},
        ValueError,
        r"pool_timeout must be None or a number of seconds > 0, got 0",
    ),
    ({"pool_timeout": float("nan")}, ValueError, r"pool_timeout .* got nan"),
    ({"pool_timeout": [1]}, TypeError, r"pool_timeout .* \(list\)"),
    (
        {"timeout": 0},
        ValueError,
        r"timeout must be None, a number of seconds > 0, or a \(connect, read\) tuple",
    ),
    ({"timeout": -1}, ValueError, r"timeout .* got -1"),
    ({"timeout": "5"}, TypeError, r"timeout .* got '5' \(str\)"),
    ({"timeout": (1, 2, 3)}, ValueError, r"timeout .* got a 3-tuple"),
    ({"timeout": (0, 1)}, ValueError, r"timeout .* got 0"),
    ({"timeout": (1, "a")}, TypeError, r"timeout .* got 'a' \(str\)"),
    ({"timeout": [1, 2]}, TypeError, r"timeout .* \(list\)"),
    ({"pool_block": "yes"}, TypeError, r"pool_block must be a bool, got 'yes'"),
    ({"pool_block": 1}, TypeError, r"pool_block must be a bool, got 1 \(int\)"),
    (
        {"pool_sise": 5},
        TypeError,
        r"unexpected keyword argument 'pool_sise'; accepted parameters: "
        r"max_retries, pool_connections, pool_maxsize, pool_size, pool_block",
    ),
]

BAD_SCOPES: list[tuple[dict[str, Any], type[Exception], str]] = [
    (
        {"scope": "global"},
        ValueError,
        r"scope must be one of \('process', 'thread'\), got 'global'",
    ),
    ({"scope": None}, TypeError, r"scope must be one of .* got None"),
]


def _state() -> tuple[int, int]:
    return len(live_sessions()), len(_manager._process)


@pytest.mark.parametrize(("kwargs", "error", "message"), BAD_POOL_ARGUMENTS + BAD_SCOPES)
def test_init_rejects_bad_input_and_registers_nothing(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    microrequests.init()  # something registered already, to see it stay put
    before = _state()
    with pytest.raises(error, match=message):
        microrequests.init(**kwargs)
    assert _state() == before


@pytest.mark.parametrize(("kwargs", "error", "message"), BAD_POOL_ARGUMENTS)
def test_session_rejects_bad_input(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    before = len(live_sessions())
    with pytest.raises(error, match=message):
        microrequests.Session(**kwargs)
    assert len(live_sessions()) == before


def test_session_has_no_scope() -> None:
    with pytest.raises(TypeError, match=re.escape("unexpected keyword argument 'scope'")):
        microrequests.Session(scope="thread")  # type: ignore[call-arg]


def test_too_many_positional_arguments() -> None:
    with pytest.raises(TypeError, match="accepted parameters"):
        microrequests.init(1, 2, 3, 4)  # type: ignore[call-arg]


def test_same_value_under_both_spellings_is_fine() -> None:
    assert microrequests.init(pool_maxsize=5, pool_size=5) is microrequests.init(pool_size=5)


def test_retry_instances_are_accepted_and_normalised() -> None:
    custom = Retry(total=3, backoff_factor=0.5, allowed_methods=["GET"])
    session = microrequests.init(max_retries=custom)
    adapter = session.get_adapter("http://x")
    assert adapter.max_retries is custom  # type: ignore[attr-defined]
    # An equal Retry built separately means the same configuration.
    same = Retry(total=3, backoff_factor=0.5, allowed_methods=["GET"])
    assert microrequests.init(max_retries=same) is session
    assert microrequests.init(max_retries=Retry(total=3)) is not session


# init() remembers validated arguments (by value and type): an argument equal
# to one seen before, but of a type that is refused, must still be refused.
LOOKALIKES: list[tuple[dict[str, Any], dict[str, Any]]] = [
    ({"pool_connections": 1}, {"pool_connections": True}),
    ({"max_retries": 1}, {"max_retries": True}),
    ({"max_retries": 0}, {"max_retries": False}),
    ({"pool_maxsize": 50}, {"pool_maxsize": 50.0}),
    ({"pool_block": False}, {"pool_block": 0}),
    ({"timeout": 1}, {"timeout": True}),
    ({"timeout": (1, 2)}, {"timeout": (True, 2)}),
    ({"timeout": (1, 2)}, {"timeout": (1, 2.0 + 0j)}),
    ({"keepalive_expiry": 1.0}, {"keepalive_expiry": True}),
    ({"pool_size": 5}, {"pool_size": 5.0}),
]


@pytest.mark.parametrize(("good", "bad"), LOOKALIKES)
def test_a_lookalike_of_a_remembered_argument_is_still_refused(
    good: dict[str, Any], bad: dict[str, Any]
) -> None:
    microrequests.init(**good)
    microrequests.init(**good)  # now remembered
    with pytest.raises(TypeError, match=next(iter(bad))):
        microrequests.init(**bad)


def test_remembered_arguments_give_the_same_session_and_stay_bounded() -> None:
    from microrequests import _manager as manager

    assert microrequests.init(timeout=(1, 2)) is microrequests.init(timeout=(1.0, 2.0))
    for i in range(manager._MAX_VALIDATED + 50):
        session = microrequests.init(timeout=1 + i / 1000)
        assert session._pool_config.timeout == 1 + i / 1000
    assert len(manager._validated) <= manager._MAX_VALIDATED
    # A Retry is mutable, so it is validated on every call, never remembered.
    retry = Retry(total=2)
    microrequests.init(max_retries=retry)
    assert all(type(key[0][0]) is int for key in manager._validated)  # type: ignore[index]
    retry.total = 3  # and so the next call sees the change
    assert microrequests.init(max_retries=retry)._pool_config.retries_key != (
        microrequests.init(max_retries=Retry(total=2))._pool_config.retries_key
    )
    microrequests.close_all()  # the sessions made here are nobody's
