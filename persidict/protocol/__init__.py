"""The vocabulary every layer shares: versions and preconditions, flags and results, errors, retries."""
