"""The message contracts of the two Kafka topics and the raw-zone layout they land in.

One module holds them because three parts of the product meet here: the producers
(``idr generate-events``, ``POST /resolve?register=true``), the sensors and assets that land
offset ranges as Parquet, and the stitching and segment steps that read those Parquet files.
"""

from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from idr_pipeline.core.schema import CANONICAL_COLUMNS

EventType = Literal["page_view", "ad_click", "purchase", "identify"]
EVENT_TYPES: tuple[str, ...] = ("page_view", "ad_click", "purchase", "identify")

#: Events stamped further ahead than this are refused: a producer clock that is days ahead
#: would otherwise put an event into every "last N days" window for days.
MAX_CLOCK_SKEW = timedelta(hours=1)


class EventProperties(BaseModel):
    model_config = ConfigDict(extra="allow")

    url: str | None = None
    campaign: str | None = None
    product_id: str | None = None
    category: str | None = None
    price: float | None = Field(default=None, ge=0)
    currency: str | None = Field(default=None, min_length=3, max_length=3)


class Event(BaseModel):
    """One ``idr.events`` message (JSON), keyed by ``anonymous_id`` or else ``user_id``.

    ``user_id`` is the signed-in account id: the web source's ``source_customer_id``, found in
    the store as the identifier ``source_customer_key`` = ``web:<user_id>``.
    """

    model_config = ConfigDict(extra="ignore")

    event_id: str = Field(min_length=1, max_length=128)
    type: EventType
    ts: datetime
    anonymous_id: str | None = Field(default=None, max_length=128)
    user_id: str | None = Field(default=None, max_length=128)
    email: str | None = Field(default=None, max_length=320)
    properties: EventProperties = Field(default_factory=EventProperties)

    @field_validator("ts")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    @model_validator(mode="after")
    def _someone(self) -> "Event":
        if not (self.anonymous_id or self.user_id):
            raise ValueError("an event needs anonymous_id or user_id")
        if self.type == "identify" and not (self.anonymous_id and (self.user_id or self.email)):
            raise ValueError("identify needs anonymous_id plus user_id or email")
        return self

    def check_not_future(self, now: datetime) -> None:
        if self.ts > now + MAX_CLOCK_SKEW:
            raise ValueError(f"ts {self.ts.isoformat()} is in the future")

    def key(self) -> str:
        return self.anonymous_id or self.user_id or ""


#: Columns of a landed events Parquet file, in order. ``ts`` is a UTC timestamp; the Kafka
#: coordinates make every row traceable to the message it came from.
EVENT_COLUMNS: list[str] = [
    "event_id",
    "type",
    "ts",
    "anonymous_id",
    "user_id",
    "email",
    "url",
    "campaign",
    "product_id",
    "category",
    "price",
    "currency",
    "kafka_topic",
    "kafka_partition",
    "kafka_offset",
]

#: Columns of a dead-letter Parquet file: the message as received and why it was refused.
DEAD_LETTER_COLUMNS: list[str] = [
    "kafka_topic",
    "kafka_partition",
    "kafka_offset",
    "key",
    "value",
    "reason",
    "received_at",
]

#: Raw-zone dataset names under the lake URI: ``raw/<name>/<partition_key>/part-*.parquet``.


class ProfileMessage(BaseModel):
    """One ``idr.profiles`` message: a new or updated customer record in canonical columns.

    Values are strings as in the raw zone of the file sources, so the stream lands in the same
    shape and standardization treats both alike; a number where a string belongs is refused
    rather than guessed at (a phone sent as an int has already lost its leading zero).
    """

    model_config = ConfigDict(extra="ignore", strict=True)

    record_id: str = Field(min_length=1, max_length=128)
    source: str = Field(min_length=1, max_length=64)
    source_customer_id: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    street: str | None = None
    city: str | None = None
    state: str | None = None
    postcode: str | None = None
    country: str | None = None
    dob: str | None = None
    national_id: str | None = None
    ip_address: str | None = None
    device_id: str | None = None
    anonymous_id: str | None = None
    updated_at: datetime | None = None

    @field_validator("updated_at", mode="before")
    @classmethod
    def _parse_ts(cls, value: object) -> object:
        # strict mode refuses ISO strings for datetimes; JSON has no other way to send one.
        if isinstance(value, str):
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        return value

    @field_validator("updated_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def check_not_future(self, now: datetime) -> None:
        if self.updated_at is not None and self.updated_at > now + MAX_CLOCK_SKEW:
            raise ValueError(f"updated_at {self.updated_at.isoformat()} is in the future")

    def key(self) -> str:
        return f"{self.source}:{self.record_id}"


#: Columns of a landed ``profile_stream`` Parquet file: the canonical profile columns (all
#: strings, ``updated_at`` as ISO-8601 UTC) followed by the Kafka coordinates.
PROFILE_STREAM_COLUMNS: list[str] = [*CANONICAL_COLUMNS, "kafka_topic", "kafka_partition", "kafka_offset"]
