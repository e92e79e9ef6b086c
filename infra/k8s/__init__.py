"""Kubernetes side of the platform: the `cluster` run-config section, the RayJob + ConfigMap a run
is submitted as, API access with one-line errors, RayJob/Kueue state, and offline validation of
manifests against Kubernetes and CRD schemas (used by the tests of charts/ and k8s/).

Nothing here imports torch or Ray; the `kubernetes` client is imported only where the API is used.
"""
