"""TLS clients on Python's ssl module (OpenSSL), for the TLS tests of the
real binary (crates/tenk/tests/tls.rs, tls_static.rs, proxy_upgrade.rs):
an implementation independent of rustls, verifying the server against the
test CA.

    tls_client.py CA HOST PORT MODE [ARGS...]

Modes (every socket operation is bounded by TIMEOUT; a failure raises, so
the process exits non-zero with the reason on stderr):

  pipe [EXPECT]     send stdin in one write while reading: no deadlock on a
                    server that applies backpressure; stop after EXPECT
                    bytes, or at the server's close; stdout: the bytes read
  chat              three chat clients: alice, bob, carol take their nicks,
                    alice says a line, bob answers; stdout: each line a
                    client read, as it came, after the client's name
  resume N PATH [1.2]
                    N connections one after the other, each offering the
                    previous one's session, each GET PATH (Connection:
                    close) read to the end, with TLS 1.2 at most if asked;
                    stdout: a line a connection, "REUSED VERSION ALPN"
  slow PATH PAUSE   GET PATH (Connection: close); the body read 64 KiB at a
                    time, sleeping PAUSE ms after each; then the close;
                    stdout: "LENGTH SHA256"
  stall PATH        GET PATH, read 64 KiB of the body, print "stalled",
                    then read nothing until stdin closes; stdout then:
                    "after N bytes: HOW" (what reading the rest found)
  upgrade PATH EXPECT [ahead]
                    a WebSocket-style handshake for PATH (GET with
                    Connection: Upgrade, Upgrade: websocket); once the
                    response head is in (or, with "ahead", in the same
                    write as the handshake), send stdin in one write while
                    reading EXPECT bytes of the tunnel; stdout: the head
                    (to its blank line), then the bytes read
  idle N PATH       N connections (handshake, then one GET PATH each, kept
                    alive), print "open N", then wait for stdin to close

The blocking modes (resume, slow, stall) refuse a close without
close_notify (suppress_ragged_eofs=False): where the server closes, it must
end TLS properly.
"""

import asyncio
import hashlib
import socket
import ssl
import sys
import time

TIMEOUT = 10.0
CHUNK = 64 * 1024


def context(ca):
    ctx = ssl.create_default_context(cafile=ca)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def connect(ctx, host, port, session=None):
    raw = socket.create_connection((host, port), timeout=TIMEOUT)
    return ctx.wrap_socket(
        raw, server_hostname=host, session=session, suppress_ragged_eofs=False
    )


def request(path, close=True):
    connection = "Connection: close\r\n" if close else ""
    return f"GET {path} HTTP/1.1\r\nHost: tenk\r\n{connection}\r\n".encode()


def read_head(sock):
    """The response head, and the body bytes read past it."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(CHUNK)
        if not chunk:
            raise RuntimeError(f"EOF inside the head: {data!r}")
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    if not lines[0].startswith("HTTP/1.1 200 "):
        raise RuntimeError(f"status {lines[0]!r}")
    length = next(
        int(line.split(":", 1)[1])
        for line in lines
        if line.lower().startswith("content-length:")
    )
    return length, rest


def read_to_close(sock):
    """Everything until the server's close_notify."""
    data = b""
    while True:
        chunk = sock.recv(CHUNK)
        if not chunk:
            return data
        data += chunk


async def pipe(ctx, host, port, expect):
    data = sys.stdin.buffer.read()
    reader, writer = await asyncio.open_connection(
        host, port, ssl=ctx, server_hostname=host
    )

    async def send():
        writer.write(data)
        await writer.drain()

    sending = asyncio.create_task(send())
    got = bytearray()
    while expect is None or len(got) < expect:
        chunk = await asyncio.wait_for(reader.read(CHUNK), TIMEOUT)
        if not chunk:
            break
        got += chunk
    await asyncio.wait_for(sending, TIMEOUT)
    writer.close()
    sys.stdout.buffer.write(got)


