"""The free memory the estimates compare with (mfax.freememory)."""

from mfax.freememory import cgroup_available


def _write(path, **files):
    path.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (path / name.replace("_", ".", 1)).write_text(text)


def test_a_control_groups_memory_limit_is_what_is_free(tmp_path):
    """In a container or batch job limited to 1 GiB on a host with 20 GiB available,
    `mfax train` read MemAvailable, accepted a run it estimated at 3.4 GiB and was killed
    (status 137) after writing its run directory, without a word."""
    proc = tmp_path / "cgroup"
    root = tmp_path / "fs"
    proc.write_text("0::/job/step\n")  # cgroup v2: the limit on the parent applies
    _write(root / "job", memory_max=str(2**30), memory_current=str(2**28))
    _write(root / "job" / "step", memory_max="max", memory_current=str(2**27))
    assert cgroup_available(root, str(proc)) == 2**30 - 2**28
    proc.write_text("4:memory:/job\n")  # cgroup v1
    _write(root / "memory" / "job", memory_limit_in_bytes=str(2**31), memory_usage_in_bytes=str(2**30))
    assert cgroup_available(root, str(proc)) == 2**30
    (root / "memory" / "job" / "memory.limit_in_bytes").write_text("9223372036854771712")  # no limit
    assert cgroup_available(root, str(proc)) is None
    assert cgroup_available(root, str(tmp_path / "missing")) is None


def test_page_cache_the_kernel_reclaims_is_not_counted_as_used(tmp_path):
    """A container that had read many files showed its limit almost used up by page cache
    (usage counts it), so runs that fit were refused: inactive file pages are free."""
    proc = tmp_path / "cgroup"
    root = tmp_path / "fs"
    proc.write_text("0::/job\n")
    stat = f"anon {2**28}\nfile {3 * 2**30}\ninactive_file {2**31 + 2**30}\nbogus line here\n"
    _write(root / "job", memory_max=str(4 * 2**30), memory_current=str(4 * 2**30 - 2**26), memory_stat=stat)
    assert cgroup_available(root, str(proc)) == 4 * 2**30 - (4 * 2**30 - 2**26 - 3 * 2**30)
    proc.write_text("4:cpu,memory:/job\n")  # cgroup v1, the memory controller mounted with another
    v1 = dict(memory_limit_in_bytes=str(2**32), memory_usage_in_bytes=str(2**32))
    _write(root / "cpu,memory" / "job", **v1, memory_stat=f"total_inactive_file {2**30}\n")
    assert cgroup_available(root, str(proc)) == 2**30
