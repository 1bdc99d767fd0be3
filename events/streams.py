"""JetStream streams: civil and health events in, dead letters kept, notices out to the app gateway.

Also where an event goes: the subject for an event type (what a producer publishes on) and the stream that
holds a subject.
"""

from __future__ import annotations

from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from events.catalog import EVENT_SUBJECTS
from events.envelope import civil_subject, health_subject
from infra.settings import Settings

CIVIL_SUBJECTS = "civil.>"
HEALTH_SUBJECTS = "health.>"
DLQ_PREFIX = "dlq"
NOTIFY_PREFIX = "notify"

UNKNOWN_TYPE_EVENT = "unknown_event_type"
"""Last subject token for an event whose type no handler knows: it is dead-lettered with the reason."""


def stream_configs(settings: Settings) -> list[StreamConfig]:
    window = float(settings.dedupe_window_seconds)

    def days(n: float) -> float:  # max_age in seconds, never shorter than the duplicate window
        return max(n * 24 * 3600, window)

    return [
        StreamConfig(name=settings.civil_stream, subjects=[CIVIL_SUBJECTS], storage=StorageType.FILE,
                     retention=RetentionPolicy.LIMITS, duplicate_window=window, discard=DiscardPolicy.OLD,
                     max_age=days(settings.civil_retention_days),
                     description="Civil-status events (CloudEvents 1.0), civil.<province>.<event>"),
        StreamConfig(name=settings.health_stream, subjects=[HEALTH_SUBJECTS], storage=StorageType.FILE,
                     retention=RetentionPolicy.LIMITS, duplicate_window=window, discard=DiscardPolicy.OLD,
                     max_age=days(settings.health_retention_days),
                     description="Health events (CloudEvents 1.0), health.<province>.<event>"),
        StreamConfig(name=settings.dlq_stream, subjects=[f"{DLQ_PREFIX}.>"], storage=StorageType.FILE,
                     retention=RetentionPolicy.LIMITS, duplicate_window=window,
                     max_age=days(settings.dlq_retention_days),
                     description="Events that failed validation: original bytes + Dead-Letter-Reason header"),
        StreamConfig(name=settings.notify_stream, subjects=[f"{NOTIFY_PREFIX}.>"], storage=StorageType.FILE,
                     retention=RetentionPolicy.LIMITS, duplicate_window=window,
                     max_age=days(settings.notify_retention_days),
                     description="References to notices delivered to citizens' in-app inboxes, for the app gateway"),
    ]




def subject_for(event_type: object, province_code: str) -> str:
    """The subject a producer publishes an event of ``event_type`` on; an unknown type goes to the civil stream."""
    domain, event = EVENT_SUBJECTS.get(event_type, ("civil", UNKNOWN_TYPE_EVENT)) if isinstance(event_type, str) \
        else ("civil", UNKNOWN_TYPE_EVENT)
    return health_subject(province_code, event) if domain == "health" else civil_subject(province_code, event)


def stream_for(settings: Settings, subject: str) -> str:
    """The stream that holds ``subject``."""
    if subject.startswith("health."):
        return settings.health_stream
    if subject.startswith(f"{DLQ_PREFIX}."):
        return settings.dlq_stream
    if subject.startswith(f"{NOTIFY_PREFIX}."):
        return settings.notify_stream
    return settings.civil_stream


async def ensure_streams(js: JetStreamContext, settings: Settings) -> None:
    for config in stream_configs(settings):
        try:
            await js.stream_info(config.name or "")
        except NotFoundError:
            await js.add_stream(config)
        else:
            await js.update_stream(config)
