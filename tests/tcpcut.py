"""A TCP proxy whose connections can be cut (SIGUSR1) and restored (SIGUSR2).

Run as its own process, with plain threads: ``python -m tests.tcpcut TARGET_PORT``
prints the port it listens on. Tests put it between an agent and the broker to
cut the agent's connection while the shared broker keeps running.
"""

import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path


class Cutter:
    def __init__(self, target_port):
        self.target = ("127.0.0.1", target_port)
        self.server = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.port = self.server.getsockname()[1]
        self.open = True
        self.lock = threading.Lock()
        self.socks = []

    def serve(self):
        while True:
            client, _ = self.server.accept()
            if not self.open:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.socks += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self.pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def pipe(src, dst):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for sock in (src, dst):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self, *_):
        self.open = False
        with self.lock:
            socks, self.socks = self.socks, []
        for sock in socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def restore(self, *_):
        self.open = True


def main():
    cutter = Cutter(int(sys.argv[1]))
    signal.signal(signal.SIGUSR1, cutter.cut)
    signal.signal(signal.SIGUSR2, cutter.restore)
    print(cutter.port, flush=True)
    cutter.serve()


class CutterProcess:
    """This proxy in its own process, in front of the broker; ``port`` is where it listens."""

    def __init__(self, target_port=5672):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.tcpcut", str(target_port)],
            cwd=Path(__file__).resolve().parents[1],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.port = int(self.proc.stdout.readline())

    def cut(self):
        self.proc.send_signal(signal.SIGUSR1)

    def restore(self):
        self.proc.send_signal(signal.SIGUSR2)

    def close(self):
        self.proc.kill()
        self.proc.wait()


if __name__ == "__main__":
    main()
