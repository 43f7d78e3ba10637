"""Check the built wheel and sdist: packaged files and metadata."""

from __future__ import annotations

import ast
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

dist = Path(sys.argv[1])
wheel = next(dist.glob("*.whl"))
sdist = next(dist.glob("*.tar.gz"))
names = zipfile.ZipFile(wheel).namelist()
required = [
    "intacct_connect/py.typed",
    "intacct_connect/migrations/0001_initial.py",
    "intacct_connect/templates/intacct_connect/",
    "intacct_connect/testing/",
]
missing = [r for r in required if not any(n.startswith(r) for n in names)]
assert not missing, f"wheel lacks {missing}"
assert not any(n.startswith(("tests/", "example_project/", "docs/")) for n in names), (
    "wheel ships test/demo code"
)
meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
meta = Parser().parsestr(zipfile.ZipFile(wheel).read(meta_name).decode())
# The one source of the version (pyproject.toml reads it with [tool.hatch.version]).
init = Path(__file__).resolve().parent.parent / "intacct_connect" / "__init__.py"
version = next(
    node.value.value
    for node in ast.parse(init.read_text()).body
    if isinstance(node, ast.Assign)
    and any(isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets)
    and isinstance(node.value, ast.Constant)
)
assert meta["Version"] == version, f"wheel says version {meta['Version']}, __init__ {version}"
assert f"-{version}-" in wheel.name, f"{wheel.name} does not carry version {version}"
assert sdist.name.endswith(f"-{version}.tar.gz"), f"{sdist.name} does not carry version {version}"
classifiers = meta.get_all("Classifier") or []
for c in [
    "Framework :: Django :: 5.2",
    "Framework :: Django :: 6.0",
    "Framework :: Django :: 6.1",
    "Programming Language :: Python :: 3.11",
    "Programming Language :: Python :: 3.12",
    "Programming Language :: Python :: 3.13",
    "Typing :: Typed",
]:
    assert c in classifiers, f"missing classifier {c}"
requires = " ".join(meta.get_all("Requires-Dist") or [])
for dep in ("django", "requests-oauthlib", "celery", "cryptography"):
    assert dep in requires.lower(), f"missing dependency {dep}"
assert "environ" not in requires.split("extra ==")[0], (
    "django-environ must not be a runtime dependency"
)
members = tarfile.open(sdist).getnames()
for r in ("tests/settings.py", "docs/index.rst", "CHANGELOG.rst", "LICENSE", "pyproject.toml"):
    assert any(m.endswith(r) for m in members), f"sdist lacks {r}"
print(
    f"OK: version {version}: {wheel.name} ({len(names)} files), "
    f"{sdist.name} ({len(members)} members)"
)
