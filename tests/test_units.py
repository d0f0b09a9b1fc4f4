import pytest

from costmodel import parse
from costmodel.errors import InputError
from costmodel.render import numbers
from costmodel.units import GiB, KiB, MiB


@pytest.mark.parametrize("text, expected", [
    ("16GiB", 16 * GiB), ("16G", 16 * GiB), ("16g", 16 * GiB), ("512MiB", 512 * MiB), ("4K", 4 * KiB),
    ("16GB", 16 * 10**9), ("17179869184", 16 * GiB), (4096, 4096), ("1.5G", 3 * GiB // 2), (" 2 MiB ", 2 * MiB),
])
def test_parse_size_accepts_the_documented_forms(text, expected):
    assert parse.size(text) == expected


@pytest.mark.parametrize("text", ["16GB?", "-1G", "0", "abc", "", "1.5", "16XB", "G", True])
def test_parse_size_rejects_with_where_found_expected(text):
    with pytest.raises(InputError) as info:
        parse.size(text, "--memory")
    message = str(info.value)
    assert message.startswith("--memory: got ") and "expected a size such as 16GiB" in message


@pytest.mark.parametrize("text", ["0", "2.5", "-3", "x", ""])
def test_parse_count_rejects(text):
    with pytest.raises(InputError, match="--vcpus: got .*; expected a whole number ≥ 1"):
        parse.count(text, "--vcpus")


def test_parse_hugepage_only_the_three_sizes():
    assert [parse.hugepage(t) for t in ("4K", "2M", "1G", "2MiB", 1073741824)] == [4096, 2 * MiB, GiB, 2 * MiB, GiB]
    with pytest.raises(InputError, match="one of 4K, 2M, 1G"):
        parse.hugepage("3M", "--hugepage")


def test_parse_platform():
    assert parse.platform("SNP") == "snp"
    with pytest.raises(InputError, match="--platform: got 'sev'; expected one of snp, tdx"):
        parse.platform("sev", "--platform")


@pytest.mark.parametrize("text, expected", [
    ("1,2,4,8", [1, 2, 4, 8]), ("1:256:x2", [1, 2, 4, 8, 16, 32, 64, 128, 256]),
    ("1:5", [1, 2, 3, 4, 5]), ("2:10:+4", [2, 6, 10]), ("7", [7]),
])
def test_parse_grid_counts(text, expected):
    assert parse.grid(text, parse.count, "--vcpus") == expected


def test_parse_grid_sizes_and_bad_ranges():
    assert parse.grid("4G:16G:x2", parse.size, "--memory") == [4 * GiB, 8 * GiB, 16 * GiB]
    for bad in ("8:1", "1:8:x1", "1:8:y2", "1:2:3:4"):
        with pytest.raises(InputError, match="--vcpus"):
            parse.grid(bad, parse.count, "--vcpus")


def test_format_size():
    assert numbers.format_size(16 * GiB) == "16 GiB"
    assert numbers.format_size(1536 * MiB) == "1.5 GiB"
    assert numbers.format_size(100) == "100 B"
