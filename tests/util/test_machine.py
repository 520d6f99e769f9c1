"""Cores, cgroup quotas and CPU features, read from files laid out as Linux lays them out."""

import os

import pytest

from socialmae_rt.util.machine import CpuDescription, cgroup_cpu_limit, cores, cpu_flags, usable_cores


def write(root, name, text):
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.mark.parametrize("cpu_max, expected", [("max 100000\n", None), ("150000 100000\n", 1.5), ("50000 100000", 0.5)])
def test_cgroup_v2_quota(tmp_path, cpu_max, expected):
    write(tmp_path, "cpu.max", cpu_max)
    assert cgroup_cpu_limit(tmp_path) == expected


def test_cgroup_v1_quota_and_unlimited(tmp_path):
    write(tmp_path, "cpu/cpu.cfs_quota_us", "300000\n")
    write(tmp_path, "cpu/cpu.cfs_period_us", "100000\n")
    assert cgroup_cpu_limit(tmp_path) == 3.0
    write(tmp_path, "cpu/cpu.cfs_quota_us", "-1\n")
    assert cgroup_cpu_limit(tmp_path) is None


def test_no_cgroup_files_means_no_limit(tmp_path):
    assert cgroup_cpu_limit(tmp_path) is None
    assert usable_cores(tmp_path) == cores() == len(os.sched_getaffinity(0))


def test_usable_cores_is_capped_by_the_quota_rounded_up(tmp_path):
    write(tmp_path, "cpu.max", "50000 100000")  # half a core: still one thread
    assert usable_cores(tmp_path) == 1
    write(tmp_path, "cpu.max", f"{(cores() + 8) * 100000} 100000")  # a quota above the mask: the mask wins
    assert usable_cores(tmp_path) == cores()


def test_affinity_caps_usable_cores(tmp_path):
    original = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {min(original)})
        assert usable_cores(tmp_path) == 1
    finally:
        os.sched_setaffinity(0, original)


def test_cpu_description_features():
    amx = CpuDescription("Xeon", frozenset({"avx2", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16"}), 2)
    zen4 = CpuDescription("EPYC", frozenset({"avx2", "avx512_vnni", "avx512_bf16"}), 2)
    old = CpuDescription("Core", frozenset({"avx2"}), 4)
    assert (amx.has_amx, amx.has_vnni, amx.has_bf16) == (True, True, True)
    assert (zen4.has_amx, zen4.has_vnni, zen4.has_bf16) == (False, True, True)
    assert (old.has_amx, old.has_vnni, old.has_bf16) == (False, False, False)
    assert "AMX VNNI BF16 AVX2" in amx.summary() and "4 core" in old.summary()
    here = CpuDescription.this_machine()
    assert here.flags == cpu_flags() and here.cores >= 1
