"""Runs: what happens to a run between a scheduler's request and its end.

    service    the API's operations (submit, get, list, cancel); answers replays first
    submitter  the remote half: which identity follows a run, submit, cancel, give up, and
               the facade's reads of Databricks' own answers
    ledger     the one writer of runs: every state change, its metric, its outbox event
    poller     the background loop that follows runs by identity group
    decide     what one poll of a group means for each run: pure
    specs      guardrails on a submitted spec, and the events a run produces: pure
    types      the seams: RunService for the API, RunSubmitter for the poller

The poller and the service meet only in the ledger and the submitter; the poller never
imports the service (an import-linter contract says so).
"""
