"""Beyond one process: live tails, sessions resumed on another worker, shared cooldowns.

- ``shared.py``: what a store shared by many workers adds to the store protocol
  (a live tail, owners with leases and an atomic claim, counters with expiry);
  the Redis and PostgreSQL stores (``l0-store-redis``, ``l0-store-postgres``)
  implement it;
- ``attach.py``: ``l0.attach``, a session's records from any process, then its live tail;
- ``resume.py``: ``l0.resume``, a dead worker's session continued on another worker;
- ``cooldown.py``: ``l0.Cooldowns``, model cooldowns shared between workers.

See ``docs/scale-out.md``.
"""
