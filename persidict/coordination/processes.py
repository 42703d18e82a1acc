"""Which process holds a lease, and whether it still runs: names that survive a reused pid.

A lease names its holder's host (hostname, boot id and pid namespace, so two
containers that share a hostname are not one host), its pid and the
process's start time (so a pid the system reused for another process does
not pass for the holder).  A process of this host can then tell that a
holder died and take its lease over at once, without waiting for it to
expire.  Elsewhere (another host, Windows) a lease simply expires.
"""

from __future__ import annotations

import functools
import os
import socket

__all__ = ["holder_is_gone", "host_identity", "process_is_gone", "process_started", "this_process_started"]


def _read(path: str) -> str:
    """A small system file's text, '' if there is none (not Linux, no permission)."""
    try:
        with open(path, encoding="ascii", errors="replace") as file:
            return file.read().strip()
    except OSError:
        return ""


@functools.cache
def host_identity() -> str:
    """This host as leases name it: hostname, boot id and pid namespace (the last two on Linux).

    Two containers with one hostname have different pid namespaces, and a
    rebooted machine a new boot id: neither can mistake the other's pids for its own.
    """
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = ""
    return "|".join((socket.gethostname(), _read("/proc/sys/kernel/random/boot_id"), namespace))


def _stat_fields(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name (which may hold spaces); [] if unknown."""
    return _read(f"/proc/{pid}/stat").rpartition(")")[2].split()


def process_started(pid: int) -> str:
    """The start time of process ``pid`` (clock ticks since boot, from /proc); '' where unknown."""
    fields = _stat_fields(pid)
    return fields[19] if len(fields) > 19 else ""


@functools.cache
def this_process_started(pid: int) -> str:
    """This process's start time, computed once per pid (a forked child has its own)."""
    return process_started(pid)


def process_is_gone(pid: int, started: str) -> bool:
    """Whether process ``pid`` of this host has ended (or its pid now belongs to another process).

    POSIX only: on Windows ``os.kill`` would terminate the process, so there
    nothing is ever declared gone (leases expire as usual).
    """
    if os.name != "posix" or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive, owned by another user
    fields = _stat_fields(pid)
    if fields and fields[0] == "Z":
        return True  # exited, waiting to be reaped: signal 0 still reaches a zombie
    return bool(started) and process_started(pid) not in ("", started)


def holder_is_gone(host: str, pid: int, started: str) -> bool:
    """Whether the process named by ``host``, ``pid`` and ``started`` ran on this host and has ended."""
    return bool(host) and host == host_identity() and process_is_gone(pid, started)
