"""Validation and normalisation of the pool arguments.

Everything a user passes to :func:`microrequests.init` or
:class:`microrequests.Session` goes through :meth:`PoolConfig.from_arguments`,
the one place that decides what is accepted (in the spirit of urllib3's
``Retry.from_int``). The resulting frozen :class:`PoolConfig` is both the
recipe for building a session and the key of the singleton registry, so two
calls that mean the same thing get the same session.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
from collections.abc import Callable, Hashable
from typing import Any, Final, Literal, Optional, TypeVar, Union, cast

from urllib3.util.retry import Retry

Scope = Literal["process", "thread"]
SCOPES: Final[tuple[str, ...]] = ("process", "thread")


class _DefaultInt(int):
    """An ``int`` that is recognisable by identity as "not given".

    ``pool_size`` is an alias of ``pool_maxsize``, and passing both with
    different values is an error. To tell ``init(pool_size=5)`` (fine) from
    ``init(pool_maxsize=50, pool_size=5)`` (a conflict) while keeping the
    documented signature ``pool_maxsize=50``, the default is this distinct
    object: small ints are cached by CPython, so a plain ``50`` could not be
    told apart from the user's ``50``.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return int.__repr__(self)


#: Retries per request: ``Retry(total=1, status_forcelist=[500, 502])``.
DEFAULT_MAX_RETRIES: Final = 1
#: Number of per-host connection pools each session caches.
DEFAULT_POOL_CONNECTIONS: Final = 100
#: Connections kept per host pool.
DEFAULT_POOL_MAXSIZE: Final[int] = _DefaultInt(50)
#: Statuses retried when ``max_retries`` is an int (the 0.1.x behaviour).
DEFAULT_STATUS_FORCELIST: Final[tuple[int, ...]] = (500, 502)


def _describe(value: object) -> str:
    return f"{value!r} ({type(value).__name__})"


def _require_int(name: str, value: object, minimum: int) -> int:
    # bool is an int subclass, but init(pool_block=True) passed positionally
    # into pool_maxsize is a bug to report, not a pool of size 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int >= {minimum}, got {_describe(value)}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _seconds(name: str, value: object, accepted: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be {accepted}, got {_describe(value)}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be {accepted}, got {value!r}")
    return float(value)


def _optional_seconds(name: str, value: object) -> float | None:
    if value is None:
        return None
    return _seconds(name, value, "None or a number of seconds > 0")


TimeoutArg = Union[None, float, tuple[Optional[float], Optional[float]]]
_TIMEOUT_ACCEPTED = "None, a number of seconds > 0, or a (connect, read) tuple of those"


def _normalise_timeout(value: object) -> TimeoutArg:
    if value is None:
        return None
    if isinstance(value, tuple):
        if len(value) != 2:
            raise ValueError(f"timeout must be {_TIMEOUT_ACCEPTED}, got a {len(value)}-tuple")
        connect, read = (
            None if part is None else _seconds("timeout", part, _TIMEOUT_ACCEPTED) for part in value
        )
        return (connect, read)
    return _seconds("timeout", value, _TIMEOUT_ACCEPTED)


def _freeze(value: object) -> Hashable:
    """Turn the attribute values of a ``Retry`` into something hashable."""
    if isinstance(value, (set, frozenset)):
        return frozenset(_freeze(v) for v in value)
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((str(k), _freeze(v)) for k, v in value.items()))
    try:
        hash(value)
    except TypeError:
        # Unknown unhashable state: fall back to identity, which can only
        # make sharing less likely, never merge two different configurations.
        return ("id", id(value))
    return value


def _retry_key(retry: Retry) -> Hashable:
    return (type(retry), tuple(sorted((k, _freeze(v)) for k, v in vars(retry).items())))


@functools.lru_cache(maxsize=64)
def _retry_from_int(total: int) -> Retry:
    # Retry objects are never mutated (``increment`` returns a new one), so one
    # instance per count can be shared by every session.
    return Retry(total=total, status_forcelist=list(DEFAULT_STATUS_FORCELIST))


