"""The code passes ruff with the rules of pyproject.toml's [tool.ruff], and those rules bite.

ruff comes from the dev extra (pinned, so a new ruff release adds no rule behind the code's back). The
rules are the ones the code follows; RUF100 keeps the `noqa` comments honest: one that silences nothing,
or names a rule not selected, is itself a finding.
"""
import subprocess

from test_ci_files import ROOT, tool

LINTED = ["harness", "tests", "repros", "noxfile.py", "conftest.py"]


def ruff(*args: str, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([tool("ruff"), "check", "--no-cache", "--output-format", "concise",
                           "--config", str(ROOT / "pyproject.toml"), *args],
                          cwd=cwd, capture_output=True, text=True, timeout=300)


def test_the_code_passes_ruff():
    out = ruff(*LINTED)
    assert out.returncode == 0, out.stdout + out.stderr


def test_ruff_reports_what_the_rules_forbid(tmp_path):
    """The same command on a file that breaks the selected rules fails, naming each finding."""
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nimport sys\n\n\ndef f():\n    try:\n        return sys.argv  # noqa: E501\n"
                   "    except Exception:\n        pass\n")
    out = ruff(str(bad), cwd=tmp_path)
    assert out.returncode == 1, out.stdout + out.stderr
    codes = {line.split()[1] for line in out.stdout.splitlines() if line.startswith("bad.py:")}
    assert codes == {"F401", "RUF100", "BLE001"}, out.stdout
