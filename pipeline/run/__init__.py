"""Running jobs: the run plan, the scheduler and one job's steps, the ledger they record every step
in, and the run's lifecycle around them (`runner.py`)."""
