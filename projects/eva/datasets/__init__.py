"""Project-generated datasets (demo and tests)."""
