"""A statsd_exporter stand-in: its own process, receiving StatsD lines over UDP on loopback.

Debian has no prometheus-statsd-exporter package, so this process does what the exporter does
with each datagram before the mapping step: receive it, split it into lines, parse each line
(``name:value|type``) and add it to a per-name total. It prints its port, then answers each
``count`` line on stdin with the number of lines received and parsed so far (``exit`` ends it).
"""

from __future__ import annotations

import selectors
import socket
import sys


def main() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    # statsd_exporter's default read buffer is the kernel's; a larger one only helps the baseline.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    print(sock.getsockname()[1], flush=True)
    selector = selectors.DefaultSelector()
    selector.register(sock, selectors.EVENT_READ, "udp")
    selector.register(sys.stdin, selectors.EVENT_READ, "command")
    lines = 0
    malformed = 0
    totals: dict[str, float] = {}
    while True:
        for key, _ in selector.select():
            if key.data == "udp":
                while True:
                    try:
                        data = sock.recv(65536)
                    except BlockingIOError:
                        break
                    for line in data.split(b"\n"):
                        name, _, rest = line.partition(b":")
                        value, _, kind = rest.partition(b"|")
                        try:
                            number = float(value)
                        except ValueError:
                            malformed += 1
                            continue
                        if not kind:
                            malformed += 1
                            continue
                        key_ = name.decode()
                        totals[key_] = totals.get(key_, 0.0) + number
                        lines += 1
            else:
                command = sys.stdin.readline().strip()
                if command in ("", "exit"):
                    return
                print(f"{lines} {malformed} {len(totals)}", flush=True)


if __name__ == "__main__":
    main()
