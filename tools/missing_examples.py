"""List public callables of ``stemnmf_hs`` whose docstring has no ``Examples`` section.

Public: every name in the ``__all__`` of a public module (no underscore in its dotted name;
else its names without a leading underscore), re-exports included (``data`` re-exports
``data._simulate``); with ``--all`` also the ``__all__`` names of private modules
(``signals._adapter``, ``_validation``, ...), which other layers call.  Plus, for
each class defined in ``stemnmf_hs`` (the signal classes ``NMFDiffraction2D`` /
``LazyNMFDiffraction2D`` with their mixins, the result classes, ...), every method and property
without a leading underscore that is defined in a ``stemnmf_hs`` class of its MRO (HyperSpy's
and pyxem's own methods are theirs to document).  Each object is reported once, under the
module that defines it.

Usage::

    python tools/missing_examples.py                  # the public surface
    python tools/missing_examples.py --all            # private modules' names too
    python tools/missing_examples.py stemnmf_hs.plotting stemnmf_hs.polar

Exit status 1 when something is missing.
"""

import argparse
import importlib
import inspect
import pkgutil
import re
import sys

import stemnmf_hs

EXAMPLES = re.compile(r"^\s*Examples\n\s*-{8,}\s*$", re.MULTILINE)


def modules():
    """Every module of the package, by dotted name."""
    yield "stemnmf_hs"
    for info in pkgutil.walk_packages(stemnmf_hs.__path__, "stemnmf_hs."):
        yield info.name


def _ours(obj):
    return (getattr(obj, "__module__", None) or "").startswith("stemnmf_hs")


def public_names(module):
    """Names the module offers: ``__all__``, else its own non-underscore callables."""
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n in vars(module) if not n.startswith("_")]
    return names


def has_examples(obj):
    doc = inspect.getdoc(obj) or ""
    return bool(EXAMPLES.search(doc))


def members(cls):
    """(qualified name, object) of the public methods/properties ``cls`` gets from our classes."""
    seen = set()
    for klass in cls.__mro__:
        if not _ours(klass):
            continue
        for name, attr in vars(klass).items():
            if name.startswith("_") or name in seen:
                continue
            seen.add(name)
            if isinstance(attr, (staticmethod, classmethod)):
                attr = attr.__func__
            if isinstance(attr, property):
                attr = attr.fget
            if inspect.isfunction(attr):
                yield f"{klass.__module__}.{klass.__qualname__}.{name}", attr


def missing(selected=None, include_private=False):
    """Sorted ``(defining module, qualified name)`` of public callables without Examples."""
    found = {}
    for modname in modules():
        if not include_private and any(p.startswith("_") for p in modname.split(".")):
            continue
        module = importlib.import_module(modname)
        for name in public_names(module):
            obj = getattr(module, name, None)
            if not (inspect.isfunction(obj) or inspect.isclass(obj)) or not _ours(obj):
                continue
            found[f"{obj.__module__}.{obj.__qualname__}"] = obj
            if inspect.isclass(obj):
                found.update(members(obj))
    gaps = [(obj.__module__, qual) for qual, obj in found.items() if not has_examples(obj)]
    if selected:
        gaps = [(mod, qual) for mod, qual in gaps
                if any(mod == s or mod.startswith(s + ".") for s in selected)]
    return sorted(gaps)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help="restrict to these modules (and submodules)")
    parser.add_argument("--all", action="store_true",
                        help="also the __all__ names of private (underscore) modules")
    args = parser.parse_args(argv)
    gaps = missing(args.modules, args.all)
    by_module = {}
    for mod, qual in gaps:
        by_module.setdefault(mod, []).append(qual)
    for mod, quals in sorted(by_module.items()):
        print(f"{mod} ({len(quals)})")
        for qual in quals:
            print(f"    {qual}")
    print(f"{len(gaps)} public callables without an Examples section")
    return 1 if gaps else 0


if __name__ == "__main__":
    sys.exit(main())
