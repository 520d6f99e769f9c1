"""What the machine offers and what benchmarks report about it (Linux /proc and cgroups)."""

from __future__ import annotations

import math
import os
import platform
from dataclasses import dataclass
from pathlib import Path


def cpu_name() -> str:
    """The CPU's model name (benchmarks name it with every figure)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cores() -> int:
    """The cores this process may run on (its affinity mask)."""
    return len(os.sched_getaffinity(0))


def cgroup_cpu_limit(root: str | Path = "/sys/fs/cgroup") -> float | None:
    """The CPU quota of this process's cgroup in cores (e.g. 1.5), None when unlimited.

    cgroup v2 `cpu.max` ("quota period" or "max period"), else v1 `cpu/cpu.cfs_quota_us` over
    `cpu.cfs_period_us` (quota -1: unlimited).
    """
    root = Path(root)
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return None if quota_us <= 0 or period_us <= 0 else quota_us / period_us


def usable_cores(root: str | Path = "/sys/fs/cgroup") -> int:
    """Threads worth running: the affinity mask, capped by the cgroup quota (rounded up), >= 1.

    A container limited to 2 CPUs on a 64-core host sees 64 cores; 64 compute threads there
    would queue behind each other and spin.
    """
    limit = cgroup_cpu_limit(root)
    count = cores()
    if limit is not None:
        count = min(count, max(1, math.ceil(limit - 1e-9)))
    return max(1, count)


def cpu_flags() -> frozenset[str]:
    """The instruction-set flags of the first CPU in /proc/cpuinfo (avx512_vnni, amx_int8, ...)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


@dataclass(frozen=True)
class CpuDescription:
    """What backend choice depends on: the CPU's name, its flags and the cores we may use."""

    name: str
    flags: frozenset[str]
    cores: int

    @classmethod
    def this_machine(cls) -> "CpuDescription":
        return cls(cpu_name(), cpu_flags(), usable_cores())

    @property
    def has_amx(self) -> bool:
        return {"amx_tile", "amx_int8"} <= self.flags

    @property
    def has_vnni(self) -> bool:
        return bool({"avx512_vnni", "avx_vnni"} & self.flags)

    @property
    def has_int8_dot(self) -> bool:
        """int8 dot products without saturation: VNNI or AMX. Without them (AVX2 only) x86 int8
        kernels multiply u8 x s8 pairs into saturating 16-bit sums, so int8 needs 7-bit weights."""
        return self.has_vnni or self.has_amx

    @property
    def has_bf16(self) -> bool:
        return bool({"avx512_bf16", "amx_bf16"} & self.flags)

    def summary(self) -> str:
        features = [name for name, present in (("AMX", self.has_amx), ("VNNI", self.has_vnni),
                                                ("BF16", self.has_bf16), ("AVX2", "avx2" in self.flags)) if present]
        return f"{self.name}, {self.cores} core(s), {' '.join(features) or 'no AVX2/VNNI/BF16/AMX'}"


def rss_mib() -> float:
    """Resident set size of this process, MiB."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
