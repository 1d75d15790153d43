"""microrequests: pooled, thread-safe and fork-safe ``requests`` sessions.

>>> import microrequests
>>> mr = microrequests.init()            # the same session on every call
>>> mr.get("http://users-svc/api/users/1")  # doctest: +SKIP
"""

from ._config import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_POOL_CONNECTIONS,
    DEFAULT_POOL_MAXSIZE,
)
from ._exceptions import PoolTimeout
from ._manager import close_all, init
from ._session import Session
from ._stats import HostStats, SessionStats, stats
from ._version import __version__

__all__ = [
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_POOL_CONNECTIONS",
    "DEFAULT_POOL_MAXSIZE",
    "HostStats",
    "PoolTimeout",
    "Session",
    "SessionStats",
    "__version__",
    "close_all",
    "init",
    "stats",
]
