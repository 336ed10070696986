"""The only code that runs commands or reads kernel state.

Reconcilers call into here from their ``apply`` step and nowhere else.
"""