async def upgrade(ctx, host, port, path, expect, ahead):
    data = sys.stdin.buffer.read()
    reader, writer = await asyncio.open_connection(
        host, port, ssl=ctx, server_hostname=host
    )
    handshake = (
        f"GET {path} HTTP/1.1\r\nHost: tenk\r\nConnection: Upgrade\r\n"
        "Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )

    async def send():
        writer.write(handshake + data if ahead else data)
        await writer.drain()

    if ahead:
        sending = asyncio.create_task(send())
    else:
        writer.write(handshake)
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
    sys.stdout.buffer.write(head)

    # Sent while reading: an echo larger than the buffers on the way
    # would otherwise deadlock.
    if not ahead:
        sending = asyncio.create_task(send())
    got = await asyncio.wait_for(reader.readexactly(expect), TIMEOUT)
    await asyncio.wait_for(sending, TIMEOUT)
    writer.close()
    sys.stdout.buffer.write(got)


async def chat(ctx, host, port):
    async def join(who):
        reader, writer = await asyncio.open_connection(
            host, port, ssl=ctx, server_hostname=host
        )
        return (who, reader, writer)

    async def line(client):
        who, reader, _ = client
        text = await asyncio.wait_for(reader.readline(), TIMEOUT)
        if not text.endswith(b"\n"):
            raise RuntimeError(f"{who}: closed after {text!r}")
        # As it comes: a failure midway still shows what arrived.
        print(f"{who}: {text.decode().rstrip()}", flush=True)

    def say(client, text):
        client[2].write(text.encode() + b"\n")

    alice = await join("alice")
    await line(alice)  # welcome
    await line(alice)  # joined
    say(alice, "/nick alice")
    await line(alice)
    bob = await join("bob")
    for _ in range(2):
        await line(bob)
    await line(alice)
    say(bob, "/nick bob")
    await line(bob)
    await line(alice)
    carol = await join("carol")
    for _ in range(2):
        await line(carol)
    await line(alice)
    await line(bob)
    say(carol, "/nick carol")
    for client in (carol, alice, bob):
        await line(client)
    say(alice, "hello over TLS")
    await line(bob)
    await line(carol)
    say(bob, "hello back")
    await line(alice)
    await line(carol)
    for _, _, writer in (alice, bob, carol):
        writer.close()


def resume(ctx, host, port, count, path, version):
    ctx.set_alpn_protocols(["http/1.1"])
    if version == "1.2":
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    session = None
    for _ in range(count):
        with connect(ctx, host, port, session) as sock:
            sock.sendall(request(path))
            answer = read_to_close(sock)
            if not answer.startswith(b"HTTP/1.1 200 "):
                raise RuntimeError(f"answer {answer[:100]!r}")
            # A TLS 1.3 ticket comes after the handshake: only once
            # something was read is it certain to have arrived.
            session = sock.session
            print(
                int(sock.session_reused),
                sock.version(),
                sock.selected_alpn_protocol(),
                flush=True,
            )


def slow(ctx, host, port, path, pause):
    with connect(ctx, host, port) as sock:
        sock.sendall(request(path))
        length, body = read_head(sock)
        digest = hashlib.sha256(body)
        got = len(body)
        while got < length:
            piece = bytearray()
            while len(piece) < CHUNK and got + len(piece) < length:
                chunk = sock.recv(min(CHUNK - len(piece), length - got - len(piece)))
                if not chunk:
                    raise RuntimeError(f"EOF after {got + len(piece)} of {length}")
                piece += chunk
            digest.update(piece)
            got += len(piece)
            time.sleep(pause)
        rest = read_to_close(sock)
        if rest:
            raise RuntimeError(f"{len(rest)} bytes past the body")
        print(got, digest.hexdigest())


def stall(ctx, host, port, path):
    sock = connect(ctx, host, port)
    sock.sendall(request(path))
    _, body = read_head(sock)
    got = len(body)
    while got < CHUNK:
        got += len(sock.recv(CHUNK - got))
    print("stalled", flush=True)
    sys.stdin.read()
    # The server should have closed by now: read what is left.
    try:
        while True:
            chunk = sock.recv(CHUNK)
            if not chunk:
                how = "close_notify"
                break
            got += len(chunk)
    except (OSError, ssl.SSLError) as e:
        how = type(e).__name__
    print(f"after {got} bytes: {how}")


async def idle(ctx, host, port, count, path):
    gate = asyncio.Semaphore(50)

    async def one():
        async with gate:
            reader, writer = await asyncio.open_connection(
                host, port, ssl=ctx, server_hostname=host
            )
            writer.write(request(path, close=False))
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            await asyncio.wait_for(reader.readexactly(length), TIMEOUT)
            return writer

    writers = await asyncio.gather(*(one() for _ in range(count)))
    print("open", len(writers), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for writer in writers:
        writer.transport.abort()


def main():
    ca, host, port, mode, *args = sys.argv[1:]
    port = int(port)
    ctx = context(ca)
    if mode == "pipe":
        expect = int(args[0]) if args else None
        asyncio.run(pipe(ctx, host, port, expect))
    elif mode == "chat":
        asyncio.run(chat(ctx, host, port))
    elif mode == "resume":
        resume(ctx, host, port, int(args[0]), args[1], args[2] if args[2:] else None)
    elif mode == "slow":
        slow(ctx, host, port, args[0], float(args[1]) / 1000)
    elif mode == "stall":
        stall(ctx, host, port, args[0])
    elif mode == "upgrade":
        ahead = args[2:] == ["ahead"]
        asyncio.run(upgrade(ctx, host, port, args[0], int(args[1]), ahead))
    elif mode == "idle":
        asyncio.run(idle(ctx, host, port, int(args[0]), args[1]))
    else:
        raise SystemExit(f"unknown mode {mode!r}")


main()
