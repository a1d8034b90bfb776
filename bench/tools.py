"""Tools from Debian's packages (wrk, nginx): found, or installed when allowed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path


def ensure_tool(binary: str, package: str, install: bool) -> str | None:
    """The tool's path; installs the Debian package first when allowed."""
    found = shutil.which(binary) or _sbin(binary)
    if found or not install:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return None
    print(f"  installing {package} (apt-get) ...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", package]):
        done = subprocess.run(argv, env=env, capture_output=True, timeout=600, check=False)
        if done.returncode != 0 and argv[1] == "install":
            sys.stderr.write(done.stderr.decode(errors="replace")[-1000:])
            return None
    return shutil.which(binary) or _sbin(binary)


def _sbin(binary: str) -> str | None:
    for folder in ("/usr/sbin", "/usr/local/sbin", "/sbin"):
        path = Path(folder) / binary
        if path.exists():
            return str(path)
    return None


def tool_version(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, timeout=10, check=False)
    except OSError:
        return "?"
    text = (done.stdout + done.stderr).decode(errors="replace").strip().splitlines()
    return text[0].split("Copyright")[0].strip() if text else "?"
