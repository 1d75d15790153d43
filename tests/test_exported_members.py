import types

import microrequests


def test_all_is_sorted_and_complete() -> None:
    exported = set(microrequests.__all__)
    public = {
        name
        for name in dir(microrequests)
        if not name.startswith("_")
        # Subpackages (contrib) become attributes once imported; not exports.
        and not isinstance(getattr(microrequests, name), types.ModuleType)
    } | {"__version__"}
    assert microrequests.__all__ == sorted(microrequests.__all__)
    assert exported == public
    assert exported == {
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
    }


def test_py_typed_ships() -> None:
    from importlib import resources

    assert resources.files("microrequests").joinpath("py.typed").is_file()