def _normalise_retries(max_retries: object) -> Retry:
    if isinstance(max_retries, Retry):
        return max_retries
    if isinstance(max_retries, bool) or not isinstance(max_retries, int):
        raise TypeError(
            f"max_retries must be an int >= 0 or a urllib3.util.Retry, got {_describe(max_retries)}"
        )
    if max_retries < 0:
        raise ValueError(
            f"max_retries must be an int >= 0 or a urllib3.util.Retry, got {max_retries!r}"
        )
    return _retry_from_int(int(max_retries))


@dataclasses.dataclass(frozen=True)
class PoolConfig:
    """The normalised pool arguments: a session recipe and a registry key.

    Equality and hashing ignore the ``Retry`` object itself and use the
    frozen contents of its attributes instead, so ``max_retries=1`` and an
    equivalent ``Retry(total=1, status_forcelist=[500, 502])`` share a session.
    """

    retries: Retry = dataclasses.field(compare=False)
    pool_connections: int = DEFAULT_POOL_CONNECTIONS
    pool_maxsize: int = int(DEFAULT_POOL_MAXSIZE)
    pool_block: bool = False
    keepalive_expiry: float | None = None
    pool_timeout: float | None = None
    timeout: TimeoutArg = None
    retries_key: Hashable = dataclasses.field(default=None, repr=False)

    @classmethod
    def from_arguments(
        cls,
        *,
        max_retries: int | Retry = DEFAULT_MAX_RETRIES,
        pool_connections: int = DEFAULT_POOL_CONNECTIONS,
        pool_maxsize: int = DEFAULT_POOL_MAXSIZE,
        pool_size: int | None = None,
        pool_block: bool = False,
        keepalive_expiry: float | None = None,
        pool_timeout: float | None = None,
        timeout: TimeoutArg = None,
    ) -> PoolConfig:
        """Validate the user's arguments; raise ``TypeError``/``ValueError``."""
        retries = _normalise_retries(max_retries)
        connections = _require_int("pool_connections", pool_connections, 1)
        maxsize_given = pool_maxsize is not DEFAULT_POOL_MAXSIZE
        maxsize = _require_int("pool_maxsize", pool_maxsize, 1)
        if pool_size is not None:
            size = _require_int("pool_size", pool_size, 1)
            if maxsize_given and size != maxsize:
                raise ValueError(
                    "pool_size is an alias of pool_maxsize; pass one of them, or the "
                    f"same value to both (got pool_maxsize={maxsize!r}, pool_size={size!r})"
                )
            maxsize = size
        if not isinstance(pool_block, bool):
            raise TypeError(f"pool_block must be a bool, got {_describe(pool_block)}")
        return cls(
            retries=retries,
            pool_connections=connections,
            pool_maxsize=maxsize,
            pool_block=pool_block,
            keepalive_expiry=_optional_seconds("keepalive_expiry", keepalive_expiry),
            pool_timeout=_optional_seconds("pool_timeout", pool_timeout),
            timeout=_normalise_timeout(timeout),
            retries_key=_retry_key(retries),
        )


def normalise_scope(scope: object) -> Scope:
    if not isinstance(scope, str):
        raise TypeError(f"scope must be one of {SCOPES!r}, got {_describe(scope)}")
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES!r}, got {scope!r}")
    return cast(Scope, scope)


F = TypeVar("F", bound=Callable[..., Any])


def explain_bad_call(func: F) -> F:
    """Make an unknown or duplicated argument name what *is* accepted.

    Python's own message ("got an unexpected keyword argument 'pool_sise'")
    names the culprit but not the alternatives. The signature is only bound
    after the call already failed, so the happy path pays nothing.
    """
    signature = inspect.signature(func)
    accepted = ", ".join(name for name in signature.parameters if name != "self")

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except TypeError:
            try:
                signature.bind(*args, **kwargs)
            except TypeError as bind_error:
                raise TypeError(
                    f"{func.__qualname__}(): {bind_error}; accepted parameters: {accepted}"
                ) from None
            raise

    return cast(F, wrapper)


# What callers may spell as max_retries; used in public signatures.
RetriesArg = Union[int, Retry]
