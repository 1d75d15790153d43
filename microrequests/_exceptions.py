"""Exceptions of microrequests; each subclasses the fitting requests exception.

::

    requests.exceptions.RequestException
    └── requests.exceptions.Timeout
        └── microrequests.PoolTimeout
"""

from __future__ import annotations

import requests


class PoolTimeout(requests.exceptions.Timeout):
    """No pooled connection became free within ``pool_timeout``.

    Only raised with ``pool_block=True``: the host's pool had ``pool_maxsize``
    connections in use for the whole wait. Nothing was sent.
    """
