"""Quality of a run: accuracy against a truth file, row accounting, the run summary."""
