"""The TrackRec pipeline, its cluster settings, compiling, local runs and KFP client calls."""
