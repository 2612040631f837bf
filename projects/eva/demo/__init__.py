"""The demo harness, not the library: one stage per task (``<stage>.py::run_demo_stage``, run
by ``tools/demo.py``) and the generators of the data they train on (``synthetic*.py``, also
used by the tests). Nothing under ``projects/eva/<task>/`` imports this package."""
