"""Pipeline stages: plain functions over folders, called by the CLI and (later) by KFP components."""
