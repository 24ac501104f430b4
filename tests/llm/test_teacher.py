import pytest

from tests.llm.teacher_server import TeacherServer
from trackrec.config import config_from_dict
from trackrec.errors import ConfigError
from trackrec.llm.config import TeacherConfig
from trackrec.llm.teacher import OpenAITeacher, TeacherError


def teacher(server, tmp_path, **overrides):
    config = TeacherConfig(endpoint=server.url, model="teacher-x", cache_dir=str(tmp_path / "cache"), **overrides)
    return OpenAITeacher(config, progress=False)


def echo(prompt):
    return f"summary of: {prompt}"


def test_answers_in_order_then_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACKREC_TEACHER_API_KEY", "sk-test")
    prompts = [f"user {i}" for i in range(12)]
    with TeacherServer(echo) as server:
        assert teacher(server, tmp_path, concurrency=4).complete(prompts) == [echo(p) for p in prompts]
        assert len(server.requests) == 12 and server.requests[0]["auth"] == "Bearer sk-test"
        assert server.requests[0]["body"]["model"] == "teacher-x"
        assert teacher(server, tmp_path).complete(prompts[:3] + ["new"]) == [echo(p) for p in prompts[:3] + ["new"]]
        assert len(server.requests) == 13  # only the new prompt was asked


def test_retries_an_overloaded_endpoint(tmp_path):
    with TeacherServer(echo, mode="flaky", failures=2) as server:
        assert teacher(server, tmp_path, max_retries=3, concurrency=1).complete(["a"]) == [echo("a")]
        assert len(server.requests) == 3


def test_garbage_answer_is_a_clear_error_and_nothing_is_cached(tmp_path):
    with TeacherServer(echo, mode="garbage") as server:
        with pytest.raises(TeacherError, match=r"prompt 0: not a chat completion: '<html>upstream"):
            teacher(server, tmp_path).complete(["a"])
    assert not list((tmp_path / "cache").rglob("*.json"))


def test_timeout_is_a_clear_error(tmp_path):
    with TeacherServer(echo, mode="slow", delay=2.0) as server:
        with pytest.raises(TeacherError, match=r"no answer within 0.2 s after 1 retries"):
            teacher(server, tmp_path, timeout_s=0.2, max_retries=1).complete(["a"])


def test_an_answer_sent_a_byte_at_a_time_fails_within_the_timeout(tmp_path):
    """Each byte comes well inside the read timeout; the whole answer must come inside it too."""
    import time

    with TeacherServer(echo, mode="drip", delay=0.05) as server:
        started = time.monotonic()
        with pytest.raises(TeacherError, match=r"prompt 0: the answer took more than 1.0 s to arrive"):
            teacher(server, tmp_path, timeout_s=1.0, max_retries=0).complete(["a"])
        assert time.monotonic() - started < 3
    assert not list((tmp_path / "cache").rglob("*.json"))


def test_unreachable_endpoint_names_it(tmp_path):
    with TeacherServer(echo) as server:
        url = server.url
    config = TeacherConfig(endpoint=url, cache_dir=str(tmp_path), max_retries=0)
    with pytest.raises(TeacherError, match=url.replace(".", r"\.")):
        OpenAITeacher(config, progress=False).complete(["a"])


def test_a_fatal_answer_stops_the_batch_before_the_queued_prompts_are_sent(tmp_path):
    with TeacherServer(echo, mode="denied", delay=0.05) as server:
        with pytest.raises(TeacherError, match=r"HTTP 401"):
            teacher(server, tmp_path, concurrency=2).complete([f"user {i}" for i in range(40)])
        assert len(server.requests) <= 4  # those in flight, not the 40 queued


def test_config_needs_an_http_endpoint():
    with pytest.raises(ConfigError, match="endpoint: required when kind is openai"):
        config_from_dict(TeacherConfig, {"model": "m"})
    with pytest.raises(ConfigError, match="is not an http"):
        config_from_dict(TeacherConfig, {"endpoint": "ftp://x"})
