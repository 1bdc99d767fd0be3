"""JetStream streams: civil events in, dead letters kept, notices out to the app gateway."""

from __future__ import annotations

from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from infra.settings import Settings

CIVIL_SUBJECTS = "civil.>"
DLQ_PREFIX = "dlq"
NOTIFY_PREFIX = "notify"


def stream_configs(settings: Settings) -> list[StreamConfig]:
    window = float(settings.dedupe_window_seconds)
    return [
        StreamConfig(name=settings.civil_stream, subjects=[CIVIL_SUBJECTS], storage=StorageType.FILE,
                     retention=RetentionPolicy.LIMITS, duplicate_window=window, discard=DiscardPolicy.OLD,
                     description="Civil-status events (CloudEvents 1.0), civil.<province>.<event>"),
        StreamConfig(name=settings.dlq_stream, subjects=[f"{DLQ_PREFIX}.>"], storage=StorageType.FILE,
                     retention=RetentionPolicy.LIMITS, duplicate_window=window,
                     description="Events that failed validation: original bytes + Dead-Letter-Reason header"),
        StreamConfig(name=settings.notify_stream, subjects=[f"{NOTIFY_PREFIX}.>"], storage=StorageType.FILE,
                     retention=RetentionPolicy.LIMITS, duplicate_window=window,
                     description="Notices delivered to citizens' in-app inboxes, for the app gateway"),
    ]


async def ensure_streams(js: JetStreamContext, settings: Settings) -> None:
    for config in stream_configs(settings):
        try:
            await js.stream_info(config.name or "")
        except NotFoundError:
            await js.add_stream(config)
        else:
            await js.update_stream(config)
