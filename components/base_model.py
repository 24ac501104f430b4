"""The run's one fetch of the base model, onto its workspace, before any GPU task starts."""

from components.stage import stage


@stage("cpu")  # a cluster run's one fetch of the base, onto its workspace
def stage_base(llm: str, workspace: str) -> str:
    """The base named in the llm section, fetched into the run's cache on its workspace (a folder is
    read where it is); returns `workspace`, which every GPU task takes: that orders them after this
    task, and KFP mounts the workspace in their pods because the value names it."""
    from trackrec.llm.base_model import run_cache, stage_base

    stage_base(llm, run_cache(workspace))
    return workspace
