"""pyproject's package list names every directory of the harness that the wheel must carry.

A directory left out is either missing from the wheel or shipped only as data with setuptools'
"Package would be ignored" warning on every build (harness/templates was).
"""
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_directory_of_the_harness_is_a_listed_package():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    directories = {".".join(d.relative_to(ROOT).parts) for d in (ROOT / "harness").rglob("*")
                   if d.is_dir() and d.name != "__pycache__" and any(f.is_file() for f in d.iterdir())}
    assert directories - listed == set(), "add them to [tool.setuptools] packages in pyproject.toml"


def test_the_templates_ship_as_data_of_their_own_package():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert set(data["harness.templates"]) >= {"*.html", "*.css", "*.js"}
    shipped = {f.suffix for f in (ROOT / "harness" / "templates").iterdir() if f.is_file()}
    assert shipped <= {".html", ".css", ".js"}, shipped
