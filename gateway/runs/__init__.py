"""Runs: the submission service, admission, and the poller that follows runs to their end."""
