"""Every input in tests/fuzz_corpus/<target>/ replayed through its fuzz target: each one
found a bug once (by contrib/fuzz.py under atheris, or by tests/test_fuzz_parsers.py), so
each is a regression test now (no atheris needed for that).  Also: the fuzzer's seeds, and
contrib/fuzz.py itself run under atheris for a second."""
import os
import subprocess
import sys

import pytest

import fuzz     # contrib/fuzz.py (tests/conftest.py puts contrib/ on sys.path)
from helpers import fuzz_check as check

CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fuzz_corpus")
INPUTS = sorted((target, name) for target in os.listdir(CORPUS)
                for name in os.listdir(os.path.join(CORPUS, target)))


def test_every_corpus_folder_is_a_target_of_the_fuzzer():
    assert set(os.listdir(CORPUS)) <= set(fuzz.TARGETS)


@pytest.mark.parametrize("target, name", INPUTS, ids=["%s/%s" % each for each in INPUTS])
def test_an_input_that_once_found_a_bug_passes_its_target(target, name):
    with open(os.path.join(CORPUS, target, name), "rb") as handle:
        check(target, handle.read())


@pytest.mark.parametrize("target", sorted(fuzz.SEEDS))
def test_the_seeds_the_fuzzer_starts_from_are_good_inputs(target):
    """Each seed parses without even an allowed error, so a run starts inside the format."""
    for seed in fuzz.SEEDS[target]:
        fuzz.TARGETS[target].function(seed)


def test_fuzz_py_runs_atheris_on_a_target_and_finds_nothing():
    """The coverage-guided fuzzer itself, for a second on one target (atheris is in
    tests/requirements.txt: a manylinux wheel, installed in seconds)."""
    pytest.importorskip("atheris", reason="pip install atheris (tests/requirements.txt)")
    script = os.path.join(os.path.dirname(CORPUS), os.pardir, "contrib", "fuzz.py")
    done = subprocess.run([sys.executable, script, "--seconds", "1", "--target", "magnet"],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout[-3000:]
    rows = [line.split() for line in done.stdout.splitlines()]
    assert [(row[0], row[-2:]) for row in rows] == [("magnet", ["nothing", "found"])]
    assert all(int(row[3]) > 100 for row in rows), done.stdout     # inputs run
