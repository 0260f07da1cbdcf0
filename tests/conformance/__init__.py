"""huggingface_hub's own test suite as the judge of how closely ``hubui localhub`` behaves like the Hub.

Run ``python -m tests.conformance`` (or ``scripts/conformance.sh``); see :mod:`tests.conformance.runner`.
"""
