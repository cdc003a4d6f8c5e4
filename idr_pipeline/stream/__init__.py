"""Behavioral events and real-time profiles on Kafka: contracts, offset ranges, landing, stitching."""
