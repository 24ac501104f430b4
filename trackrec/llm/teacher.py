"""The distillation teacher: any OpenAI-compatible /v1/chat/completions endpoint, a local HF model,
or (`profile`) the offline stand-in that writes from item metadata (`trackrec.llm.profile_teacher`).

The HTTP client retries (connection errors, timeouts, 429 and 5xx, with backoff), keeps at most
`concurrency` requests in flight, and caches every answer on disk by (model, prompt, sampling),
so a re-run after a failure only asks for what is missing. The API key is read from the
environment variable the config names, never from the config itself.

An answer is untrusted text that becomes G0's training target: it is screened (`screened`) before
it is cached or trained on. One longer than `max_tokens` could write (a server that ignores it) is
refused, its body read no further than that; control and format characters (ESC sequences, bidi
overrides, NULs) and chat-template markup (a turn of its own inside G0's training text) are removed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
import unicodedata
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter
from tqdm.auto import tqdm
from urllib3.exceptions import ReadTimeoutError
from urllib3.util.retry import Retry

from trackrec.atomic import atomic_file
from trackrec.errors import TrackRecError
from trackrec.inert import ACTING, inert
from trackrec.llm import chat
from trackrec.llm.base_model import cache_root
from trackrec.llm.config import TeacherConfig

MAX_CHARS_PER_TOKEN = 16  # far more than any tokenizer's tokens spell on average
BODY_OVERHEAD = 64 * 1024  # a chat completion's JSON around its answer
# chat-template markup of the model families in use: <|im_start|>, <|eot_id|>, </s>, [INST], <<SYS>>,
# <start_of_turn>; a tokenizer's own special tokens are removed too, where one is given
_CHAT_MARKUP = re.compile(r"<\|[^<>|\s]{0,64}\|>|</?s>|\[/?INST\]|<</?SYS>>|</?(start|end)_of_turn>", re.IGNORECASE)
_KEPT = "\n\t"


class TeacherError(TrackRecError):
    """The teacher endpoint failed or answered something that is not a chat completion."""


def max_answer_chars(max_tokens: int) -> int:
    return max_tokens * MAX_CHARS_PER_TOKEN


def screened(answer: str, max_tokens: int, where: str, special: Sequence[str] = ()) -> str:
    """`answer` fit to be a training target: refused where longer than `max_tokens` tokens could
    spell or empty; control and format characters (but newlines and tabs) and chat markup removed,
    and each of `special` (a tokenizer's special tokens, which its tokenizer would read as such)."""
    if len(answer) > max_answer_chars(max_tokens):
        raise TeacherError(
            f"{where}: an answer of {len(answer)} characters, more than max_tokens ({max_tokens}) can write"
        )
    # controls first: removing one must not join two halves of a token; each removal leaves a space
    kept = "".join(c for c in answer if c in _KEPT or unicodedata.category(c) not in ACTING)
    for token in special:
        kept = kept.replace(token, " ")
    kept = _CHAT_MARKUP.sub(" ", kept).strip()
    if not kept:
        raise TeacherError(f"{where}: an empty answer once control characters and chat markup are removed")
    return kept


def special_tokens(tokenizer) -> list[str]:
    """Every text `tokenizer` reads as one special token (its chat template's among them), longest first."""
    added = [t.content for t in getattr(tokenizer, "added_tokens_decoder", {}).values() if t.special]
    return sorted({*tokenizer.all_special_tokens, *added} - {""}, key=len, reverse=True)


class AnswerCache:
    """One JSON file per answer, keyed by a hash of everything that determines it."""

    def __init__(self, folder: Path, identity: dict):
        self.folder, self.identity = folder, identity

    def _path(self, prompt: str) -> Path:
        key = hashlib.sha256(json.dumps([self.identity, prompt], sort_keys=True).encode()).hexdigest()
        return self.folder / key[:2] / f"{key}.json"

    def get(self, prompt: str) -> str | None:
        """The cached answer (screened: a cache may predate screening), or None."""
        path = self._path(prompt)
        if not path.exists():
            return None
        answer = json.loads(path.read_text())["answer"]
        return screened(answer, self.identity["max_tokens"], f"teacher cache {path}")

    def put(self, prompt: str, answer: str) -> None:
        with atomic_file(self._path(prompt)) as tmp:
            tmp.write_text(json.dumps({"answer": answer}))


class OpenAITeacher:
    def __init__(self, config: TeacherConfig, progress: bool = True):
        self.config, self.progress = config, progress
        self.url = config.endpoint.rstrip("/") + "/chat/completions"
        identity = {"model": config.model, "max_tokens": config.max_tokens, "temperature": config.temperature}
        self.cache = AnswerCache(Path(config.cache_dir or cache_root() / "teacher"), identity)
        self._local = threading.local()

    def _session(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            retry = Retry(
                total=self.config.max_retries,
                backoff_factor=0.5,
                status_forcelist=(429, 500, 502, 503, 504),
                allowed_methods=frozenset({"POST"}),
                raise_on_status=False,
            )
            session = requests.Session()
            session.mount("http://", HTTPAdapter(max_retries=retry))
            session.mount("https://", HTTPAdapter(max_retries=retry))
            key = os.environ.get(self.config.api_key_env)
            if key:
                session.headers["Authorization"] = f"Bearer {key}"
            self._local.session = session
        return self._local.session

    def _ask(self, index: int, prompt: str) -> str:
        body = {
            "model": self.config.model,
            "messages": chat.user_turn(prompt),
            "max_tokens": self.config.max_tokens,
            "temperature": self.config.temperature,
        }
        where = f"teacher {self.url}, prompt {index}"
        try:
            response = self._session().post(self.url, json=body, timeout=self.config.timeout_s, stream=True)
            text = self._capped_body(response, where)
        except requests.RequestException as error:
            # after retries, a read timeout arrives wrapped in MaxRetryError
            if isinstance(error, requests.Timeout) or isinstance(
                getattr(error.args[0], "reason", None), ReadTimeoutError
            ):
                raise TeacherError(
                    f"{where}: no answer within {self.config.timeout_s} s after {self.config.max_retries} retries"
                ) from error
            raise TeacherError(f"{where}: {error}") from error
        if response.status_code != 200:
            raise TeacherError(f"{where}: HTTP {response.status_code}: {inert(repr(text[:200]))}")
        try:
            answer = json.loads(text)["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as error:
            raise TeacherError(f"{where}: not a chat completion: {inert(repr(text[:200]))}") from error
        if not isinstance(answer, str) or not answer.strip():
            raise TeacherError(f"{where}: empty or non-text answer {inert(repr(answer), 200)}")
        answer = screened(answer, self.config.max_tokens, where)
        self.cache.put(prompt, answer)
        return answer

    def _capped_body(self, response: requests.Response, where: str) -> str:
        """The body as text, read no further than an answer of max_tokens can need, and within
        timeout_s in all (requests' timeout bounds each read: a body sent a byte at a time never trips it)."""
        limit = BODY_OVERHEAD + 8 * max_answer_chars(self.config.max_tokens)  # JSON escapes: 6 bytes a char
        deadline = time.monotonic() + self.config.timeout_s
        body = bytearray()
        with response:
            # read1: what has arrived, however little (iter_content waits for whole chunks)
            while chunk := response.raw.read1(64 * 1024, decode_content=True):
                body += chunk
                if len(body) > limit:
                    raise TeacherError(f"{where}: an answer of more than {limit} bytes, more than max_tokens can write")
                if time.monotonic() > deadline:
                    raise TeacherError(f"{where}: the answer took more than {self.config.timeout_s} s to arrive")
        return body.decode(response.encoding or "utf-8", errors="replace")

    def complete(self, prompts: Sequence[str]) -> list[str]:
        """Answers in the order of `prompts`; the first fatal answer (a 4xx, retries exhausted, not a
        chat completion) stops the batch: queued prompts are never sent, only those in flight finish."""
        answers = [self.cache.get(p) for p in prompts]
        missing = [i for i, a in enumerate(answers) if a is None]
        pool = ThreadPoolExecutor(max_workers=self.config.concurrency)
        try:
            futures = {pool.submit(self._ask, i, prompts[i]): i for i in missing}
            done = tqdm(
                as_completed(futures), total=len(missing), desc="teacher", unit="prompt", disable=not self.progress
            )
            for future in done:
                answers[futures[future]] = future.result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return answers


class HFTeacher:
    """A local Hugging Face model as teacher (greedy decoding through the HF engine)."""

    def __init__(self, config: TeacherConfig, batch_size: int = 16, progress: bool = True):
        from trackrec.llm.adapters import load_model, load_tokenizer
        from trackrec.llm.hf_engine import HFEngine

        self.engine = HFEngine(load_model(config.model), load_tokenizer(config.model), batch_size, progress)
        self.max_tokens = config.max_tokens

    def complete(self, prompts: Sequence[str]) -> list[str]:
        return self.engine.greedy(prompts, self.max_tokens)


def make_teacher(config: TeacherConfig, progress: bool = True):
    """A teacher that answers RecCoT prompts (the profile teacher reads rows: `ProfileTeacher`)."""
    if config.kind == "profile":
        raise ValueError("the profile teacher writes from history rows, not prompts: use ProfileTeacher")
    return OpenAITeacher(config, progress) if config.kind == "openai" else HFTeacher(config, progress=progress)
