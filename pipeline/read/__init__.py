"""Reading and checking manifests: a manifest file -> a validated, expanded job table (`jobs.py`
is the one call validate, plan and run share). Pure but for reading the manifest and its images."""
