"""TrackRec: recommendation chain-of-thought aligned to the recommender, as a batch platform."""

from trackrec import timing
from trackrec.cpus import size_thread_pools

timing.trackrec_imported()  # a task's start-up before this is the interpreter's and KFP's

__version__ = "0.1.0"

size_thread_pools()  # every task imports trackrec before torch: its thread pools fit the CPU limit
