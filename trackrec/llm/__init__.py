"""The LLM half of TrackRec: prompts, engines, rewards and the alignment losses."""
