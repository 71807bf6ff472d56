"""The catalog of one execution environment, refreshed on a TTL beside the requests."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from moodtune.catalog.songs import Catalog

logger = logging.getLogger(__name__)


class CatalogCache:
    """The catalog of this execution environment, refreshed once it is older than ``ttl_seconds``.

    Only the first load happens on the caller's thread (and raises when it fails, so the next call
    tries again). After that, a call that finds the catalog older than the TTL gets the current one at
    once and starts a refresh on a background thread; the new catalog replaces the old one when it is
    read. A refresh that fails is logged, the previous catalog keeps serving, and the next attempt
    comes a full TTL later, so a struggling store is not asked per request. ``on_failure`` hears of
    every failed refresh (the service counts a metric an alarm watches).

    In Lambda the environment is frozen between invocations, background threads included: a refresh
    runs only while some request is being served. With sparse traffic it may never get the time to
    finish, so a catalog older than twice the TTL is reloaded on the caller's thread instead (the old
    one still serves if that fails): no environment serves a catalog much older than 2 x TTL while
    the catalog's store can be read.
    """

    def __init__(
        self,
        loader: Callable[[], Catalog],
        ttl_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        on_failure: Callable[[Exception], None] | None = None,
    ) -> None:
        self._loader = loader
        self._on_failure = on_failure
        self._ttl = ttl_seconds
        self._max_age = 2 * ttl_seconds
        self._clock = clock
        self._catalog: Catalog | None = None
        self._loaded_at = 0.0  # when the catalog being served was read
        self._next_attempt = float("-inf")  # no refresh before this (set a TTL ahead by a failure)
        self._lock = threading.Lock()
        self._refresh: threading.Thread | None = None

    def get(self) -> Catalog:
        """The cached catalog (loading it first when there is none); refreshes it when it is stale."""
        catalog = self._catalog
        if catalog is None:
            return self._first_load()
        now = self._clock()
        if now < self._next_attempt:
            return catalog
        age = now - self._loaded_at
        if age >= self._max_age:
            return self._reload_now(catalog)
        if age >= self._ttl:
            self._start_refresh()
        return catalog

    def _first_load(self) -> Catalog:
        with self._lock:
            if self._catalog is None:
                self._install(self._loader())
            return self._catalog

    def _install(self, catalog: Catalog) -> None:
        """Serve ``catalog`` from now on (the caller holds the lock)."""
        self._catalog = catalog
        self._loaded_at = self._clock()
        self._next_attempt = float("-inf")

    def _failed(self, how: str, exc: Exception) -> None:
        """Log a failed refresh, tell ``on_failure`` (a metric), and put the next attempt a TTL ahead
        (the caller holds the lock)."""
        logger.exception("catalog %s failed; serving the previous catalog", how)
        self._next_attempt = self._clock() + self._ttl
        if self._on_failure is not None:
            try:
                self._on_failure(exc)
            except Exception:
                logger.exception("catalog failure hook failed")

    def _reload_now(self, current: Catalog) -> Catalog:
        with self._lock:
            if self._catalog is not current or self._clock() < self._next_attempt:
                return self._catalog  # reloaded, or failed, while this call waited for the lock
            try:
                self._install(self._loader())
            except Exception as exc:
                self._failed("reload", exc)
            return self._catalog

    def _start_refresh(self) -> None:
        with self._lock:
            if self._refresh is not None or self._clock() < self._next_attempt:
                return
            self._refresh = threading.Thread(target=self._run_refresh, name="catalog-refresh", daemon=True)
            self._refresh.start()

    def _run_refresh(self) -> None:
        try:
            catalog = self._loader()
        except Exception as exc:
            with self._lock:
                self._failed("refresh", exc)
                self._refresh = None
            return
        with self._lock:
            self._install(catalog)
            self._refresh = None

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a refresh in progress (tests, benchmarks); False if it is still running."""
        refresh = self._refresh
        if refresh is not None:
            refresh.join(timeout)
            return not refresh.is_alive()
        return True

    def invalidate(self) -> None:
        """Make the catalog stale: the next ``get`` starts a refresh."""
        with self._lock:
            self._loaded_at = self._clock() - self._ttl
            self._next_attempt = float("-inf")
