"""The stage outputs' declarations (trackrec/stages/outputs.py): every file named once in its
output, and a reader that finds one missing says which file and which stage writes it, in one line."""

import inspect

import pytest
from typer.testing import CliRunner

from trackrec.cli import app
from trackrec.errors import DataError
from trackrec.stages import outputs

DECLARED = [c for c in vars(outputs).values() if inspect.isclass(c) and issubclass(c, outputs.Output) and c.writer]
FILES = [(c, name) for c in DECLARED for files in (c.tables, c.summaries, c.others) for name in files]


def test_every_output_class_is_declared_with_its_writer():
    undeclared = [c.__name__ for c in vars(outputs).values() if inspect.isclass(c) and issubclass(c, outputs.Output)]
    assert sorted(undeclared) == sorted(["Output", *(c.__name__ for c in DECLARED)])  # only the base lacks one


@pytest.mark.parametrize("described", DECLARED, ids=lambda c: c.__name__)
def test_each_file_of_an_output_has_a_name_of_its_own(described, tmp_path):
    names = [name for files in (described.tables, described.summaries, described.others) for name in files]
    paths = [getattr(described(tmp_path), name) for name in names]
    assert len(set(names)) == len(names) and len(set(paths)) == len(paths)
    assert all(path.parent == tmp_path for path in paths)


@pytest.mark.parametrize(("described", "name"), FILES, ids=lambda v: getattr(v, "__name__", v))
def test_a_missing_input_file_is_one_line_naming_it_and_its_writer(described, name, tmp_path):
    with pytest.raises(DataError) as error:
        described(tmp_path / "out").required(name)
    message = str(error.value)
    assert message.startswith(f"{tmp_path / 'out'}/") and "\n" not in message
    assert f"not the output of {described.writer} ({described.__name__})" in message
    (tmp_path / "out").mkdir()
    getattr(described(tmp_path / "out"), name).write_text("")
    assert described(tmp_path / "out").required(name) == getattr(described(tmp_path / "out"), name)


def test_a_stage_reading_a_missing_input_names_the_file(tmp_path):
    from trackrec.llm.config import LLMConfig
    from trackrec.stages.align import align

    (tmp_path / "scored").mkdir()  # a folder that is not a score output
    with pytest.raises(DataError, match=r"scored/preferences\.parquet: not found: not the output of score \(Scored\)"):
        align(tmp_path / "scored", tmp_path / "g0", LLMConfig(), tmp_path / "g1")
    assert not (tmp_path / "g1").exists()


def test_publishing_a_folder_that_is_not_an_encode_output_is_one_line(tmp_path):
    (tmp_path / "emb").mkdir()
    (tmp_path / "store.yaml").write_text(f"repo: {tmp_path / 'repo'}\ndim: 4\n")
    args = ["features", "publish", "--store", str(tmp_path / "store.yaml"), "--embeddings", str(tmp_path / "emb")]
    result = CliRunner().invoke(app, [*args, "--version", "v1"], env={"COLUMNS": "400"})
    assert result.exit_code == 2 and result.output.count("\n") == 1, result.output
    assert "emb/embeddings.parquet: not found: not the output of encode (Embeddings)" in result.output
