"""Behavioural events and real-time profiles arriving on Kafka."""
