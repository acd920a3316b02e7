"""Running `nft`, `ip` and `conntrack` for the proxy, in the node's network namespace or a named one (tests).

The proxy may not import the node agent (components meet only through the API), so it has its own small
runner.  Every command is a subprocess started through the event loop (never blocking it), bounded by a
timeout; a non-zero exit raises `CommandError` carrying stderr.  `netns` names a namespace under /run/netns
that every command enters with ``nsenter --net=`` (None: the caller's own).
"""

from __future__ import annotations

import asyncio
import shutil

__all__ = ["CommandError", "Shell"]

NSENTER = "nsenter"
NETNS_DIR = "/run/netns"
TIMEOUT = 30.0


class CommandError(Exception):
    """A command could not run or exited non-zero; `stderr` is what it said."""

    def __init__(self, argv: list[str], returncode: int, stderr: str) -> None:
        self.argv = argv
        self.returncode = returncode
        self.stderr = stderr
        super().__init__(f"{' '.join(argv)} exited {returncode}: {stderr.strip()}")


class Shell:
    """Commands inside one network namespace (see the module docstring)."""

    def __init__(self, netns: str | None = None) -> None:
        self.netns = netns

    def argv(self, args: list[str]) -> list[str]:
        return [NSENTER, f"--net={NETNS_DIR}/{self.netns}", "--", *args] if self.netns else list(args)

    async def run(self, args: list[str], *, stdin: str | None = None) -> str:
        """Run `args`, return stdout; `CommandError` on a failure to start, a non-zero exit or a timeout."""
        argv = self.argv(args)
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            raise CommandError(argv, -1, str(exc)) from exc
        try:
            async with asyncio.timeout(TIMEOUT):
                out, err = await process.communicate(stdin.encode() if stdin is not None else None)
        except TimeoutError as exc:
            process.kill()
            await process.wait()
            raise CommandError(argv, -1, f"no answer within {TIMEOUT:g}s") from exc
        if process.returncode != 0:
            raise CommandError(argv, process.returncode or 0, err.decode(errors="replace"))
        return out.decode(errors="replace")

    async def nft(self, script: str) -> None:
        """Apply `script` with ``nft -f -``: one transaction, all of it or nothing."""
        if script.strip():
            await self.run(["nft", "-f", "-"], stdin=script)

    @staticmethod
    def has(tool: str) -> bool:
        return shutil.which(tool) is not None
