"""The ssh backend (``scheduler="ssh"``): jobs run on servers reached over ssh.

See ``docs/backends/ssh.md``. ``scheduler`` manages jobs, ``client`` runs
commands on one server, ``remote`` builds the shell code run there, ``config``
validates the servers and ``placement`` picks the server for each job.
"""

from .scheduler import SshScheduler

__all__ = ["SshScheduler"]
