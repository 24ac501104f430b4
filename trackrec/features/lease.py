"""One writer at a time on a feature store: publish, restore, assign, promote, rollback and prune
each hold the store's writer lease, so no two of them read-modify-write Feast's registry (one file or
S3 object, rewritten whole on every change) or one version's online rows at once. Readers take none.

With Redis online (which every pod of a cluster shares) the lease is a Redis key set with NX and an
expiry, renewed while its writer works: a writer killed holding it frees it within TTL_S. With the
SQLite online store (one machine's repo folder) it is a flock on a file in that folder, which the
kernel frees when its holder dies. A second writer waits up to WAIT_S, then is refused with the
holder's name, what it does and since when. A process that holds the lease may take it again (the
publish stage holds it around publish, assign and prune).
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from trackrec.features.online_rows import failing_as
from trackrec.features.store import OpenedStore, StoreError
from trackrec.inert import inert

WAIT_S = 60.0  # how long a second writer waits for the first before it is refused
TTL_S = 30.0  # a Redis lease not renewed for this long (its holder killed or stalled) expires
_POLL_S = 0.2
# Scripts flagged allow-oom (Redis >= 7.0): a Redis full of a killed publish's rows still lets `prune`,
# which frees them, take the lease (SET alone is refused under noeviction)
_TAKE = "#!lua flags=allow-oom\nreturn redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])"
_RENEW = (
    "#!lua flags=allow-oom\n"
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0"
)
_FREE = "#!lua flags=allow-oom\nif redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end"


def actor() -> str:
    """Who writes: TRACKREC_ACTOR if set, else user@host (in a pipeline pod the host is the pod's
    name, which names the run's workflow)."""
    return os.environ.get("TRACKREC_ACTOR") or f"{getpass.getuser()}@{socket.gethostname()}"


class _RedisLease:
    def __init__(self, store: OpenedStore):
        feast = store.feast
        # Feast's own client, from the connection string it was given (redis.py:388-414)
        self.client = feast._get_provider().online_store._get_client(feast.config.online_store)
        self.name = f"trackrec:{store.config.project}:writer"
        self._stop = threading.Event()

    def take(self, holder: str) -> bool:
        script = self.client.register_script(_TAKE)
        if script(keys=[self.name], args=[holder, int(TTL_S * 1000)]) is None:
            return False
        self.holder = holder
        threading.Thread(target=self._renew, daemon=True).start()
        return True

    def _renew(self) -> None:
        while not self._stop.wait(TTL_S / 3) and self.held():
            pass

    def held(self) -> bool:
        """Renewed, so still this writer's (a stalled writer's lease expires and another takes it)."""
        try:
            return bool(self.client.register_script(_RENEW)(keys=[self.name], args=[self.holder, int(TTL_S * 1000)]))
        except Exception:  # noqa: BLE001 - unrenewed, it may expire: the writer stops at its next write
            return False

    def current(self) -> str:
        return (self.client.get(self.name) or b"").decode(errors="replace")

    def free(self) -> None:
        import redis

        self._stop.set()
        with contextlib.suppress(redis.RedisError):  # a Redis failing now: the lease expires in TTL_S
            self.client.register_script(_FREE)(keys=[self.name], args=[self.holder])


class _FileLease:
    def __init__(self, store: OpenedStore):
        self.path = Path(store.config.repo) / "writer.lease"
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def held(self) -> bool:
        return True  # the kernel holds a flock until its holder dies

    def take(self, holder: str) -> bool:
        self.file = open(self.path, "a+")  # noqa: SIM115 - held open while the lease is
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.file.close()
            return False
        self.file.seek(0)
        self.file.truncate()
        self.file.write(holder)
        self.file.flush()
        return True

    def current(self) -> str:
        return self.path.read_text()

    def free(self) -> None:
        self.file.truncate(0)
        fcntl.flock(self.file, fcntl.LOCK_UN)
        self.file.close()


@dataclass
class _Held:
    lease: _RedisLease | _FileLease
    action: str


_held: dict[tuple[str, str, int], _Held] = {}  # (repo, project, thread) -> the lease this thread holds


def _key(store: OpenedStore) -> tuple[str, str, int]:
    return (str(Path(store.config.repo).resolve()), store.config.project, threading.get_ident())


def _busy(lease, action: str, waited: float) -> StoreError:
    try:
        holder = json.loads(lease.current())
        who = f"{holder['by']} ({holder['action']}, since {holder['since']})"
    except (ValueError, KeyError, TypeError):
        who = "another writer"  # it let go between our try and this read, or wrote no name yet
    return StoreError(
        f"cannot {action}: the feature store is being changed by {inert(who, 200)}; waited {waited:.0f} s. "
        f"Run it again when that is done (a writer killed holding the lease frees it within {TTL_S:.0f} s)"
    )


def _taken(store: OpenedStore, action: str, wait: float) -> _RedisLease | _FileLease:
    lease = _RedisLease(store) if store.config.online == "redis" else _FileLease(store)
    since = datetime.now(UTC).isoformat(timespec="seconds")
    holder = json.dumps({"by": actor(), "action": action, "since": since, "id": uuid.uuid4().hex})
    deadline = time.monotonic() + wait
    while not lease.take(holder):
        if time.monotonic() > deadline:
            raise _busy(lease, action, wait)
        time.sleep(_POLL_S)
    return lease


@contextlib.contextmanager
def writer(store: OpenedStore, action: str, wait: float | None = None) -> Iterator[None]:
    """Hold `store`'s writer lease for `action` (e.g. "assign control"), waiting up to `wait`
    (default WAIT_S) for another writer; then read the registry afresh (what that writer changed)."""
    key = _key(store)
    if key in _held:  # taken already by this thread: the outer writer frees it
        yield
        return
    with failing_as(f"{action}: taking the writer lease"):
        lease = _taken(store, action, WAIT_S if wait is None else wait)
    _held[key] = _Held(lease, action)
    try:
        # Feast's getters read the registry again (allow_cache=False), but its apply changes its cached
        # copy (feast/infra/registry/registry.py: _prepare_registry_for_changes): fresh, whatever comes first
        store.feast.refresh_registry()
        yield
    finally:
        del _held[key]
        lease.free()


def confirm(store: OpenedStore) -> None:
    """Before a registry write: this thread still holds the lease (a Redis lease expires when its
    holder stalled past TTL_S, and another writer may have changed the store since)."""
    held = _held.get(_key(store))
    if held is None:
        raise StoreError("a feature-store write outside the writer lease (a bug: take lease.writer first)")
    if not held.lease.held():
        raise StoreError(
            f"{held.action}: the writer lease expired while this writer stalled, and another may have changed "
            "the store since: nothing more was written; run it again"
        )
