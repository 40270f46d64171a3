"""The public surface is what pipeline/__init__.py exports, and nothing else by accident.

Derived from the module itself, as httpx's tests/test_exported_members.py does: a public name
bound in pipeline/__init__.py (an import, a helper) that is not in `__all__` fails, and so does
a name in `__all__` that does not resolve. Submodules are attributes of a package once imported;
they are not its surface.
"""

import subprocess
import sys
import types

import pipeline

DUNDERS_EXPORTED = {"__version__"}


def _public_names(namespace: dict) -> set[str]:
    return {
        name
        for name, value in namespace.items()
        if (not name.startswith("_") or name in DUNDERS_EXPORTED) and not isinstance(value, types.ModuleType)
    }


def test_every_public_name_of_the_package_is_exported_and_nothing_else():
    bound = _public_names(vars(pipeline)) | set(pipeline._LAZY)
    assert sorted(pipeline.__all__) == sorted(bound)
    assert pipeline.__all__ == sorted(pipeline.__all__)


def test_every_exported_name_resolves_including_the_lazy_ones():
    for name in pipeline.__all__:
        assert getattr(pipeline, name) is not None


def test_a_fresh_import_binds_no_public_name_beyond_the_exports():
    """In a fresh interpreter (before any lazy name is touched), nothing else is public."""
    code = (
        "import types, pipeline;"
        "print(sorted(n for n, v in vars(pipeline).items() if not n.startswith('_')"
        " and not isinstance(v, types.ModuleType)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    public = set(eval(out))  # a printed list of str
    assert public <= set(pipeline.__all__), public - set(pipeline.__all__)
