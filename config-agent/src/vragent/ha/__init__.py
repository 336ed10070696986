"""The redundant pair at run time: transitions, state, reports, health."""
