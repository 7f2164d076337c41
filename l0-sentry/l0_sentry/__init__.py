"""l0-sentry: the Sentry integration of L0.

::

    import sentry_sdk
    import l0_core as l0
    from l0_sentry import L0Integration

    sentry_sdk.init(dsn=..., traces_sample_rate=1.0, integrations=[L0Integration()])
    text = await l0.run(stream=factory, observers=["sentry"]).read()

Every session then leaves ``l0.*`` breadcrumbs for its retries, fallbacks, timeouts,
violations and drift, one error event when it fails for good (grouped by error code, with
the whole story in the ``l0`` context), and spans under the current transaction.
See docs/observability.md.
"""

from __future__ import annotations

from l0_sentry.integration import L0Integration, Options
from l0_sentry.observer import SentryObserver

__version__ = "0.1.0"

__all__ = ["L0Integration", "Options", "SentryObserver", "__version__"]
