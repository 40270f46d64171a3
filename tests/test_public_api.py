"""The public surface is what pipeline/__init__.py exports, and nothing else by accident."""

import pipeline


def test_exported_members():
    assert sorted(pipeline.__all__) == [
        "Batch",
        "InputError",
        "ManifestError",
        "Plan",
        "Problem",
        "VidpipeError",
        "__version__",
        "load_batch",
        "make_plan",
    ]
    for name in pipeline.__all__:
        assert getattr(pipeline, name) is not None
