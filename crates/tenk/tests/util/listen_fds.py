"""A hand-made socket activation launcher, as systemd does it
(sd_listen_fds(3)): bind listening sockets, move them to descriptors 3,
4, ..., set LISTEN_FDS, LISTEN_PID (this process's pid, which exec keeps)
and LISTEN_FDNAMES, and exec the program.

    python3 listen_fds.py SPEC[,SPEC...] PROGRAM ARGS...

SPEC is `plain`, `reuseport` (SO_REUSEPORT), `metrics` (a plain listener
named `metrics`; the others are named `web0`, `web1`, ... by position),
`connected` (not a listener: a connected socket, to test refusals) or
`otherpid` (one plain listener, LISTEN_PID naming another process). Every listener binds 127.0.0.1: the
reuseport ones all on one port, the first one's; the others each on its
own.
"""

import os
import socket
import sys

specs = sys.argv[1].split(",")
program = sys.argv[2:]
port = 0
passed = []
kept = []
for spec in specs:
    if spec == "connected":
        a, b = socket.socketpair()
        passed.append(a)
        kept.append(b)
        continue
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if spec == "reuseport":
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind(("127.0.0.1", port if spec == "reuseport" else 0))
    if spec == "reuseport":
        port = s.getsockname()[1]
    s.listen(128)
    passed.append(s)
# Through descriptors well above 3 first: a socket already at 3 + i (or
# at a later socket's target) must not be overwritten, nor keep its
# close-on-exec flag by a dup2 onto itself.
staged = [os.dup2(s.fileno(), 100 + i) for i, s in enumerate(passed)]
for i, fd in enumerate(staged):
    os.dup2(fd, 3 + i)  # inheritable by default
    os.close(fd)
pid = os.getpid() + 1 if specs == ["otherpid"] else os.getpid()
os.environ["LISTEN_FDS"] = str(len(passed))
os.environ["LISTEN_PID"] = str(pid)
os.environ["LISTEN_FDNAMES"] = ":".join(
    "metrics" if spec == "metrics" else "web%d" % i for i, spec in enumerate(specs)
)
sys.stdout.flush()
os.execv(program[0], program)
