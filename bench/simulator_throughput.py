"""Throughput of the Microsoft cloud simulator, the benchmarks' backend.

Starts `python -m sync365_pipeline.simulator --scenario demo` as a separate process, then drives it
from this process with an aiohttp client (TLS, keep-alive, many connections):

1. zero added latency: requests/s on several endpoints (Graph subscribedSkus and organization with
   a valid token, Partner Center customers, the token endpoint), compared with a trivial aiohttp
   "hello" server over TLS measured by the same client in the same run;
2. 50 ms added latency at 200 concurrent requests (Graph subscribedSkus and organization):
   throughput against the theoretical 200 / 0.05 s = 4,000 requests/s, the server's maximum
   in-flight count, p50/p99 latency.

Every phase is bounded by time; the whole run takes about 40 s.
Usage: .venv/bin/python bench/simulator_throughput.py [--seconds 4]
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import requests

GRAPH_SCOPE = "https://graph.microsoft.com/.default offline_access openid profile"
PARTNER_CENTER_SCOPE = (
    "https://api.partnercenter.microsoft.com/user_impersonation offline_access openid profile"
)
CUSTOMER = "a51c8ac0-98f8-4206-9aaa-ef644b70e6e6"  # Northwind Traders in the demo scenario
HELLO_SERVER = """
import asyncio, ssl, sys, trustme
from aiohttp import web
async def hello(request): return web.json_response({"value": []})
async def main():
    ca = trustme.CA(); ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(ctx); ca.cert_pem.write_to_path(sys.argv[1])
    app = web.Application(); app.router.add_get("/hello", hello)
    runner = web.AppRunner(app, access_log=None); await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx); await site.start()
    print(runner.addresses[0][1], flush=True); await asyncio.sleep(120)
