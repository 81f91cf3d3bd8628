#!/usr/bin/env python3
"""The smallest honest substitute for a Confluent Schema Registry, for tests.

Karapace (the open-source registry on PyPI) does not install here, so this serves the part of
the Confluent REST API that Avro serializers use, in memory, on 127.0.0.1:PORT:

  POST /subjects/{subject}/versions        {"schema": "..."} -> {"id": n}  (same schema, same id)
  GET  /subjects/{subject}/versions/latest -> {"subject", "version", "id", "schema"}
  GET  /subjects                           -> ["subject", ...]
  GET  /schemas/ids/{id}                   -> {"schema": "..."}

It does not check compatibility between versions. Errors use the registry's shape
({"error_code": 40401, "message": "..."}).
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SCHEMAS = {}   # id -> schema text
SUBJECTS = {}  # subject -> [ids, one per version]


def canonical(text):
    try:
        return json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))
    except ValueError:
        return text


class Registry(BaseHTTPRequestHandler):
    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def not_found(self, code, message):
        self.reply(404, {"error_code": code, "message": message})

    def do_GET(self):
        parts = [p for p in self.path.split("?")[0].split("/") if p]
        if parts == ["subjects"]:
            return self.reply(200, sorted(SUBJECTS))
        if len(parts) == 3 and parts[:2] == ["schemas", "ids"] and parts[2].isdigit():
            schema = SCHEMAS.get(int(parts[2]))
            if schema is None:
                return self.not_found(40403, f"Schema {parts[2]} not found")
            return self.reply(200, {"schema": schema})
        if len(parts) == 4 and parts[0] == "subjects" and parts[2] == "versions":
            versions = SUBJECTS.get(parts[1])
            if not versions:
                return self.not_found(40401, f"Subject '{parts[1]}' not found.")
            index = len(versions) if parts[3] == "latest" else int(parts[3])
            schema_id = versions[index - 1]
            return self.reply(200, {"subject": parts[1], "version": index, "id": schema_id,
                                    "schema": SCHEMAS[schema_id]})
        return self.not_found(404, f"no route {self.path}")

    def do_POST(self):
        parts = [p for p in self.path.split("?")[0].split("/") if p]
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        if len(parts) == 3 and parts[0] == "subjects" and parts[2] == "versions":
            schema = body.get("schema")
            if not isinstance(schema, str):
                return self.reply(422, {"error_code": 42201, "message": "Invalid schema"})
            for schema_id, known in SCHEMAS.items():
                if canonical(known) == canonical(schema):
                    break
            else:
                schema_id = len(SCHEMAS) + 1
                SCHEMAS[schema_id] = schema
            versions = SUBJECTS.setdefault(parts[1], [])
            if schema_id not in versions:
                versions.append(schema_id)
            return self.reply(200, {"id": schema_id})
        return self.not_found(404, f"no route {self.path}")

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Registry).serve_forever()
