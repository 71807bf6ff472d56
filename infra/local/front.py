"""The local HTTP front: what API Gateway (HTTP API, payload format 2.0) does, for the local stack.

Each request becomes an API Gateway v2 event for the route's handler function, which runs in this
process; its proxy response becomes the HTTP answer. The route table is read from template.yaml's
``HttpApi`` events (one source of truth), and each function's handler from its ``Handler``/``CodeUri``
(zip) or its Dockerfile's ``CMD`` (image). ``web/`` is served at ``/`` when it exists.

The limits a client can meet in AWS are the HTTP API's and Lambda's, modelled here: any method on any
path without a route is a JSON 404 (TRACE and made-up methods too, never http.server's 501); route
throttling from the template's ``DefaultRouteSettings``/``RouteSettings`` (token buckets, 429 with
``{"message": "Too Many Requests"}``); a body over the HTTP API's 10 MB, or an event over Lambda's 6 MB
invoke payload, is 413 and reaches no function; a client that goes away before its body has arrived
invokes nothing, and one that goes away before reading its answer costs a log line, not a traceback.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import logging
import re
import shlex
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from infra.local.aws import load_template

log = logging.getLogger("moodtune.front")

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MAX_BODY = 10 * 1024 * 1024  # the HTTP API's request payload quota; the handlers refuse > 16 KB.
LAMBDA_MAX_PAYLOAD = 6 * 1024 * 1024 + 100  # Lambda's synchronous invoke payload (6,291,556 bytes)
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "upgrade", "te"})
_DRAIN_LIMIT = 16 * 1024 * 1024  # past this, a refused body is not read: the connection is dropped
_CLIENT_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)
# Content types API Gateway passes as text; anything else arrives base64-encoded.
_TEXT_TYPES = re.compile(r"^(text/|application/(json|.*\+json|xml|.*\+xml|javascript|x-www-form-urlencoded))")

Handler = Callable[[dict[str, Any], Any], Any]


# ---------------------------------------------------------------- the route table, from template.yaml


@dataclass(frozen=True)
class Route:
    """One ``HttpApi`` event: ``METHOD /path/{param}`` served by the function ``function``."""

    method: str
    path: str
    function: str
    pattern: re.Pattern[str] = field(compare=False, repr=False)

    @property
    def key(self) -> str:
        """The API Gateway route key, e.g. ``POST /v1/recommendations``."""
        return f"{self.method} {self.path}"


def _path_pattern(path: str) -> re.Pattern[str]:
    """``/v1/songs/{song_id}`` -> a regex with a named group per parameter (``{proxy+}`` is greedy)."""
    parts = []
    for piece in re.split(r"(\{[^}]+\})", path):
        if piece.startswith("{") and piece.endswith("}"):
            name = piece[1:-1]
            parts.append(f"(?P<{name[:-1]}>.+)" if name.endswith("+") else f"(?P<{name}>[^/]+)")
        else:
            parts.append(re.escape(piece))
    return re.compile("^" + "".join(parts) + "$")


def load_routes(template: Mapping[str, Any] | str | Path) -> list[Route]:
    """Every ``HttpApi`` event of every ``AWS::Serverless::Function`` in the template, as routes."""
    if not isinstance(template, Mapping):
        template = load_template(template)
    routes = []
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        for event in (resource.get("Properties", {}).get("Events") or {}).values():
            if event.get("Type") != "HttpApi":
                continue
            props = event.get("Properties", {})
            method, path = str(props["Method"]).upper(), str(props["Path"])
            routes.append(Route(method=method, path=path, function=logical_id, pattern=_path_pattern(path)))
    return routes


@dataclass(frozen=True)
class FunctionSource:
    """Where a function's handler lives in the tree: ``module_file`` and the callable's name."""

    logical_id: str
    module_file: Path
    attribute: str
    memory_mb: int
    timeout_s: int


def _dockerfile_cmd(dockerfile: Path) -> str:
    """The handler named by a Dockerfile's last ``CMD ["module.function"]``."""
    cmd = None
    for line in dockerfile.read_text(encoding="utf-8").splitlines():
        if line.strip().upper().startswith("CMD"):
            value = line.strip()[3:].strip()
            cmd = json.loads(value)[0] if value.startswith("[") else shlex.split(value)[0]
    if cmd is None:
        raise ValueError(f"{dockerfile} has no CMD naming the handler")
    return cmd


