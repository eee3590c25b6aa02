"""Start-up of `wxcc-mock serve` (bench/load.sh runs it; not a test: it prints figures).

Starts the binary RUNS times with the embedded world and measures, from the spawn:
  - listening: until its "listening on" line;
  - first answer: until GET /__admin/health is answered;
  - first validated answer: until a request that needs a JSON Schema (PUT
    /v1/agents/session/state with a body that breaks it, 400) is answered. The schemas compile
    on a thread of their own while the mock binds and starts listening; a request that needs one
    before they are ready waits for them.
Prints the median and the fastest of each (target: first answer under 15 ms).

    python3 bench/startup.py BINARY TOKEN [RUNS]
"""

import re
import socket
import statistics
import subprocess
import sys
import time


def ask(addr, request):
    with socket.create_connection(addr) as conn:
        # /__admin answers only to the names the mock listens by.
        conn.sendall(request.replace(b"Host: bench", f"Host: {addr[0]}:{addr[1]}".encode()))
        answer = conn.recv(65536)
    return answer.split(b" ", 2)[1].decode()


def once(binary, token):
    started = time.perf_counter()
    mock = subprocess.Popen([binary, "serve", "--port", "0", "--quiet"], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    try:
        addr = None
        for line in mock.stderr:
            found = re.search(rb"listening on https?://([0-9.]+):(\d+)", line)
            if found:
                addr = (found.group(1).decode(), int(found.group(2)))
                break
        if addr is None:
            sys.exit(f"{binary} did not say it was listening")
        listening = time.perf_counter()
        health = ask(addr, b"GET /__admin/health HTTP/1.1\r\nHost: bench\r\n\r\n")
        answered = time.perf_counter()
        body = b'{"state":42}'
        validated = ask(
            addr,
            b"PUT /v1/agents/session/state HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer "
            + token.encode()
            + b"\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body,
        )
        checked = time.perf_counter()
        if (health, validated) != ("200", "400"):
            sys.exit(f"unexpected answers: health {health}, invalid state change {validated}")
        return [(t - started) * 1000 for t in (listening, answered, checked)]
    finally:
        mock.terminate()
        mock.wait()


def main():
    binary, token = sys.argv[1], sys.argv[2]
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 15
    times = [once(binary, token) for _ in range(runs)]
    for i, name in enumerate(["listening", "first answer", "first validated answer"]):
        column = [t[i] for t in times]
        print(f"start-up to {name}: median {statistics.median(column):.1f} ms, fastest {min(column):.1f} ms ({runs} runs)")


main()
