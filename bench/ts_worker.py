"""The TypeScript bench worker (``bench/typescript/worker.ts``): find Node.js and the built
TypeScript SDK, compile the worker with the SDK's ``tsc``, or say why it cannot run."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from bench.harness import ROOT

SOURCE = ROOT / "bench" / "typescript"
SCRIPT = SOURCE / "build" / "worker.js"
SDK = ROOT / "sdk-typescript"
TSC = SDK / "node_modules" / ".bin" / "tsc"
SDK_BUILD = SDK / "dist" / "index.js"


def build() -> tuple[Path | None, str]:
    """The compiled worker script, or ``None`` and why it cannot run."""
    if shutil.which("node") is None:
        return None, "node is not on PATH (install Node.js 20+)"
    if not TSC.exists():
        return None, f"{TSC.relative_to(ROOT)} is missing (run make install)"
    if not SDK_BUILD.exists():
        return None, f"{SDK_BUILD.relative_to(ROOT)} is missing (run make ts-build)"
    proc = subprocess.run(
        [str(TSC), "-p", str(SOURCE / "tsconfig.json")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        return None, f"tsc failed on {SOURCE.relative_to(ROOT)}: {proc.stdout[-2000:]}"
    return SCRIPT, ""
