"""File names in a stage's output that another stage reads, named once here (a module with no
imports, so that a reader's task starts without the writer's libraries)."""

SUMMARY = "summary.json"  # publish's output: what it published, for which arm, from which data
