"""TrackRec: recommendation chain-of-thought aligned to the recommender, as a batch platform."""

from trackrec.cpus import size_thread_pools

__version__ = "0.1.0"

size_thread_pools()  # every task imports trackrec before torch: its thread pools fit the CPU limit
