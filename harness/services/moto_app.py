"""The `moto` service, server side: moto's WSGI app on 127.0.0.1, one request at a time.

Runs as `python -m harness.services.moto_app` (started by harness/services/moto.py) and prints
the port it bound on its first stdout line. moto's conditional checks (If-None-Match on
PutObject, ConditionExpression on PutItem) are not atomic under its threaded server, so two
racing conditional writes could both win and make a safe configuration look broken.
Serialising the app makes every request atomic; the body is read before the lock and the
response is sent after it, so a slow client stalls no one. The server also answers Athena's
BatchGetQueryExecution, which moto lacks. It exits when its stdin (a pipe from the parent)
closes, so a SIGKILLed parent leaves no server behind.
"""
from __future__ import annotations

import io
import os
import sys
import threading

from harness.kit import LOOPBACK as HOST


def serialised(app):
    """moto's WSGI app behind one lock: every request, conditional checks included, is atomic."""
    lock = threading.Lock()

    def handle(environ, start_response):
        _buffer_body(environ)
        with lock:
            response = app(environ, start_response)
            try:
                body = b"".join(response)
            finally:
                if hasattr(response, "close"):
                    response.close()
        return [body]

    return handle


def _buffer_body(environ) -> None:
    stream = environ["wsgi.input"]
    if environ.get("wsgi.input_terminated"):  # chunked: the server ends the stream for us
        data = stream.read()
    else:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        data = stream.read(length) if length > 0 else b""
    environ["wsgi.input"] = io.BytesIO(data)


def _add_batch_get_query_execution() -> None:
    """Athena's BatchGetQueryExecution, which moto (up to 5.2.x at least) lacks.

    awswrangler's local query cache fills itself with it, so without it every cached
    read_sql_query retries an HTTP 500. The items have the shape moto gives
    GetQueryExecution; unlike that call, this one does not advance an execution's state.
    """
    import json

    from moto.athena.responses import AthenaResponse

    if hasattr(AthenaResponse, "batch_get_query_execution"):
        return

    def item(exec_id, execution):
        ddl = execution.query.upper().startswith(("ALTER", "CREATE", "DESCRIBE", "DROP", "MSCK", "SHOW"))
        return {"QueryExecutionId": exec_id, "Query": execution.query, "StatementType": "DDL" if ddl else "DML",
                "ResultConfiguration": execution.config, "QueryExecutionContext": execution.context,
                "Status": {"State": execution.status, "SubmissionDateTime": execution.start_time,
                           "CompletionDateTime": execution.end_time},
                "WorkGroup": execution.workgroup.name if execution.workgroup else None}

    def batch_get_query_execution(self):
        executions = self.athena_backend.executions
        ids = self._get_param("QueryExecutionIds") or []
        return json.dumps({
            "QueryExecutions": [item(i, executions[i]) for i in ids if i in executions],
            "UnprocessedQueryExecutionIds": [{"QueryExecutionId": i, "ErrorCode": "InvalidRequestException",
                                              "ErrorMessage": "not found"} for i in ids if i not in executions]})

    AthenaResponse.batch_get_query_execution = batch_get_query_execution


def _exit_when_parent_goes() -> None:
    """Our stdin is a pipe from the parent: EOF means it is gone (even if it was SIGKILLed)."""
    def watch():
        while sys.stdin.buffer.read(4096):
            pass
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def serve() -> None:
    import logging
    import signal

    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    _add_batch_get_query_execution()
    app = serialised(DomainDispatcherApplication(create_backend_app))
    server = make_server(HOST, 0, app, threaded=True)
    os.environ["MOTO_PORT"] = str(server.server_port)
    sys.stdout.write(f"{server.server_port}\n")
    sys.stdout.flush()
    sys.stdout = sys.stderr  # nobody reads our stdout any more: a full pipe must not block us
    _exit_when_parent_goes()
    server.serve_forever()


if __name__ == "__main__":
    serve()
