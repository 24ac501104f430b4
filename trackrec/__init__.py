"""TrackRec: recommendation chain-of-thought aligned to the recommender, as a batch platform."""

__version__ = "0.1.0"
