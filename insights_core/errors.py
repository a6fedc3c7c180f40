"""The one error hierarchy of Meta Insights. Each class's docstring is its default message.

The sync engine sorts failures by class: an `EntityError` is counted against one entity and the
sync goes on; a `FatalSyncError` stops the sync at once (nothing of it is committed) and its
message tells the operator what to fix. `classify_*` helpers for the Marketing API live with the
live source, and map onto these classes.
"""

from __future__ import annotations


class InsightsError(Exception):
    """Meta Insights failed."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class ConfigError(InsightsError):
    """The configuration is invalid."""


class InputError(InsightsError):
    """The request is invalid."""


class WorkerLockedError(InsightsError):
    """Another sync worker is already running on this data directory."""


class StoreError(InsightsError):
    """The insights store could not be read or written."""


class SnapshotUnavailableError(StoreError):
    """No data has been published yet: start the sync worker and wait for its first sync."""


class SyncCancelledError(InsightsError):
    """The sync was cancelled before it committed; nothing of it was written."""


class FatalSyncError(InsightsError):
    """The sync cannot go on; nothing of it was committed."""


class AuthenticationError(FatalSyncError):
    """Meta rejected the access token (expired or invalid): create a new token and set META_ACCESS_TOKEN."""


class PermissionDeniedError(FatalSyncError):
    """The access token lacks a permission this sync needs (ads_read on each ad account)."""


class LeaseLostError(FatalSyncError):
    """Another worker took over an ad account this sync held (its lease expired); nothing of this sync was committed."""


class EntityError(InsightsError):
    """Fetching one entity's insights failed; the sync counts it and carries on."""


class RateLimitError(EntityError):
    """Meta throttled the request (rate limit exceeded) and retries ran out."""


class TransientApiError(EntityError):
    """Meta answered with a temporary error and retries ran out."""


class MalformedPayloadError(EntityError):
    """Meta returned a value that is not a valid number for its field."""


class ControlChannelError(StoreError):
    """The control database could not be read or written; the next call opens (or recreates) it again."""


class PublishError(StoreError):
    """The snapshot could not be published; the sync's rows are stored and the next publish shows them."""


class DataDirError(ConfigError):
    """INSIGHTS_DATA_DIR cannot hold the worker's files."""


class SnapshotUnreadableError(StoreError):
    """The published snapshot cannot be read; the dashboard reads the next one the worker publishes."""


class ApiAuthError(InsightsError):
    """Missing or invalid API token: send `Authorization: Bearer <token>` (python -m insights_core.auth new-token)."""


class ApiForbiddenError(InsightsError):
    """Your role may not do this."""


class NotFoundError(InputError):
    """No such object in the synced data."""
