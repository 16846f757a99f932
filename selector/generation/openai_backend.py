"""Sampling from an OpenAI-compatible server: ``/v1/chat/completions`` with ``n``.

vLLM, SGLang, llama.cpp's server and OpenAI accept ``n``, but some cap it or ignore it. A
problem's missing indices are cut into requests of at most ``max_n_per_request`` (all of them
while no cap is known); a server that refuses ``n`` with a 4xx, or answers with fewer choices
than asked, teaches the generator its cap, and the indices left over are asked for again.
Requests run on ``concurrency`` threads and are retried with exponential backoff on 429, 5xx,
timeouts and dropped connections; results are yielded in the caller's thread as they arrive.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

import openai

from selector.generation.config import GeneratorConfig
from selector.generation.prompt import Message
from selector.generation.solution import (
    GeneratedSolution,
    GenerationError,
    GenerationStats,
    ProblemPrompt,
    Progress,
    missing_indices,
)

__all__ = ["OpenAIGenerator"]

# A 4xx whose message is about the `n` parameter, and the limit it states, if any.
_N_ERROR = re.compile(r"(?<![A-Za-z_])['\"`]?n['\"`]?(?![A-Za-z_])")
_N_LIMIT = re.compile(r"(?:at most|<=|less than or equal to|maximum(?: of| is)?)\s*(\d+)", re.I)
_RETRYABLE_STATUS = {408, 409, 425, 429}
_BACKOFF_CAP = 60.0


def _retryable(error: Exception) -> bool:
    if isinstance(error, openai.APIConnectionError):  # timeouts included
        return True
    if isinstance(error, openai.APIStatusError):
        return error.status_code >= 500 or error.status_code in _RETRYABLE_STATUS
    return False


def _n_cap_from(error: openai.APIStatusError) -> int | None:
    """The cap on ``n`` that a 4xx response states (1 when it names ``n`` but no number)."""
    if not 400 <= error.status_code < 500 or error.status_code in _RETRYABLE_STATUS:
        return None
    message = f"{error.message} {error.body}"
    if not _N_ERROR.search(message):
        return None
    limit = _N_LIMIT.search(message)
    return max(1, int(limit.group(1))) if limit else 1


class _NCapped(Exception):
    def __init__(self, cap: int) -> None:
        self.cap = cap


class OpenAIGenerator:
    """Generator backend for any OpenAI-compatible chat completions server."""

    def __init__(
        self,
        config: GeneratorConfig,
        *,
        backoff_base: float = 1.0,
        client: openai.OpenAI | None = None,
    ) -> None:
        if config.backend != "openai":
            raise ValueError(f"OpenAIGenerator needs backend 'openai', not {config.backend!r}")
        self.config = config
        self.backoff_base = backoff_base
        self.stats = GenerationStats()
        # Retries are ours (counted, bounded by config.retries), not the client's.
        self.client = client or openai.OpenAI(
            base_url=config.base_url or None,
            api_key=config.api_key() or "EMPTY",  # local servers ignore the key but need one
            timeout=config.timeout,
            max_retries=0,
        )
        # Left out when unset: some servers reject an explicit null.
        self._optional: dict[str, Any] = {}
        if config.stop:
            self._optional["stop"] = list(config.stop)
        if config.seed is not None:
            self._optional["seed"] = config.seed
        self._cap = config.max_n_per_request or None
        self._cap_lock = threading.Lock()

    @property
    def n_cap(self) -> int | None:
        """Largest ``n`` one request may ask for, as configured or learned; None = unknown."""
        return self._cap

    def _learn_cap(self, cap: int) -> None:
        with self._cap_lock:
            if self._cap is None or cap < self._cap:
                self._cap = cap

    def _chunks(self, indices: list[int]) -> list[list[int]]:
        size = self._cap or len(indices) or 1
        return [indices[i : i + size] for i in range(0, len(indices), size)]

    def _create(self, messages: list[Message], n: int) -> Any:
        """One chat completion, retried on transient errors; raises _NCapped on an n refusal."""
        config = self.config
        attempt = 0
        while True:
            self.stats.add(requests=1)
            try:
                return self.client.chat.completions.create(
                    model=config.model,
                    messages=messages,
                    n=n,
                    temperature=config.temperature,
                    top_p=config.top_p,
                    max_tokens=config.max_tokens,
                    **self._optional,
                )
            except openai.APIStatusError as error:
                cap = _n_cap_from(error) if n > 1 else None
                if cap is not None and cap < n:
                    raise _NCapped(cap) from error
                if not _retryable(error) or attempt >= config.retries:
                    raise GenerationError(f"chat completion failed: {error}") from error
                delay = self._delay(attempt, error.response.headers.get("retry-after"))
            except openai.APIConnectionError as error:
                if attempt >= config.retries:
                    raise GenerationError(f"chat completion failed: {error}") from error
                delay = self._delay(attempt, None)
            attempt += 1
            self.stats.add(retries=1)
            time.sleep(delay)

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after:
            try:
                return min(_BACKOFF_CAP, max(0.0, float(retry_after)))
            except ValueError:
                pass  # an HTTP date: fall back to our own backoff
        # Full jitter, so that throttled threads do not come back in lockstep.
        return random.uniform(0, min(_BACKOFF_CAP, self.backoff_base * 2**attempt))

    def _request(
        self, problem: ProblemPrompt, indices: list[int]
    ) -> tuple[list[GeneratedSolution], list[int]]:
        """Solutions for a prefix of ``indices``, and the indices still to ask for."""
        try:
            response = self._create(self.config.prompt.messages(problem.problem), len(indices))
        except _NCapped as capped:
            self._learn_cap(capped.cap)
            return [], indices
        choices = sorted(response.choices, key=lambda choice: choice.index)[: len(indices)]
        if not choices:
            raise GenerationError(f"the server returned no choices for {problem.key!r}")
        if len(choices) < len(indices):
            self._learn_cap(len(choices))
        usage = response.usage
        if usage is not None:
            self.stats.add(
                prompt_tokens=usage.prompt_tokens or 0,
                completion_tokens=usage.completion_tokens or 0,
            )
        solutions = [
            GeneratedSolution.from_text(
                problem.key,
                index,
                choice.message.content,
                self.config.split_rule,
                finish_reason=choice.finish_reason,
                # With one choice the request's usage is the solution's own.
                completion_tokens=usage.completion_tokens if usage and len(choices) == 1 else None,
            )
            for index, choice in zip(indices, choices, strict=False)
        ]
        return solutions, indices[len(choices) :]

    def generate(
        self,
        problems: Sequence[ProblemPrompt],
        n: int | None = None,
        existing: Mapping[str, Collection[int]] | None = None,
        progress: Progress | None = None,
    ) -> Iterator[GeneratedSolution]:
        """Yield solutions ``0..n-1`` of each problem except the indices in ``existing``.

        On a request that fails for good, the requests in flight are finished and yielded
        first, then GenerationError is raised: a resumed run asks only for what is missing.
        """
        n = self.config.n if n is None else n
        todo = missing_indices(problems, n, existing)
        total = sum(len(indices) for _, indices in todo)
        done = 0
        failure: BaseException | None = None
        with ThreadPoolExecutor(self.config.concurrency, thread_name_prefix="generate") as pool:
            queue = [(p, chunk) for p, indices in todo for chunk in self._chunks(indices)]
            queue.reverse()  # pop() from the end keeps the problems' order
            running: dict[Future, ProblemPrompt] = {}
            try:
                while queue or running:
                    while queue and failure is None and len(running) < self.config.concurrency:
                        problem, chunk = queue.pop()
                        running[pool.submit(self._request, problem, chunk)] = problem
                    if not running:
                        break
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in finished:
                        problem = running.pop(future)
                        try:
                            solutions, left = future.result()
                        except Exception as error:
                            failure = failure or error
                            continue
                        queue.extend((problem, chunk) for chunk in self._chunks(left)[::-1])
                        for solution in solutions:
                            self.stats.add(solutions=1, without_answer=not solution.has_answer)
                            yield solution
                        done += len(solutions)
                        if progress is not None and solutions:
                            progress(done, total)
            finally:
                # The caller stopped early (or we failed): start nothing new, drop what waits.
                queue.clear()
                for future in running:
                    future.cancel()
        if failure is not None:
            raise failure

    def complete(self, messages: list[Message], n: int) -> list[str]:
        """``n`` raw completions of ``messages`` (several requests where the server caps n)."""
        texts: list[str] = []
        while len(texts) < n:
            want = min(n - len(texts), self._cap or n)
            try:
                response = self._create(messages, want)
            except _NCapped as capped:
                self._learn_cap(capped.cap)
                continue
            if not response.choices:
                raise GenerationError("the server returned no choices")
            if len(response.choices) < want:
                self._learn_cap(len(response.choices))
            texts.extend(choice.message.content or "" for choice in response.choices[:want])
        return texts