asyncio.run(main())
"""

RequestFactory = Callable[[aiohttp.ClientSession], Awaitable[int]]


def start_simulator(ca_path: Path) -> tuple[subprocess.Popen[str], dict[str, str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "sync365_pipeline.simulator", "--scenario", "demo",
         "--ca-path", str(ca_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )  # fmt: skip
    assert process.stdout is not None
    env = {}
    for _ in range(8):
        name, _, value = shlex.split(process.stdout.readline())[1].partition("=")
        env[name] = value
    return process, env


def start_hello(ca_path: Path) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-c", HELLO_SERVER, str(ca_path)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    return process, f"https://127.0.0.1:{process.stdout.readline().strip()}"


def redeem(env: dict[str, str], tenant: str, scope: str) -> str:
    session = requests.Session()
    session.verify, session.trust_env = env["SYNC365_CA_BUNDLE"], False
    response = session.post(
        f"{env['SYNC365_AUTHORITY_HOST']}/{tenant}/oauth2/v2.0/token",
        data={
            "grant_type": "refresh_token",
            "client_id": env["SYNC365_CLIENT_ID"],
            "client_secret": env["SYNC365_CLIENT_SECRET"],
            "refresh_token": env["SYNC365_REFRESH_TOKEN"],
            "scope": scope,
        },
        timeout=10,
    )
    response.raise_for_status()
    return response.json()["access_token"]


def control(env: dict[str, str], method: str, path: str, body: dict | None = None) -> dict:
    session = requests.Session()
    session.verify, session.trust_env = env["SYNC365_CA_BUNDLE"], False
    url = f"{env['SYNC365_AUTHORITY_HOST']}/_simulator{path}"
    return session.request(method, url, json=body, timeout=10).json()


async def drive(
    ca_path: str, concurrency: int, seconds: float, make_request: RequestFactory
) -> tuple[int, int, list[float]]:
    """`concurrency` workers issue requests back to back until `seconds` pass.

    Returns (successful, failed, latencies in seconds)."""
    context = ssl.create_default_context(cafile=ca_path)
    connector = aiohttp.TCPConnector(ssl=context, limit=concurrency, force_close=False)
    latencies: list[float] = []
    failures = 0
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(make_request(session) for _ in range(concurrency)))  # warm up TLS
        deadline = time.monotonic() + seconds

        async def worker() -> None:
            nonlocal failures
            while time.monotonic() < deadline:
                began = time.monotonic()
                status = await make_request(session)
                if status == 200:
                    latencies.append(time.monotonic() - began)
                else:
                    failures += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(latencies), failures, latencies


def get(url: str, headers: dict[str, str] | None = None) -> RequestFactory:
    async def request(session: aiohttp.ClientSession) -> int:
        async with session.get(url, headers=headers) as response:
            await response.read()
            return response.status

    return request


def post(url: str, form: dict[str, str]) -> RequestFactory:
    async def request(session: aiohttp.ClientSession) -> int:
        async with session.post(url, data=form) as response:
            await response.read()
            return response.status

    return request


def percentile(values: list[float], fraction: float) -> float:
    return sorted(values)[min(len(values) - 1, int(len(values) * fraction))] if values else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each phase")
    parser.add_argument("--concurrency", type=int, default=32, help="connections, zero latency")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as workdir:
        simulator, env = start_simulator(Path(workdir) / "simulator-ca.pem")
        hello, hello_url = start_hello(Path(workdir) / "hello-ca.pem")
        try:
            run(args, env, hello_url, str(Path(workdir) / "hello-ca.pem"))
        finally:
            for process in (simulator, hello):
                process.terminate()
                process.wait(timeout=10)


def run(args: argparse.Namespace, env: dict[str, str], hello_url: str, hello_ca: str) -> None:
    base, ca = env["SYNC365_AUTHORITY_HOST"], env["SYNC365_CA_BUNDLE"]
    partner = env["SYNC365_PARTNER_TENANT_ID"]
    graph = {"Authorization": f"Bearer {redeem(env, CUSTOMER, GRAPH_SCOPE)}"}
    partner_center = {"Authorization": f"Bearer {redeem(env, partner, PARTNER_CENTER_SCOPE)}"}
    token_form = {
        "grant_type": "refresh_token",
        "client_id": env["SYNC365_CLIENT_ID"],
        "client_secret": env["SYNC365_CLIENT_SECRET"],
        "refresh_token": env["SYNC365_REFRESH_TOKEN"],
        "scope": GRAPH_SCOPE,
        "client_info": "1",
    }
    print(f"simulator {base} (separate process); client: aiohttp, TLS, keep-alive; 2-core machine")
    print(f"\n1. zero added latency, {args.concurrency} connections, {args.seconds:.0f} s each")

    hello_ok, _, _ = asyncio.run(
        drive(hello_ca, args.concurrency, args.seconds, get(f"{hello_url}/hello"))
    )
    hello_rps = hello_ok / args.seconds
    print(f"   {'baseline: aiohttp hello over TLS':44s} {hello_rps:8.0f} req/s")
    endpoints = {
        "Graph GET /v1.0/subscribedSkus": get(f"{base}/v1.0/subscribedSkus", graph),
        "Graph GET /v1.0/organization": get(f"{base}/v1.0/organization", graph),
        "Partner Center GET /v1/customers?size=5": get(
            f"{base}/v1/customers?size=5", partner_center
        ),
        "Identity POST /{tenant}/oauth2/v2.0/token": post(
            f"{base}/{CUSTOMER}/oauth2/v2.0/token", token_form
        ),
    }
    for name, request in endpoints.items():
        ok, failed, latencies = asyncio.run(drive(ca, args.concurrency, args.seconds, request))
        rps = ok / args.seconds
        print(
            f"   {name:44s} {rps:8.0f} req/s  ({rps / hello_rps:4.0%} of baseline, "
            f"p50 {percentile(latencies, 0.5) * 1000:5.1f} ms, {failed} failed)"
        )

    concurrency, latency_s = 200, 0.05
    print(f"\n2. {latency_s * 1000:.0f} ms added latency, {concurrency} concurrent requests")
    control(env, "PUT", "/settings", {"latency_ms": int(latency_s * 1000)})
    ideal = concurrency / latency_s
    for name in ("Graph GET /v1.0/subscribedSkus", "Graph GET /v1.0/organization"):
        control(env, "DELETE", "/requests")
        ok, failed, latencies = asyncio.run(
            drive(ca, concurrency, args.seconds * 1.5, endpoints[name])
        )
        in_flight = control(env, "GET", "/requests")["max_in_flight"]
        rps = ok / (args.seconds * 1.5)
        print(
            f"   {name:34s} {rps:6.0f} req/s ({rps / ideal:4.0%} of {ideal:.0f} ideal), "
            f"max in flight {in_flight}, p50 {percentile(latencies, 0.5) * 1000:.1f} ms, "
            f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms, {failed} failed"
        )


if __name__ == "__main__":
    main()
