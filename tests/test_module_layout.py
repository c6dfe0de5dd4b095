"""pyrotorque.py reads like a book: its docstring is the table of contents of its banners;
and the tests share their helpers through conftest.py and helpers.py only."""
import ast
import glob
import os
import re

import pyrotorque

SOURCE = open(pyrotorque.__file__, encoding="utf-8").read()
BANNER = "#" * 79


def banner_titles():
    """The section names of the '####' banners, in the order of the file."""
    lines = SOURCE.splitlines()
    return [re.sub(r"\s*#+$", "", lines[n + 1][2:]) for n, line in enumerate(lines[:-1])
            if line == BANNER and re.match(r"# \w.*#+$", lines[n + 1])]


def contents_titles():
    """The numbered entries of the module docstring's contents list."""
    names = []
    for line in pyrotorque.__doc__.splitlines():
        found = re.match(r"\s*(\d+)\. (\S+(?: \S+)*?)(?:\s{2,}|$)", line)
        if found:
            assert int(found.group(1)) == len(names) + 1, line
            names.append(found.group(2))
    return names


def test_the_docstring_lists_every_section_in_the_order_of_the_file():
    assert banner_titles(), "no banners found"
    assert contents_titles() == banner_titles()


def test_every_section_banner_is_written_the_same_way():
    for title in banner_titles():
        line = "# %s " % title
        assert "\n%s\n%s%s\n%s\n" % (BANNER, line, "#" * (79 - len(line)), BANNER) in SOURCE, title


def test_every_built_in_job_and_public_error_is_in_all():
    errors = {name for name, value in vars(pyrotorque).items() if not name.startswith("_")
              and isinstance(value, type) and issubclass(value, pyrotorque.PyrotorqueError)}
    assert sorted((errors | set(pyrotorque.BUILTIN_JOBS)) - set(pyrotorque.__all__)) == []


def test_no_test_file_imports_from_another_test_file():
    """Shared fixtures live in conftest.py, shared helpers in helpers.py: a test file that
    imports another would run that file's tests' set-up and hide where a helper lives."""
    found = []
    for path in sorted(glob.glob(os.path.join(os.path.dirname(__file__), "test_*.py"))):
        with open(path, encoding="utf-8") as handle:
            tree = ast.parse(handle.read())
        for node in ast.walk(tree):
            names = ([node.module or ""] if isinstance(node, ast.ImportFrom)
                     else [alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [])
            found += ["%s:%d imports %s" % (os.path.basename(path), node.lineno, name)
                      for name in names if name.split(".")[-1].startswith("test_")]
    assert found == []