def _task_root_files(dockerfile: Path, context: Path) -> dict[str, Path]:
    """File name at the image's task root -> the repository file that the Dockerfile's COPY puts there."""
    files: dict[str, Path] = {}
    for line in re.sub(r"\\\n", " ", dockerfile.read_text(encoding="utf-8")).splitlines():
        instruction, _, rest = line.strip().partition(" ")
        if instruction.upper() != "COPY":
            continue
        *sources, destination = rest.split()
        if destination.rstrip("/") != "${LAMBDA_TASK_ROOT}":
            continue
        for source in sources:
            if (context / source).is_file():
                files[Path(source).name] = context / source
    return files


def function_sources(
    template: Mapping[str, Any] | str | Path, root: Path = ROOT
) -> dict[str, FunctionSource]:
    """Logical id -> handler location of every function, resolved against the tree at ``root``.

    Zip functions: ``CodeUri`` + ``Handler``. Image functions: the ``CMD`` (or ``ImageConfig.Command``)
    module, found where the Dockerfile's COPY lines take it from (one image serves several functions).
    """
    if not isinstance(template, Mapping):
        template = load_template(template)
    function_globals = template.get("Globals", {}).get("Function", {})
    sources = {}
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = {**function_globals, **resource.get("Properties", {})}
        if props.get("PackageType") == "Image":
            context = root / resource["Metadata"]["DockerContext"]
            dockerfile = context / resource["Metadata"]["Dockerfile"]
            command = (props.get("ImageConfig") or {}).get("Command") or [_dockerfile_cmd(dockerfile)]
            module, _, attribute = command[0].rpartition(".")
            file_name = module.replace(".", "/") + ".py"
            module_file = _task_root_files(dockerfile, context).get(file_name, dockerfile.parent / file_name)
        else:
            module, _, attribute = props["Handler"].rpartition(".")
            module_file = root / props["CodeUri"] / (module.replace(".", "/") + ".py")
        sources[logical_id] = FunctionSource(
            logical_id=logical_id,
            module_file=module_file,
            attribute=attribute,
            memory_mb=int(props.get("MemorySize", 128)),
            timeout_s=int(props.get("Timeout", 3)),
        )
    return sources


def load_handler(source: FunctionSource) -> Handler:
    """Import a function's handler module under a private name (both handlers are ``app.py``)."""
    name = f"_moodtune_local_{source.logical_id}"
    spec = importlib.util.spec_from_file_location(name, source.module_file)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {source.module_file}")
    module: ModuleType = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return getattr(module, source.attribute)


@dataclass
class TokenBucket:
    """API Gateway's throttle for one route: ``rate`` requests a second, bursts of up to ``burst``."""

    rate: float
    burst: float
    tokens: float = -1.0
    stamp: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def take(self, now: float | None = None) -> bool:
        """Spend one token; False when the route is throttled (the request is answered 429)."""
        now = time.monotonic() if now is None else now
        with self.lock:
            if self.tokens < 0:
                self.tokens, self.stamp = self.burst, now
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.tokens < 1:
                return False
            self.tokens -= 1
            return True


def _parameter_default(template: Mapping[str, Any], value: Any) -> float | None:
    if isinstance(value, Mapping) and "Ref" in value:
        value = template.get("Parameters", {}).get(value["Ref"], {}).get("Default")
    return None if value is None else float(value)


