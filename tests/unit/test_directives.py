"""Options rendered as #SBATCH / #$ lines: lists, flags, prefixes, and values
that could inject code (quoted, or rejected with ConfigError naming them)."""

import pytest

from xqute import ConfigError
from xqute.schedulers.directives import merge_option
from xqute.schedulers.sge import render_sge, sanitize_sge_name, sge_path
from xqute.schedulers.slurm import render_slurm


def test_slurm_lists_flags_and_names():
    lines = render_slurm(
        {
            "partition": "compute",
            "cpus_per_task": 2,
            "constraint": ["a", "b"],
            "exclusive": True,
            "requeue": False,
            "begin": None,
            "p": "debug",
        }
    )
    assert lines == [
        '#SBATCH --partition="compute"',
        '#SBATCH --cpus-per-task="2"',
        '#SBATCH --constraint="a"',
        '#SBATCH --constraint="b"',
        "#SBATCH --exclusive",
        '#SBATCH -p "debug"',
    ]


@pytest.mark.parametrize(
    ("value", "rendered"),
    [
        ("a b --time=5", '"a b --time=5"'),  # one word: no option injection
        ('a"b', '"a\\"b"'),
        ("a\\b", '"a\\\\b"'),
        ("x#y", '"x#y"'),  # kept inside quotes
        ("$(touch /tmp/x); `id` | & > *", '"$(touch /tmp/x); `id` | & > *"'),
        ("", '""'),
    ],
)
def test_slurm_values_are_quoted(value, rendered):
    assert render_slurm({"job-name": value}) == [f"#SBATCH --job-name={rendered}"]


@pytest.mark.parametrize("value", ["a\nb", "a\rb", "a\x00b", "a\tb", "x\x7f"])
def test_control_characters_are_rejected(value):
    with pytest.raises(ConfigError, match=r"'comment'.*control character"):
        render_slurm({"comment": value})
    with pytest.raises(ConfigError, match=r"'q'.*control character"):
        render_sge({"q": value})


@pytest.mark.parametrize("name", ["bad name", "-x", "a;b", "", "a=b"])
def test_bad_option_names_are_rejected(name):
    with pytest.raises(ConfigError, match="option name"):
        render_slurm({name: "1"})
    with pytest.raises(ConfigError, match="option name"):
        render_sge({name: "1"})


def test_non_scalar_values_are_rejected():
    with pytest.raises(ConfigError, match="'gres'"):
        render_slurm({"gres": {"gpu": 1}})
    with pytest.raises(ConfigError, match="'l'"):
        render_sge({"l": [["h_rt=1"]]})


def test_sge_tokens_paths_and_names():
    lines = render_sge(
        {
            "q": "1-day",
            "l": ["h_vmem=2G", "gpu=1"],
            "cwd": True,
            "notify": False,
            "pe": "smp 4",
            "p": -100,
            "N": "9 bad/name:x",
            "o": "/shared/my dir/a:b.out",
        }
    )
    assert lines == [
        "#$ -q 1-day",
        "#$ -l h_vmem=2G",
        "#$ -l gpu=1",
        "#$ -cwd",
        "#$ -pe smp 4",
        "#$ -p -100",
        "#$ -N x9_bad_name_x",
        '#$ -o ":/shared/my dir/a:b.out"',
    ]


@pytest.mark.parametrize(
    "value", ["a b", 'a"b', "a'b", "x#y", "-V", "", "h_rt=1 -l h_vmem=1G"]
)
def test_sge_values_that_are_not_plain_words_are_rejected(value):
    with pytest.raises(ConfigError, match="'q'"):
        render_sge({"q": value})


@pytest.mark.parametrize(
    "path", ['/a/"b', "/a/'b", "/a#b", "/a,b", "/$HOME/a", "/a\\b"]
)
def test_sge_unsafe_paths_are_rejected(path):
    with pytest.raises(ConfigError, match="'e' path"):
        sge_path("e", path)


def test_sanitize_sge_name():
    assert sanitize_sge_name("xqute-12") == "xqute-12"
    assert sanitize_sge_name("12") == "x12"
    assert sanitize_sge_name('a b"$(x)#é') == "a_b___x___"
    assert sanitize_sge_name("") == "x"
    assert len(sanitize_sge_name("a" * 500)) == 200


def test_merge_option():
    opts = {"l": ["h_vmem=2G"]}
    merge_option(opts, "l", ["h_rt=60"], "qsub_l")
    merge_option(opts, "l", "gpu=1", "sge_l")
    assert opts == {"l": ["h_vmem=2G", "h_rt=60", "gpu=1"]}
    merge_option(opts, "q", "a", "q")
    merge_option(opts, "q", "a", "sge_q")  # the same value twice is fine
    with pytest.raises(ConfigError, match="'q' is given twice"):
        merge_option(opts, "q", "b", "qsub_q")
