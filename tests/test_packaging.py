"""What `pip install` puts in the venv: every package of the source tree, so the installed commands import."""

import pathlib
import tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_every_package_in_the_tree_is_installed():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    folders = {name: ROOT / setuptools.get("package-dir", {}).get(name, name.replace(".", "/")) for name in listed}
    found = set()
    for name, folder in folders.items():
        for init in folder.rglob("__init__.py"):
            below = init.parent.relative_to(folder).parts
            found.add(".".join((name, *below)))
    assert found - listed == set(), "packages the installed venv would lack (add them to pyproject.toml)"
