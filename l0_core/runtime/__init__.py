"""The streaming runtime: one session, many attempts, one honest stream of events.

``session`` drives attempts (open, read, decide, retry or fall back); ``reader``
holds the token loops of one attempt; ``checks`` the periodic guardrail, drift
and checkpoint tick; ``watchdog`` the idle timers; ``stream`` the public
:class:`Stream` and :func:`run`.
"""
