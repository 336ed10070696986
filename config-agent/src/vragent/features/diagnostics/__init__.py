"""The diagnostics feature: what CloudStack's runDiagnostics and
getDiagnosticsData ask a router for (diagnostics.py, get_diagnostics_files.py,
cleanup.sh). ``tools`` holds diagnostics.py's arguments to an allow-list,
``bundle`` says what the zip holds, ``scrub`` keeps every secret out of it,
``entry`` is the three entry points; ``vragent.system.diagnostics`` runs the
tools, reads the files and writes the zip."""
