"""KFP v2 components: one per stage, each a thin wrapper over a function in `trackrec.stages`
(`catalog.py` names them and builds them for a set of images). Nothing is imported here: a task
imports `components.metrics` inside KFP's runtime, where `kfp.dsl` holds only the executor's part."""
