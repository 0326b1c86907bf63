"""Azure DevOps Git credentials kept fresh with Entra ID tokens (issue 17).

Runs that check out an Azure DevOps repository (``git_source`` with ``git_provider:
azureDevOpsServices``) clone it with the run-as principal's Databricks Git credential. For a
namespace whose policy says ``git_credentials: entra`` and whose identity is an Entra service
principal, lakegate fills that credential with an Entra ID token for Azure DevOps, fetched with
the namespace's own identity, instead of a long-lived PAT:

- ``policy``: pure rules: which specs need it, which identities may have it;
- ``keeper``: before such a run is submitted, make sure the principal's credential holds a
  token valid well past the run's start (one write per principal however many runs wait;
  created when missing, updated otherwise, never duplicated);
- ``refresher``: the background task that keeps the credentials of principals with active runs
  fresh, since a run's tasks may clone long after it was submitted;
- ``errors``: refusals (4xx, for good) and outages (503) with their cause.

lakegate never logs nor stores the DevOps token: it remembers only which credential it wrote
and until when the token in it is valid.
"""
