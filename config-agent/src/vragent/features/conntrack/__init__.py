"""conntrackd: connection state replicated to the peer, so sessions survive a takeover."""
