"""A response class kafka-python registers stays alive, whichever thread made it."""

from __future__ import annotations

import gc


def test_a_versioned_response_class_made_twice_at_once_still_parses_responses() -> None:
    """Two threads meeting a new API version at once each make (and register) its class, and
    only one is kept: the registry's weak proxy to the other died, and every response of that
    API failed to parse for the rest of the process (ReferenceError, then timeouts)."""
    from kafka.protocol.api_header import ResponseClassRegistry as Registry

    import shared.kafka  # noqa: F401 - keeps the registry's classes alive

    # ProduceResponse (the entry may already be a versioned class, if this process produced)
    primary = Registry._response_class_registry[0][None]
    version = primary.max_version
    kept = primary[version]  # the first thread's, kept in primary._VERSIONS
    # The second thread's, made as kafka-python makes it, then dropped.
    type(f"{primary.__name__}_v{version}", tuple(primary.mro()), {"_class_version": version},
         init=False)  # fmt: skip
    gc.collect()
    registered = Registry._response_class_registry[0]
    assert registered[version].API_KEY == 0  # a ReferenceError without the fix
    assert registered[version].mro()[1] is kept.mro()[1] is primary
