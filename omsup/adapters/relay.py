"""A TCP relay between two network namespaces: it listens inside one (the replica's hub) and connects from the one it
was started in (the rehearsal host's), so that the replica reaches exactly one address outside itself, the scratch
MetaDB the user named, and nothing else.

    python -m omsup.adapters.relay NETNS_PATH LISTEN_IP LISTEN_PORT TARGET_HOST TARGET_PORT

A socket belongs to the network namespace its thread was in when it was made (setns(2), CLONE_NEWNET): the listening
socket is made after entering NETNS_PATH, and the process returns to its own namespace before it accepts, so every
connection it makes to the target is made from there. Python 3.11 has no os.setns: libc's, through ctypes. It prints
"listening" once ready, and runs until it is sent SIGTERM.
"""

from __future__ import annotations

import ctypes
import os
import socket
import sys
import threading

CLONE_NEWNET = 0x40000000  # <sched.h>


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def listen_in(netns: str, ip: str, port: int) -> socket.socket:
    """A listening socket on ip:port inside network namespace ``netns`` (a path such as /run/netns/NAME); the
    calling thread is back in its own namespace when this returns."""
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    there = os.open(netns, os.O_RDONLY)
    try:
        _setns(there)
        try:
            srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            srv.bind((ip, port))
            srv.listen(64)
        finally:
            _setns(home)
    finally:
        os.close(there)
        os.close(home)
    return srv


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while chunk := src.recv(65536):
            dst.sendall(chunk)
    except OSError:
        pass
    finally:
        for s, how in ((dst, socket.SHUT_WR), (src, socket.SHUT_RD)):
            try:
                s.shutdown(how)
            except OSError:
                pass


def _serve(client: socket.socket, target: tuple[str, int]) -> None:
    try:
        upstream = socket.create_connection(target, timeout=10)
    except OSError as e:
        print(f"cannot reach {target[0]}:{target[1]}: {e}", file=sys.stderr, flush=True)
        client.close()
        return
    upstream.settimeout(None)
    back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
    back.start()
    _pump(client, upstream)
    back.join()
    client.close()
    upstream.close()


def main(argv: list[str]) -> int:
    if len(argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    netns, ip, port, host, target_port = argv
    srv = listen_in(netns, ip, int(port))
    print("listening", flush=True)
    target = (host, int(target_port))
    while True:
        client, _ = srv.accept()
        threading.Thread(target=_serve, args=(client, target), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
