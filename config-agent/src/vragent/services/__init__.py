"""Router services written in Python, each run by supervisord like any daemon."""
