"""README.rst: valid reStructuredText that opens with the two commands."""
import io
import os

import docutils.core

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = open(os.path.join(ROOT, "README.rst"), encoding="utf-8").read()


def test_the_readme_is_valid_restructuredtext():
    errors = io.StringIO()
    docutils.core.publish_doctree(README, settings_overrides={
        "warning_stream": errors, "report_level": 2, "halt_level": 5})
    assert errors.getvalue() == ""


def test_the_readme_opens_with_the_demo_and_the_test_command():
    blocks = [line.strip() for line in README.splitlines()[:15] if line.startswith("    ")]
    assert blocks[:2] == ["python3 contrib/demo.py", "bash .ci/run"]
    with open(os.path.join(ROOT, ".ci", "run")) as handle:
        lines = [line.strip() for line in handle if line.strip()]
    assert lines[-1] == "python3 -m pytest -q tests"
    assert "``python3 -m pytest -q tests``" in README


def test_the_feature_table_says_working_exactly_for_the_built_in_jobs():
    import re

    import pyrotorque
    rows = re.findall(r"^\S.*``pyrotorque:(\w+)``\s+(\w+)\s*$", README, re.M)
    assert rows
    for job, status in rows:
        assert (status == "working") == (job in pyrotorque.BUILTIN_JOBS), job
