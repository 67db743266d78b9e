"""tests/lib/free_port.py -- a free loopback TCP port for a server that
binds it next (PostgreSQL, a daemon's HTTP endpoint), shared by the tests
(tests/lib/pg.sh runs it) and bench/run (imports it).

The port is taken below the kernel's ephemeral range: a port from that
range, bound to 0 and closed, can become the local end of an outgoing
connection before the server binds it (a benchmark run died on
tally-store's "cannot listen on port")."""
import random
import socket


def free_port():
        try:
                with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
                        low = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
                low = 32768
        rng = random.Random()
        for _ in range(200):
                p = rng.randint(max(1024, low - 12000), max(1025, low - 1))
                with socket.socket() as s:
                        try:
                                s.bind(("127.0.0.1", p))
                        except OSError:
                                continue
                return p
        with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                return s.getsockname()[1]


if __name__ == "__main__":
        print(free_port())