def throttles(template: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    """Route key (``"*"``: every other route) -> (rate, burst), from the HTTP API's route settings
    with the template parameters' defaults."""
    limits: dict[str, tuple[float, float]] = {}
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") != "AWS::Serverless::HttpApi":
            continue
        props = resource.get("Properties", {})
        settings = {"*": props.get("DefaultRouteSettings") or {}, **(props.get("RouteSettings") or {})}
        for key, setting in settings.items():
            rate = _parameter_default(template, setting.get("ThrottlingRateLimit"))
            burst = _parameter_default(template, setting.get("ThrottlingBurstLimit"))
            if rate is not None and burst is not None:
                limits[key] = (rate, burst)
    return limits


def allowed_origins(template: Mapping[str, Any]) -> tuple[str, ...]:
    """The CORS origins the deployed API would allow: the ``AllowedOrigins`` parameter's default."""
    default = template.get("Parameters", {}).get("AllowedOrigins", {}).get("Default", "")
    return tuple(o.strip() for o in str(default).split(",") if o.strip())


# ---------------------------------------------------------------- the Lambda side


@dataclass
class LambdaContext:
    """The attributes of the Lambda context object that Powertools and the handlers read."""

    function_name: str
    memory_limit_in_mb: int
    timeout_s: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self.invoked_function_arn = f"arn:aws:lambda:local:123456789012:function:{self.function_name}"
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self._deadline = time.monotonic() + self.timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass
class LocalFunction:
    """A handler and one lock: like one Lambda execution environment, it runs one event at a time."""

    source: FunctionSource
    handler: Handler
    lock: threading.Lock = field(default_factory=threading.Lock)

    def invoke(self, event: dict[str, Any]) -> Any:
        context = LambdaContext(self.source.logical_id, self.source.memory_mb, self.source.timeout_s)
        with self.lock:
            return self.handler(event, context)


# ---------------------------------------------------------------- requests -> events -> answers


@dataclass
class Answer:
    """An HTTP answer: status, headers (name -> value, possibly repeated), body bytes."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


def _json_answer(status: int, payload: Mapping[str, Any], headers: Iterable[tuple[str, str]] = ()) -> Answer:
    body = json.dumps(payload, ensure_ascii=False).encode()
    return Answer(status, [("content-type", "application/json"), *headers], body)


def build_event(
    route: Route,
    path_parameters: Mapping[str, str],
    method: str,
    target: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    source_ip: str,
) -> dict[str, Any]:
    """The API Gateway HTTP API payload format 2.0 event for one request.

    Like the HTTP API, ``rawPath`` (and ``requestContext.http.path``) carry the path percent-decoded
    (``/v1/songs/가``, not ``/v1/songs/%EA%B0%80``), which is what the handlers route on; bytes that
    are not UTF-8 become U+FFFD. ``rawQueryString`` stays as sent.
    """
    url = urlsplit(target)
    path = unquote(url.path, errors="replace")
    merged: dict[str, str] = {}
    for name, value in headers:
        name = name.lower()
        if name in _HOP_BY_HOP:
            continue
        merged[name] = f"{merged[name]},{value}" if name in merged else value
    cookies = [c.strip() for c in merged.pop("cookie", "").split(";") if c.strip()]
    now = datetime.now(UTC)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.key,
        "rawPath": path,
        "rawQueryString": url.query,
        "headers": merged,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": merged.get("host", "localhost"),
            "domainPrefix": merged.get("host", "localhost").split(".")[0],
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": merged.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": route.key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if url.query:
        query: dict[str, str] = {}
        for name, value in parse_qsl(url.query, keep_blank_values=True):
            query[name] = f"{query[name]},{value}" if name in query else value
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    if body:
        content_type = merged.get("content-type", "")
        try:
            if not _TEXT_TYPES.match(content_type.lower()):
                raise UnicodeDecodeError("utf-8", body, 0, 0, "binary content type")
            event["body"] = body.decode("utf-8")
        except UnicodeDecodeError:
            # API Gateway base64-encodes binary (or non-UTF-8) bodies; the handler must cope.
            event["body"] = base64.b64encode(body).decode("ascii")
            event["isBase64Encoded"] = True
    return event


def proxy_answer(result: Any) -> Answer:
    """A Lambda proxy response (format 2.0) -> an HTTP answer, as API Gateway converts it."""
    if not (isinstance(result, Mapping) and "statusCode" in result):
        # Format 2.0 infers a 200 JSON answer from any other return value.
        return (
            _json_answer(200, result) if isinstance(result, Mapping) else _json_answer(200, {"body": result})
        )
    headers = [(str(k).lower(), str(v)) for k, v in (result.get("headers") or {}).items()]
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers.extend((str(name).lower(), str(v)) for v in values)
    headers.extend(("set-cookie", str(c)) for c in result.get("cookies") or [])
    raw = result.get("body") or ""
    body = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode("utf-8")
    return Answer(int(result["statusCode"]), headers, body)


class Front:
    """Routes requests to local functions; knows nothing about HTTP sockets (easy to test)."""

    def __init__(
        self,
        routes: list[Route],
        functions: Mapping[str, LocalFunction],
        *,
        origins: Iterable[str] = (),
        max_body: int = DEFAULT_MAX_BODY,
        throttling: Mapping[str, tuple[float, float]] | None = None,
    ) -> None:
        # API Gateway picks the most specific route: static paths before {params}, {proxy+} last.
        self.routes = sorted(routes, key=lambda r: (r.path.count("+}"), r.path.count("{"), -len(r.path)))
        self.functions = functions
        self.origins = frozenset(origins)
        self.max_body = max_body
        limits = dict(throttling or {})
        default = limits.pop("*", None)
        self.buckets = {
            r.key: TokenBucket(*limits.get(r.key, default)) for r in routes if r.key in limits or default
        }

    @classmethod
    def from_template(cls, template_path: str | Path, root: Path = ROOT, **kwargs: Any) -> Front:
        """Read routes and handlers from template.yaml and import every routed function's handler.

        ``throttle=False`` turns route throttling off (the load test measures the functions, not it).
        """
        template = load_template(template_path)
        if kwargs.pop("throttle", True):
            kwargs.setdefault("throttling", throttles(template))
        routes = load_routes(template)
        sources = function_sources(template, root)
        functions = {
            fid: LocalFunction(sources[fid], load_handler(sources[fid]))
            for fid in {r.function for r in routes}
        }
        kwargs.setdefault("origins", allowed_origins(template))
        return cls(routes, functions, **kwargs)

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        """The route for ``METHOD path`` and its (URL-decoded) path parameters, or None."""
        for route in self.routes:
            if route.method != method:
                continue
            found = route.pattern.match(path)
            if found:
                return route, {k: unquote(v) for k, v in found.groupdict().items()}
        return None

    def is_api_path(self, path: str) -> bool:
        """True when some route (any method) serves this path: such paths never fall back to web/."""
        return path.startswith("/v1/") or any(r.pattern.match(path) for r in self.routes)

    def cors_headers(self, origin: str | None) -> list[tuple[str, str]]:
        if origin and origin in self.origins:
            return [("access-control-allow-origin", origin), ("vary", "origin")]
        return []

    def preflight(self, origin: str | None) -> Answer:
        """Answer a CORS preflight the way the HTTP API's CorsConfiguration would."""
        headers = self.cors_headers(origin)
        if headers:
            headers += [
                ("access-control-allow-methods", "GET,POST,OPTIONS"),
                ("access-control-allow-headers", "content-type"),
                ("access-control-max-age", "600"),
            ]
        return Answer(204, headers, b"")

    def handle(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes, source_ip: str
    ) -> Answer:
        """One request -> one answer. Unknown routes get 404, a throttled route 429, an event over
        Lambda's payload 413, handler crashes 500, as API Gateway does."""
        path = urlsplit(target).path
        found = self.match(method, path)
        if found is None:
            return _json_answer(404, {"message": "Not Found"})
        route, params = found
        bucket = self.buckets.get(route.key)
        if bucket is not None and not bucket.take():
            return _json_answer(429, {"message": "Too Many Requests"})
        event = build_event(route, params, method, target, headers, body, source_ip)
        if len(json.dumps(event, ensure_ascii=False).encode()) > LAMBDA_MAX_PAYLOAD:
            # Lambda refuses the invoke (RequestEntityTooLargeException); the function never runs.
            return _json_answer(413, {"message": "Request Entity Too Large"})
        try:
            result = self.functions[route.function].invoke(event)
        except Exception:  # a handler crash: API Gateway answers 500 and the log has the trace
            log.exception("%s raised on %s", route.function, route.key)
            return _json_answer(500, {"message": "Internal Server Error"})
        return proxy_answer(result)


# ---------------------------------------------------------------- the HTTP server


class _RequestHandler(SimpleHTTPRequestHandler):
    """API routes go to the Front; other GETs are static files from web/ (no directory listings)."""

    front: Front
    web_dir: Path | None
    server_version = "moodtune-local"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, directory=str(self.web_dir or ROOT / "web"), **kwargs)

    # -- dispatch
    def _api(self, method: str) -> None:
        started = time.perf_counter()
        origin = self.headers.get("origin")
        length_header = self.headers.get("content-length")
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            answer = _json_answer(411, {"message": "send a Content-Length; chunked bodies are not supported"})
            self.close_connection = True
        elif length_header is not None and not length_header.isdigit():
            answer = _json_answer(400, {"message": "invalid Content-Length"})
            self.close_connection = True
        elif int(length_header or 0) > self.front.max_body:
            answer = _json_answer(413, {"message": "Request Entity Too Large"})
            self._discard(int(length_header or 0))
        else:
            # Every body is read, whatever the method (an OPTIONS or a GET may carry one too): a body
            # left unread would be parsed as the next request on a keep-alive connection.
            body = self._read_body(int(length_header or 0))
            if body is None:  # the client went away mid-body: API Gateway invokes nothing
                log.info("%s %s: client gone before its body arrived", method, urlsplit(self.path).path)
                self.close_connection = True
                return
            if method == "OPTIONS":
                answer = self.front.preflight(origin)
            else:
                answer = self.front.handle(
                    method, self.path, list(self.headers.items()), body, self.client_address[0]
                )
                answer.headers += self.front.cors_headers(origin)
        try:
            self._send(answer, head_only=method == "HEAD")
        except _CLIENT_GONE:  # the function ran; only the answer is lost, as behind API Gateway
            log.info("%s %s: client gone before the answer", method, urlsplit(self.path).path)
            self.close_connection = True
            return
        elapsed_ms = (time.perf_counter() - started) * 1000
        log.info("%s %s -> %d (%.1f ms)", method, urlsplit(self.path).path, answer.status, elapsed_ms)

    def _read_body(self, length: int) -> bytes | None:
        """The request body, or None when the client hung up before all of it arrived."""
        try:
            body = self.rfile.read(length) if length else b""
        except _CLIENT_GONE:
            return None
        return body if len(body) == length else None

    def _discard(self, length: int) -> None:
        """Drain a refused body so the client reads the answer instead of a reset; huge ones: hang up."""
        if length > _DRAIN_LIMIT:
            self.close_connection = True
            return
        while length > 0:
            chunk = self.rfile.read(min(length, 65536))
            if not chunk:
                break
            length -= len(chunk)

    def _send(self, answer: Answer, head_only: bool = False) -> None:
        self.send_response(answer.status)
        for name, value in answer.headers:
            if name not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("content-length", str(len(answer.body)))
        if self.close_connection:
            self.send_header("connection", "close")
        self.end_headers()
        if not head_only:
            self.wfile.write(answer.body)

    def _static_or_api(self, method: str) -> None:
        path = urlsplit(self.path).path
        if self.front.is_api_path(path) or self.web_dir is None:
            self._api(method)
            return
        length = self.headers.get("content-length", "0")
        if not length.isdigit() or int(length) > _DRAIN_LIMIT or self._read_body(int(length)) is None:
            self.close_connection = True  # a static file's request body is read and dropped
        if method == "HEAD":
            super().do_HEAD()
        else:
            super().do_GET()

    def do_GET(self) -> None:
        self._static_or_api("GET")

    def do_HEAD(self) -> None:
        self._static_or_api("HEAD")

    def do_POST(self) -> None:
        self._api("POST")

    def do_PUT(self) -> None:
        self._api("PUT")

    def do_PATCH(self) -> None:
        self._api("PATCH")

    def do_DELETE(self) -> None:
        self._api("DELETE")

    def do_OPTIONS(self) -> None:
        self._api("OPTIONS")

    def __getattr__(self, name: str) -> Any:
        # http.server answers a method without a do_<METHOD> (TRACE, CONNECT, made-up ones) with a
        # non-JSON 501; the HTTP API routes every method, so they go to the front (a JSON 404).
        if name.startswith("do_") and len(name) > 3:
            method = name[3:]
            return lambda: self._api(method)
        raise AttributeError(name)

    # -- static files: no listings, JSON 404s, and never a path outside web/
    def list_directory(self, path: str) -> None:  # type: ignore[override]
        self._send(_json_answer(404, {"message": "Not Found"}))
        return None

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        self.close_connection = True
        # The same JSON body the API's own 404 has ("Not Found"), whatever http.server would say.
        self._send(_json_answer(code, {"message": HTTPStatus(code).phrase}))

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)


def make_server(front: Front, host: str, port: int, web_dir: Path | None = None) -> ThreadingHTTPServer:
    """A threaded HTTP server for ``front`` on ``host:port`` (port 0: a free one), not yet serving.

    Raises OSError when the port is taken.
    """
    web = web_dir if web_dir is not None else ROOT / "web"
    handler = type(
        "MoodtuneRequestHandler",
        (_RequestHandler,),
        {"front": front, "web_dir": web if (web / "index.html").is_file() else None},
    )
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server
