"""One call of a training stage (distill's SFT, align, rectune), as a file every rank reads: the
stage's function, its input folders, its llm section and its output folder. Ran the same way in the
task's pod (one process, or one per GPU under torchrun) and on each TrainJob node:
`python -m trackrec.cluster.job JOB_FILE`."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from trackrec.qualified import qualified, resolve

RANK = ["-m", __name__]  # what torchrun runs on each rank, followed by the job file


@dataclass(frozen=True)
class Job:
    function: str  # module:name of a trackrec.stages function (inputs..., llm, output)
    inputs: dict[str, str | None]  # its input folders by parameter name (None: not given)
    llm: str  # the llm section (JSON)
    output: str  # its output folder

    @classmethod
    def of(cls, function: Callable, inputs: dict, llm: str, output: str | Path) -> Job:
        return cls(qualified(function), dict(inputs), llm, str(output))

    @property
    def stage(self) -> str:
        return self.function.rsplit(":", 1)[1]

    def save(self, path: Path) -> Path:
        path.write_text(json.dumps(asdict(self)))
        return path

    @classmethod
    def load(cls, path: str | Path) -> Job:
        return cls(**json.loads(Path(path).read_text()))

    def moved(self, folder: Path) -> Job:
        """This job with copies of its inputs under `folder` (a workspace every node mounts) and its
        output at `folder/output`."""
        inputs = {}
        for name, source in self.inputs.items():
            if source is not None:
                target = folder / "inputs" / name
                target.parent.mkdir(parents=True, exist_ok=True)
                (shutil.copytree if Path(source).is_dir() else shutil.copy2)(source, target)
                source = str(target)
            inputs[name] = source
        return replace(self, inputs=inputs, output=str(folder / "output"))

    def run(self) -> None:
        from trackrec.llm.config import LLMConfig
        from trackrec.run_config import section

        function = resolve(self.function, "training stage function")
        function(**self.inputs, llm=section(LLMConfig, self.llm, "llm"), output=self.output)


if __name__ == "__main__":  # one rank: of the pod's torchrun or of a TrainJob node's
    import sys

    Job.load(sys.argv[1]).run()
