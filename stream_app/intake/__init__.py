"""The intake step: Kafka message bytes in, contact events out.

This package decodes and checks the shape of messages. It reads nothing from Kafka itself,
and it does not map or validate contact fields.
"""

from stream_app.intake.debezium import DebeziumOptions, event_from_debezium, is_debezium_envelope
from stream_app.intake.decode import decode_message

__all__ = ["DebeziumOptions", "decode_message", "event_from_debezium", "is_debezium_envelope"]
